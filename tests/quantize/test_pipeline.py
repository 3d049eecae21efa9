"""The whole pipeline: files land only when a run finishes, and the report says what a user asks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wedge.boards import load
from wedge.quantize.calibrate import Method
from wedge.quantize.errors import CalibrationDataError, OutputError
from wedge.quantize.pipeline import REPORT_NAME, QuantizeOptions, run_quantize


def test_run_writes_model_and_report_and_scores_every_method(tiny_model: Path, tiny_calib: Path,
                                                             tiny_eval: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = run_quantize(tiny_model, out, calib=tiny_calib, evaluation=tiny_eval, board=load("ring-nrf52840"))
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "tiny.int8.onnx"]
    data = json.loads((out / REPORT_NAME).read_text())
    assert [c["method"] for c in data["candidates"]] == ["minmax", "percentile", "entropy"]
    assert data["chosen_method"] in {"minmax", "percentile", "entropy"}
    assert data["evaluation"]["fp32_accuracy_pct"] == 100.0
    assert data["evaluation"]["int8_accuracy_pct"] >= 95.0
    assert data["board_fit"]["fits"] is True
    assert data["layers"] and data["worst_layers"]
    assert report.budget.exceeded is False


def test_failed_run_leaves_no_model_and_keeps_the_previous_one(tiny_model: Path, tiny_calib: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_quantize(tiny_model, out, calib=tiny_calib, options=QuantizeOptions(methods=(Method.MINMAX,)))
    before = (out / "tiny.int8.onnx").read_bytes()
    bad = tmp_path / "bad.npz"
    data = np.zeros((4, 1, 8, 8), np.float32)
    data[1, 0, 0, 0] = np.nan
    np.savez(bad, x=data)
    with pytest.raises(CalibrationDataError):
        run_quantize(tiny_model, out, calib=bad)
    assert (out / "tiny.int8.onnx").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "tiny.int8.onnx"]  # no temp folder left


def test_output_under_a_file_is_not_writable(tiny_model: Path, tiny_calib: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not writable"):
        run_quantize(tiny_model, blocker / "out", calib=tiny_calib)


def test_max_drop_budget_is_judged_on_accuracy_with_labels(tiny_model: Path, tiny_calib: Path,
                                                           tiny_eval: Path, tmp_path: Path) -> None:
    report = run_quantize(tiny_model, tmp_path / "o", calib=tiny_calib, evaluation=tiny_eval,
                          options=QuantizeOptions(methods=(Method.MINMAX,), max_drop_pp=-1.0))
    assert report.budget.metric == "accuracy" and report.budget.exceeded
