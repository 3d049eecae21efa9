"""Flashing one image, end to end: identify, check, upload (resuming), verify, test, reset, confirm or report the rollback.

A model goes to MCUboot image 1, an application to image 0. The board is never asked to keep an image it has not
booted when it can show it works: the image is marked for test, the board resets and boots it, and only when
the board reports the new model running (wedge's group), or the new application answers, is it confirmed by
hash; otherwise MCUboot rolls it back, and the error says why. A device without wedge's group cannot show a
model running: the model is made permanent, and the report says it was confirmed without a self-test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from smpclient.requests.image_management import ImageStatesWrite

from wedge.firmware.errors import FlashError, RollbackError
from wedge.firmware.flash.preflight import check_integrity, check_upgrade, preflight
from wedge.firmware.flash.session import DeviceIdentity, DeviceSession, Identify, LinkLost, SessionTransport, SlotState
from wedge.firmware.flash.upload import DEFAULT_WINDOW, UploadStats, upload_image
from wedge.firmware.image.firmware_image import FirmwareImage
from wedge.firmware.image.model_image import ModelImage, SignedImage
from wedge.firmware.protocol.wedge_group import WEDGE_GROUP_ID, ModelState, ModelStatus

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
    """upgrade_only: refuse an image that is not newer than the running one (the device checks too).

    image: the MCUboot image to flash (None: the one the image is packed for; 1 for a model, 0 for firmware).
    board: the profile to take when the device does not say what it is; firmware: the application image file
    the device runs, to check a model against when the device does not describe its firmware itself.
    """

    upgrade_only: bool = False
    baud: int = 115_200
    timeout_s: float = 2.0
    boot_timeout_s: float = 60.0
    reconnect_timeout_s: float = 15.0
    max_resumes: int = 5
    window: int | None = None  # chunks in flight (None: the transport's default, 2 on a UART, 1 over BLE)
    image: int | None = None
    board: str | None = None
    wedge_group_id: int = WEDGE_GROUP_ID
    firmware: FirmwareImage | None = None


@dataclass(frozen=True)
class FlashReport:
    """The result of a flash that left the new image running and confirmed (or found it already there)."""

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
    image: int = 1
    self_tested: bool = True
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "board": self.board,
            "image": self.image,
            "model": self.model,
            "version": self.version,
            "image_hash": self.image_hash.hex(),
            "outcome": self.outcome,
            "self_tested": self.self_tested,
            "previous": self.previous,
            "upload": None if self.upload is None else self.upload.to_dict(),
            "total_s": self.total_s,
            "model_report": None if self.model_report is None else self.model_report.to_dict(),
            "notes": list(self.notes),
        }


NO_SELF_TEST: Final[str] = ("confirmed without an on-device self-test: the device has no wedge SMP group, so "
                            "nothing showed the model runs before it was made permanent")


def _slot(states: tuple[SlotState, ...], image: int, number: int) -> SlotState | None:
    return next((s for s in states if s.image == image and s.slot == number), None)


def _name_version(image: SignedImage) -> tuple[str, str]:
    if isinstance(image, ModelImage):
        return image.manifest.model_name, image.manifest.model_version
    assert isinstance(image, FirmwareImage)
    return image.descriptor.name, image.descriptor.version


class _Flash:
    def __init__(self, session: DeviceSession, image: SignedImage, name: str, options: FlashOptions,
                 observer: FlashObserver) -> None:
        self.session = session
        self.image = image
        self.name = name
        self.options = options
        self.observer = observer
        self.label = image.label
        self.number = image.image_number if options.image is None else options.image
        self.notes: list[str] = []

    async def retrying(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent step; after a lost link, reconnect once and run it again."""
        try:
            return await step()
        except LinkLost:
            await self.session.reconnect(self.options.reconnect_timeout_s)
            return await step()

    def _self_test(self, identity: DeviceIdentity) -> bool:
        """Whether the device can show the new image works before it is confirmed: the application confirms
        itself by answering after its reset; a model needs the wedge group's report of its self-test."""
        return self.number == 0 or identity.wedge_group

    async def run(self, identity: DeviceIdentity, started: float) -> FlashReport:
        session, image, options, number = self.session, self.image, self.options, self.number
        states = await self.retrying(session.image_states)
        compat = preflight(image, self.name, identity, states, target_image=number, firmware_file=options.firmware)
        self.notes.extend(compat.notes)
        before = await self.retrying(session.model_report) if number != 0 else None
        primary = _slot(states, number, 0)
        previous = (before.label if before is not None else None) or (primary.version if primary else None)
        if primary is not None and primary.hash == image.image_hash:
            if primary.confirmed:
                self.observer.phase("done", f"{self.label} already runs on {identity.board} (image {number})")
                return self.report(identity, "already running", previous, None, started, before)
            # A test boot of this very image waits for its confirmation (a previous flash was cut short).
            return await self.confirm(identity, previous, None, started)
        if options.upgrade_only:
            check_upgrade(image, self.name, primary)
        # Always upload, even when the secondary slot claims this hash: a device reports the hash TLV without
        # checking the bytes. An upload of the same image that was cut short resumes where it stopped.
        self.observer.phase("upload", f"{image.size_bytes:,} bytes to {identity.board} image {number}")
        upload = await upload_image(
            session, image, image_number=number, upgrade_only=options.upgrade_only, progress=self.observer.progress,
            window=options.window or getattr(session.transport, "default_window", DEFAULT_WINDOW),
            max_resumes=options.max_resumes, reconnect_timeout_s=options.reconnect_timeout_s,
        )
        states = await self.retrying(session.image_states)
        uploaded = _slot(states, number, 1)
        if uploaded is None or uploaded.hash != image.image_hash:
            raise FlashError(f"after the upload, image {number}'s secondary slot does not hold {self.name} "
                             "(hash mismatch)")
        if not self._self_test(identity):
            return await self.permanent(identity, previous, upload, started)
        self.observer.phase("test", f"mark {self.label} for a test boot")
        await self.retrying(lambda: session.request(ImageStatesWrite(hash=image.image_hash, confirm=False)))
        for _ in range(2):
            self.observer.phase("reset", "reset the board and wait for it to boot")
            await session.reset(options.boot_timeout_s)
            states = await self.retrying(session.image_states)
            waiting = _slot(states, number, 1)
            # The reset can be lost with its reply; the image still pending means the board never reset.
            if not (waiting is not None and waiting.hash == image.image_hash and waiting.pending):
                break
        return await self.confirm(identity, previous, upload, started)

    async def permanent(self, identity: DeviceIdentity, previous: str | None, upload: UploadStats | None,
                        started: float) -> FlashReport:
        """No way to see the model run before it is kept: make the swap permanent (the secondary slot of an image
        that is not the running application may be confirmed, ALLOW_CONFIRM_NON_ACTIVE_IMAGE_SECONDARY)."""
        session, image = self.session, self.image
        self.observer.phase("confirm", f"mark {self.label} permanent (no on-device self-test to wait for)")
        await self.retrying(lambda: session.request(ImageStatesWrite(hash=image.image_hash, confirm=True)))
        self.observer.phase("reset", "reset the board and wait for it to boot")
        await session.reset(self.options.boot_timeout_s)
        states = await self.retrying(session.image_states)
        primary = _slot(states, self.number, 0)
        if primary is None or primary.hash != image.image_hash or not primary.confirmed:
            raise FlashError(f"after its reset the board does not run {self.label} in image {self.number}: "
                             "MCUboot refused it (a bad signature, another board, or an unmet dependency)")
        self.notes.append(NO_SELF_TEST)
        self.observer.phase("done", f"{self.label} confirmed on {identity.board} ({NO_SELF_TEST.split(':')[0]})")
        return self.report(identity, "confirmed", previous, upload, started, None, self_tested=False)

    async def confirm(self, identity: DeviceIdentity, previous: str | None, upload: UploadStats | None,
                      started: float) -> FlashReport:
        session, image = self.session, self.image
        states = await self.retrying(session.image_states)
        report = await self.retrying(session.model_report) if self.number != 0 else None
        primary = _slot(states, self.number, 0)
        runs_new = primary is not None and primary.hash == image.image_hash
        works = self.number == 0 or (report is not None and report.state is ModelState.RUNNING
                                     and report.model_hash in (None, image.image_hash))
        if runs_new and works:
            self.observer.phase("confirm", f"{self.label} runs: confirm it")
            await self.retrying(lambda: session.request(ImageStatesWrite(hash=image.image_hash, confirm=True)))
            states = await self.retrying(session.image_states)
            primary = _slot(states, self.number, 0)
            if primary is None or primary.hash != image.image_hash or not primary.confirmed:
                raise FlashError(f"the board did not confirm {self.label}")
            self.observer.phase("done", f"{self.label} confirmed on {identity.board} (image {self.number})")
            if report is not None:
                report = await self.retrying(session.model_report)
            return self.report(identity, "confirmed", previous, upload, started, report)
        if runs_new:
            # Booted but not running: resetting before confirming is what rolls it back.
            await session.reset(self.options.boot_timeout_s)
            report = await self.retrying(session.model_report) if self.number != 0 else None
            states = await self.retrying(session.image_states)
        why = report.event if report is not None and report.event else "it did not report the new image running"
        now = report.label if report is not None else (_slot(states, self.number, 0) or primary)
        now_text = now if isinstance(now, str) else ("its previous image" if now is None else now.version)
        raise RollbackError(f"the board rolled back to {now_text}: {why}")

    def report(self, identity: DeviceIdentity, outcome: str, previous: str | None, upload: UploadStats | None,
               started: float, model_report: ModelStatus | None, *, self_tested: bool = True) -> FlashReport:
        name, version = _name_version(self.image)
        return FlashReport(
            port=self.session.port, board=identity.board, model=name, version=version,
            image_hash=self.image.image_hash, outcome=outcome, previous=previous, upload=upload,
            total_s=time.monotonic() - started, model_report=model_report, image=self.number,
            self_tested=self_tested and self._self_test(identity), notes=tuple(self.notes),
        )


async def flash_image_async(port: str, image: SignedImage, name: str, options: FlashOptions = FlashOptions(),
                            observer: FlashObserver | None = None,
                            transport: SessionTransport | None = None) -> FlashReport:
    """Flash `image` to the SMP device at `port` (a path or pyserial URL; a BLE name with a BLE `transport`)."""
    observer = observer or SilentObserver()
    started = time.monotonic()
    check_integrity(image, name)
    session = DeviceSession(port, baud=options.baud, timeout_s=options.timeout_s, transport=transport,
                            identify=Identify(board=options.board, wedge_group_id=options.wedge_group_id))
    observer.phase("connect", port)
    identity = await session.open()
    try:
        what = identity.firmware or identity.zephyr_board or "SMP device"
        observer.phase("identify", f"{identity.board} ({what}, {identity.buf_size}-byte SMP buffer"
                                   f"{'' if identity.params_reported else ' from the profile'})")
        return await _Flash(session, image, name, options, observer).run(identity, started)
    finally:
        await session.close()


def flash_image(port: str, image: SignedImage, name: str, options: FlashOptions = FlashOptions(),
                observer: FlashObserver | None = None, transport: SessionTransport | None = None) -> FlashReport:
    """Blocking wrapper of flash_image_async."""
    return asyncio.run(flash_image_async(port, image, name, options, observer, transport))
