"""SMP over BLE on the virtual air: Zephyr's SMP GATT service on the virtual board, wedge's BLE transport through
bleak on wedge's Bumble backend; a flash that the radio drops halfway resumes and is confirmed. The ring's SMP
service needs an encrypted link (CONFIG_MCUMGR_TRANSPORT_BT_PERM_RW_ENCRYPT): `wedge pair` bonds first, and a
flash without the bond is refused before a byte is sent."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from tests.firmware.firmware_models import pack, run_cli, write_image, write_model
from wedge.edge.bridge.discovery import BleStack
from wedge.firmware.flash.ble_transport import BleSmpTransport
from wedge.firmware.flash.flasher import FlashOptions, flash_image_async
from wedge.firmware.virtual.processes import AirProcess, EmulatorProcess
from wedge.samples.tiny_tflite import int8_fc_model

NAME = "ring-ble"


@pytest.fixture
def air(tmp_path: Path) -> AirProcess:
    process = AirProcess(tmp_path)
    yield process
    process.terminate()


@pytest.fixture
def ble_board(tmp_path: Path, keys, air: AirProcess) -> EmulatorProcess:
    board = EmulatorProcess(tmp_path / "board", keys.private_path, extra=("--ble", air.spec, "--ble-name", NAME))
    board.start()
    yield board
    board.stop()


class _DropAtHalf:
    def __init__(self, board: EmulatorProcess) -> None:
        self.board = board
        self.dropped = threading.Event()

    def phase(self, name: str, detail: str) -> None:
        pass

    def progress(self, sent_bytes: int, total_bytes: int) -> None:
        if not self.dropped.is_set() and sent_bytes * 2 >= total_bytes:
            self.dropped.set()
            self.board.control(op="ble-drop")


async def _flash_over_ble(spec: str, image, keystore: Path, observer=None):
    stack = BleStack.bumble(spec, keystore=keystore)
    try:
        transport = BleSmpTransport(scanner_args=stack.scanner_args, client_args=stack.client_args)
        return await flash_image_async(NAME, image, "model.img", FlashOptions(timeout_s=2.0, reconnect_timeout_s=30.0),
                                       observer, transport)
    finally:
        await stack.close()


def test_a_ring_gets_its_first_model_over_ble_and_a_drop_mid_upload_resumes(tmp_path: Path, keys, air,
                                                                           ble_board: EmulatorProcess) -> None:
    first = write_image(tmp_path, "v1.img", pack(write_model(tmp_path, "v1.tflite", int8_fc_model(64, 8)), keys,
                                                 "1.0.0", name="fc"))
    keystore = tmp_path / "bonds.json"
    # A fresh ring has no model: it advertises the SMP service alone, as smp_svr does. Without a bond it refuses
    # the SMP subscription (Insufficient Authentication), so nothing is sent...
    refused = run_cli("flash", str(first), "--ble", NAME, "--ble-transport", air.spec, "--ble-keystore", str(keystore))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "ATT Insufficient Authentication" in refused.stderr and f"wedge pair {NAME}" in refused.stderr
    assert ble_board.status()["version"] is None
    # ... and once paired (Just Works: a ring has no display) it takes its first model over the encrypted link.
    paired = run_cli("pair", NAME, "--transport", air.spec, "--keystore", str(keystore), "--json")
    assert paired.returncode == 0, paired.stderr
    assert json.loads(paired.stdout)["paired"]["method"] == "Just Works"
    result = run_cli("flash", str(first), "--ble", NAME, "--ble-transport", air.spec, "--ble-keystore", str(keystore),
                     "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outcome"] == "confirmed"
    # The application booted the model and streams now, under the same identity and bond: the reconnects of the
    # next flash (its reset, the drop) re-encrypt with the bond.
    big = pack(write_model(tmp_path, "v2.tflite", int8_fc_model(2000, 16, seed=2)), keys, "2.0.0", name="fc")
    observer = _DropAtHalf(ble_board)
    report = asyncio.run(_flash_over_ble(air.spec, big, keystore, observer))
    assert observer.dropped.is_set() and report.outcome == "confirmed"
    upload = report.upload
    assert upload is not None and upload.resumes >= 1
    # What was in flight when the link dropped is sent again, plus the header chunk that asks for the offset.
    assert upload.resent_bytes <= upload.window * upload.chunk_payload_bytes + 32
    assert ble_board.status()["version"] == "2.0.0"


def test_a_ble_device_without_the_smp_service_is_named(tmp_path: Path, keys, air) -> None:
    from wedge.firmware.virtual.processes import BleBoardProcess

    model = write_model(tmp_path, "m.tflite", int8_fc_model(64, 8))
    # A glasses board streams but serves no SMP (its profile has no `smp` service).
    peripheral = BleBoardProcess("glasses-esp32s3", model, air.spec, tmp_path, name="glasses-nosmp")
    try:
        image = write_image(tmp_path, "m.img", pack(model, keys, "1.0.0", name="fc"))
        result = run_cli("device", "info", "--ble", "glasses-nosmp", "--ble-transport", air.spec)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "does not offer the SMP service" in result.stderr, result.stderr
        absent = run_cli("flash", str(image), "--ble", "nobody-here", "--ble-transport", air.spec, timeout_s=60)
        assert absent.returncode == 1 and "no BLE device nobody-here is advertising" in absent.stderr
    finally:
        peripheral.terminate()
