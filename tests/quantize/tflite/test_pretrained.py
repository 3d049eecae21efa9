"""Real pretrained models from another package go all the way to int8 TFLite-Micro through `wedge quantize`.

PaddleOCR's text-direction classifier (MobileNetV3: HardSigmoid, HardSwish as Div by 6, BatchNorm) runs in the
default suite; the DBNet detector (Resize, ConvTranspose, stand-alone BatchNorm) and the SVTR recognizer
(attention, LayerNorm written out, a 6,625-class softmax) are slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.quantize.tflite.pretrained_models import ocr_model
from wedge.quantize.calibrate import Method
from wedge.quantize.pipeline import QuantizeOptions, run_quantize
from wedge.samples.ocr_data import text_images


def _run(kind: str, shape: tuple[int, int], folder: Path, task: str, count: int = 12):
    calib, evaluation = folder / "calib.npz", folder / "eval.npz"
    np.savez(calib, x=text_images(count, *shape, seed=1, rotated_share=0.5))
    np.savez(evaluation, x=text_images(count, *shape, seed=2, rotated_share=0.5))
    options = QuantizeOptions(methods=(Method.MINMAX,), format="tflite", input_shapes={"x": (1, 3, *shape)},
                              layer_samples=2, task=task)
    return run_quantize(ocr_model(kind), folder / "out", calib=calib, evaluation=evaluation, options=options)


def _agrees_with_onnx(report) -> None:  # noqa: ANN001 - a QuantizeReport
    export = report.tflite
    assert export is not None and export.path.is_file()
    assert export.validation.passed, export.validation.problems
    for run in export.validation.runtimes:
        assert run.sqnr_db >= 15.0, run


def test_the_ocr_direction_classifier_exports_to_tflite_micro(tmp_path: Path) -> None:
    report = _run("direction", (48, 192), tmp_path, "auto")
    assert report.evaluation.task == "classification"  # [N, 2]: inferred, and it says why
    assert "classes" in report.evaluation.task_reason
    _agrees_with_onnx(report)
    ops = report.tflite.op_histogram
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MUL", "SOFTMAX"} <= set(ops)
    assert "GATHER" not in ops  # HardSigmoid and Div by 6 need no int32 table on channel-last data
    tflm = report.tflite.validation.runtime("tflm")
    assert tflm.top1_agreement_pct is not None and tflm.top1_agreement_pct >= 90.0


@pytest.mark.slow
def test_the_ocr_detector_exports_and_is_judged_on_its_positives(tmp_path: Path) -> None:
    report = _run("detector", (64, 64), tmp_path, "detection", count=8)
    assert report.evaluation.primary.metric == "positive F1"
    _agrees_with_onnx(report)
    assert {"RESIZE_NEAREST_NEIGHBOR", "TRANSPOSE_CONV"} <= set(report.tflite.op_histogram)


@pytest.mark.slow
def test_the_ocr_recognizer_exports_and_is_judged_per_step(tmp_path: Path) -> None:
    report = _run("recognizer", (48, 160), tmp_path, "sequence", count=6)
    assert report.evaluation.primary.metric == "token agreement"
    _agrees_with_onnx(report)
    ops = report.tflite.op_histogram
    assert {"BATCH_MATMUL", "STRIDED_SLICE", "DEQUANTIZE", "SOFTMAX"} <= set(ops)  # 6,625 classes: float softmax
