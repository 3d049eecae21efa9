"""Every bad input gets one clear line (no traceback), and the board keeps running the model it had.

Host-side checks refuse before sending a byte; the board's own checks are tested by going around them.
"""

from __future__ import annotations

import asyncio
import os
import threading
import tty
from pathlib import Path

import pytest
import serial
from smpclient.requests.image_management import ImageStatesWrite

from tests.firmware.firmware_models import pack, run_cli, write_image, write_model
from wedge.firmware.errors import DeviceError
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.flash.session import DeviceSession
from wedge.firmware.flash.upload import upload_image
from wedge.firmware.image.model_image import ModelImage
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.samples.tiny_tflite import int8_fc_model

FAST = FlashOptions(timeout_s=1.0, reconnect_timeout_s=3.0)


def _fc(tmp_path: Path, keys, version: str, *, features: int = 64, seed: int = 0, board: str = "ring-nrf52840",
        check_fit: bool = True) -> ModelImage:
    model = write_model(tmp_path, f"m-{version}-{seed}-{features}.tflite", int8_fc_model(features, 16, seed=seed))
    return pack(model, keys, version, board=board, name="fc", check_fit=check_fit)


@pytest.fixture
def running(tmp_path: Path, keys, board: EmulatorProcess) -> EmulatorProcess:
    """A virtual ring running fc 1.0.0, confirmed."""
    flash_image(board.port, _fc(tmp_path, keys, "1.0.0"), "v1.img", FAST)
    return board


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    # Progress lines may come first; the error is one line, and the last.
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def _keeps_v1(board: EmulatorProcess) -> None:
    status = board.status()
    assert (status["state"], status["model"], status["version"]) == ("running", "fc", "1.0.0")


def _tampered(image: ModelImage) -> bytes:
    data = bytearray(image.data)
    data[100] ^= 0x40
    return bytes(data)


def test_bad_images_are_refused_before_sending(tmp_path: Path, keys, other_keys, running: EmulatorProcess) -> None:
    cases = {
        "tampered": (_tampered(_fc(tmp_path, keys, "2.0.0", seed=1)), ("is corrupt", "modified after signing")),
        "wrong key": (_fc(tmp_path, other_keys, "2.0.0", seed=2).data, ("signed with key", "trusts key")),
        "other board": (_fc(tmp_path, keys, "2.0.0", seed=3, board="ring-nrf5340").data,
                        ("built for ring-nrf5340", "is ring-nrf52840")),
        "over slot": (_fc(tmp_path, keys, "2.0.0", features=17_000, check_fit=False).data,
                      ("model slot holds 262,144",)),
    }
    for name, (data, fragments) in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.img"
        path.write_bytes(data)
        _assert_one_line_error(run_cli("flash", str(path), "--port", running.port), *fragments)
        _keeps_v1(running)
    assert running.status()["slots"][3] is None  # not a byte of them reached image 1's secondary slot


def test_a_downgrade_is_refused_with_upgrade_only(tmp_path: Path, keys, running: EmulatorProcess) -> None:
    older = write_image(tmp_path, "old.img", _fc(tmp_path, keys, "0.9.0", seed=4))
    _assert_one_line_error(run_cli("flash", str(older), "--port", running.port, "--upgrade-only"),
                           "not newer than the running 1.0.0")
    _keeps_v1(running)


def test_the_board_refuses_a_downgrade_itself_when_asked_for_upgrades_only(tmp_path: Path, keys,
                                                                          running: EmulatorProcess) -> None:
    async def go() -> None:
        session = DeviceSession(running.port, timeout_s=1.0)
        await session.open()
        try:
            await upload_image(session, _fc(tmp_path, keys, "0.9.0", seed=5), upgrade_only=True)
        finally:
            await session.close()

    with pytest.raises(Exception, match="already runs this version or a newer one"):
        asyncio.run(go())
    _keeps_v1(running)


def test_the_board_itself_refuses_what_the_host_let_through(tmp_path: Path, keys, other_keys,
                                                            running: EmulatorProcess) -> None:
    tampered = _fc(tmp_path, keys, "2.0.0", seed=8)
    images = {
        "wrong key": _fc(tmp_path, other_keys, "2.0.0", seed=6),
        "other board": _fc(tmp_path, keys, "2.0.0", seed=7, board="ring-nrf5340"),
        "tampered": ModelImage(_tampered(tampered), tampered.parts, tampered.manifest),
    }

    async def boot_it(image: ModelImage) -> str | None:
        session = DeviceSession(running.port, timeout_s=1.0)
        await session.open()
        try:
            await upload_image(session, image)
            await session.request(ImageStatesWrite(hash=image.image_hash, confirm=False))
            await session.reset(boot_timeout_s=30)
            report = await session.model_report()
            return report.event if report else None
        finally:
            await session.close()

    for problem, image in images.items():
        event = asyncio.run(boot_it(image))
        assert event is not None and "MCUboot refused fc 2.0.0 in image 1's secondary slot" in event, (problem, event)
        _keeps_v1(running)
        # As MCUboot's boot_validate_slot does: the refused image's whole slot is erased, not just its trailer.
        assert running.status()["slots"][3] is None, problem


def test_a_missing_port_is_named(tmp_path: Path, keys) -> None:
    image = write_image(tmp_path, "v1.img", _fc(tmp_path, keys, "1.0.0"))
    _assert_one_line_error(run_cli("flash", str(image), "--port", str(tmp_path / "ttyNOPE")), "does not exist")


def test_a_busy_port_is_named(tmp_path: Path, keys, running: EmulatorProcess) -> None:
    image = write_image(tmp_path, "v2.img", _fc(tmp_path, keys, "2.0.0", seed=9))
    holder = serial.Serial(running.port, exclusive=True)
    try:
        _assert_one_line_error(run_cli("flash", str(image), "--port", running.port), "is busy")
    finally:
        holder.close()
    _keeps_v1(running)


def test_a_device_that_stops_answering_is_reported(tmp_path: Path, keys, running: EmulatorProcess) -> None:
    running.control(op="faults", hang_after_bytes=4000)
    with pytest.raises(DeviceError, match="did not answer|stopped answering"):
        flash_image(running.port, _fc(tmp_path, keys, "2.0.0", features=3000, seed=10), "v2.img", FAST)
    running.control(op="unhang")
    _keeps_v1(running)


def test_a_port_that_is_not_an_smp_device_is_named(tmp_path: Path, keys) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def chatter() -> None:
        # A shell-like device: it answers every line with garbage text.
        while not stop.is_set():
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if b"\n" in data:
                os.write(master, b"garbage: command not found\r\n$ ")

    thread = threading.Thread(target=chatter, daemon=True)
    thread.start()
    try:
        image = write_image(tmp_path, "v1.img", _fc(tmp_path, keys, "1.0.0"))
        result = run_cli("flash", str(image), "--port", os.ttyname(slave), "--timeout-s", "0.5")
        _assert_one_line_error(result, "no SMP (mcumgr) device answers", "bytes of other output")
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
