"""One CLI grammar: -o is a file, --out-dir a folder, --port a serial port, --board a profile, --json on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.firmware.firmware_models import RING, run_cli, write_model
from wedge.cli import main
from wedge.samples import SAMPLES, sample_path
from wedge.samples.tiny_tflite import int8_fc_model


@pytest.mark.parametrize("command", [["quantize"], ["deploy", "m.onnx", "--board", RING, "--calib", "c.npz",
                                                    "--key", "k.pem"], ["keys", "generate"]])
def test_a_folder_is_never_given_with_o(command: list[str], tmp_path: Path) -> None:
    for flag in ("-o", "--out"):
        result = CliRunner().invoke(main, [*command, flag, str(tmp_path / "x")])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert f"--out-dir {tmp_path / 'x'}" in result.output, result.output
    assert not (tmp_path / "x").exists()


def _options(*path: str) -> set[str]:
    ctx = click.Context(main)
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(ctx, name)
        assert found is not None
        command = found
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_port_is_a_serial_port_and_board_a_profile_everywhere() -> None:
    assert "--tcp-port" in _options("air") and "--port" not in _options("air")
    assert "--bench-board" in _options("hil", "run") and "--board" not in _options("hil", "run")
    assert CliRunner().invoke(main, ["air", "--port", "5"]).exit_code == 2


def test_quantize_help_says_the_defaults_it_uses() -> None:
    shown = " ".join(CliRunner().invoke(main, ["quantize", "--help"], terminal_width=300).output.split())
    assert "Default: ring-nrf52840; with --task lm, glasses-soc." in shown
    demo = " ".join(CliRunner().invoke(main, ["demo", "--help"], terminal_width=300).output.split())
    assert "Default: ppg_quality (what wedge demo uses)" in shown and "[default: ppg_quality]" in demo


@pytest.mark.parametrize("command", [["bridge", "--device", "x", "--no-status"],
                                     ["fleet", "--source", "mqtt://127.0.0.1:1/p"]])
def test_json_and_a_stdout_sink_are_refused_together(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--sink", "jsonl:-", "--json"])
    assert result.exit_code == 2 and "--json prints the summary on stdout" in result.output


def _stdout_json(*args: str) -> object:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # the whole of stdout is one JSON document


def test_every_json_output_is_one_json_document_on_stdout(tmp_path: Path) -> None:
    assert {b["name"] for b in _stdout_json("boards", "--json")} >= {RING}
    assert _stdout_json("boards", "show", RING, "--json")["name"] == RING
    assert "inputs" in _stdout_json("inspect", str(sample_path("ppg_quality")), "--json", "--board", RING)
    keys = _stdout_json("keys", "generate", "--out-dir", str(tmp_path / "keys"), "--json")
    model = write_model(tmp_path, "m.tflite", int8_fc_model(64, 8))
    image = _stdout_json("pack", str(model), "--board", RING, "--key", str(tmp_path / "keys" / "wedge.pem"),
                         "--version", "1.0.0", "-o", str(tmp_path / "m.img"), "--arena-bytes", "2048", "--json")
    assert image["key_hash"] == keys["key_hash"]
    assert "check" in _stdout_json("inspect", str(tmp_path / "m.img"), "--json")
    sample = SAMPLES["ppg_quality"]
    report = _stdout_json("quantize", "--method", "minmax", "--calib-samples", "32", "--eval-samples", "32",
                          "--out-dir", str(tmp_path / "q"), "--json")
    assert Path(report["source"]).name == sample.model_path.name  # no model given: the default sample
    assert isinstance(_stdout_json("ports", "--no-probe", "--json")["ports"], list)


def test_a_usage_error_goes_to_stderr_and_leaves_stdout_empty() -> None:
    result = subprocess.run([sys.executable, "-m", "wedge.cli", "quantize", "-o", "out", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == "" and "--out-dir out" in result.stderr
