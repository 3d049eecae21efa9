"""Suite-wide test helpers: where the MLPerf Tiny reference models live, and how a test asks for one.

`shared_model(name)` returns the path of a model in ../shared/models, or skips the test with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

# Fixtures that tests of several packages use (keys, models, virtual boards): loaded for the whole suite.
pytest_plugins = ("tests.firmware.fixtures",)

REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[1]
SHARED_MODELS: Final[Path] = REPO_ROOT.parent / "shared" / "models"


def shared_model(name: str) -> Path:
    """The path of `name` in ../shared/models; the calling test is skipped when the file is absent."""
    path = SHARED_MODELS / name
    if not path.is_file():
        pytest.skip(f"shared model {name} is absent ({SHARED_MODELS})")
    return path
