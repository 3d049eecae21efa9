"""`wedge inspect x.tflite` measures the TFLite-Micro arena, and says plainly when TFLM refuses a model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import REPO_ROOT, shared_model
from tests.quantize.tflite.tflite_models import hybrid_model
from wedge.cli import main
from wedge.quantize.tflite.convert import lower_graph
from wedge.quantize.tflite.graph import read_qdq


@pytest.fixture(autouse=True)
def no_user_boards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEDGE_BOARDS_PATH", raising=False)


@pytest.fixture(scope="module")
def digits_tflite(digits_qdq: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inspect") / "digits.int8.tflite"
    path.write_bytes(lower_graph(read_qdq(digits_qdq[0])).data)
    return path


def test_inspect_shows_the_measured_arena_against_the_board_budget(digits_tflite: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(digits_tflite), "--board", "ring-nrf52840"],
                                terminal_width=160)
    assert result.exit_code == 0, result.output
    assert "TFLite-Micro arena (measured)" in result.output
    assert "recorded allocation" in result.output
    assert "of 128.0 KiB arena budget" in result.output


def test_inspect_json_carries_the_arena_and_no_arena_skips_it(digits_tflite: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(digits_tflite), "--json"])
    arena = json.loads(result.stdout)["tflm_arena"]
    assert 1024 < arena["arena_bytes"] < 16 * 1024 and arena["recorded_bytes"] > 0
    skipped = CliRunner().invoke(main, ["inspect", str(digits_tflite), "--json", "--no-arena"])
    assert "tflm_arena" not in json.loads(skipped.stdout)


def test_inspect_says_tflm_refuses_a_hybrid_model(tmp_path: Path) -> None:
    path = tmp_path / "hybrid.tflite"
    path.write_bytes(hybrid_model())
    result = CliRunner().invoke(main, ["inspect", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "TFLite-Micro refuses hybrid.tflite: it is a hybrid model" in result.output
    data = json.loads(CliRunner().invoke(main, ["inspect", str(path), "--json"]).stdout)
    assert "hybrid model" in data["tflm_arena"]["refused"]


def test_a_truncated_tflite_is_one_line_without_a_traceback(digits_tflite: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(digits_tflite.read_bytes()[:2000])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "wedge.cli", "inspect", str(bad)], capture_output=True,
                          text=True, env=env, check=False, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: cut.tflite")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_the_reference_int8_vww_needs_about_104_kib_of_arena() -> None:
    result = CliRunner().invoke(main, ["inspect", str(shared_model("vww_96_int8.tflite")), "--json"])
    arena = json.loads(result.stdout)["tflm_arena"]
    assert 100_000 < arena["arena_bytes"] < 110_000
