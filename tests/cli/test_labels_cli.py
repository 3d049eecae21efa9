"""Labels flow without being named twice: `quantize --labels` (or the model's metadata) -> .tflite -> `pack`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import REPO_ROOT
from tests.quantize.conftest import build_tiny_cnn, tiny_data
from wedge.runtime.artifacts.labels import read_model_labels


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wedge.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)


def test_labels_given_to_quantize_reach_the_image_manifest(tmp_path: Path, keys) -> None:
    model = build_tiny_cnn(tmp_path / "m.onnx")
    np.savez(tmp_path / "c.npz", x=tiny_data(16))
    (tmp_path / "labels.txt").write_text("rest\nwalk\nrun\n")
    quantized = run_cli("quantize", str(model), "--calib", str(tmp_path / "c.npz"), "--format", "tflite",
                        "--method", "minmax", "--labels", str(tmp_path / "labels.txt"),
                        "--out-dir", str(tmp_path / "q"), "--json")
    assert quantized.returncode == 0, quantized.stderr
    assert json.loads(quantized.stdout)["labels"]["names"] == ["rest", "walk", "run"]
    tflite = tmp_path / "q" / "m.int8.tflite"
    assert read_model_labels(tflite).labels == ("rest", "walk", "run")
    assert read_model_labels(tmp_path / "q" / "m.int8.onnx").labels == ("rest", "walk", "run")
    packed = run_cli("pack", str(tflite), "--board", "ring-nrf52840", "--key", str(keys.private_path),
                     "--version", "1.0.0", "-o", str(tmp_path / "m.img"), "--json")
    assert packed.returncode == 0, packed.stderr
    assert json.loads(packed.stdout)["manifest"]["labels"] == ["rest", "walk", "run"]


def test_labels_that_do_not_match_the_classes_are_one_line_and_no_model(tmp_path: Path) -> None:
    model = build_tiny_cnn(tmp_path / "m.onnx")
    np.savez(tmp_path / "c.npz", x=tiny_data(16))
    (tmp_path / "labels.txt").write_text("only\ntwo\n")
    result = run_cli("quantize", str(model), "--calib", str(tmp_path / "c.npz"), "--labels",
                     str(tmp_path / "labels.txt"), "--out-dir", str(tmp_path / "q"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: --labels {tmp_path / 'labels.txt'} names 2 classes; the model's first output has 3"
    assert not (tmp_path / "q" / "m.int8.onnx").exists()
