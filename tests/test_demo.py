"""`wedge demo` end to end as a user runs it: every step, a passing smoke suite, reports kept, no process left."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from tests.firmware.firmware_models import run_cli


@pytest.mark.slow
def test_the_demo_quantizes_flashes_and_benches_a_virtual_ring(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = run_cli("demo", "--workdir", str(workdir), "--json", timeout_s=180)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert list(summary["steps"]) == ["quantize + export", "throwaway key", "pack", "start virtual ring", "flash",
                                      "HIL smoke suite", "BLE stream"]
    board = summary["hil"]["boards"][0]
    assert board["summary"]["passed"] == 6 and board["metrics"]["accuracy"]["top1_agreement"] == 1.0
    assert (workdir / "hil-report" / "report.html").exists()
    # What --help promises is there: the model, its report page, the signed image (named as `wedge pack` names it).
    for name in ("ppg_quality.int8.tflite", "report.html", "ppg_quality.int8.img"):
        assert (workdir / "model" / name).is_file(), name
    assert "ppg_quality.int8.img" in summary["steps"]["pack"]
    assert summary["stream"]["lost_records"] == 0 and summary["stream"]["reconnects"] >= 1
    assert (workdir / "ble" / "stream.db").exists()
    # The ring named its model's classes; the scripted day starts at rest, so the model says "good".
    labels = summary["stream"]["labels"]
    assert set(labels) <= {"good", "motion artifact", "no contact"} and labels.get("good", 0) >= 0.8 * sum(labels.values())
    assert summary["wall_s"] > 0  # how long it takes is measured by bench/hil_bench.py, not asserted here
    # The same workdir again (its ring, key and reports are there): it runs, and reuses the key its ring trusts.
    again = run_cli("demo", "--workdir", str(workdir), "--json", timeout_s=180)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["passed"]
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(workdir) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []


def test_the_demo_keeps_its_folder_unless_asked_and_help_says_what_it_holds() -> None:
    result = run_cli("demo", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "signed image" in text and "kept" in text and "--clean" in text


def test_an_unknown_sample_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli("demo", "--sample", "cats", "--workdir", str(tmp_path / "d"))
    assert result.returncode == 1 and "no sample 'cats'" in result.stderr and "Traceback" not in result.stderr


def test_a_failing_demo_with_json_still_answers_on_stdout(tmp_path: Path) -> None:
    result = run_cli("demo", "--sample", "cats", "--workdir", str(tmp_path / "d"), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"passed": False, "error": "no sample 'cats': choose from digits, ppg_quality"}
