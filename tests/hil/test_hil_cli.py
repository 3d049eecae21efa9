"""`wedge hil run` end to end on virtual boards: reports are written, and a broken board or eval set fails only
the tests it affects, with the reason."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from tests.hil.conftest import UNITS, write_map
from tests.html_page import read_page
from wedge.cli import main


def test_the_suites_run_per_board_and_an_absent_board_fails_alone(tmp_path: Path, fc_model: Path,
                                                                   fc_eval: Path) -> None:
    board_map = write_map(tmp_path, {"ring": ("ring-nrf52840", "virtual"), "gone": ("ring-nrf52840", "/dev/ttyNOPE")})
    report = tmp_path / "report"
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {chr(ord('a') + i)}\n" for i in range(UNITS)))
    result = CliRunner().invoke(main, ["hil", "run", str(fc_model), "--board-map", str(board_map), "--eval",
                                       str(fc_eval), "--report", str(report), "--suite", "flash", "--suite",
                                       "accuracy", "--suite", "latency", "--samples", "8", "--labels", str(labels)])
    assert result.exit_code == 1, result.output
    data = json.loads((report / "report.json").read_text())
    ring, gone = data["boards"]
    assert ring["summary"]["passed"] == 6 and ring["summary"]["failed"] == ring["summary"]["error"] == 0
    metrics = ring["metrics"]
    assert metrics["accuracy"]["top1_agreement"] == 1.0 and metrics["bit_exact_vs_host_tflm"]["exact_samples"] == 8
    assert metrics["rollback"]["rolled_back"] and metrics["latency"]["repeats"] >= 5
    assert "cycles/MAC" in metrics["latency"]["source"]
    assert gone["summary"]["error"] == 6
    assert all("/dev/ttyNOPE is absent" in test["message"] for test in gone["tests"])
    assert all(not t["message"].startswith("wedge.") and "Error: " not in t["message"] for t in gone["tests"])
    suites = ET.parse(report / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["ring", "gone"]
    cases = suites[0].findall("testcase")
    assert {c.get("classname") for c in cases} == {"ring.test_flash", "ring.test_accuracy", "ring.test_latency"}
    properties = {p.get("name"): json.loads(p.get("value")) for c in cases for p in c.iter("property")}
    assert properties["rollback"]["rolled_back"] is True and len(properties["confusion"]) == UNITS
    page = read_page((report / "report.html").read_text())
    assert page.sections == ["boards", "board-ring", "board-gone"]
    side = page.table_with("ring")
    assert side[0] == ["", "ring", "gone"] and side[1][1:] == ["passed", "failed"]
    assert "Model is flashed, booted and confirmed" in page.text  # a title, not test_model_is_flashed_...
    matrix = next(t for t in page.tables if t and t[0][0].startswith("label"))
    assert matrix[0][1:] == [f"class {chr(ord('a') + i)}" for i in range(UNITS)]
    assert sum(int(cell) for row in matrix[1:] for cell in row[1:]) == 8
    # The virtual board paces every inference alike: no histogram of five equal numbers, and the page says why.
    assert page.images == 0 and ("nothing varies" in page.text or "too close for a histogram" in page.text
                                 or "vs the median" in page.text)
    assert "ttyNOPE is absent" in page.text
    assert "error: Model is flashed, booted and confirmed: board gone: " in result.output


def test_an_eval_set_that_does_not_match_fails_accuracy_but_not_latency(tmp_path: Path, fc_model: Path) -> None:
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((4, 10), dtype=np.float32))
    board_map = write_map(tmp_path, {"ring": ("ring-nrf52840", "virtual")})
    report = tmp_path / "report"
    result = CliRunner().invoke(main, ["hil", "run", str(fc_model), "--board-map", str(board_map), "--eval",
                                       str(wrong), "--report", str(report), "--suite", "accuracy", "--suite", "latency"])
    assert result.exit_code == 1
    tests = {t["name"]: t for t in json.loads((report / "report.json").read_text())["boards"][0]["tests"]}
    assert tests["test_latency_median_over_repeated_runs"]["outcome"] == "passed"
    accuracy = tests["test_device_agrees_with_the_host_reference"]
    assert accuracy["outcome"] == "error" and "do not fit input" in accuracy["message"]


def test_bad_command_lines_are_one_line_errors(tmp_path: Path, fc_model: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["hil", "run", str(tmp_path / "none.tflite"), "--board-map", "x.toml"])
    assert result.exit_code == 1 and "model not found" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["hil", "run", str(fc_model), "--board-map", str(tmp_path / "x.toml")])
    assert result.exit_code == 1 and "board map not found" in result.output
    board_map = write_map(tmp_path, {"ring": ("ring-nrf52840", "virtual")})
    result = runner.invoke(main, ["hil", "run", str(fc_model), "--board-map", str(board_map), "--suite", "speed"])
    assert result.exit_code == 1 and "unknown suite 'speed'" in result.output


def test_a_model_the_board_cannot_hold_fails_with_the_budget_it_exceeds(tmp_path: Path) -> None:
    from tests.firmware.firmware_models import write_model
    from wedge.samples.tiny_tflite import int8_add_model

    big = write_model(tmp_path, "big.tflite", int8_add_model(100_000))  # ~200 KB of activations
    board_map = write_map(tmp_path, {"ring": ("ring-nrf52840", "virtual")})
    report = tmp_path / "report"
    from tests.firmware.firmware_models import run_cli

    result = run_cli("hil", "run", str(big), "--board-map", str(board_map), "--report", str(report), "--suite",
                     "flash", "--json")
    assert result.returncode == 1
    printed = json.loads(result.stdout)  # --json: the report on stdout and nothing else, a failed run included
    assert printed["passed"] is False and printed == json.loads((report / "report.json").read_text())
    tests = printed["boards"][0]["tests"]
    assert tests and all(t["outcome"] == "error" and "bytes of TFLM arena" in t["message"] for t in tests)


def test_a_virtual_board_with_a_dut_port_is_benched_over_its_second_uart(tmp_path: Path, fc_model: Path,
                                                                        fc_eval: Path) -> None:
    board_map = tmp_path / "bench.toml"
    board_map.write_text('[boards.ring]\nprofile = "ring-nrf52840"\nport = "virtual"\ndut_port = "virtual"\n')
    report = tmp_path / "report"
    result = CliRunner().invoke(main, ["hil", "run", str(fc_model), "--board-map", str(board_map), "--eval",
                                       str(fc_eval), "--report", str(report), "--suite", "flash", "--samples", "4"])
    assert result.exit_code == 0, result.output
    ring = json.loads((report / "report.json").read_text())["boards"][0]
    assert ring["summary"]["failed"] == ring["summary"]["error"] == 0 and ring["summary"]["passed"] >= 3
