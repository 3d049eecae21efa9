"""The MCUboot image layout: 32-byte header, body, protected TLVs, TLVs; parsed with smpclient's MCUboot reader.

Constants name the TLVs wedge writes: SHA-256 of header + body + protected TLVs, the signer's key hash, the
ed25519 signature, and wedge's CBOR manifest (a vendor TLV in the protected area, so the signature covers it).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Final

from imgtool import image as imgtool_image
from pydantic import ValidationError
from smpclient import mcuboot

from wedge.firmware.errors import ImageError

IMAGE_MAGIC: Final[int] = imgtool_image.IMAGE_MAGIC
# 32 bytes, not Zephyr's 0x200: a model has no vector table to align, and 32 keeps the body 16-byte aligned
# as flatbuffers (and TFLM) want it.
IMAGE_HEADER_BYTES: Final[int] = imgtool_image.IMAGE_HEADER_SIZE
TLV_KEYHASH: Final[int] = imgtool_image.TLV_VALUES["KEYHASH"]
TLV_SHA256: Final[int] = imgtool_image.TLV_VALUES["SHA256"]
TLV_ED25519: Final[int] = imgtool_image.TLV_VALUES["ED25519"]
# Protected: image id + minimum version of another image (MCUboot's IMAGE_TLV_DEPENDENCY, imgtool --dependencies).
TLV_DEPENDENCY: Final[int] = imgtool_image.TLV_VALUES["DEPENDENCY"]
# Vendor TLV types (MCUboot reserves 0xXXA0-0xXXFE for vendors): the CBOR model manifest, and the CBOR
# descriptor of an application firmware (which is also its payload).
TLV_WEDGE_MANIFEST: Final[int] = 0x00A5
TLV_WEDGE_FIRMWARE: Final[int] = 0x00A6
_TLV_INFO_BYTES: Final[int] = mcuboot.IMAGE_TLV_INFO_STRUCT.size


@dataclass(frozen=True)
class ImageVersion:
    """MCUboot's version: major.minor.revision+build, compared in that order."""

    major: int
    minor: int
    revision: int
    build: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.major, self.minor, self.revision, self.build)

    @staticmethod
    def parse(text: str) -> ImageVersion:
        """MAJOR.MINOR.REVISION[+BUILD], as imgtool takes a version; ImageError otherwise."""
        match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:\+(\d+))?", text.strip())
        if match is None:
            raise ImageError(f"version {text!r} is not MAJOR.MINOR.REVISION[+BUILD] (for example 1.2.0)")
        major, minor, revision, build = (int(part) if part else 0 for part in match.groups())
        if major > 0xFF or minor > 0xFF or revision > 0xFFFF or build > 0xFFFFFFFF:
            raise ImageError(f"version {text!r} does not fit MCUboot's 8.8.16+32-bit version")
        return ImageVersion(major, minor, revision, build)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.revision}"
        return f"{text}+{self.build}" if self.build else text


@dataclass(frozen=True)
class ImageParts:
    """An MCUboot image split into its parts; `hashed_bytes` is the length the SHA-256 and signature cover."""

    header_bytes: int
    body_bytes: int
    protected_tlv_bytes: int
    flags: int
    version: ImageVersion
    body: bytes
    hashed_bytes: int
    total_bytes: int
    protected_tlvs: dict[int, bytes]
    tlvs: dict[int, bytes]


def _tlv_map(region: bytes, magic: int, what: str) -> tuple[dict[int, bytes], int]:
    info = mcuboot.ImageTLVInfo.loads(region[:_TLV_INFO_BYTES], magic)  # type: ignore[arg-type]
    if info.tlv_tot > len(region):
        raise ImageError(f"the {what} area claims {info.tlv_tot} bytes but only {len(region)} follow")
    entries = mcuboot.ImageInfo.parse_tlvs(region[_TLV_INFO_BYTES : info.tlv_tot])
    return {int(entry.header.type): entry.value for entry in entries}, info.tlv_tot


def header_version(data: bytes) -> ImageVersion:
    """The version in an image header (the first 32 bytes); ImageError if they are not an MCUboot header."""
    try:
        header = mcuboot.ImageHeader.loads(bytes(data[:IMAGE_HEADER_BYTES]))
    except (mcuboot.MCUBootImageError, struct.error, ValidationError, ValueError) as exc:
        raise ImageError(f"not an MCUboot image header: {_short(exc)}") from exc
    v = header.ver
    return ImageVersion(v.major, v.minor, v.revision, v.build_num)


def parse_image(data: bytes, name: str = "image", *, exact: bool = True) -> ImageParts:
    """Split `data` into header, body and TLV areas; ImageError if it is not an MCUboot image.

    exact: the image must end where its TLV area ends (a file); False for a flash slot, erased after the image.
    """
    if len(data) < IMAGE_HEADER_BYTES:
        raise ImageError(f"{name} is {len(data)} bytes, shorter than an MCUboot header ({IMAGE_HEADER_BYTES} bytes)")
    try:
        header = mcuboot.ImageHeader.loads(data[:IMAGE_HEADER_BYTES])
        body_end = header.hdr_size + header.img_size
        if header.hdr_size < IMAGE_HEADER_BYTES or body_end > len(data):
            raise ImageError(f"{name} is truncated: its header announces {body_end} bytes of header and body")
        protected: dict[int, bytes] = {}
        protected_bytes = 0
        if header.protect_tlv_size:
            protected, protected_bytes = _tlv_map(data[body_end:], mcuboot.IMAGE_TLV_PROT_INFO_MAGIC, "protected TLV")
            if protected_bytes != header.protect_tlv_size:
                raise ImageError(f"{name}: the protected TLV size does not match its header")
        hashed = body_end + protected_bytes
        tlvs, tlv_bytes = _tlv_map(data[hashed:], mcuboot.IMAGE_TLV_INFO_MAGIC, "TLV")
    except (mcuboot.MCUBootImageError, struct.error, ValidationError, ValueError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{name} is not a valid MCUboot image: {_short(exc)}") from exc
    total = hashed + tlv_bytes
    if exact and total != len(data):
        raise ImageError(f"{name} has {len(data) - total} unexpected bytes after its TLV area")
    version = header.ver
    return ImageParts(
        header_bytes=header.hdr_size,
        body_bytes=header.img_size,
        protected_tlv_bytes=protected_bytes,
        flags=int(header.flags),
        version=ImageVersion(version.major, version.minor, version.revision, version.build_num),
        body=bytes(data[header.hdr_size : body_end]),
        hashed_bytes=hashed,
        total_bytes=total,
        protected_tlvs=protected,
        tlvs=tlvs,
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
