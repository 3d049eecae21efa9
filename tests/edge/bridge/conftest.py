"""The virtual air the bridge tests share: one per test module, with boards of several tests on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wedge.firmware.virtual.processes import AirProcess


@pytest.fixture(scope="module")
def air(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirProcess]:
    process = AirProcess(tmp_path_factory.mktemp("air"))
    yield process
    process.terminate()
