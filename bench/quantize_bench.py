"""Benchmark: wedge's int8 pipeline vs onnxruntime's `quantize_static` defaults, on the same data, in one run.

Per model (the bundled samples, and the MLPerf Tiny ONNX references when ../shared/models exists):
fp32 metric, wedge int8 metric, baseline int8 metric, size ratios, wall time and peak RSS of each job.
Each quantization job runs in its own subprocess so its peak RSS is its own. Prints JSON on stdout.

    python bench/quantize_bench.py [--models digits,ppg_quality,vww,resnet,ad01] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"
REFERENCE_FILES = {"vww": "vww_96_float.onnx", "resnet": "pretrainedResnet.onnx", "ad01": "ad01_fp32.onnx"}
ALL_MODELS = ("digits", "ppg_quality", "vww", "resnet", "ad01")
SIZE_GOAL_RATIO = 0.3
SIZE_GOAL_MIN_PARAMS = 10_000
RSS_GOAL_RATIO = 1.5
DIGITS_DROP_GOAL_PP = 0.5


def _peak_rss_bytes() -> int:
    """This process's peak RSS. ru_maxrss would carry the parent's peak across fork+exec; VmHWM is per image."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux, bytes on macOS


# --- workers (run in a subprocess each) ------------------------------------------------------


def worker_wedge(model: str, calib: str, evaluation: str, out: str) -> dict[str, Any]:
    from wedge.quantize.pipeline import run_quantize

    started = time.perf_counter()
    report = run_quantize(Path(model), Path(out), calib=Path(calib), evaluation=Path(evaluation))
    return {"wall_s": time.perf_counter() - started, "peak_rss_bytes": _peak_rss_bytes(),
            "path": report.output, "chosen_method": report.chosen_method}


def worker_baseline(model: str, calib: str, evaluation: str, out: str) -> dict[str, Any]:
    """onnxruntime's documented defaults: QDQ, per-tensor, MinMax, no preprocessing."""
    del evaluation
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class NpzReader(CalibrationDataReader):
        def __init__(self) -> None:
            with np.load(calib) as data:
                self._arrays = {k: data[k] for k in data.files if k != "labels"}
            self._index = 0
            self._count = len(next(iter(self._arrays.values())))

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self._index >= self._count:
                return None
            i = self._index
            self._index += 1
            return {k: v[i : i + 1] for k, v in self._arrays.items()}

    started = time.perf_counter()
    path = Path(out) / (Path(model).stem + ".baseline.int8.onnx")
    Path(out).mkdir(parents=True, exist_ok=True)
    quantize_static(model, str(path), NpzReader(), quant_format=QuantFormat.QDQ)
    return {"wall_s": time.perf_counter() - started, "peak_rss_bytes": _peak_rss_bytes(), "path": str(path)}


# --- the parent: data, jobs, metrics ---------------------------------------------------------


def _data_for(name: str, workdir: Path) -> tuple[Path, Path, Path] | None:
    if name in ("digits", "ppg_quality"):
        from wedge.samples import SAMPLES

        sample = SAMPLES[name]
        return sample.model_path, sample.calib_path, sample.eval_path
    if not SHARED_MODELS.exists():
        return None
    from wedge.samples.reference_data import reference_data

    data = reference_data(SHARED_MODELS, REFERENCE_FILES[name])
    calib, evaluation = workdir / f"{name}_calib.npz", workdir / f"{name}_eval.npz"
    np.savez(calib, **{data.input_name: data.calib})
    np.savez(evaluation, **{data.input_name: data.eval})
    return SHARED_MODELS / REFERENCE_FILES[name], calib, evaluation


def _job(kind: str, model: Path, calib: Path, evaluation: Path, out: Path) -> dict[str, Any]:
    code = (f"import json, sys; sys.path.insert(0, {str(REPO / 'bench')!r}); import quantize_bench as b; "
            f"print(json.dumps(b.worker_{kind}({str(model)!r}, {str(calib)!r}, {str(evaluation)!r}, {str(out)!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} job on {model.name} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _metrics(fp32: Path, int8: Path, evaluation: Path) -> dict[str, Any]:
    from wedge.quantize.calibration import load_samples
    from wedge.quantize.evaluate import compare_models
    from wedge.quantize.load import prepare_model
    from wedge.runtime.engines import open_engine
    from wedge.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine

    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare_model(fp32, Path(tmp))
        samples = load_samples(evaluation, prepared.inputs, role="evaluation")
        batch = 32 if all(s.batch_dynamic for s in prepared.inputs) else 1
        with open_engine(prepared.path) as ref, OnnxRuntimeEngine(int8, simulate_int8=True) as got:
            result = compare_models(ref, got, samples, batch_size=batch)
    primary = result.primary
    return {
        "task": result.task,
        "fp32_accuracy_pct": result.fp32_accuracy_pct,
        "int8_accuracy_pct": result.int8_accuracy_pct,
        "top1_agreement_pct": primary.top1_agreement_pct,
        "sqnr_db": round(primary.sqnr_db, 2),
        "cosine": round(primary.cosine, 6),
        "anomaly_score_correlation": None if result.reconstruction is None else
        round(result.reconstruction.correlation, 5),
    }


def bench_model(name: str, workdir: Path) -> dict[str, Any] | None:
    data = _data_for(name, workdir)
    if data is None:
        return None
    model, calib, evaluation = data
    from wedge.runtime.artifacts import inspect_model

    print(f"[{name}] wedge ...", file=sys.stderr)
    wedge = _job("wedge", model, calib, evaluation, workdir / f"{name}-wedge")
    print(f"[{name}] baseline ...", file=sys.stderr)
    baseline = _job("baseline", model, calib, evaluation, workdir / f"{name}-baseline")
    print(f"[{name}] metrics ...", file=sys.stderr)
    fp32_info = inspect_model(model)
    wedge_info = inspect_model(wedge["path"])
    base_info = inspect_model(baseline["path"])
    wedge_metrics = _metrics(model, Path(wedge["path"]), evaluation)
    base_metrics = _metrics(model, Path(baseline["path"]), evaluation)
    return {
        "params": fp32_info.param_count,
        "fp32": {"size_bytes": fp32_info.size_bytes, "accuracy_pct": wedge_metrics["fp32_accuracy_pct"]},
        "wedge": {**wedge_metrics, "size_bytes": wedge_info.size_bytes,
                  "size_ratio": round(wedge_info.size_bytes / fp32_info.size_bytes, 4),
                  "weight_bytes_ratio": round(wedge_info.weight_bytes / fp32_info.weight_bytes, 4),
                  "chosen_method": wedge["chosen_method"], "wall_s": round(wedge["wall_s"], 2),
                  "peak_rss_bytes": wedge["peak_rss_bytes"]},
        "baseline": {**base_metrics, "size_bytes": base_info.size_bytes,
                     "size_ratio": round(base_info.size_bytes / fp32_info.size_bytes, 4),
                     "weight_bytes_ratio": round(base_info.weight_bytes / fp32_info.weight_bytes, 4),
                     "wall_s": round(baseline["wall_s"], 2), "peak_rss_bytes": baseline["peak_rss_bytes"]},
        "ratios": {"wall_s": round(wedge["wall_s"] / baseline["wall_s"], 2),
                   "peak_rss": round(wedge["peak_rss_bytes"] / baseline["peak_rss_bytes"], 3)},
    }


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, each with the numbers behind its verdict."""
    out: dict[str, Any] = {}
    digits = results.get("digits")
    if digits:
        w, b = digits["wedge"], digits["baseline"]
        drop = w["fp32_accuracy_pct"] - w["int8_accuracy_pct"]
        out["digits_int8_within_0.5pp_of_fp32"] = {"drop_pp": round(drop, 3), "met": drop <= DIGITS_DROP_GOAL_PP}
        out["digits_int8_not_below_baseline"] = {"wedge_pct": w["int8_accuracy_pct"],
                                                 "baseline_pct": b["int8_accuracy_pct"],
                                                 "met": w["int8_accuracy_pct"] >= b["int8_accuracy_pct"]}
    sizes = {n: r["wedge"]["size_ratio"] for n, r in results.items() if r["params"] > SIZE_GOAL_MIN_PARAMS}
    out["size_ratio_le_0.3_for_models_over_10k_params"] = {"ratios": sizes,
                                                          "met": all(v <= SIZE_GOAL_RATIO for v in sizes.values())}
    rss = {n: r["ratios"]["peak_rss"] for n, r in results.items()}
    out["peak_rss_le_1.5x_baseline"] = {"ratios": rss, "met": all(v <= RSS_GOAL_RATIO for v in rss.values())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ALL_MODELS))
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here (a folder)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wedge-bench-") as tmp:
        for name in args.models.split(","):
            result = bench_model(name.strip(), Path(tmp))
            if result is None:
                skipped.append(f"{name}: ../shared/models not found")
            else:
                results[name] = result
    summary = {"benchmark": "quantize", "machine": {"python": platform.python_version(),
                                                    "cpu_count": __import__("os").cpu_count()},
               "models": results, "goals": goals(results), "skipped": skipped}
    text = json.dumps(summary, indent=2)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "quantize_bench.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
