"""Tools over images and SMP devices (`wedge.firmware`): pack a signed image, identify a board, list its slots,
flash it. The only module of the server that calls `wedge.firmware`.

A device is addressed as the CLI addresses it: a serial port path or a pyserial URL.
"""

from __future__ import annotations

import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from wedge.firmware.errors import DeviceError, ImageError
from wedge.firmware.flash.flasher import FlashOptions, flash_image_async
from wedge.firmware.flash.session import DeviceSession
from wedge.firmware.image.build import build_image, check_model_path, write_image
from wedge.firmware.image.model_image import ModelImage, check_image, read_image_file
from wedge.mcp.errors import ConfirmationMismatch
from wedge.mcp.policy import Policy
from wedge.mcp.progress import ProgressRelay, progress_relay, run_in_worker
from wedge.mcp.tools.base import CHANGES_DEVICE, READS_DEVICE, WRITES_FILES, wedge_tool
from wedge.mcp.tools.boards import load_board
from wedge.quantize.tflite.arena import measure_arena
from wedge.quantize.tflite.errors import ExportError

T = TypeVar("T")
# The CLI's bounds on the serial options (`wedge flash --help`).
Baud = Annotated[int, Field(ge=1)]
Timeout = Annotated[float, Field(ge=0.05)]

# The phases a flash goes through, in order; progress is the phase's index (plus the upload's fraction).
FLASH_PHASES: Final[tuple[str, ...]] = ("connect", "identify", "upload", "test", "reset", "confirm", "done")


class ImageReport(BaseModel):
    """A signed image: size, version, SHA-256 (the hash `flash` asks for), signer key hash, manifest, checks."""

    image: dict[str, Any]
    check: dict[str, Any]
    files: list[str]


class DeviceInfo(BaseModel):
    """Who answers on the port (board profile, SMP buffer, trusted key, firmware), its model, and its slots."""

    identity: dict[str, Any]
    model: dict[str, Any] | None
    slots: list[dict[str, Any]]


class DeviceImages(BaseModel):
    slots: list[dict[str, Any]]


class FlashResult(BaseModel):
    """What `wedge flash --json` prints: the outcome (confirmed / already running), upload statistics, timing."""

    flash: dict[str, Any]


def _measured_arena_bytes(model: Path) -> int:
    try:
        return measure_arena(model, source=model.name).arena_bytes
    except ExportError as exc:
        raise ImageError(str(exc)) from exc


def pack(model: Path, board_name: str, key: Path, version: str, out: Path, name: str | None,
         labels: tuple[str, ...], arena_bytes: int | None, check_fit: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    board = load_board(board_name)
    check_model_path(model)
    arena = arena_bytes if arena_bytes is not None else _measured_arena_bytes(model)
    result = write_image(build_image(model, board, key, version, arena_bytes=arena, model_name=name, labels=labels or None,
                                     check_fit=check_fit), out)
    return result.to_dict(), check_image(result.image).to_dict()


def read_image(path: Path) -> ModelImage:
    return read_image_file(path)


def check_port(port: str) -> str:
    """A serial device or a pyserial URL; a regular file is not a port (it would be opened for writing)."""
    if "://" in port:
        return port
    path = Path(port)
    try:
        mode = path.stat().st_mode
    except OSError:
        raise DeviceError(f"no serial port {port}") from None
    if not stat.S_ISCHR(mode):
        raise DeviceError(f"{port} is not a serial device")
    return port


async def with_session(port: str, baud: int, timeout_s: float, body: Callable[[DeviceSession], Awaitable[T]]) -> T:
    session = DeviceSession(check_port(port), baud=baud, timeout_s=timeout_s)
    await session.open()
    try:
        return await body(session)
    finally:
        await session.close()


async def device_report(session: DeviceSession) -> DeviceInfo:
    assert session.identity is not None
    report = await session.model_report()
    slots = await session.image_states()
    return DeviceInfo(identity=session.identity.to_dict(), model=None if report is None else report.to_dict(),
                      slots=[slot.to_dict() for slot in slots])


async def slot_report(session: DeviceSession) -> DeviceImages:
    return DeviceImages(slots=[slot.to_dict() for slot in await session.image_states()])


class FlashProgress:
    """The flasher's observer over a relay: one unit per phase, the upload's bytes as its fraction."""

    def __init__(self, relay: ProgressRelay) -> None:
        self._relay = relay
        self._phase = 0

    def phase(self, name: str, detail: str) -> None:
        if name in FLASH_PHASES:
            self._phase = max(self._phase, FLASH_PHASES.index(name))
        self._relay.post(self._phase, len(FLASH_PHASES) - 1, f"{name}: {detail}", first=True)

    def progress(self, sent_bytes: int, total_bytes: int) -> None:
        fraction = sent_bytes / total_bytes if total_bytes else 1.0
        self._relay.post(self._phase + min(fraction, 0.999), len(FLASH_PHASES) - 1,
                         f"upload: {sent_bytes:,} of {total_bytes:,} bytes")


def confirm_hash(image: ModelImage, name: str, confirm_sha256: str) -> None:
    expected = image.image_hash.hex()
    if confirm_sha256.strip().lower() != expected:
        raise ConfirmationMismatch(f"confirm_sha256 does not match {name}: its SHA-256 is {expected} "
                                   "(pack_image and device_images report it)")


def register(server: MCPServer, policy: Policy) -> None:

    @wedge_tool(server, WRITES_FILES)
    async def pack_image(model: str, board: str, key: str, version: str, out: str, name: str | None = None,
                         labels: list[str] | None = None, arena_bytes: int | None = None,
                         check_fit: bool = True) -> ImageReport:
        """Sign a .tflite into an MCUboot image for `board`, as `wedge pack`: SHA-256 and ed25519 TLVs and a CBOR
        manifest (model, board, tensors, labels, arena). Refuses a model the board cannot run unless
        check_fit=false. The arena is measured in TFLite-Micro unless arena_bytes is given. `model`, `key` (the
        private wedge.pem) and `out` are workspace paths. Returns the image's SHA-256, which `flash` asks for.
        Needs --allow-write."""
        target = policy.writable(out, "pack_image", "image file")
        source = policy.readable(model, "model")
        key_path = policy.readable(key, "signing key")
        image, check = await run_in_worker(lambda: pack(source, board, key_path, version, target, name,
                                                         tuple(labels or ()), arena_bytes, check_fit))
        image["path"] = policy.relative(target)
        return ImageReport(image=image, check=check, files=[policy.relative(target)])

    @wedge_tool(server, READS_DEVICE)
    async def device_info(port: str, baud: Baud = 115_200, timeout_s: Timeout = 2.0) -> DeviceInfo:
        """Identify the SMP (mcumgr) board on `port` (a serial path or pyserial URL): board profile, SMP buffer,
        trusted key hash, firmware, the running model and its state, and the image slots. As `wedge device
        info --json`."""
        return await with_session(port, baud, timeout_s, device_report)

    @wedge_tool(server, READS_DEVICE)
    async def device_images(port: str, baud: Baud = 115_200, timeout_s: Timeout = 2.0) -> DeviceImages:
        """The image slots of the board on `port` (SMP image state read): version, SHA-256, and the active /
        confirmed / pending / bootable flags. As `wedge device images --json`."""
        return await with_session(port, baud, timeout_s, slot_report)

    @wedge_tool(server, CHANGES_DEVICE)
    async def flash(ctx: Context, image: str, port: str, confirm_sha256: str, upgrade_only: bool = False,
                    window: Annotated[int, Field(ge=1, le=4)] = 2, baud: Baud = 115_200,
                    timeout_s: Timeout = 2.0) -> FlashResult:
        """Flash a signed image (workspace path) to the board on `port` over SMP, as `wedge flash`: identity and
        budget checks against the running firmware, upload with resume, test boot, reset, and confirm once the
        board runs the new model, or report the rollback. `confirm_sha256` must be the image's SHA-256 (from
        pack_image): the confirmation that this exact image is meant. Sends progress. Needs --allow-flash."""
        policy.require_flash("flash")
        path = policy.readable(image, "image")
        model_image = await run_in_worker(lambda: read_image(path))
        confirm_hash(model_image, path.name, confirm_sha256)
        options = FlashOptions(upgrade_only=upgrade_only, baud=baud, timeout_s=timeout_s, window=window)
        async with progress_relay(ctx) as relay:
            report = await flash_image_async(check_port(port), model_image, path.name, options, FlashProgress(relay))
        return FlashResult(flash=report.to_dict())
