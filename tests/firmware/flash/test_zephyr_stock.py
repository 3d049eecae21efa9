"""A board configured as Zephyr's smp_svr ships (`wedge emulate --zephyr-stock`): no wedge group, no MCUmgr
params, no OS info, no bootloader info. Checked with smpclient directly (an external client), then flashed
with wedge through image 0 and image 1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import cbor2
import pytest
from smp import header as smphdr
from smpclient import SMPClient
from smpclient.generics import error, success
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, OSApplicationInfoRead
from smpclient.transport.serial import SMPSerialTransport

from tests.firmware.firmware_models import RING, pack, run_cli, write_image, write_model
from wedge.boards import load as load_board
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.image.firmware_image import build_firmware_image
from wedge.firmware.protocol.smp_messages import encode_request
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.samples.tiny_tflite import int8_fc_model

FAST = FlashOptions(timeout_s=1.0, reconnect_timeout_s=20.0, board=RING)


@pytest.fixture
def stock(tmp_path: Path, keys) -> EmulatorProcess:
    board = EmulatorProcess(tmp_path / "stock", keys.private_path, extra=("--zephyr-stock",))
    board.start()
    yield board
    board.stop()


def _raw(op: smphdr.OP, group: int, command: int, body: dict, sequence: int = 7) -> bytes:
    return encode_request(op, group, command, body, sequence)


def test_an_external_client_sees_a_stock_smp_svr(stock: EmulatorProcess) -> None:
    async def go() -> dict:
        transport = SMPSerialTransport()
        client = SMPClient(transport, stock.port)
        await client.connect()
        try:
            seen: dict = {}
            seen["echo"] = await client.request(EchoWrite(d="hello"))
            seen["params"] = await client.request(MCUMgrParametersRead())
            seen["info"] = await client.request(OSApplicationInfoRead(format="i"))
            seen["states"] = await client.request(ImageStatesRead())
            # Echo is registered for read too (os_mgmt_echo in both slots); unknown commands answer ENOTSUP.
            reply_read = await transport.send_and_receive(_raw(smphdr.OP.READ, 0, 0, {"d": "r"}))
            reply_unknown = await transport.send_and_receive(_raw(smphdr.OP.READ, 0, 42, {}, 8))
            seen["echo_read"] = cbor2.loads(reply_read[8:])
            seen["unknown"] = cbor2.loads(reply_unknown[8:])
            return seen
        finally:
            await client.disconnect()

    seen = asyncio.run(go())
    assert success(seen["echo"]) and seen["echo"].r == "hello"
    assert error(seen["params"]) and int(seen["params"].rc) == 8  # ENOTSUP: CONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS=n
    assert error(seen["info"]) and int(seen["info"].rc) == 8
    assert seen["echo_read"] == {"r": "r"} and seen["unknown"] == {"rc": 8}
    images = seen["states"].images
    # The running application is listed in image 0 slot 0, with every flag, as Zephyr's state read has it.
    assert [(i.image, i.slot, i.active, i.confirmed, i.pending) for i in images] == [(0, 0, True, True, False)]


def test_wedge_flashes_a_model_to_a_stock_board_and_says_it_was_not_self_tested(tmp_path: Path, keys,
                                                                                stock: EmulatorProcess) -> None:
    image = write_image(tmp_path, "fc.img", pack(write_model(tmp_path, "fc.tflite", int8_fc_model(64, 8)), keys,
                                                 "1.0.0", name="fc"))
    unnamed = run_cli("flash", str(image), "--port", stock.port, "--timeout-s", "1")
    assert unnamed.returncode == 1 and "Traceback" not in unnamed.stderr
    assert "does not say what board it is" in unnamed.stderr and "--board" in unnamed.stderr
    result = run_cli("flash", str(image), "--port", stock.port, "--board", RING, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["outcome"], report["image"], report["self_tested"]) == ("confirmed", 1, False)
    assert any("without an on-device self-test" in note for note in report["notes"])
    slots = {(s["image"], s["slot"]): s for s in stock.status()["slots"] if s}
    assert slots[(1, 0)]["hash"] == json.loads(result.stdout)["image_hash"]


def test_a_stock_board_refuses_a_host_confirming_image_1_and_takes_an_application_update(
        tmp_path: Path, keys, stock: EmulatorProcess) -> None:
    model = pack(write_model(tmp_path, "fc.tflite", int8_fc_model(64, 8)), keys, "1.0.0", name="fc")
    firmware = build_firmware_image(load_board(RING), keys.private_path, "1.1.0")
    report = flash_image(stock.port, firmware, "app.img", FAST)  # image 0: test, reset, confirm by hash
    assert (report.outcome, report.image, report.self_tested) == ("confirmed", 0, True)
    assert stock.status()["firmware"] == "wedge-tflm-app 1.1.0"

    async def test_then_confirm() -> tuple:
        from wedge.firmware.flash.session import DeviceSession, Identify
        from wedge.firmware.flash.upload import upload_image

        session = DeviceSession(stock.port, timeout_s=1.0, identify=Identify(board=RING))
        await session.open()
        try:
            await upload_image(session, model)
            await session.request(ImageStatesWrite(hash=model.image_hash, confirm=False))
            await session.reset(30)
            response = await session.client.request(ImageStatesWrite(hash=model.image_hash, confirm=True))
            return response, await session.image_states()
        finally:
            await session.close()

    response, states = asyncio.run(test_then_confirm())
    # img_mgmt_set_next_boot_slot: confirming image 1's primary is denied unless ALLOW_CONFIRM_NON_ACTIVE_IMAGE_ANY.
    assert error(response) and int(response.err.rc) == 32 and int(response.err.group) == 1
    primary = next(s for s in states if s.image == 1 and s.slot == 0)
    assert primary.hash == model.image_hash and not primary.confirmed
