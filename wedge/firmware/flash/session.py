"""A connection to one SMP device: identify it, make requests with retries, reconnect, and wait for it to boot.

Identity works on stock Zephyr: MCUmgr params, OS info and bootloader info are optional Kconfig features (an
ENOTSUP answer falls back to the board profile's SMP buffer and to `--board`), the board is recognised by the
Zephyr board targets its profile lists, and wedge's own group is used when present at its configured id.
Every failure becomes a one-line DeviceError or FlashError: a missing or busy port, a device that does not speak
SMP, one that stops answering or dies, a reply that does not validate, or an SMP error reply (named as
Zephyr's error codes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from pydantic import ValidationError
from smp import error as smperror
from smp.error import MGMT_ERR
from smp.image_management import IMG_MGMT_ERR
from smpclient import SMPClient
from smpclient.exceptions import SMPBadSequence, SMPValidationException
from smpclient.generics import SMPRequest, error, success
from smpclient.requests.image_management import ImageStatesRead
from smpclient.requests.os_management import (
    BootloaderInformationRead,
    EchoWrite,
    MCUMgrParametersRead,
    OSApplicationInfoRead,
    ResetWrite,
)
from smpclient.transport import SMPTransportDisconnected

from wedge.boards import Board, BoardError, list_boards
from wedge.boards import load as load_board
from wedge.errors import first_line
from wedge.firmware.errors import DeviceError, FlashError, ImageError
from wedge.firmware.flash.transport import SerialPortTransport
from wedge.firmware.image.firmware_image import FirmwareDescriptor
from wedge.firmware.protocol.console import BOOT_BANNER_PREFIX
from wedge.firmware.protocol.smp_messages import BootloaderModeRead, GroupId
from wedge.firmware.protocol.wedge_group import WEDGE_GROUP_ID, ModelStatus, wedge_requests

TResponse = TypeVar("TResponse")

# While a board boots it hears nothing: probe with an echo this often unless its boot banner comes first.
BOOT_PROBE_S: Final[float] = 1.0
# A board's port that vanished (USB CDC re-enumerating at reset, a pulled cable) is back within this long, or
# the board is taken to have died (lost power, crashed in its bootloader or its self-test).
PORT_RETURN_S: Final[float] = 10.0
# The SMP buffer Zephyr builds with by default (CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE), when nothing else says.
ZEPHYR_DEFAULT_BUF_SIZE: Final[int] = 384
ZEPHYR_DEFAULT_BUF_COUNT: Final[int] = 4
_ECHO_PROBE_TIMEOUT_S: Final[float] = 0.5

_IMAGE_ERRORS: Final[dict[int, str]] = {
    IMG_MGMT_ERR.CURRENT_VERSION_IS_NEWER: "the board already runs this version or a newer one (--upgrade-only)",
    IMG_MGMT_ERR.INVALID_IMAGE_TOO_LARGE: "the image is larger than the board's model slot",
    IMG_MGMT_ERR.NO_FREE_SLOT: (
        "slot 1 holds the model the board would roll back to: an unconfirmed test image is running "
        "(reset the board to roll it back, or flash that image again to confirm it)"
    ),
    IMG_MGMT_ERR.HASH_NOT_FOUND: "no image with that hash is on the board",
    IMG_MGMT_ERR.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED: "that image is already the running one",
    IMG_MGMT_ERR.INVALID_IMAGE_HEADER_MAGIC: "the data is not an MCUboot image",
    IMG_MGMT_ERR.INVALID_IMAGE_DATA_OVERRUN: "more data was sent than the image length",
    IMG_MGMT_ERR.IMAGE_ALREADY_PENDING: "another image of that slot pair is already pending a test or confirmed",
    IMG_MGMT_ERR.IMAGE_CONFIRMATION_DENIED: (
        "the device does not let a host confirm an image that is not its running application "
        "(CONFIG_MCUMGR_GRP_IMG_ALLOW_CONFIRM_NON_ACTIVE_IMAGE_ANY is off)"
    ),
    IMG_MGMT_ERR.INVALID_SLOT: "the device has no such image or slot",
}


class LinkLost(Exception):
    """The port went away or the device stopped answering mid-conversation (the caller may reconnect)."""


@dataclass(frozen=True)
class DeviceIdentity:
    """Who answered on the port: board profile, what it said of itself (each optional), and what wedge's group
    adds (budgets, trusted key, the application's firmware descriptor)."""

    port: str
    board: str
    buf_size: int
    buf_count: int
    key_hash: bytes | None
    model_slot_bytes: int | None
    arena_bytes: int | None
    firmware: str | None
    zephyr_board: str | None = None       # `info i` (None: no OS info on the device)
    bootloader: str | None = None         # bootloader info (None: the command is off)
    bootloader_mode: int | None = None
    params_reported: bool = True          # False: ENOTSUP, buffer from the profile
    wedge_group: bool = False
    descriptor: FirmwareDescriptor | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "board": self.board,
            "buf_size": self.buf_size,
            "buf_count": self.buf_count,
            "buf_reported": self.params_reported,
            "key_hash": None if self.key_hash is None else self.key_hash.hex(),
            "model_slot_bytes": self.model_slot_bytes,
            "arena_bytes": self.arena_bytes,
            "firmware": self.firmware,
            "zephyr_board": self.zephyr_board,
            "bootloader": self.bootloader,
            "bootloader_mode": self.bootloader_mode,
            "wedge_group": self.wedge_group,
            "descriptor": None if self.descriptor is None else self.descriptor.to_dict(),
        }


def board_for_target(target: str, boards: list[Board] | None = None) -> Board | None:
    """The profile whose `zephyr_boards` lists `target` (an `info i` answer: CONFIG_BOARD[@rev], or a full
    board target), or whose name it is."""
    text = target.strip()
    bare = text.split("@")[0]
    for board in boards if boards is not None else list_boards():
        names = {board.name, *board.zephyr_boards, *(t.split("/")[0] for t in board.zephyr_boards)}
        if text in names or bare in names:
            return board
    return None


@dataclass(frozen=True)
class SlotState:
    """One image slot as the device reports it (`image` 0 when a single-image device leaves it out)."""

    slot: int
    version: str
    hash: bytes
    bootable: bool
    pending: bool
    confirmed: bool
    active: bool
    permanent: bool
    image: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "slot": self.slot,
            "version": self.version,
            "hash": self.hash.hex(),
            "bootable": self.bootable,
            "pending": self.pending,
            "confirmed": self.confirmed,
            "active": self.active,
            "permanent": self.permanent,
        }


def describe_error(response: Any) -> str:
    """A Zephyr error reply in words."""
    if isinstance(response, smperror.ErrorV2):
        group, rc = int(response.err.group), int(response.err.rc)
        if group == GroupId.IMAGE_MANAGEMENT and rc in _IMAGE_ERRORS:
            return _IMAGE_ERRORS[rc]
        name = getattr(response.err.rc, "name", str(rc))
        return f"{name.lower().replace('_', ' ')} (group {group}, rc {rc})"
    rc = int(response.rc)
    name = MGMT_ERR(rc).name if rc in MGMT_ERR._value2member_map_ else str(rc)
    return f"{name} (rc {rc})" + (f": {response.rsn}" if getattr(response, "rsn", None) else "")


class SessionTransport(Protocol):
    """What the session needs of a transport beyond smpclient's SMPTransport: pipelining, a console to watch
    for the boot banner, and whether the link is up. The serial transport and the BLE one provide it."""

    mtu: int
    max_unencoded_size: int

    async def connect(self, address: str, timeout_s: float) -> None: ...
    async def disconnect(self) -> None: ...
    async def send(self, data: bytes) -> None: ...
    async def receive(self) -> bytes: ...
    async def send_pipelined(self, data: bytes) -> None: ...
    async def receive_any(self) -> bytes: ...
    def initialize(self, smp_server_transport_buffer_size: int) -> None: ...
    @property
    def connected(self) -> bool: ...
    def clear_console(self) -> None: ...
    def console_text(self) -> bytes: ...
    async def wait_console(self, marker: bytes, timeout_s: float) -> bool: ...
    async def address_present(self, timeout_s: float) -> bool: ...


@dataclass(frozen=True)
class Identify:
    """How to identify a device: `board` when it does not say (no OS info), the wedge group's id."""

    board: str | None = None
    wedge_group_id: int = WEDGE_GROUP_ID


class DeviceSession:
    """One SMP device on one address (a serial port, or a BLE name with a BLE transport)."""

    def __init__(self, port: str, *, baud: int = 115_200, timeout_s: float = 2.0, attempts: int = 3,
                 transport: SessionTransport | None = None, identify: Identify = Identify()) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.attempts = attempts
        self._baud = baud
        self.transport: SessionTransport = transport or SerialPortTransport(baud=baud)
        self.client = SMPClient(self.transport, port, timeout_s=timeout_s)  # type: ignore[arg-type]
        self.identity: DeviceIdentity | None = None
        self._identify_with = identify
        self.wedge = wedge_requests(identify.wedge_group_id)

    # -- connection --------------------------------------------------------------------------------------

    async def open(self, wait_s: float = 0.0) -> DeviceIdentity:
        """Open the port and identify the device; DeviceError if it is missing, busy or not an SMP device."""
        await self.transport.connect(self.port, wait_s)
        try:
            self.identity = await self._identify()
        except LinkLost as exc:
            seen = self.transport.console_text()
            await self.close()
            hint = f" (it printed {len(seen)} bytes of other output)" if seen else ""
            raise DeviceError(f"no SMP (mcumgr) device answers on {self.port}{hint}: {exc}") from None
        except BaseException:
            await self.close()
            raise
        return self.identity

    async def close(self) -> None:
        await self.transport.disconnect()

    async def reconnect(self, timeout_s: float) -> DeviceIdentity:
        """Close, wait for the port to be back, open and identify again (a booting board answers late).

        A port that stays away PORT_RETURN_S is a board that died: said so, not waited for in full."""
        await self.close()
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while (left := deadline - time.monotonic()) > 0:
            if not await self.transport.address_present(min(left, PORT_RETURN_S)):
                if deadline - time.monotonic() <= 0:
                    break
                raise DeviceError(f"the board on {self.port} died: its port went away and did not come back "
                                  f"within {min(timeout_s, PORT_RETURN_S):.0f} s (power lost, or it crashed)")
            await self.transport.connect(self.port, max(0.1, deadline - time.monotonic()))
            try:
                self.identity = await self._identify()
                return self.identity
            except LinkLost as exc:
                last = exc
                await self.close()
        raise DeviceError(f"the device on {self.port} did not answer within {timeout_s:.0f} s: {last}")

    async def _identify(self) -> DeviceIdentity:
        given = self._identify_with.board
        # An echo first: it is in every mcumgr build, so a silent port is told apart from a partial feature set.
        await self.request(EchoWrite(d="wedge"), attempts=2, allow_unsupported=True)
        params = await self.request(MCUMgrParametersRead(), allow_unsupported=True)
        info = await self.request(OSApplicationInfoRead(format="i"), allow_unsupported=True)
        target = None if info is None else _text(info.output, "os info output", self.port).strip()
        board = _identify_board(self.port, target, given)
        if params is not None:
            buf_size = _positive(params.buf_size, "buf_size", self.port)
            buf_count = _positive(params.buf_count, "buf_count", self.port)
        else:
            buf_size = board.flashing.mcumgr_buf_size or ZEPHYR_DEFAULT_BUF_SIZE
            buf_count = ZEPHYR_DEFAULT_BUF_COUNT
        self.transport.initialize(buf_size)
        loader = await self.request(BootloaderInformationRead(), allow_unsupported=True)
        mode = None
        if loader is not None:
            mode_reply = await self.request(BootloaderModeRead(query="mode"), allow_unsupported=True,
                                            allow_group_error=True)
            mode = getattr(mode_reply, "mode", None) if mode_reply is not None else None
        board_info = await self.request(self.wedge.board_info(), allow_unsupported=True)
        descriptor = None
        if board_info is not None and board_info.descriptor is not None:
            try:
                descriptor = FirmwareDescriptor.from_mapping({**board_info.descriptor, "signer_key": b""})
            except ImageError as exc:
                raise DeviceError(f"the device on {self.port} describes its firmware wrongly: {exc}") from None
        if board_info is not None and board_info.board != board.name:
            raise DeviceError(f"the device on {self.port} says it is {board_info.board}, not {board.name}")
        return DeviceIdentity(
            port=self.port,
            board=board.name,
            buf_size=buf_size,
            buf_count=buf_count,
            key_hash=None if board_info is None else board_info.key_hash,
            model_slot_bytes=None if board_info is None else board_info.model_slot_bytes,
            arena_bytes=None if board_info is None else board_info.arena_bytes,
            firmware=None if board_info is None else board_info.firmware,
            zephyr_board=target,
            bootloader=None if loader is None else _text(loader.bootloader, "bootloader", self.port),
            bootloader_mode=mode if isinstance(mode, int) else None,
            params_reported=params is not None,
            wedge_group=board_info is not None,
            descriptor=descriptor,
        )

    # -- requests ----------------------------------------------------------------------------------------

    async def request(
        self,
        request: SMPRequest[Any, Any, Any],
        *,
        timeout_s: float | None = None,
        attempts: int | None = None,
        allow_unsupported: bool = False,
        allow_group_error: bool = False,
    ) -> Any:
        """The success reply to `request`, re-sent on timeouts; LinkLost if the device is gone or silent.

        An error reply raises FlashError, except ENOTSUP when `allow_unsupported` (then None is returned), and a
        group's own error when `allow_group_error` (also None). A reply whose body is not a map, or whose fields
        have the wrong types, is a one-line DeviceError: nothing of it is used.
        """
        tries = attempts or self.attempts
        for attempt in range(tries):
            try:
                response = await self.client.request(request, timeout_s=timeout_s or self.timeout_s)
            except (TimeoutError, SMPBadSequence):
                if attempt + 1 == tries:
                    raise LinkLost(f"the device on {self.port} stopped answering") from None
                continue
            except SMPTransportDisconnected as exc:
                raise LinkLost(str(exc)) from None
            except SMPValidationException as exc:
                raise DeviceError(f"the device on {self.port} sent a reply to {type(request).__name__} that does "
                                  f"not validate: {first_line(exc.msg)}") from None
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                # smp's loads() expands the CBOR body as keyword arguments: a body that is not a map fails here.
                raise DeviceError(f"the device on {self.port} sent a malformed reply to {type(request).__name__}: "
                                  f"{first_line(exc)}") from None
            if success(response):
                return response
            if error(response):
                if allow_unsupported and _unsupported(response):
                    return None
                if allow_group_error and isinstance(response, smperror.ErrorV2):
                    return None
                raise FlashError(f"the device refused {type(request).__name__}: {describe_error(response)}")
        raise LinkLost(f"the device on {self.port} stopped answering")

    async def echo(self, text: str = "wedge", timeout_s: float | None = None) -> None:
        """An echo; ENOTSUP (CONFIG_MCUMGR_GRP_OS_ECHO off) still shows an SMP server answering."""
        await self.request(EchoWrite(d=text), timeout_s=timeout_s, attempts=1, allow_unsupported=True)

    async def image_states(self) -> tuple[SlotState, ...]:
        response = await self.request(ImageStatesRead())
        states = []
        for state in response.images:
            if not isinstance(state.slot, int) or not isinstance(state.version, str) or not (
                    state.hash is None or isinstance(state.hash, (bytes, bytearray))):
                raise DeviceError(f"the device on {self.port} sent an image state with wrongly typed fields")
            states.append(SlotState(
                slot=state.slot, version=state.version, hash=bytes(state.hash or b""),
                bootable=bool(state.bootable), pending=bool(state.pending), confirmed=bool(state.confirmed),
                active=bool(state.active), permanent=bool(state.permanent),
                image=int(state.image) if isinstance(getattr(state, "image", None), int) else 0,
            ))
        return tuple(states)

    async def model_report(self) -> ModelStatus | None:
        """The runtime's report, or None from a device without wedge's SMP group."""
        if self.identity is not None and not self.identity.wedge_group:
            return None
        response = await self.request(self.wedge.model_status(), allow_unsupported=True)
        if response is None:
            return None
        try:
            return ModelStatus.from_response(response)
        except ValueError as exc:
            raise DeviceError(f"the device on {self.port} sent a malformed model status: {first_line(exc)}") from None

    async def reset(self, boot_timeout_s: float) -> None:
        """Reset the board and wait until it answers again."""
        self.transport.clear_console()
        try:
            await self.request(ResetWrite(), attempts=1)
        except FlashError as exc:
            raise FlashError(f"the device on {self.port} cannot be reset over SMP, so it cannot boot a new image "
                             f"({exc})") from None
        except LinkLost:
            pass  # the reply can be lost in the reset itself; the boot wait tells whether it happened
        await self.wait_for_boot(boot_timeout_s)

    async def wait_for_boot(self, timeout_s: float) -> None:
        """Wait for the board's boot banner (an event) or an answered echo, reopening the port if it vanished."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.transport.connected:
                await self.reconnect(max(0.1, deadline - time.monotonic()))
                return
            await self.transport.wait_console(BOOT_BANNER_PREFIX, min(BOOT_PROBE_S, max(0.0, deadline - time.monotonic())))
            try:
                await self.echo(timeout_s=_ECHO_PROBE_TIMEOUT_S)
                return
            except LinkLost:
                continue
        raise DeviceError(f"the board on {self.port} did not come back within {timeout_s:.0f} s of its reset")


def parse_reply(request: SMPRequest[Any, Any, Any], frame: bytes) -> Any:
    """Read a reply frame as the request's success type, else its error types (as SMPClient.request does)."""
    for kind in (request._Response, request._ErrorV1, request._ErrorV2):
        try:
            return kind.loads(frame)
        except (ValidationError, TypeError, ValueError, KeyError):
            continue
    raise DeviceError(f"the device sent a reply to {type(request).__name__} that is none of its reply types")


def _identify_board(port: str, target: str | None, given: str | None) -> Board:
    if given is not None:
        try:
            board = load_board(given)
        except BoardError as exc:
            raise DeviceError(str(exc)) from None
        if target is not None and board_for_target(target, [board]) is None:
            raise DeviceError(f"the device on {port} says it is a {target}, which {board.name} does not list "
                              f"(zephyr_boards: {', '.join(board.zephyr_boards) or 'none'})")
        return board
    if target is None:
        raise DeviceError(f"the device on {port} does not say what board it is (no OS info: "
                          "CONFIG_MCUMGR_GRP_OS_INFO is off): pass --board NAME")
    board = board_for_target(target)
    if board is None:
        raise DeviceError(f"the device on {port} is a {target!r}, which no board profile lists in zephyr_boards: "
                          "pass --board NAME, or add the target to a profile")
    return board


def _text(value: object, what: str, port: str) -> str:
    if not isinstance(value, str):
        raise DeviceError(f"the device on {port} sent a {what} that is not text")
    return value


def _positive(value: object, what: str, port: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise DeviceError(f"the device on {port} reported {what} = {value!r}, not a positive integer")
    return value


def _unsupported(response: Any) -> bool:
    if isinstance(response, smperror.ErrorV2):
        return False
    return int(response.rc) == MGMT_ERR.ENOTSUP
