"""`wedge inspect`: summary, tensor and op tables, --json, --board fit, and one-line errors for bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from tests.conftest import REPO_ROOT, shared_model
from wedge.boards import load
from wedge.cli import main

# Conv 3x3, 8 filters over a 3x16x16 input (pad 1): 8*16*16 outputs x 3*3*3 = 55_296 MACs, 216 + 8 params.
CONV_MACS = 55_296
CONV_PARAMS = 224


@pytest.fixture(autouse=True)
def no_user_boards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEDGE_BOARDS_PATH", raising=False)


@pytest.fixture
def conv_onnx(tmp_path: Path) -> Path:
    weights = np.linspace(-1, 1, 216, dtype=np.float32).reshape(8, 3, 3, 3)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["features"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        "conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 8, 16, 16])],
        [onnx.numpy_helper.from_array(weights, "w"), onnx.numpy_helper.from_array(np.zeros(8, np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "conv.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_inspect_prints_the_summary_tensors_and_ops(conv_onnx: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(conv_onnx)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "55.30 k (55,296)" in out
    assert f"{CONV_PARAMS:,}" in out
    assert "onnx" in out and "13" in out
    assert "image" in out and "[n, 3, 16, 16]" in out and "float32" in out
    assert "features" in out
    assert "Conv" in out


def test_inspect_json_gives_exact_numbers(conv_onnx: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(conv_onnx), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["macs"] == CONV_MACS
    assert data["param_count"] == CONV_PARAMS
    assert data["size_bytes"] == conv_onnx.stat().st_size
    assert data["inputs"] == [{"name": "image", "shape": ["n", 3, 16, 16], "dtype": "float32", "quant": None}]
    assert data["op_histogram"] == {"Conv": 1}
    assert "board" not in data


def test_inspect_board_json_reports_slot_use_margin_and_latency(conv_onnx: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(conv_onnx), "--board", "ring-nrf52840", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout)["board"]
    board = load("ring-nrf52840")
    size_bytes = conv_onnx.stat().st_size
    assert fit["fits"] is True
    assert fit["slot_bytes"] == board.budgets.model_slot_bytes
    assert fit["margin_bytes"] == board.budgets.model_slot_bytes - size_bytes
    assert fit["latency_s"] == pytest.approx(board.estimate_latency_s(CONV_MACS))
    assert any("needs an int8 .tflite" in note for note in fit["notes"])


def test_inspect_board_table_says_whether_it_fits_and_how_fast(conv_onnx: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(conv_onnx), "--board", "glasses-soc"])
    assert result.exit_code == 0, result.output
    assert "on board glasses-soc" in result.stdout
    assert "fits:" in result.stdout
    assert "free" in result.stdout
    assert "est. latency" in result.stdout


def test_inspect_int8_tflite_shows_scale_zero_point_and_tflm_support() -> None:
    result = CliRunner().invoke(main, ["inspect", str(shared_model("vww_96_int8.tflite")), "--board", "ring-nrf52840"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "input_1_int8" in out and "[1, 96, 96, 3]" in out and "int8" in out
    assert "0.00392157" in out and "-128" in out
    assert "DEPTHWISE_CONV_2D" in out and "TFLM" in out
    assert "7.49 M" in out
    # 325 KiB of file against the ring's 256 KiB slot.
    assert "does not fit" in out and "over" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "missing.onnx"], "error: model file not found: missing.onnx"),
        (["inspect", "{folder}/weights.h5"], "error: unknown model format '.h5' for weights.h5"),
        (["inspect", "{conv}", "--board", "no-such-board"], "error: unknown board 'no-such-board'"),
    ],
)
def test_bad_input_exits_1_with_one_line(conv_onnx: Path, args: list[str], message: str) -> None:
    (conv_onnx.parent / "weights.h5").write_bytes(b"\x89HDF\r\n")
    args = [a.replace("{conv}", str(conv_onnx)).replace("{folder}", str(conv_onnx.parent)) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(message)


def test_a_corrupt_file_exits_1_without_a_traceback_from_the_real_command(tmp_path: Path) -> None:
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"GIF89a not a model")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "wedge.cli", "inspect", str(bad)],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: broken.tflite is not a TFLite model (no TFL3 flatbuffer identifier)"
    assert proc.stdout == ""
