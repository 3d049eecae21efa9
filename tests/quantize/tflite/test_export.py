"""`export_tflite` and its place in `wedge quantize`: validated files that land atomically, and the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper

from tests.quantize.tflite.tflite_models import graph_model, init, quantize, weights
from wedge.boards import load
from wedge.cli import main
from wedge.quantize.calibrate import Method
from wedge.quantize.fit import assess_fit
from wedge.quantize.pipeline import QuantizeOptions, run_quantize
from wedge.quantize.tflite import ExportError, export_tflite
from wedge.runtime.artifacts import inspect_model
from wedge.runtime.engines import open_engine
from wedge.samples import SAMPLES

N = helper.make_node


@pytest.mark.parametrize("sample", ["digits", "ppg_quality"])
def test_bundled_samples_export_validated_with_their_arena(sample: str, digits_qdq: tuple[Path, dict],
                                                            ppg_qdq: tuple[Path, dict], tmp_path: Path) -> None:
    qdq, samples = digits_qdq if sample == "digits" else ppg_qdq
    out = tmp_path / f"{sample}.int8.tflite"
    result = export_tflite(qdq, out, eval_samples=samples)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no partial file left beside it
    assert result.size_bytes == out.stat().st_size < result.onnx_size_bytes
    assert result.validation.passed
    assert result.validation.runtime("tflm").top1_agreement_pct == 100.0
    assert 1024 < result.arena_bytes < 16 * 1024
    info = inspect_model(out)
    assert info.quantized and info.op_histogram == result.op_histogram
    data = result.to_dict()
    assert data["arena"]["arena_bytes"] == result.arena_bytes and data["validation"]["passed"] is True
    # The file runs where it is going: TFLite-Micro in exactly the measured arena.
    binding = result.inputs[0]
    feed = binding.to_tflite(samples[binding.onnx_name][:2])
    with open_engine(out.read_bytes(), "tflm", arena_bytes=result.arena_bytes) as engine:
        assert engine.run({binding.tflite_name: feed})[result.outputs[0].tflite_name].shape[0] == 2


def test_float_io_export_takes_and_gives_floats(digits_qdq: tuple[Path, dict], tmp_path: Path) -> None:
    qdq, samples = digits_qdq
    result = export_tflite(qdq, tmp_path / "d.tflite", io="float", eval_samples=samples)
    info = inspect_model(result.path)
    assert [str(s.dtype) for s in (*info.inputs, *info.outputs)] == ["float32", "float32"]
    assert result.validation.runtime("litert").max_quanta_diff <= 1


def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    model = graph_model([N("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]), N("Hardmax", ["c"], ["e"], axis=1),
                         N("Conv", ["e", "w"], ["y"], kernel_shape=[1, 1])], {"x": [1, 4, 6, 6]}, ["y"],
                        [init("w", weights([4, 4, 1, 1], 1))])
    work = tmp_path / "work"
    work.mkdir()
    qdq, samples = quantize(model, work)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="no lowering for Hardmax"):
        export_tflite(qdq, out / "m.tflite", eval_samples=samples)
    assert not out.exists() or not any(out.iterdir())


def test_validation_samples_must_match_the_model_inputs(digits_qdq: tuple[Path, dict], tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no input 'input'"):
        export_tflite(digits_qdq[0], tmp_path / "d.tflite", eval_samples={"x": np.zeros((2, 1, 8, 8))})
    with pytest.raises(ExportError, match=r"has shape \[2, 8, 8\], the model takes \[N, 1, 8, 8\]"):
        export_tflite(digits_qdq[0], tmp_path / "d.tflite", eval_samples={"input": np.zeros((2, 8, 8))})
    assert not any(tmp_path.iterdir())


def test_quantize_with_tflite_format_writes_both_models_and_fits_with_the_measured_arena(tmp_path: Path) -> None:
    sample = SAMPLES["ppg_quality"]
    report = run_quantize(sample.model_path, tmp_path, calib=sample.calib_path, evaluation=sample.eval_path,
                          board=load("ring-nrf52840"),
                          options=QuantizeOptions(methods=(Method.MINMAX,), format="tflite", layer_samples=8))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ppg_quality.int8.onnx", "ppg_quality.int8.tflite", "report.html", "report.json"]
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["tflite"]["path"] == str(tmp_path / "ppg_quality.int8.tflite")
    assert data["tflite"]["validation"]["passed"] is True
    fit = data["board_fit"]
    assert fit["ram_source"] == "measured TFLM arena"
    assert fit["ram_needed_bytes"] == data["tflite"]["arena"]["arena_bytes"]
    assert fit["model_bytes"] == (tmp_path / "ppg_quality.int8.tflite").stat().st_size
    assert report.tflite is not None and report.tflite.path == tmp_path / "ppg_quality.int8.tflite"


def test_a_failed_export_in_quantize_fails_before_calibration_and_leaves_the_output_folder_untouched(
        tmp_path: Path) -> None:
    source = tmp_path / "m.onnx"
    onnx.save(graph_model([N("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]), N("Hardmax", ["c"], ["e"], axis=1),
                           N("Conv", ["e", "w"], ["y"], kernel_shape=[1, 1])], {"x": [1, 4, 6, 6]}, ["y"],
                          [init("w", weights([4, 4, 1, 1], 1))]), str(source))
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).normal(size=(16, 4, 6, 6)).astype(np.float32))
    out = tmp_path / "out"
    stages: list[str] = []

    class Recorder:
        def stage(self, description: str, total: int | None) -> Callable[[int], None]:
            stages.append(description)
            return lambda count: None

    with pytest.raises(ExportError, match=r"before calibration.*node 'hardmax_1' \(Hardmax\): TFLite export has "
                                          r"no lowering for Hardmax; keep it float"):
        run_quantize(source, out, calib=tmp_path / "calib.npz", progress=Recorder(),
                     options=QuantizeOptions(methods=(Method.MINMAX,), format="tflite", layer_samples=4))
    assert not any(stage.startswith("calibrating") for stage in stages), stages
    assert list(out.iterdir()) == []


def test_board_fit_judges_ram_by_the_measured_arena_and_flash_by_the_tflite(digits_qdq: tuple[Path, dict],
                                                                          tmp_path: Path) -> None:
    result = export_tflite(digits_qdq[0], tmp_path / "d.tflite", eval_samples=digits_qdq[1])
    ring = load("ring-nrf52840")
    info = inspect_model(result.path)
    fit = assess_fit(ring, info, activation_bytes=1, measured_arena_bytes=result.arena_bytes)
    assert fit.ram_measured and fit.ram_needed_bytes == result.arena_bytes and fit.fits
    over = assess_fit(ring, info, activation_bytes=1, measured_arena_bytes=ring.budgets.arena_bytes + 1)
    assert not over.fits_ram and not over.fits
    assert over.to_dict()["fits"] is False
    # An application processor loads weights into RAM: there the TFLM arena is not the measure.
    soc = assess_fit(load("glasses-soc"), info, activation_bytes=100, measured_arena_bytes=result.arena_bytes)
    assert not soc.ram_measured


def test_cli_quantize_format_tflite_reports_the_export(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["quantize", "--sample", "digits", "--out-dir", str(tmp_path), "--format",
                                       "tflite", "--method", "minmax"], terminal_width=160)
    assert result.exit_code == 0, result.output
    for text in ("TFLite export vs onnxruntime", "litert", "tflm", "RAM (TFLM arena, measured)",
                 "digits.int8.tflite"):
        assert text in result.output
    assert (tmp_path / "digits.int8.tflite").is_file()


def test_cli_io_float_needs_the_tflite_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["quantize", "--sample", "digits", "--out-dir", str(tmp_path), "--io", "float"])
    assert result.exit_code == 2
    assert "--io sets the .tflite's input/output type: use it with --format tflite" in result.output
