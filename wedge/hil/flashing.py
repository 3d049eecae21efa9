"""Images for the bench and the flash checks: pack a .tflite for a board, flash it, and prove a rollback.

The rollback check uploads a newer image, boots it for test without confirming it and resets again: MCUboot
must bring back the previous model, as it would after a field update that never came up.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smpclient.requests.image_management import ImageStatesWrite

from wedge.boards import Board
from wedge.firmware.flash.flasher import FlashOptions
from wedge.firmware.flash.session import DeviceSession
from wedge.firmware.flash.upload import upload_image
from wedge.firmware.image.build import build_image
from wedge.firmware.image.model_image import ModelImage
from wedge.hil.errors import HilError


def model_arena_bytes(model: Path) -> int:
    """The TFLM arena `model` needs, as the TFLite export measures it; HilError when TFLM cannot run it."""
    from wedge.quantize.tflite.arena import measure_arena
    from wedge.quantize.tflite.errors import ExportError

    try:
        return measure_arena(model, source=model.name).arena_bytes
    except ExportError as exc:
        raise HilError(f"{model.name} does not run in TFLite-Micro: {exc}") from None


def pack_model(model: Path, board: Board, key_path: Path, version: str, *, arena_bytes: int,
               name: str | None = None) -> ModelImage:
    """A signed image of `model` for `board`; ImageError (with the reason) when the board cannot hold it."""
    return build_image(model, board, key_path, version, arena_bytes=arena_bytes, model_name=name or model.stem).image


@dataclass(frozen=True)
class RollbackCheck:
    """What ran after each reset: the unconfirmed test image, then (after the next reset) the previous model."""

    before: str
    during_test: str
    after_reset: str
    test_state: str

    @property
    def rolled_back(self) -> bool:
        return self.after_reset == self.before and self.during_test != self.before

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rolled_back": self.rolled_back}


async def _rollback(port: str, image: ModelImage, options: FlashOptions) -> RollbackCheck:
    session = DeviceSession(port, baud=options.baud, timeout_s=options.timeout_s)
    await session.open()
    try:
        before = await session.model_report()
        if before is None:
            raise HilError(f"the board on {port} does not report its model (no wedge SMP group): cannot check a rollback")
        await upload_image(session, image, reconnect_timeout_s=options.reconnect_timeout_s)
        await session.request(ImageStatesWrite(hash=image.image_hash, confirm=False))
        await session.reset(options.boot_timeout_s)
        during = await session.model_report()
        await session.reset(options.boot_timeout_s)
        after = await session.model_report()
    finally:
        await session.close()
    assert during is not None and after is not None
    return RollbackCheck(before.label, during.label, after.label, during.state)


def check_rollback(port: str, image: ModelImage, options: FlashOptions | None = None) -> RollbackCheck:
    """Boot `image` for test on the board at `port` without confirming it, reset, and report what runs."""
    return asyncio.run(_rollback(port, image, options or FlashOptions()))


async def _running(port: str, options: FlashOptions) -> str:
    session = DeviceSession(port, baud=options.baud, timeout_s=options.timeout_s)
    await session.open(wait_s=options.reconnect_timeout_s)
    try:
        report = await session.model_report()
    finally:
        await session.close()
    return "unknown" if report is None else f"{report.label} ({report.state_text})"


def running_model(port: str, options: FlashOptions | None = None) -> str:
    """`name version (state)` of the model the board on `port` runs."""
    return asyncio.run(_running(port, options or FlashOptions()))
