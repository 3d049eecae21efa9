"""Fixtures for firmware tests (loaded suite-wide by the root conftest): signing keys, tiny int8 models, images,
and virtual boards as processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.firmware.firmware_models import make_keys, write_model
from wedge.firmware.image.keys import KeyPair
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.samples.tiny_tflite import int8_fc_model

SOAK_RUNS_ENV = "WEDGE_SOAK_RUNS"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak-runs", type=int, default=None,
                     help=f"fault-soak runs (default 10, or ${SOAK_RUNS_ENV}); 200 for the full soak")


@pytest.fixture
def soak_runs(request: pytest.FixtureRequest) -> int:
    option = request.config.getoption("--soak-runs")
    return int(option if option is not None else os.environ.get(SOAK_RUNS_ENV, "10"))


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_keys(tmp_path_factory.mktemp("other-keys"))


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return write_model(tmp_path, "tiny.tflite", int8_fc_model(features=64, units=8))


@pytest.fixture
def board(tmp_path: Path, keys: KeyPair) -> Iterator[EmulatorProcess]:
    """A fresh virtual ring (no model yet), unpaced, trusting `keys`."""
    process = EmulatorProcess(tmp_path / "board", keys.private_path)
    process.folder.mkdir()
    process.start()
    yield process
    process.stop()
