"""The wedge stream's model info characteristic: which model the device runs, and what its outputs mean.

A ring's firmware has the model's manifest (the CBOR TLV of image 1) in flash; serving its name, version,
labels and unit costs it one read characteristic, and the host one GATT read per connection, instead of an SMP
session to the image or a copy of it on the phone. Records carry only the model id; this tells the host its name.

Value (read), version 1, little-endian, at most 512 bytes (the ATT attribute limit; longer than an MTU, it is
read whole with ATT Read Blob):
    offset  size  field
    0       1     u8  version = 1
    1       4     u32 model id: the first 4 bytes (big-endian) of the model's SHA-256, as in every record
    5       2     u16 label count: how many labels the model has in all
    7       2     u16 first label: the index of the first label in this value
    9       ...   str name | str version | str unit (empty: a classifier, or no unit) | labels, from the first,
                  as many whole ones as fit
    str = u8 length | UTF-8 bytes
Write: u16 first label. The device answers later reads of this connection from that label on, so a host reads
a model with more labels than fit in 512 bytes page by page. A first label past the count is ATT error 0x81.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

from wedge.firmware.protocol.ble_errors import MalformedPacket, UnsupportedVersion

MODEL_INFO_VERSION: Final[int] = 1
MAX_VALUE_BYTES: Final[int] = 512
MAX_TEXT_BYTES: Final[int] = 255
MAX_LABELS: Final[int] = 0xFFFF
_HEADER: Final = struct.Struct("<BIHH")
_PAGE: Final = struct.Struct("<H")


@dataclass(frozen=True)
class ModelInfo:
    """A model as the host names it: id (from the records), name and version (from the manifest), and what its
    first output means: one label per class, or the unit of a regression value."""

    model_id: int
    name: str
    version: str = ""
    labels: tuple[str, ...] = ()
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "name": self.name, "version": self.version,
                "labels": list(self.labels), "unit": self.unit}


@dataclass(frozen=True)
class ModelInfoPage:
    """One read of the characteristic: the model, `label_count` labels in all, this value's from `first_label`."""

    info: ModelInfo
    label_count: int
    first_label: int

    @property
    def complete(self) -> bool:
        return self.first_label == 0 and len(self.info.labels) == self.label_count


def model_id_of(model_sha256: bytes) -> int:
    """The 32-bit model id records carry: the first four bytes, big-endian, of the model's SHA-256."""
    return int.from_bytes(model_sha256[:4], "big")


def _text(value: str, what: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) > MAX_TEXT_BYTES:
        raise ValueError(f"{what} is {len(data)} bytes of UTF-8, more than {MAX_TEXT_BYTES}")
    return bytes([len(data)]) + data


def encode_model_info(info: ModelInfo, first_label: int = 0) -> bytes:
    """The characteristic's value from label `first_label` on: as many labels as fit in MAX_VALUE_BYTES."""
    if not 0 <= info.model_id <= 0xFFFF_FFFF:
        raise ValueError(f"model id {info.model_id} is not 32-bit")
    if len(info.labels) > MAX_LABELS or not 0 <= first_label <= len(info.labels):
        raise ValueError(f"first label {first_label} of {len(info.labels)}")
    out = bytearray(_HEADER.pack(MODEL_INFO_VERSION, info.model_id, len(info.labels), first_label))
    for value, what in ((info.name, "the model name"), (info.version, "the version"), (info.unit or "", "the unit")):
        out += _text(value, what)
    if len(out) > MAX_VALUE_BYTES:
        raise ValueError("the model name, version and unit leave no room in one attribute value")
    fixed = len(out)
    for label in info.labels[first_label:]:
        # A label longer than a str holds is cut at a character boundary: it still names its class.
        encoded = _text(label.encode("utf-8")[:MAX_TEXT_BYTES].decode("utf-8", "ignore"), "a label")
        if len(out) + len(encoded) > MAX_VALUE_BYTES:
            break
        out += encoded
    if first_label < len(info.labels) and len(out) == fixed:
        raise ValueError("not one label fits after the model name, version and unit")
    return bytes(out)


def decode_model_info(data: bytes | bytearray | memoryview) -> ModelInfoPage:
    """One read value; MalformedPacket when truncated or inconsistent, UnsupportedVersion for another version."""
    view = bytes(data)
    if len(view) < _HEADER.size:
        raise MalformedPacket(f"model info is {len(view)} bytes, shorter than its {_HEADER.size}-byte header")
    version, model_id, count, first = _HEADER.unpack_from(view)
    if version != MODEL_INFO_VERSION:
        raise UnsupportedVersion(f"model info version {version} (this build reads {MODEL_INFO_VERSION})")
    if first > count:
        raise MalformedPacket(f"model info starts at label {first} of {count}")
    offset = _HEADER.size
    texts: list[str] = []
    while offset < len(view):
        length = view[offset]
        end = offset + 1 + length
        if end > len(view):
            raise MalformedPacket(f"model info string at byte {offset} runs past the value's end")
        try:
            texts.append(view[offset + 1:end].decode("utf-8"))
        except UnicodeDecodeError:
            raise MalformedPacket(f"model info string at byte {offset} is not UTF-8") from None
        offset = end
    if len(texts) < 3:
        raise MalformedPacket("model info has no name, version and unit")
    name, model_version, unit, *labels = texts
    if first + len(labels) > count:
        raise MalformedPacket(f"model info holds labels {first}..{first + len(labels) - 1} of {count}")
    if first < count and not labels:
        raise MalformedPacket(f"model info from label {first} of {count} holds none")
    return ModelInfoPage(ModelInfo(model_id, name, model_version, tuple(labels), unit or None), count, first)


def page_command(first_label: int) -> bytes:
    """The write that chooses the label a later read starts from."""
    if not 0 <= first_label <= MAX_LABELS:
        raise ValueError(f"first label {first_label} is not 16-bit")
    return _PAGE.pack(first_label)


def decode_page_command(data: bytes | bytearray | memoryview) -> int:
    if len(data) != _PAGE.size:
        raise MalformedPacket(f"a model info page write is {_PAGE.size} bytes, got {len(data)}")
    return int(_PAGE.unpack(bytes(data))[0])
