"""`wedge emulate`'s terminal: one readable line on stderr per flash, test request, reset, boot and confirmation,
and nothing but the port announcements on stdout (JSON lines with --json)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.firmware.firmware_models import pack, run_cli, write_image
from wedge.firmware.image.keys import KeyPair
from wedge.firmware.virtual.processes import EmulatorProcess


def test_the_emulator_logs_flashes_boots_and_confirmations_on_stderr(tmp_path: Path, keys: KeyPair,
                                                                     board: EmulatorProcess,
                                                                     tiny_model: Path) -> None:
    image = write_image(tmp_path, "tiny.img", pack(tiny_model, keys, "1.2.0", name="tiny"))
    flashed = run_cli("flash", str(image), "--port", board.port, "--json")
    assert flashed.returncode == 0, flashed.stderr
    board.stop()  # flushes its stderr log
    lines = [line.split(": ", 1)[1] for line in board.log_path.read_text().splitlines() if ": " in line]
    assert lines[0] == "boot 1: wedge-tflm-app 1.0.0, no model"
    assert "image 1: received tiny 1.2.0, " in lines[1] and lines[1].endswith("bytes, in its secondary slot")
    assert lines[2] == "image 1: tiny 1.2.0 swaps in at the next reset for a test boot"
    assert lines[3] == "reset requested over SMP"
    assert lines[4].startswith("boot 2: wedge-tflm-app 1.0.0, tiny 1.2.0 (running); booted tiny 1.2.0 for test")
    assert lines[5] == "image 1: tiny 1.2.0 confirmed: it stays after the next reset"
    # Each line names the board and the time: "12:01:02 ring-nrf52840: boot 1: ...".
    assert all(" ring-nrf52840: " in line for line in board.log_path.read_text().splitlines())


def test_json_announcements_stay_alone_on_stdout(tmp_path: Path, keys: KeyPair) -> None:
    process = subprocess.Popen([sys.executable, "-m", "wedge.cli", "emulate", "--board", "ring-nrf52840", "--state",
                                str(tmp_path / "state"), "--key", str(keys.private_path), "--link",
                                str(tmp_path / "tty"), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the port is up once this line is out
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    announcements = [json.loads(line) for line in (first + rest).splitlines()]
    assert announcements and announcements[0]["board"] == "ring-nrf52840"
    assert "ring-nrf52840: boot 1: wedge-tflm-app 1.0.0, no model" in errors
