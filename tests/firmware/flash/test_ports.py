"""`wedge ports`: serial ports listed, and the SMP probe tells a wedge board, a stock Zephyr board and silence apart."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.firmware.firmware_models import pack
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.flash.ports import SerialPort, probe_ports, serial_ports
from wedge.firmware.virtual.processes import EmulatorProcess


def ports_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wedge.cli", "ports", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)


def test_a_wedge_board_says_its_board_firmware_and_model(board: EmulatorProcess, tiny_model: Path, keys) -> None:
    (fresh,) = asyncio.run(probe_ports([SerialPort(board.port)]))
    assert fresh.answers and fresh.board == "ring-nrf52840" and fresh.model is None
    assert fresh.zephyr_board is not None and fresh.firmware is not None
    flash_image(board.port, pack(tiny_model, keys, "1.2.0", name="fc"), "fc", FlashOptions())
    result = ports_cli("--port", board.port, "--json")
    assert result.returncode == 0, result.stderr
    (entry,) = [p for p in json.loads(result.stdout)["ports"] if p["device"] == board.port]
    assert entry["smp"]["answers"] and entry["smp"]["model"] == "fc 1.2.0"
    assert "board ring-nrf52840" in entry["smp"]["detail"]


def test_a_stock_smp_server_answers_but_names_nothing(tmp_path: Path, keys) -> None:
    stock = EmulatorProcess(tmp_path / "stock", keys.private_path, extra=("--zephyr-stock",))
    stock.folder.mkdir()
    stock.start()
    try:
        (probe,) = asyncio.run(probe_ports([SerialPort(stock.port)]))
    finally:
        stock.stop()
    # Zephyr's smp_svr as it ships: an echo, but no OS info and no wedge group.
    assert probe.answers and (probe.board, probe.zephyr_board, probe.firmware, probe.model) == (None,) * 4
    assert "no OS info" in probe.detail


def test_a_silent_port_and_a_missing_one_are_told_apart_in_one_line_each() -> None:
    master, slave = os.openpty()
    try:
        silent, missing = asyncio.run(probe_ports([SerialPort(os.ttyname(slave)), SerialPort("/dev/nonexistent-tty")],
                                                  timeout_s=0.3))
    finally:
        os.close(master)
        os.close(slave)
    assert not silent.answers and silent.detail == "no SMP answer within 0.3 s"
    assert not missing.answers and "does not exist" in missing.detail


def test_listing_sends_nothing_and_the_json_is_all_there_is_on_stdout() -> None:
    result = ports_cli("--no-probe", "--json", "--port", "/dev/nonexistent-tty")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["ports"]
    assert listed[-1]["device"] == "/dev/nonexistent-tty" and listed[-1]["smp"] is None
    assert [p["device"] for p in listed[:-1]] == [p.device for p in serial_ports()]
