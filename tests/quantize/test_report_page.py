"""The quantize report page: every section a user opens it for, with class names, readable SQNR and units."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.html_page import read_page
from tests.quantize.conftest import build_tiny_cnn, labels_from_model, tiny_data
from wedge.boards import load
from wedge.quantize.calibrate import Method
from wedge.quantize.errors import LabelsError
from wedge.quantize.labels import ClassNames
from wedge.quantize.pipeline import PAGE_NAME, QuantizeOptions, run_quantize

CLASSES = ("cat", "dog", "heron")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wedge.cli", "quantize", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, Path, Path]:
    model = build_tiny_cnn(tmp_path / "tiny.onnx")
    np.savez(tmp_path / "calib.npz", x=tiny_data(40, seed=1))
    x = tiny_data(60, seed=2)
    np.savez(tmp_path / "eval.npz", x=x, labels=labels_from_model(model, x))
    return model, tmp_path / "calib.npz", tmp_path / "eval.npz"


def test_the_page_has_every_section_with_the_class_names(labelled: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model, calib, evaluation = labelled
    out = tmp_path / "out"
    report = run_quantize(model, out, calib=calib, evaluation=evaluation, board=load("ring-nrf52840"),
                          options=QuantizeOptions(class_names=ClassNames(CLASSES, "test")))
    page = read_page((out / PAGE_NAME).read_text())
    assert page.sections[:7] == ["per-class", "confusion", "outputs", "methods", "layer-sqnr", "layer-cost",
                                 "board"]
    # Per-class accuracy: one row a class, by name, with the samples of each (the eval set has 60).
    per_class = page.table_with("class")
    assert [row[0] for row in per_class[1:]] == list(CLASSES)
    assert sum(int(row[1]) for row in per_class[1:]) == 60
    # Confusion matrices (fp32, int8, int8 against fp32): class names on both axes, counts that add up.
    matrices = [t for t in page.tables if len(t) == 4 and t[0][1:] == list(CLASSES)]
    assert len(matrices) == 3
    for matrix in matrices:
        assert [row[0] for row in matrix[1:]] == list(CLASSES)
        assert sum(int(cell) for row in matrix[1:] for cell in row[1:]) == 60
    assert "300" not in page.text.replace("3000", "")  # no capped "300.0 dB" anywhere
    assert "no added noise" in page.text or "lossless" in page.text
    # Units and the int8 step beside the max abs error.
    outputs = page.table_with("max abs error")
    assert "logits" in outputs[1][4] and "int8 steps of" in outputs[1][4]
    # Every method compared, the chosen one marked.
    methods = page.table_with("method")
    assert [row[0].split()[0] for row in methods[1:]] == ["minmax", "percentile", "entropy"]
    assert sum("chosen" in row[0] for row in methods[1:]) == 1
    # Per-layer cost as ST's analyze gives it: the conv's MACs and int8 weight bytes (36 int8 + 4 int32 bias).
    cost = page.table_with("weight bytes")
    conv = next(row for row in cost if row[0].startswith("conv"))
    assert conv[3] == f"{4 * 6 * 6 * 9:,}" and conv[5] == "52"
    assert cost[-1][0] == "total" and cost[-1][3] == f"{report.size.macs:,}"
    # Board: latency against the profile's budget and the energy from its datasheet power figure.
    board = page.table_with("budget")
    assert "within budget" in " ".join(board[3]) and "µJ" in board[4][1]
    assert page.images == 0  # numbers and names are text, not pixels
    assert "{" not in page.text and "}" not in page.text  # no unformatted template left


def test_without_labels_the_page_shows_where_int8_changed_its_mind(tmp_path: Path) -> None:
    model = build_tiny_cnn(tmp_path / "tiny.onnx")
    np.savez(tmp_path / "calib.npz", x=tiny_data(30, seed=1))
    run_quantize(model, tmp_path / "out", calib=tmp_path / "calib.npz",
                 options=QuantizeOptions(methods=(Method.MINMAX,)))
    page = read_page((tmp_path / "out" / PAGE_NAME).read_text())
    assert "per-class" not in page.sections and "confusion" in page.sections
    assert "board" not in page.sections  # no board given
    agreement = next(t for t in page.tables if t and t[0][0].startswith("fp32 prediction"))
    assert agreement[0][1:] == ["0", "1", "2"]  # no names known: the indices


def test_class_names_come_from_the_model_metadata(tmp_path: Path) -> None:
    model_path = build_tiny_cnn(tmp_path / "tiny.onnx")
    model = onnx.load(str(model_path))
    onnx.helper.set_model_props(model, {"names": "{0: 'red', 1: 'green', 2: 'blue'}"})
    onnx.save(model, str(model_path))
    np.savez(tmp_path / "calib.npz", x=tiny_data(20, seed=1))
    report = run_quantize(model_path, tmp_path / "out", calib=tmp_path / "calib.npz",
                          options=QuantizeOptions(methods=(Method.MINMAX,)))
    assert report.class_names is not None and report.class_names.names == ("red", "green", "blue")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["labels"]["names"] == ["red", "green", "blue"] and "metadata" in data["labels"]["source"]
    assert "red" in read_page((tmp_path / "out" / PAGE_NAME).read_text()).table_with("red")[0]


def test_labels_that_do_not_match_the_classes_are_refused(labelled: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model, calib, _ = labelled
    with pytest.raises(LabelsError, match="names 2 classes; the model's first output has 3"):
        run_quantize(model, tmp_path / "out", calib=calib,
                     options=QuantizeOptions(methods=(Method.MINMAX,), class_names=ClassNames(("a", "b"), "test")))
    assert not (tmp_path / "out" / "tiny.int8.onnx").exists()


def test_cli_html_elsewhere_labels_and_a_latency_budget(labelled: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model, calib, evaluation = labelled
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\nheron\n")
    page_path = tmp_path / "pages" / "tiny.html"
    proc = _run(str(model), "--calib", str(calib), "--eval", str(evaluation), "--out-dir", str(tmp_path / "out"),
                "--method", "minmax", "--labels", str(labels), "--html", str(page_path),
                "--latency-budget-ms", "0.00001", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)  # stdout is the JSON and nothing else
    assert data["labels"]["names"] == list(CLASSES) and data["html"] == str(page_path)
    fit = data["board_fit"]
    assert fit["latency_budget_ms"] == 0.00001 and fit["fits_latency"] is False
    assert fit["latency_budget_source"] == "--latency-budget-ms"
    assert page_path.is_file() and not (tmp_path / "out" / PAGE_NAME).exists()
    assert stat.S_IMODE(page_path.stat().st_mode) != 0o600  # a report is for sharing: the umask's mode
    assert not [p for p in page_path.parent.iterdir() if p.name.startswith(".")]  # nothing staged left
    page = read_page(page_path.read_text())
    assert "over budget" in page.text and "heron" in page.text


def test_cli_tables_say_lossless_units_and_the_latency_verdict(tmp_path: Path) -> None:
    proc = _run("--sample", "ppg_quality", "--out-dir", str(tmp_path), "--method", "minmax", "--format", "tflite")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "300.0 dB" not in proc.stdout
    assert "lossless" in proc.stdout  # LiteRT runs the .tflite exactly as onnxruntime the int8 ONNX
    assert "logits = " in proc.stdout and "int8 steps of" in proc.stdout
    assert "within budget" in proc.stdout and "µJ" in proc.stdout
    assert "classes (sample ppg_quality): good, motion artifact, no contact" in proc.stdout
    assert "report page:" in proc.stdout and (tmp_path / PAGE_NAME).is_file()


def test_an_unreadable_labels_file_is_one_line(labelled: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model, calib, _ = labelled
    proc = _run(str(model), "--calib", str(calib), "--out-dir", str(tmp_path / "out"),
                "--labels", str(tmp_path / "no.txt"))
    assert proc.returncode == 1 and proc.stderr.startswith("error: cannot read the labels file")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
