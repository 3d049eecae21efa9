"""SMP messages: the 8-byte header and CBOR bodies, the `smp` package's request models, and Zephyr-style replies.

A server answers with the request's group, command and sequence; errors are `rc` (SMP v1, or an SMP-level
failure) or `err: {group, rc}` (SMP v2, a group's own error), as Zephyr's mcumgr does.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2
from pydantic import ConfigDict
from smp import error as smperror
from smp import header as smpheader
from smp import message
from smp.error import MGMT_ERR
from smp.image_management import (
    IMG_MGMT_ERR,
    ImageEraseRequest,
    ImageStatesReadRequest,
    ImageStatesWriteRequest,
    ImageUploadWriteRequest,
)
from smp.os_management import (
    BootloaderInformationReadRequest,
    EchoWriteRequest,
    MCUMgrParametersReadRequest,
    OSApplicationInfoReadRequest,
    OSManagementErrorV2,
    ResetWriteRequest,
)

from wedge.firmware.protocol.smp_serial import FRAME_OVERHEAD_BYTES

Header = smpheader.Header
GroupId = smpheader.GroupId
OP = smpheader.OP
Version = smpheader.Version
OsCommand = smpheader.CommandId.OSManagement
ImageCommand = smpheader.CommandId.ImageManagement
HEADER_BYTES: Final[int] = smpheader.Header.SIZE

_RESPONSE_OP: Final[dict[OP, OP]] = {OP.READ: OP.READ_RSP, OP.WRITE: OP.WRITE_RSP}


class MalformedMessage(ValueError):
    """Bytes that are not an SMP request: too short, a bad header, or a body that is not a CBOR map."""


@dataclass(frozen=True)
class RawHeader:
    """An SMP header as the bytes say it, whatever its group and command: the `smp` package's Header refuses
    command ids it does not know, but a server must answer those (Zephyr: rc 8, ENOTSUP)."""

    op: OP
    version: Version
    flags: int
    length: int
    group_id: int
    sequence: int
    command_id: int


_HEADER: Final = struct.Struct(">BBHHBB")


def parse_header(message: bytes) -> RawHeader:
    """The header of an SMP message (Zephyr's struct smp_hdr); MalformedMessage if there is none."""
    if len(message) < HEADER_BYTES:
        raise MalformedMessage(f"{len(message)} bytes is shorter than the {HEADER_BYTES}-byte SMP header")
    first, flags, length, group, sequence, command = _HEADER.unpack_from(message)
    try:
        return RawHeader(op=OP(first & 0x07), version=Version((first >> 3) & 0x03), flags=flags, length=length,
                         group_id=group, sequence=sequence, command_id=command)
    except ValueError as exc:
        raise MalformedMessage(f"bad SMP header: {exc}") from exc


def _pack_header(op: OP, version: Version, length: int, group: int, sequence: int, command: int) -> bytes:
    return _HEADER.pack((int(version) << 3) | int(op), 0, length, group, sequence, command)


def parse_body(message: bytes) -> dict[str, Any]:
    """The CBOR map after the header (an empty body is an empty map)."""
    body = message[HEADER_BYTES:]
    if not body:
        return {}
    try:
        value = cbor2.loads(body)
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise MalformedMessage(f"SMP body is not CBOR: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedMessage("SMP body is not a CBOR map")
    return value


def is_response(header: RawHeader) -> bool:
    """True for READ_RSP/WRITE_RSP: a client ignores anything else (such as its own request echoed back)."""
    return header.op in (OP.READ_RSP, OP.WRITE_RSP)


def encode_response(request: RawHeader, body: Mapping[str, Any]) -> bytes:
    """The reply to `request`: same version, group, command and sequence, the response op, a CBOR body."""
    payload = cbor2.dumps(dict(body), canonical=True)
    return _pack_header(_RESPONSE_OP.get(request.op, OP.WRITE_RSP), request.version, len(payload),
                        int(request.group_id), request.sequence, int(request.command_id)) + payload


def encode_request(op: OP, group: int, command: int, body: Mapping[str, Any], sequence: int = 0,
                   version: Version = Version.V2) -> bytes:
    """A request of any group and command (also ones the `smp` package has no model for)."""
    payload = cbor2.dumps(dict(body), canonical=True)
    return _pack_header(op, version, len(payload), group, sequence, command) + payload


def error_response(request: RawHeader, rc: int, *, group_error: bool = True, legacy_rc: int | None = None) -> bytes:
    """An error reply: `err: {group, rc}` for a group's error to an SMP v2 request, else a bare `rc`.

    legacy_rc: what the group's mg_translate_error gives a v1 request for this group error (default: rc itself).
    """
    if group_error and request.version == Version.V2:
        return encode_response(request, {"err": {"group": int(request.group_id), "rc": int(rc)}})
    return encode_response(request, {"rc": int(rc if legacy_rc is None or not group_error else legacy_rc)})


def max_message_bytes(buf_size: int) -> int:
    """The largest SMP message a server with a `buf_size` reassembly buffer accepts (length and CRC share it)."""
    return buf_size - FRAME_OVERHEAD_BYTES


__all__ = [
    "HEADER_BYTES",
    "IMG_MGMT_ERR",
    "MGMT_ERR",
    "OP",
    "EchoWriteRequest",
    "GroupId",
    "Header",
    "ImageCommand",
    "ImageEraseRequest",
    "ImageStatesReadRequest",
    "ImageStatesWriteRequest",
    "ImageUploadWriteRequest",
    "MCUMgrParametersReadRequest",
    "MalformedMessage",
    "OSApplicationInfoReadRequest",
    "OsCommand",
    "ResetWriteRequest",
    "Version",
    "RawHeader",
    "encode_request",
    "encode_response",
    "error_response",
    "is_response",
    "max_message_bytes",
    "parse_body",
    "parse_header",
]


class BootloaderModeReadResponse(message.ReadResponse):
    """Zephyr's answer to the bootloader-info query "mode" (os_mgmt_bootloader_info): `mode` alone, and
    `no-downgrade` when MCUboot refuses downgrades. The `smp` package's response model requires `bootloader`,
    which Zephyr sends only when there is no query, so this one is defined here."""

    model_config = ConfigDict(extra="allow", frozen=True)
    _GROUP_ID = smpheader.GroupId.OS_MANAGEMENT
    _COMMAND_ID = smpheader.CommandId.OSManagement.BOOTLOADER_INFO

    mode: int


class BootloaderModeRead(BootloaderInformationReadRequest):
    """`query: "mode"`, paired with its replies as smpclient's `SMPClient.request` expects."""

    _Response = BootloaderModeReadResponse
    _ErrorV1 = smperror.ErrorV1
    _ErrorV2 = OSManagementErrorV2
