"""Flashing one image, end to end: identify, check, upload (resuming), verify, test, reset, confirm or report the rollback.

The board is never asked to keep an image it has not booted: the image is marked for test, the board resets
and boots it, and only when the board reports the new model running is it confirmed; otherwise MCUboot has
already rolled it back, and the error says why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from smpclient.requests.image_management import ImageStatesWrite

from wedge.firmware.errors import FlashError, RollbackError
from wedge.firmware.flash.preflight import check_integrity, check_upgrade, preflight
from wedge.firmware.flash.session import DeviceIdentity, DeviceSession, LinkLost, SlotState
from wedge.firmware.flash.upload import DEFAULT_WINDOW, UploadStats, upload_image
from wedge.firmware.image.model_image import ModelImage
from wedge.firmware.protocol.wedge_group import ModelState, ModelStatus

T = TypeVar("T")


class FlashObserver(Protocol):
    """What a flash tells its user: the phase it is in, and upload progress in bytes."""

    def phase(self, name: str, detail: str) -> None: ...

    def progress(self, sent_bytes: int, total_bytes: int) -> None: ...


class SilentObserver:
    def phase(self, name: str, detail: str) -> None:
        pass

    def progress(self, sent_bytes: int, total_bytes: int) -> None:
        pass


@dataclass(frozen=True)
class FlashOptions:
    """upgrade_only: refuse an image that is not newer than the running one (the device checks too)."""

    upgrade_only: bool = False
    baud: int = 115_200
    timeout_s: float = 2.0
    boot_timeout_s: float = 60.0
    reconnect_timeout_s: float = 15.0
    max_resumes: int = 5
    window: int = DEFAULT_WINDOW


@dataclass(frozen=True)
class FlashReport:
    """The result of a flash that left the new model running and confirmed (or found it already there)."""

    port: str
    board: str
    model: str
    version: str
    image_hash: bytes
    outcome: str
    previous: str | None
    upload: UploadStats | None
    total_s: float
    model_report: ModelStatus | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "board": self.board,
            "model": self.model,
            "version": self.version,
            "image_hash": self.image_hash.hex(),
            "outcome": self.outcome,
            "previous": self.previous,
            "upload": None if self.upload is None else self.upload.to_dict(),
            "total_s": self.total_s,
            "model_report": None if self.model_report is None else self.model_report.to_dict(),
        }


def _slot(states: tuple[SlotState, ...], number: int) -> SlotState | None:
    return next((s for s in states if s.slot == number), None)


def _active(states: tuple[SlotState, ...]) -> SlotState | None:
    return next((s for s in states if s.active), None)


class _Flash:
    def __init__(self, session: DeviceSession, image: ModelImage, name: str, options: FlashOptions,
                 observer: FlashObserver) -> None:
        self.session = session
        self.image = image
        self.name = name
        self.options = options
        self.observer = observer
        self.label = f"{image.manifest.model_name} {image.manifest.model_version}"

    async def retrying(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent step; after a lost link, reconnect once and run it again."""
        try:
            return await step()
        except LinkLost:
            await self.session.reconnect(self.options.reconnect_timeout_s)
            return await step()

    async def run(self, identity: DeviceIdentity, started: float) -> FlashReport:
        session, image, options = self.session, self.image, self.options
        preflight(image, self.name, identity)
        states = await self.retrying(session.image_states)
        before = await self.retrying(session.model_report)
        active = _active(states)
        previous = before.label if before is not None else (active.version if active else None)
        if active is not None and active.hash == image.image_hash:
            if active.confirmed:
                self.observer.phase("done", f"{self.label} already runs on {identity.board}")
                return self.report(identity, "already running", previous, None, started, before)
            # A test boot of this very image waits for its confirmation (a previous flash was cut short).
            return await self.confirm(identity, previous, None, started)
        if options.upgrade_only:
            check_upgrade(image, self.name, active)
        # Always upload, even when slot 1 claims this hash: a device reports the hash TLV without checking
        # the bytes (an interrupted upload of another image can sit under an old TLV area). An upload of the
        # same image that was cut short resumes where it stopped.
        self.observer.phase("upload", f"{image.size_bytes:,} bytes to {identity.board} slot 1")
        upload = await upload_image(
            session, image, upgrade_only=options.upgrade_only, progress=self.observer.progress,
            window=options.window, max_resumes=options.max_resumes,
            reconnect_timeout_s=options.reconnect_timeout_s,
        )
        states = await self.retrying(session.image_states)
        uploaded = _slot(states, 1)
        if uploaded is None or uploaded.hash != image.image_hash:
            raise FlashError(f"after the upload, slot 1 of the board does not hold {self.name} (hash mismatch)")
        self.observer.phase("test", f"mark {self.label} for a test boot")
        await self.retrying(lambda: session.request(ImageStatesWrite(hash=image.image_hash, confirm=False)))
        for _ in range(2):
            self.observer.phase("reset", "reset the board and wait for it to boot")
            await session.reset(options.boot_timeout_s)
            states = await self.retrying(session.image_states)
            waiting = _slot(states, 1)
            # The reset can be lost with its reply; the image still pending means the board never reset.
            if not (waiting is not None and waiting.hash == image.image_hash and waiting.pending):
                break
        return await self.confirm(identity, previous, upload, started)

    async def confirm(self, identity: DeviceIdentity, previous: str | None, upload: UploadStats | None,
                      started: float) -> FlashReport:
        session, image = self.session, self.image
        states = await self.retrying(session.image_states)
        report = await self.retrying(session.model_report)
        active = _active(states)
        runs_new = active is not None and active.hash == image.image_hash
        if runs_new and (report is None or report.state is ModelState.RUNNING):
            self.observer.phase("confirm", f"{self.label} runs: confirm it")
            await self.retrying(lambda: session.request(ImageStatesWrite(hash=image.image_hash, confirm=True)))
            states = await self.retrying(session.image_states)
            active = _active(states)
            if active is None or active.hash != image.image_hash or not active.confirmed:
                raise FlashError(f"the board did not confirm {self.label}")
            self.observer.phase("done", f"{self.label} confirmed on {identity.board}")
            return self.report(identity, "confirmed", previous, upload, started, report)
        if runs_new:
            # Booted but not running: resetting before confirming is what rolls it back.
            await session.reset(self.options.boot_timeout_s)
            report = await self.retrying(session.model_report)
        why = report.event if report is not None and report.event else "it did not report the new model running"
        now = report.label if report is not None else "its previous image"
        raise RollbackError(f"the board rolled back to {now}: {why}")

    def report(self, identity: DeviceIdentity, outcome: str, previous: str | None, upload: UploadStats | None,
               started: float, model_report: ModelStatus | None) -> FlashReport:
        return FlashReport(
            port=self.session.port, board=identity.board, model=self.image.manifest.model_name,
            version=self.image.manifest.model_version, image_hash=self.image.image_hash, outcome=outcome,
            previous=previous, upload=upload, total_s=time.monotonic() - started, model_report=model_report,
        )


async def flash_image_async(port: str, image: ModelImage, name: str, options: FlashOptions = FlashOptions(),
                            observer: FlashObserver | None = None) -> FlashReport:
    """Flash `image` to the SMP device on `port` (a path or pyserial URL)."""
    observer = observer or SilentObserver()
    started = time.monotonic()
    check_integrity(image, name)
    session = DeviceSession(port, baud=options.baud, timeout_s=options.timeout_s)
    observer.phase("connect", port)
    identity = await session.open()
    try:
        observer.phase("identify", f"{identity.board} ({identity.firmware or 'SMP device'}, {identity.buf_size}-byte SMP buffer)")
        return await _Flash(session, image, name, options, observer).run(identity, started)
    finally:
        await session.close()


def flash_image(port: str, image: ModelImage, name: str, options: FlashOptions = FlashOptions(),
                observer: FlashObserver | None = None) -> FlashReport:
    """Blocking wrapper of flash_image_async."""
    return asyncio.run(flash_image_async(port, image, name, options, observer))
