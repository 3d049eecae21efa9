"""End to end against `wedge emulate` processes on real ptys: flash, reboot, confirm; rollback; resume; power cut.

Each test starts its own virtual ring; images are small int8 models built here, so nothing needs ../shared.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.firmware.firmware_models import pack, run_cli, write_image, write_model
from wedge.errors import WedgeError
from wedge.firmware.errors import RollbackError
from wedge.firmware.flash.flasher import FlashOptions, FlashReport, flash_image
from wedge.firmware.virtual.flash import POWER_CUT_EXIT_CODE
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.samples.tiny_tflite import int8_add_model, int8_fc_model

FAST = FlashOptions(timeout_s=1.0, reconnect_timeout_s=20.0, boot_timeout_s=60.0)


def _image(tmp_path: Path, keys, version: str, *, features: int = 64, seed: int = 0, name: str = "fc"):
    model = write_model(tmp_path, f"{name}-{version}.tflite", int8_fc_model(features, 16, seed=seed))
    return pack(model, keys, version, name=name)


def _flash(board: EmulatorProcess, image, options: FlashOptions = FAST) -> FlashReport:
    return flash_image(board.port, image, "model.img", options)


def test_flash_boots_for_test_then_confirms_and_survives_a_restart(tmp_path: Path, keys, board) -> None:
    first = write_image(tmp_path, "v1.img", _image(tmp_path, keys, "1.0.0"))
    result = run_cli("flash", str(first), "--port", board.port, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["outcome"], report["version"], report["previous"]) == ("confirmed", "1.0.0", "no model")
    assert report["model_report"]["state"] == "running"
    second_image = _image(tmp_path, keys, "1.1.0", seed=1)
    second = _flash(board, second_image)
    assert second.outcome == "confirmed" and second.previous == "fc 1.0.0"
    images = json.loads(run_cli("device", "images", "--port", board.port, "--json").stdout)
    active = [slot for slot in images if slot["active"] and slot["image"] == 1]
    assert active[0]["hash"] == second_image.image_hash.hex() and active[0]["confirmed"]
    board.stop()
    board.start()
    status = board.status()
    assert (status["state"], status["version"]) == ("running", "1.1.0")  # confirmed: no revert on restart
    again = _flash(board, second_image)
    assert again.outcome == "already running" and again.upload is None


def test_a_model_failing_its_self_test_rolls_back_and_says_why(tmp_path: Path, keys, board) -> None:
    _flash(board, _image(tmp_path, keys, "1.0.0"))
    # 200 KB of activations in a 128 KiB arena, but the manifest claims 64 KB: only the board can find out.
    greedy = pack(write_model(tmp_path, "greedy.tflite", int8_add_model(100_000)), keys, "2.0.0",
                  arena_bytes=64_000, name="greedy")
    with pytest.raises(RollbackError, match=r"rolled back to fc 1.0.0: .*greedy 2.0.0 self-test failed: .*arena"):
        _flash(board, greedy)
    status = board.status()
    assert (status["state"], status["model"], status["version"]) == ("running", "fc", "1.0.0")


def test_an_upload_resumes_after_the_cable_is_pulled(tmp_path: Path, keys, board) -> None:
    _flash(board, _image(tmp_path, keys, "1.0.0"))
    board.control(op="faults", cut_after_bytes=30_000, cut_down_s=0.5)
    big = _image(tmp_path, keys, "2.0.0", features=3000, seed=2)  # ~48 KB
    report = _flash(board, big)
    assert report.outcome == "confirmed"
    upload = report.upload
    assert upload is not None and upload.resumes == 1
    # Only what was in flight when the cable went is sent again (plus the 32-byte header that asks the offset).
    assert 0 < upload.resent_bytes <= upload.window * upload.chunk_payload_bytes + 32
    assert board.status()["version"] == "2.0.0"


def _flash_in_background(board: EmulatorProcess, image, options: FlashOptions) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["report"] = _flash(board, image, options)
        except WedgeError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    return thread, outcome


def test_a_power_cut_mid_write_leaves_a_board_that_boots_and_takes_the_image_again(tmp_path: Path, keys, board) -> None:
    _flash(board, _image(tmp_path, keys, "1.0.0"))
    board.control(op="faults", power_cut_after_bytes=20_000)
    new = _image(tmp_path, keys, "2.0.0", features=3000, seed=3)
    thread, outcome = _flash_in_background(board, new, FAST)
    assert board.wait_exit() == POWER_CUT_EXIT_CODE  # the process died in the middle of a flash write
    restarted = board.start()
    assert restarted.model == "fc 1.0.0"  # the half-written slot 1 never boots
    thread.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert report.outcome == "confirmed" and report.upload.resumes == 1
    assert board.status()["version"] == "2.0.0"
