"""PaddleOCR's pretrained models as rapidocr-onnxruntime ships them, and text-line images drawn here to feed them.

The wheel carries the ONNX files; wedge reads only those (no OpenCV). Images are words in Pillow's own font on
light backgrounds, normalized as PaddleOCR does; nothing is downloaded, and a seed fixes them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Final

import numpy as np

RAPIDOCR_PACKAGE: Final = "rapidocr_onnxruntime"
OCR_MODELS: Final = {
    "detector": "ch_PP-OCRv4_det_infer.onnx",
    "recognizer": "ch_PP-OCRv4_rec_infer.onnx",
    "direction": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
}
# Input sizes that keep each model small enough to calibrate and run in TFLite-Micro on a laptop in seconds.
OCR_INPUT_HW: Final = {"detector": (64, 64), "recognizer": (48, 160), "direction": (48, 192)}
_WORDS: Final = ("wedge", "ring", "edge", "TFLite", "int8", "model", "board", "sensor", "BLE", "42", "OCR", "text")


def ocr_model_path(kind: str) -> Path | None:
    """The installed file of one of rapidocr's bundled models, or None when the package is absent."""
    spec = importlib.util.find_spec(RAPIDOCR_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / OCR_MODELS[kind]
    return path if path.is_file() else None


def text_images(count: int, height: int, width: int, seed: int = 0, *, rotated_share: float = 0.0) -> np.ndarray:
    """Dark words on light backgrounds as PaddleOCR feeds them: NCHW, (pixel / 255 - 0.5) / 0.5; the first
    `rotated_share` of them upside down (what the direction classifier detects)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(180, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 3))):
            font = ImageFont.load_default(size=int(rng.integers(height // 3, max(height // 3 + 1, height // 2))))
            position = (int(rng.integers(0, max(1, width // 3))), int(rng.integers(0, max(1, height // 3))))
            draw.text(position, " ".join(rng.choice(_WORDS, 2)), font=font,
                      fill=tuple(int(v) for v in rng.integers(0, 80, 3)))
        if index < rotated_share * count:
            image = image.rotate(180)
        pixels = np.asarray(image, np.float32) / 255.0
        images.append(((pixels - 0.5) / 0.5).transpose(2, 0, 1))
    return np.stack(images).astype(np.float32)
