"""Fixtures for the HIL tests: a tiny int8 .tflite with a matching eval set, and board maps of virtual boards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.firmware.firmware_models import write_model
from wedge.samples.tiny_tflite import int8_fc_model

FEATURES = 64
UNITS = 8


@pytest.fixture(scope="session")
def fc_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("model"), "fc.tflite", int8_fc_model(features=FEATURES, units=UNITS))


@pytest.fixture(scope="session")
def fc_eval(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("eval") / "eval.npz"
    np.savez(path, x=rng.uniform(-1, 1, size=(12, FEATURES)).astype(np.float32),
             labels=rng.integers(0, UNITS, size=12))
    return path


def write_map(folder: Path, boards: dict[str, tuple[str, str]]) -> Path:
    path = folder / "bench.toml"
    path.write_text("".join(f'[boards.{name}]\nprofile = "{profile}"\nport = "{port}"\n\n'
                            for name, (profile, port) in boards.items()))
    return path
