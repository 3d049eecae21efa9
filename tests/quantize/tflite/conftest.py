"""Fixtures for the TFLite export tests: the bundled samples quantized once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.quantize.tflite.tflite_models import quantize_sample


@pytest.fixture(scope="session")
def digits_qdq(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    return quantize_sample("digits", tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def ppg_qdq(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    return quantize_sample("ppg_quality", tmp_path_factory.mktemp("ppg"))
