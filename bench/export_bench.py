"""Benchmark: wedge's int8 TFLite export against onnxruntime (its source) and the TensorFlow converter's int8.

Per model (the bundled samples, the MLPerf Tiny references when ../shared/models exists, and PaddleOCR's
pretrained detector, recognizer and direction classifier when rapidocr-onnxruntime is installed): export time,
.tflite size vs the int8 ONNX, agreement with onnxruntime on the QDQ model (LiteRT and TFLite-Micro),
agreement with fp32 for wedge's .tflite and for the converter's reference on the same inputs (top-1, the
task metric for OCR, or anomaly-score correlation and SQNR for the autoencoder), measured arena vs recorded
allocation, TFLM invoke time; and an op-coverage table: every ONNX op type of every model, and whether the
export lowers it. Progress on stderr, JSON on stdout.

    python bench/export_bench.py [--models digits,ppg_quality,vww,resnet,ad01,ocr_direction,ocr_detector,
                                  ocr_recognizer] [--eval-count 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wedge.quantize.calibrate import Method
from wedge.quantize.evaluate import MAX_CLASSES, sqnr_db
from wedge.quantize.metrics import DEFAULT_THRESHOLD, metric_for
from wedge.quantize.pipeline import QuantizeOptions, run_quantize
from wedge.quantize.tflite.arena import measure_arena
from wedge.quantize.tflite.dry_run import op_coverage
from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.export import ExportResult
from wedge.runtime.engines import open_engine
from wedge.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine

SHARED_MODELS = REPO.parent / "shared" / "models"
ALL_MODELS = ("digits", "ppg_quality", "vww", "resnet", "ad01", "ocr_direction", "ocr_detector", "ocr_recognizer")
# name -> (rapidocr model kind, the task its output is judged by)
OCR_CASES = {"ocr_direction": ("direction", "classification"), "ocr_detector": ("detector", "detection"),
             "ocr_recognizer": ("recognizer", "sequence")}
# Text images are costly to push through the recognizer in TFLM: fewer of them.
OCR_EVAL_CAP = 24
# name -> (float ONNX, the TensorFlow converter's int8 .tflite of the same network)
REFERENCES = {"vww": ("vww_96_float.onnx", "vww_96_int8.tflite"),
              "resnet": ("pretrainedResnet.onnx", "pretrainedResnet_quant.tflite"),
              "ad01": ("ad01_fp32.onnx", "ad01_int8.tflite")}
GOAL_IDENTICAL_PCT = 99.0
GOAL_MAX_QUANTA = 1


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Case:
    name: str
    model: Path
    calib: Path
    evaluation: Path
    inputs: np.ndarray  # eval inputs, ONNX layout
    labels: np.ndarray | None
    reference: Path | None
    autoencoder: bool
    task: str = "classification"
    input_shape: tuple[int, ...] | None = None


def _cases(names: list[str], eval_count: int, folder: Path) -> list[Case]:
    from wedge.samples import SAMPLES
    from wedge.samples.reference_data import reference_data

    cases: list[Case] = []
    for name in names:
        if name in SAMPLES:
            sample = SAMPLES[name]
            with np.load(sample.eval_path) as data:
                x, labels = data[sample.input_name][:eval_count], data["labels"][:eval_count]
            cases.append(Case(name, sample.model_path, sample.calib_path, sample.eval_path, x, labels, None, False))
        elif name in REFERENCES:
            if not SHARED_MODELS.is_dir():
                log(f"skip {name}: {SHARED_MODELS} is absent")
                continue
            onnx_file, tflite_file = REFERENCES[name]
            data = reference_data(SHARED_MODELS, onnx_file, eval_count=eval_count)
            calib, evaluation = folder / f"{name}_calib.npz", folder / f"{name}_eval.npz"
            np.savez(calib, **{data.input_name: data.calib})
            np.savez(evaluation, **{data.input_name: data.eval})
            cases.append(Case(name, SHARED_MODELS / onnx_file, calib, evaluation, data.eval, None,
                              SHARED_MODELS / tflite_file, name == "ad01"))
        elif name in OCR_CASES:
            from wedge.samples.ocr_data import OCR_INPUT_HW, ocr_model_path, text_images

            kind, task = OCR_CASES[name]
            path = ocr_model_path(kind)
            if path is None:
                log(f"skip {name}: rapidocr-onnxruntime is not installed")
                continue
            height, width = OCR_INPUT_HW[kind]
            count = min(eval_count, OCR_EVAL_CAP)
            calib, evaluation = folder / f"{name}_calib.npz", folder / f"{name}_eval.npz"
            np.savez(calib, x=text_images(count, height, width, seed=1, rotated_share=0.5))
            inputs = text_images(count, height, width, seed=2, rotated_share=0.5)
            np.savez(evaluation, x=inputs)
            cases.append(Case(name, path, calib, evaluation, inputs, None, None, False, task, (1, 3, height, width)))
        else:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(ALL_MODELS)}")
    return cases


def _run(model: bytes | Path, kind: str, feeds: dict[str, np.ndarray], arena_bytes: int = 0) -> tuple[Any, float]:
    """Outputs of one engine over all samples, and the mean milliseconds per sample."""
    source = model.read_bytes() if isinstance(model, Path) else model
    with open_engine(source, kind, arena_bytes=arena_bytes or None, threads=1) as engine:
        started = time.perf_counter()
        outputs = engine.run(feeds)
        elapsed = time.perf_counter() - started
    return outputs, 1000.0 * elapsed / len(next(iter(feeds.values())))


def _quanta(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.rint(values / scale) + zero_point, -128, 127).astype(np.int64)


def _vs_fp32(real: np.ndarray, fp32: np.ndarray, case: Case) -> dict[str, Any]:
    """How close int8 outputs (dequantized, ONNX layout) are to fp32: top-1, or anomaly scores."""
    real = real.reshape(fp32.shape).astype(np.float64)
    result: dict[str, Any] = {"sqnr_db": round(sqnr_db(float(np.mean(fp32 ** 2)), float(np.mean((real - fp32) ** 2))), 2)}
    if case.task != "classification":
        metric = metric_for(case.task, fp32.shape, True, DEFAULT_THRESHOLD, MAX_CLASSES)
        assert metric is not None
        metric.add(fp32, real)
        measured = metric.result()
        assert measured is not None
        result[measured.name.replace(" ", "_").replace("-", "").lower() + "_pct"] = round(measured.pct, 2)
        result.update({k: round(v, 2) for k, v in measured.extras.items()})
        return result
    if case.autoencoder:
        x = case.inputs.reshape(len(case.inputs), -1).astype(np.float64)
        score_fp32 = np.mean((x - fp32.reshape(len(x), -1)) ** 2, axis=1)
        score_int8 = np.mean((x - real.reshape(len(x), -1)) ** 2, axis=1)
        result["score_correlation"] = round(float(np.corrcoef(score_fp32, score_int8)[0, 1]), 5)
        result["score_mean_relative_error_pct"] = round(
            100 * float(np.mean(np.abs(score_int8 - score_fp32) / np.abs(score_fp32))), 3)
        return result
    top1 = np.argmax(real, axis=1)
    result["top1_agreement_pct"] = round(100 * float(np.mean(top1 == np.argmax(fp32, axis=1))), 2)
    if case.labels is not None:
        result["accuracy_pct"] = round(100 * float(np.mean(top1 == case.labels)), 2)
    return result


def _vs_onnxruntime(codes: np.ndarray, expected: np.ndarray, case: Case) -> dict[str, Any]:
    diff = np.abs(codes.reshape(expected.shape) - expected)
    result: dict[str, Any] = {"identical_pct": round(100 * float(np.mean(diff == 0)), 3),
                              "within_one_quantum_pct": round(100 * float(np.mean(diff <= 1)), 3),
                              "max_quanta_diff": int(diff.max())}
    if not case.autoencoder and case.task == "classification":
        top1 = np.argmax(codes.reshape(expected.shape), axis=1) == np.argmax(expected, axis=1)
        result["top1_agreement_pct"] = round(100 * float(np.mean(top1)), 2)
    result["meets_goals"] = bool(result["identical_pct"] >= GOAL_IDENTICAL_PCT
                                 and result["max_quanta_diff"] <= GOAL_MAX_QUANTA
                                 and result.get("top1_agreement_pct", 100.0) == 100.0)
    return result


def _wedge(case: Case, export: ExportResult, qdq: Path, fp32: np.ndarray) -> dict[str, Any]:
    input_binding, output_binding = export.inputs[0], export.outputs[0]
    with OnnxRuntimeEngine(qdq, simulate_int8=True) as engine:
        ort = engine.run({input_binding.onnx_name: case.inputs})[output_binding.onnx_name]
    scale, zero_point = output_binding.params.scales[0], output_binding.params.zero_points[0]
    expected = _quanta(ort, scale, zero_point)
    feeds = {input_binding.tflite_name: input_binding.to_tflite(case.inputs)}
    data = export.path.read_bytes()
    runtimes: dict[str, Any] = {}
    for kind in ("litert", "tflm"):
        log(f"  {case.name}: wedge .tflite in {kind}")
        outputs, ms = _run(data, kind, feeds, export.arena_bytes)
        codes = output_binding.to_onnx(outputs[output_binding.tflite_name]).astype(np.int64)
        runtimes[kind] = {"vs_onnxruntime_qdq": _vs_onnxruntime(codes, expected, case),
                          "vs_fp32": _vs_fp32((codes - zero_point) * scale, fp32, case),
                          "invoke_ms": round(ms, 3)}
    return {"onnxruntime_qdq_vs_fp32": _vs_fp32(ort, fp32, case), "runtimes": runtimes}


def _converter_reference(case: Case, fp32: np.ndarray) -> dict[str, Any]:
    """The TensorFlow converter's int8 model on the same inputs (NHWC, quantized on its own input grid)."""
    assert case.reference is not None
    arena = measure_arena(case.reference)
    result: dict[str, Any] = {"file": case.reference.name, "size_bytes": case.reference.stat().st_size,
                              "arena_bytes": arena.arena_bytes, "recorded_allocation_bytes": arena.recorded_bytes}
    with open_engine(case.reference, "litert") as engine:
        spec_in, spec_out = engine.inputs[0], engine.outputs[0]
    x = case.inputs.transpose(0, 2, 3, 1) if case.inputs.ndim == 4 else case.inputs
    assert spec_in.quant is not None and spec_out.quant is not None
    feeds = {spec_in.name: spec_in.quant.quantize(x, np.int8)}
    for kind in ("litert", "tflm"):
        log(f"  {case.name}: converter reference in {kind}")
        outputs, ms = _run(case.reference, kind, feeds, arena.arena_bytes)
        real = spec_out.quant.dequantize(outputs[spec_out.name])
        result[kind] = {"vs_fp32": _vs_fp32(real, fp32, case), "invoke_ms": round(ms, 3)}
    return result


def bench(case: Case, folder: Path) -> dict[str, Any]:
    log(f"{case.name}: wedge quantize --format tflite")
    started = time.perf_counter()
    shapes = {} if case.input_shape is None else {"x": case.input_shape}
    try:
        report = run_quantize(case.model, folder / case.name, calib=case.calib, evaluation=case.evaluation,
                              options=QuantizeOptions(format="tflite", layer_samples=8, input_shapes=shapes,
                                                      task=case.task if case.input_shape else "auto",
                                                      methods=(Method.MINMAX, Method.PERCENTILE, Method.ENTROPY)))
    except ExportError as exc:
        # A model the export refuses or that drifts is a result too: say which and why, go on with the rest.
        log(f"  {case.name}: not exported: {exc}")
        return {"exported": False, "error": str(exc), "onnx_ops": op_coverage(case.model).to_dict()}
    quantize_s = time.perf_counter() - started
    export = report.tflite
    assert export is not None
    with OnnxRuntimeEngine(case.model) as engine:
        fp32 = engine.run({engine.inputs[0].name: case.inputs})[engine.outputs[0].name].astype(np.float64)
    result: dict[str, Any] = {
        "exported": True,
        "notes": list(report.notes),
        "quantize_and_export_s": round(quantize_s, 2),
        "export_s": {k: round(v, 3) for k, v in export.timings_s.items()},
        "eval_samples": len(case.inputs),
        "chosen_method": report.chosen_method,
        "tflite_bytes": export.size_bytes,
        "int8_onnx_bytes": export.onnx_size_bytes,
        "tflite_vs_int8_onnx_size": round(export.size_bytes / export.onnx_size_bytes, 4),
        "ops": export.op_histogram,
        "onnx_ops": op_coverage(case.model).to_dict(),
        "task": report.evaluation.task,
        "int8_onnx_task_metric": {"metric": report.evaluation.primary.metric,
                                  "pct": report.evaluation.primary.metric_pct},
        "arena": {"measured_bytes": export.arena.arena_bytes, "recorded_allocation_bytes": export.arena.recorded_bytes,
                  "probes": export.arena.probes, "measure_s": round(export.arena.elapsed_s, 2)},
        "fp32": _vs_fp32(fp32, fp32, case) if case.labels is not None else None,
        "wedge": _wedge(case, export, Path(report.output), fp32),
    }
    if case.reference is not None:
        result["tensorflow_converter"] = _converter_reference(case, fp32)
        result["fp32_agreement_wedge_ge_converter"] = _compare(result)
    return result


def _compare(result: dict[str, Any]) -> dict[str, bool]:
    """Per runtime: is wedge's agreement with fp32 at least the converter reference's?"""
    verdict: dict[str, bool] = {}
    for kind in ("litert", "tflm"):
        ours = result["wedge"]["runtimes"][kind]["vs_fp32"]
        theirs = result["tensorflow_converter"][kind]["vs_fp32"]
        key: Callable[[dict[str, Any]], float] = (lambda r: r["score_correlation"]) if "score_correlation" in ours \
            else (lambda r: r["top1_agreement_pct"])
        verdict[kind] = key(ours) >= key(theirs)
    return verdict


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("onnxruntime", "ai-edge-litert", "tflite-micro", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ALL_MODELS))
    parser.add_argument("--eval-count", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wedge-export-bench-") as tmp:
        folder = Path(tmp)
        results = {case.name: bench(case, folder)
                   for case in _cases([m.strip() for m in args.models.split(",") if m.strip()], args.eval_count, folder)}
    print(json.dumps({"versions": _versions(), "op_coverage": _coverage_table(results), "models": results},
                     indent=2))


def _coverage_table(results: dict[str, Any]) -> dict[str, Any]:
    """Every ONNX op type of every benchmarked model: nodes per model and whether the export lowers it."""
    table: dict[str, Any] = {}
    for model, result in results.items():
        for op, row in result["onnx_ops"].items():
            entry = table.setdefault(op, {"status": row["status"], "nodes": {}})
            entry["nodes"][model] = row["nodes"]
    return dict(sorted(table.items()))


if __name__ == "__main__":
    main()
