"""`wedge quantize` end to end: the bundled digits CNN, the JSON report, and every bad input the issue lists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from tests.quantize.conftest import build_tiny_cnn, tiny_data
from wedge.cli import main
from wedge.samples import sample_path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wedge.cli", "quantize", *args],
                          capture_output=True, text=True, timeout=300)


def test_digits_sample_quantizes_within_half_a_point_and_fits_the_ring(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["quantize", "--sample", "digits", "--out-dir", str(tmp_path), "--json",
                                       "--max-drop", "0.5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    ev = report["evaluation"]
    assert ev["fp32_accuracy_pct"] >= 97.0
    assert ev["fp32_accuracy_pct"] - ev["int8_accuracy_pct"] <= 0.5
    assert report["size"]["ratio"] < 0.35
    assert report["board_fit"]["board"] == "ring-nrf52840" and report["board_fit"]["fits"]
    assert (tmp_path / "digits.int8.onnx").is_file()
    assert json.loads((tmp_path / "report.json").read_text())["chosen_method"] == report["chosen_method"]


def test_table_output_names_the_lossy_layers_and_the_board_verdict(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["quantize", "--sample", "ppg_quality", "--out-dir", str(tmp_path),
                                       "--method", "minmax"], terminal_width=160)
    assert result.exit_code == 0, result.output
    for text in ("fp32 vs int8", "accuracy int8", "Layers that add the most noise", "Board fit", "fits"):
        assert text in result.output


def test_exceeding_max_drop_exits_3_with_one_line(tmp_path: Path) -> None:
    model = build_tiny_cnn(tmp_path / "m.onnx")
    np.savez(tmp_path / "c.npz", x=tiny_data(16))
    np.savez(tmp_path / "e.npz", x=tiny_data(16), labels=np.full(16, 7, np.int64) % 3)
    proc = _run(str(model), "--calib", str(tmp_path / "c.npz"), "--eval", str(tmp_path / "e.npz"),
                "--out-dir", str(tmp_path / "o"), "--method", "minmax", "--max-drop", "0", "--json")
    report = json.loads(proc.stdout)
    expected = 3 if report["accuracy_budget"]["drop_pp"] > 0 else 0
    assert proc.returncode == expected


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    good = build_tiny_cnn(tmp_path / "good.onnx")
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=tiny_data(8))
    text = tmp_path / "text.onnx"
    text.write_text("definitely not protobuf\n" * 10)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[:300])
    node = helper.make_node("Mystery", ["x"], ["y"], domain="acme")
    custom = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])]),
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("acme", 1)]), str(custom))
    dynamic = tmp_path / "dynamic.onnx"
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "C", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "C", 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(dynamic))
    wrong_shape, wrong_dtype, wrong_name, nan, empty = (tmp_path / f"{n}.npz" for n in
                                                        ("shape", "dtype", "name", "nan", "empty"))
    np.savez(wrong_shape, x=np.zeros((8, 8, 8), np.float32))
    np.savez(wrong_dtype, x=np.zeros((8, 1, 8, 8), np.int16))
    np.savez(wrong_name, a=np.zeros((8, 1, 8, 8), np.float32), b=np.zeros((8, 2), np.float32))
    nan_data = tiny_data(8)
    nan_data[2, 0, 1, 1] = np.inf
    np.savez(nan, x=nan_data)
    np.savez(empty, x=np.zeros((0, 1, 8, 8), np.float32))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    out = str(tmp_path / "out")
    return {
        "missing file": ([str(tmp_path / "absent.onnx"), "--calib", str(calib), "--out-dir", out], "not found"),
        "not onnx": ([str(text), "--calib", str(calib), "--out-dir", out], "not a valid ONNX model"),
        "truncated": ([str(cut), "--calib", str(calib), "--out-dir", out], "truncated"),
        "custom op": ([str(custom), "--calib", str(calib), "--out-dir", out], "custom op 'acme::Mystery'"),
        "dynamic shape": ([str(dynamic), "--calib", str(calib), "--out-dir", out], "--input-shape"),
        "wrong shape": ([str(good), "--calib", str(wrong_shape), "--out-dir", out], "expected (N, 1, 8, 8)"),
        "wrong dtype": ([str(good), "--calib", str(wrong_dtype), "--out-dir", out], "dtype int16"),
        "wrong name": ([str(good), "--calib", str(wrong_name), "--out-dir", out], "model's inputs are ['x']"),
        "nan or inf": ([str(good), "--calib", str(nan), "--out-dir", out], "NaN/Inf"),
        "empty calibration": ([str(good), "--calib", str(empty), "--out-dir", out], "empty"),
        "unknown board": ([str(good), "--calib", str(calib), "--out-dir", out, "--board", "ring-nrf9999"],
                          "ring-nrf9999"),
        "output not writable": ([str(good), "--calib", str(calib), "--out-dir", str(blocker / "out")], "not writable"),
        "pinned without const": ([str(good), "--calib", str(calib), "--out-dir", out, "--input", "x=3"],
                                 "expected name=const:VALUE"),
        "unknown keep-float": ([str(good), "--calib", str(calib), "--out-dir", out, "--keep-float", "Nope"],
                               "neither a node name nor an op type"),
        "auto float without budget": ([str(good), "--calib", str(calib), "--out-dir", out, "--keep-float", "auto"],
                                      "give --max-drop"),
    }


BAD_CASES = ["missing file", "not onnx", "truncated", "custom op", "dynamic shape", "wrong shape", "wrong dtype",
             "wrong name", "nan or inf", "empty calibration", "unknown board", "output not writable",
             "pinned without const", "unknown keep-float", "auto float without budget"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_exit_1_no_traceback_no_model(case: str, tmp_path: Path) -> None:
    args, expected = _bad_inputs(tmp_path)[case]
    proc = _run(*args)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expected in lines[0]
    out = tmp_path / "out"
    assert not out.exists() or not list(out.glob("*.onnx")) and not list(out.glob(".wedge-*"))


def test_model_without_calib_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["quantize", str(sample_path("digits")), "--out-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--calib" in result.output
