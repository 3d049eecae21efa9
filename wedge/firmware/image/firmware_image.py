"""Application firmware images (MCUboot image 0): a signed image whose payload describes the runtime it carries.

The descriptor names what a model can rely on: firmware and TFLite-Micro versions, the op resolver's registered
ops, the arena, the sensors and the stream protocol; the host compares a model's manifest against it before
sending a byte. The virtual board boots such an image as its application.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import cbor2
from imgtool import version as imgtool_version

from wedge.boards import Board
from wedge.firmware.errors import ImageError
from wedge.firmware.image.format import TLV_WEDGE_FIRMWARE, ImageParts, ImageVersion
from wedge.firmware.image.keys import load_signing_key, raw_public_key
from wedge.firmware.image.manifest import checked_field, checked_strings
from wedge.firmware.image.model_image import SignedImage, require_trusted
from wedge.runtime.artifacts.tflite_flatbuffer import BUILTIN_OP_NAMES
from wedge.runtime.artifacts.tflm_ops import TFLM_BUILTIN_OPS

DESCRIPTOR_FORMAT: Final[int] = 1
APPLICATION_IMAGE: Final[int] = 0
FIRMWARE_NAME: Final[str] = "wedge-tflm-app"
# The wedge stream records the application sends (firmware/protocol ble_records RECORD_VERSION).
STREAM_PROTOCOL_VERSION: Final[int] = 1


_OP_CODES: Final[dict[str, int]] = {name: code for code, name in BUILTIN_OP_NAMES.items()}


def ops_bitmap(ops: Sequence[str]) -> bytes:
    """The registered ops as a bitmap over TFLite BuiltinOperator codes: what fits a 384-byte SMP reply (a list
    of a hundred op names does not)."""
    codes = [_OP_CODES[op] for op in ops if op in _OP_CODES]
    bitmap = bytearray((max(codes, default=0) // 8) + 1)
    for code in codes:
        bitmap[code // 8] |= 1 << (code % 8)
    return bytes(bitmap)


def ops_from_bitmap(bitmap: bytes) -> tuple[str, ...]:
    return tuple(sorted(BUILTIN_OP_NAMES.get(8 * i + bit, f"BUILTIN_{8 * i + bit}")
                        for i, byte in enumerate(bitmap) for bit in range(8) if byte & (1 << bit)))


def tflm_version() -> str:
    """The TFLite-Micro build the virtual board runs (the tflite-micro package's version)."""
    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class FirmwareDescriptor:
    """What an application firmware offers a model."""

    name: str
    version: str
    board: str
    tflm_version: str
    ops: tuple[str, ...]
    arena_bytes: int
    sensors: tuple[str, ...]
    stream_protocol: int
    model_image: int
    signer_key: bytes

    @staticmethod
    def for_board(board: Board, version: str, signer_key: bytes, *, ops: Sequence[str] | None = None,
                  arena_bytes: int | None = None) -> FirmwareDescriptor:
        """The descriptor of wedge's application for `board`: every TFLM kernel, the board's arena budget."""
        chosen = tuple(sorted(ops if ops is not None else TFLM_BUILTIN_OPS))
        unknown = sorted(set(chosen) - TFLM_BUILTIN_OPS)
        if unknown:
            raise ImageError(f"TFLite-Micro has no kernel for {', '.join(unknown)}: the firmware cannot register it")
        arena = board.budgets.arena_bytes if arena_bytes is None else arena_bytes
        if arena <= 0:
            raise ImageError(f"the arena size must be positive, got {arena}")
        return FirmwareDescriptor(
            name=FIRMWARE_NAME, version=version, board=board.name, tflm_version=tflm_version(), ops=chosen,
            arena_bytes=arena, sensors=tuple(f"{s.name}:{s.kind}@{s.rate_hz:g}Hz/{s.window_s:g}s" for s in board.sensors),
            stream_protocol=STREAM_PROTOCOL_VERSION, model_image=board.flashing.model_image, signer_key=signer_key,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DESCRIPTOR_FORMAT, "name": self.name, "version": self.version, "board": self.board,
            "tflm_version": self.tflm_version, "ops": list(self.ops), "arena_bytes": self.arena_bytes,
            "sensors": list(self.sensors), "stream_protocol": self.stream_protocol, "model_image": self.model_image,
            "signer_key": self.signer_key.hex(),
        }

    def to_cbor(self) -> bytes:
        data = self.to_dict()
        data["signer_key"] = self.signer_key
        return cbor2.dumps(data, canonical=True)

    def to_report(self) -> dict[str, Any]:
        """The descriptor as the application reports it over SMP (wedge group): ops as a bitmap, no key."""
        data = {key: value for key, value in self.to_dict().items() if key not in ("ops", "signer_key", "sensors")}
        data["ops_bitmap"] = ops_bitmap(self.ops)
        return data

    @staticmethod
    def from_cbor(data: bytes) -> FirmwareDescriptor:
        try:
            raw = cbor2.loads(data)
        except (cbor2.CBORDecodeError, ValueError) as exc:
            raise ImageError(f"the firmware descriptor is not valid CBOR: {exc}") from exc
        return FirmwareDescriptor.from_mapping(raw)

    @staticmethod
    def from_mapping(raw: object) -> FirmwareDescriptor:
        """Validate a decoded descriptor (from an image, or as a device reports it); ImageError names the field."""
        if not isinstance(raw, Mapping):
            raise ImageError("the firmware descriptor is not a map")
        if raw.get("format") != DESCRIPTOR_FORMAT:
            raise ImageError(f"unknown firmware descriptor format {raw.get('format')!r}")

        def field(key: str, kind: type) -> Any:
            return checked_field(raw, key, kind, "firmware descriptor")

        def strings(key: str) -> tuple[str, ...]:
            return tuple(checked_strings(raw, key, "firmware descriptor"))

        signer = raw.get("signer_key", b"")
        ops = ops_from_bitmap(field("ops_bitmap", bytes)) if "ops_bitmap" in raw else strings("ops")
        return FirmwareDescriptor(
            name=field("name", str), version=field("version", str), board=field("board", str),
            tflm_version=field("tflm_version", str), ops=ops, arena_bytes=field("arena_bytes", int),
            sensors=strings("sensors") if "sensors" in raw else (), stream_protocol=field("stream_protocol", int),
            model_image=field("model_image", int),
            signer_key=bytes.fromhex(signer) if isinstance(signer, str) else bytes(signer or b""),
        )


@dataclass(frozen=True)
class FirmwareImage(SignedImage):
    """An application image (image 0) and its descriptor."""

    descriptor: FirmwareDescriptor

    @property
    def signer_key(self) -> bytes:
        return self.descriptor.signer_key

    @property
    def image_number(self) -> int:
        return APPLICATION_IMAGE

    @property
    def label(self) -> str:
        return f"{self.descriptor.name} {self.descriptor.version}"


def firmware_from_parts(data: bytes, parts: ImageParts) -> FirmwareImage | None:
    """The firmware image these parts are, or None when they carry no firmware descriptor."""
    raw = parts.protected_tlvs.get(TLV_WEDGE_FIRMWARE)
    if raw is None:
        return None
    return FirmwareImage(data=bytes(data[: parts.total_bytes]), parts=parts, descriptor=FirmwareDescriptor.from_cbor(raw))


def build_firmware_image(board: Board, key_path: str | Path, version: str, *, ops: Sequence[str] | None = None,
                         arena_bytes: int | None = None) -> FirmwareImage:
    """Sign wedge's application firmware for `board` (the virtual board's image 0); its payload is the descriptor."""
    from wedge.firmware.image.build import sign_payload
    from wedge.firmware.image.model_image import read_signed_image

    key = load_signing_key(key_path)
    ImageVersion.parse(version)
    descriptor = FirmwareDescriptor.for_board(board, version, raw_public_key(key.key.public_key()), ops=ops,
                                              arena_bytes=arena_bytes)
    payload = descriptor.to_cbor()
    with tempfile.TemporaryDirectory(prefix="wedge-firmware-") as work:
        body = Path(work) / "app.bin"
        body.write_bytes(payload)
        data = sign_payload(body, imgtool_version.decode_version(version), key, {TLV_WEDGE_FIRMWARE: payload})
    image = read_signed_image(data, "firmware image")
    assert isinstance(image, FirmwareImage)
    require_trusted(image, "the firmware image", key.key.public_key())
    return image
