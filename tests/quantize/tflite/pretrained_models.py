"""The pretrained OCR models rapidocr-onnxruntime ships, for tests: skipped when the package is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from wedge.samples.ocr_data import RAPIDOCR_PACKAGE, ocr_model_path


def ocr_model(kind: str) -> Path:
    path = ocr_model_path(kind)
    if path is None:
        pytest.skip(f"{RAPIDOCR_PACKAGE} is not installed (pip install --no-deps rapidocr-onnxruntime)")
    return path
