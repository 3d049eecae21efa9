"""A connection to one SMP device: identify it, make requests with retries, reconnect, and wait for it to boot.

Every failure becomes a one-line DeviceError or FlashError: a missing or busy port, a device that does not
speak SMP, one that stops answering, or an SMP error reply (named as Zephyr's error codes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pydantic import ValidationError
from smp import error as smperror
from smp.error import MGMT_ERR
from smp.image_management import IMG_MGMT_ERR
from smpclient import SMPClient
from smpclient.exceptions import SMPBadSequence, SMPValidationException
from smpclient.generics import SMPRequest, error, success
from smpclient.requests.image_management import ImageStatesRead
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, OSApplicationInfoRead, ResetWrite
from smpclient.transport import SMPTransportDisconnected

from wedge.firmware.errors import DeviceError, FlashError
from wedge.firmware.flash.transport import SerialPortTransport
from wedge.firmware.protocol.console import BOOT_BANNER_PREFIX
from wedge.firmware.protocol.smp_messages import GroupId
from wedge.firmware.protocol.wedge_group import BoardInfoRead, ModelStatus, ModelStatusRead

TResponse = TypeVar("TResponse")

# While a board boots it hears nothing: probe with an echo this often unless its boot banner comes first.
BOOT_PROBE_S: Final[float] = 1.0
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
}


class LinkLost(Exception):
    """The port went away or the device stopped answering mid-conversation (the caller may reconnect)."""


@dataclass(frozen=True)
class DeviceIdentity:
    """Who answered on the port: board profile name, SMP buffer, and (wedge firmware) budgets and trusted key."""

    port: str
    board: str
    buf_size: int
    buf_count: int
    key_hash: bytes | None
    model_slot_bytes: int | None
    arena_bytes: int | None
    firmware: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "board": self.board,
            "buf_size": self.buf_size,
            "buf_count": self.buf_count,
            "key_hash": None if self.key_hash is None else self.key_hash.hex(),
            "model_slot_bytes": self.model_slot_bytes,
            "arena_bytes": self.arena_bytes,
            "firmware": self.firmware,
        }


@dataclass(frozen=True)
class SlotState:
    """One image slot as the device reports it."""

    slot: int
    version: str
    hash: bytes
    bootable: bool
    pending: bool
    confirmed: bool
    active: bool
    permanent: bool

    def to_dict(self) -> dict[str, Any]:
        return {
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


class DeviceSession:
    """One SMP device on one port."""

    def __init__(self, port: str, *, baud: int = 115_200, timeout_s: float = 2.0, attempts: int = 3) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.attempts = attempts
        self._baud = baud
        self.transport = SerialPortTransport(baud=baud)
        self.client = SMPClient(self.transport, port, timeout_s=timeout_s)
        self.identity: DeviceIdentity | None = None

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
        """Close, wait for the port to be back, open and identify again (a booting board answers late)."""
        await self.close()
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while (left := deadline - time.monotonic()) > 0:
            await self.transport.connect(self.port, left)
            try:
                self.identity = await self._identify()
                return self.identity
            except LinkLost as exc:
                last = exc
                await self.close()
        raise DeviceError(f"the device on {self.port} did not answer within {timeout_s:.0f} s: {last}")

    async def _identify(self) -> DeviceIdentity:
        params = await self.request(MCUMgrParametersRead(), attempts=2)
        self.transport.initialize(params.buf_size)
        info = await self.request(OSApplicationInfoRead(format="i"))
        board_info = await self.request(BoardInfoRead(), allow_unsupported=True)
        return DeviceIdentity(
            port=self.port,
            board=info.output.strip(),
            buf_size=params.buf_size,
            buf_count=params.buf_count,
            key_hash=getattr(board_info, "key_hash", None),
            model_slot_bytes=getattr(board_info, "model_slot_bytes", None),
            arena_bytes=getattr(board_info, "arena_bytes", None),
            firmware=getattr(board_info, "firmware", None),
        )

    # -- requests ----------------------------------------------------------------------------------------

    async def request(
        self,
        request: SMPRequest[Any, Any, Any],
        *,
        timeout_s: float | None = None,
        attempts: int | None = None,
        allow_unsupported: bool = False,
    ) -> Any:
        """The success reply to `request`, re-sent on timeouts; LinkLost if the device is gone or silent.

        An error reply raises FlashError, except ENOTSUP when `allow_unsupported` (then None is returned).
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
                raise DeviceError(f"the device on {self.port} sent a reply smpclient cannot read: {exc.msg.strip()}") from None
            if success(response):
                return response
            if error(response):
                if allow_unsupported and _unsupported(response):
                    return None
                raise FlashError(f"the device refused {type(request).__name__}: {describe_error(response)}")
        raise LinkLost(f"the device on {self.port} stopped answering")

    async def echo(self, text: str = "wedge", timeout_s: float | None = None) -> None:
        await self.request(EchoWrite(d=text), timeout_s=timeout_s, attempts=1)

    async def image_states(self) -> tuple[SlotState, ...]:
        response = await self.request(ImageStatesRead())
        return tuple(
            SlotState(
                slot=state.slot, version=state.version, hash=bytes(state.hash or b""),
                bootable=bool(state.bootable), pending=bool(state.pending), confirmed=bool(state.confirmed),
                active=bool(state.active), permanent=bool(state.permanent),
            )
            for state in response.images
        )

    async def model_report(self) -> ModelStatus | None:
        """The runtime's report, or None from a device without wedge's SMP group."""
        response = await self.request(ModelStatusRead(), allow_unsupported=True)
        return None if response is None else ModelStatus.from_response(response)

    async def reset(self, boot_timeout_s: float) -> None:
        """Reset the board and wait until it answers again."""
        self.transport.clear_console()
        try:
            await self.request(ResetWrite(), attempts=1)
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
        except ValidationError:
            continue
    raise DeviceError(f"the device sent a reply to {type(request).__name__} that is none of its reply types")


def _unsupported(response: Any) -> bool:
    if isinstance(response, smperror.ErrorV2):
        return False
    return int(response.rc) == MGMT_ERR.ENOTSUP
