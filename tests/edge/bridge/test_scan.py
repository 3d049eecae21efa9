"""`wedge scan` on the virtual air: names, RSSI and services of the devices nearby, and what each supports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess, EmulatorProcess
from wedge.samples import sample_path


def scan_cli(air: AirProcess, *args: str) -> dict[str, dict[str, Any]]:
    result = subprocess.run([sys.executable, "-m", "wedge.cli", "scan", "--transport", air.spec, "--timeout-s", "2",
                             "--json", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {d["name"]: d for d in json.loads(result.stdout)["devices"]}


def test_a_streaming_ring_and_a_sealed_ring_are_told_apart(air: AirProcess, tmp_path: Path, keys) -> None:
    ring = BleBoardProcess("ring-nrf52840", sample_path("ppg_quality"), air.spec, tmp_path, name="scan-ring")
    # A ring without a model yet advertises only its SMP service (it waits for its first model over the air).
    sealed = EmulatorProcess(tmp_path / "sealed", keys.private_path, extra=("--ble", air.spec, "--ble-name", "scan-smp"))
    sealed.folder.mkdir()
    try:
        sealed.start()
        heard = scan_cli(air)
        connected = scan_cli(air, "--gatt")
        only = scan_cli(air, "--device", "scan-ring")
    finally:
        sealed.stop()
        ring.terminate()
    assert {"scan-ring", "scan-smp"} <= set(heard) and set(only) == {"scan-ring"}
    streaming = heard["scan-ring"]
    assert streaming["rssi"] is not None and "heart rate" in streaming["advertised"]
    assert streaming["supports"]["heart_rate"] is True and streaming["address"] == ring.info["address"]
    # Connected to, each says what it serves.
    assert connected["scan-ring"]["supports"] == {"wedge": True, "heart_rate": True, "smp": False}
    assert "wedge stream" in connected["scan-ring"]["gatt"]
    assert connected["scan-smp"]["supports"] == {"wedge": False, "heart_rate": False, "smp": True}


def test_nothing_nearby_is_said_in_one_line(air: AirProcess) -> None:
    result = subprocess.run([sys.executable, "-m", "wedge.cli", "scan", "--transport", air.spec, "--timeout-s", "0.5",
                             "--device", "nobody-here"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "no BLE device advertised within 0.5 s as nobody-here"


def test_no_adapter_is_one_error_line() -> None:
    result = subprocess.run([sys.executable, "-m", "wedge.cli", "scan", "--transport", "tcp-client:127.0.0.1:1",
                             "--timeout-s", "0.5"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: cannot scan with Bumble on tcp-client:127.0.0.1:1")
    assert len(result.stderr.splitlines()) == 1
