"""The wedge stream's byte layout: inference records, and the notification frames that carry them over BLE.

A record holds one window's result, keyed by (boot epoch, sequence number) on its device. A frame is one
notification of at most ATT_MTU - 3 bytes: several whole records, or one fragment of a record too large for one.
All integers are little-endian; every header field has a fixed size and offset (no padding, no varints).

Record, version 2 (written by this build):
    offset  size  field
    0       1     u8  version = 2
    1       1     u8  flags: bit 0 = re-sent from the device's buffer (backfill); other bits 0
    2       4     u32 epoch: the device's boot epoch, never 0 (chosen at each boot, see below)
    6       4     u32 seq: 0 for the epoch's first record, +1 for each next one
    10      8     u64 t_device_us: end of the window, device clock, µs since the UNIX epoch
    18      4     u32 model_id: first 4 bytes (big-endian) of the model's SHA-256
    22      1     u8  output count
    23      ...   per output: u8 dtype (OutputDType) | u8 output flags (bit 0: quantized) | u16 value count |
                  [f32 scale | i32 zero_point, when quantized] | values (count x dtype size, little-endian)
Record, version 1 (still decoded, as epoch 0 = "no epoch"):
    u8 version = 1 | u8 flags | u32 seq | u64 t_device_us | u32 model_id | u8 output count | outputs as above
Frame:
    0x01 records:  u8 kind | u8 count | count x (u16 length | record)
    0x02 fragment: u8 kind | u32 seq | u8 index | u8 total | a slice of the record's bytes
    (a device sends the fragments of one record back to back, never interleaved with another record's)

Epochs: a device starts a new epoch at every boot, and its sequence numbers start again at 0, so a record's key
on its device is (epoch, seq) and the stable device id (the stream status, `ble_control`) names the device. The
firmware keeps the last epoch in flash and boots into epoch + 1 (one flash write per boot, none per record);
with no stored epoch (first boot, factory reset, erased settings) it draws a random one in [1, 2^31) from the
hardware RNG, so a reset device does not reuse an epoch of its past. There are no skipped numbers inside an
epoch: a record that was produced has a number, and every number up to the epoch's end was produced.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, unique
from typing import Any, Final

import numpy as np

from wedge.ble_spec import ATT_MTU_MAX, ATT_MTU_MIN, notification_payload_bytes
from wedge.firmware.protocol.ble_errors import MalformedPacket, UnsupportedVersion

RECORD_VERSION: Final[int] = 2
RECORD_VERSION_1: Final[int] = 1
# Version 1 records have no epoch: they read as this one, which no version 2 record may carry.
NO_EPOCH: Final[int] = 0
MAX_EPOCH: Final[int] = 0xFFFF_FFFF
FRAME_RECORDS: Final[int] = 0x01
FRAME_FRAGMENT: Final[int] = 0x02
MAX_SEQ: Final[int] = 0xFFFF_FFFF
MAX_OUTPUT_VALUES: Final[int] = 0xFFFF
MAX_FRAGMENTS: Final[int] = 0xFF
FLAG_BACKFILL: Final[int] = 0x01
OUTPUT_FLAG_QUANTIZED: Final[int] = 0x01

_RECORD_HEADER: Final = struct.Struct("<BBIIQIB")      # version 2
_RECORD_HEADER_V1: Final = struct.Struct("<BBIQIB")
_HEADERS: Final[dict[int, struct.Struct]] = {RECORD_VERSION: _RECORD_HEADER, RECORD_VERSION_1: _RECORD_HEADER_V1}
_OUTPUT_HEADER: Final = struct.Struct("<BBH")
_QUANT: Final = struct.Struct("<fi")
_RECORDS_HEADER: Final = struct.Struct("<BB")
_RECORD_LENGTH: Final = struct.Struct("<H")
_FRAGMENT_HEADER: Final = struct.Struct("<BIBB")
FRAGMENT_HEADER_BYTES: Final[int] = _FRAGMENT_HEADER.size
# The smallest frame payload that still moves a fragment forward: its header and one byte of record.
MIN_PAYLOAD_BYTES: Final[int] = notification_payload_bytes(ATT_MTU_MIN)


@unique
class OutputDType(IntEnum):
    INT8 = 0
    UINT8 = 1
    INT16 = 2
    INT32 = 3
    FLOAT32 = 4


_NUMPY_DTYPES: Final[dict[OutputDType, np.dtype]] = {
    OutputDType.INT8: np.dtype("<i1"),
    OutputDType.UINT8: np.dtype("<u1"),
    OutputDType.INT16: np.dtype("<i2"),
    OutputDType.INT32: np.dtype("<i4"),
    OutputDType.FLOAT32: np.dtype("<f4"),
}


@dataclass(frozen=True)
class Output:
    """One output tensor, flattened; integer outputs carry their quantization so the host can dequantize."""

    dtype: OutputDType
    values: tuple[float, ...]
    scale: float | None = None
    zero_point: int | None = None

    @classmethod
    def from_array(cls, array: np.ndarray, scale: float | None = None, zero_point: int | None = None) -> Output:
        """An output from a model's tensor; scale and zero point apply to integer tensors only."""
        flat = np.asarray(array).ravel()
        matches = [code for code, numpy_dtype in _NUMPY_DTYPES.items()
                   if flat.dtype.kind == numpy_dtype.kind and flat.dtype.itemsize == numpy_dtype.itemsize]
        if matches:
            dtype = matches[0]
        elif flat.dtype.kind == "f":
            dtype, flat = OutputDType.FLOAT32, flat.astype(np.float32)
        else:
            raise ValueError(f"no record dtype for a {flat.dtype} output")
        quantized = dtype is not OutputDType.FLOAT32 and scale is not None and zero_point is not None
        return cls(dtype, tuple(flat.tolist()), scale if quantized else None, zero_point if quantized else None)

    @property
    def quantized(self) -> bool:
        return self.scale is not None and self.zero_point is not None

    def real_values(self) -> tuple[float, ...]:
        """The values as real numbers: dequantized when the output is quantized."""
        if self.quantized:
            assert self.scale is not None and self.zero_point is not None
            scale, zero_point = self.scale, self.zero_point
            return tuple([(v - zero_point) * scale for v in self.values])
        if self.dtype is OutputDType.FLOAT32:
            return self.values
        return tuple(map(float, self.values))

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype.name.lower(),
            "values": list(self.values),
            "scale": self.scale,
            "zero_point": self.zero_point,
            "real": list(self.real_values()),
        }


@dataclass(frozen=True)
class Record:
    """One inference window's result as the device sends it; `epoch` is NO_EPOCH for a version 1 record."""

    seq: int
    t_device_us: int
    model_id: int
    outputs: tuple[Output, ...] = field(default_factory=tuple)
    backfill: bool = False
    epoch: int = NO_EPOCH

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "t_device_us": self.t_device_us,
            "model_id": self.model_id,
            "backfill": self.backfill,
            "outputs": [o.to_dict() for o in self.outputs],
        }


def encode_record(record: Record, version: int = RECORD_VERSION) -> bytes:
    """The record's bytes: version 2 (its epoch must be 1..2^32-1), or version 1 (for an epoch-less record)."""
    if not 0 <= record.seq <= MAX_SEQ:
        raise ValueError(f"seq {record.seq} does not fit in 32 bits")
    if len(record.outputs) > 0xFF:
        raise ValueError(f"a record carries at most 255 outputs, got {len(record.outputs)}")
    flags = FLAG_BACKFILL if record.backfill else 0
    if version == RECORD_VERSION:
        if not NO_EPOCH < record.epoch <= MAX_EPOCH:
            raise ValueError(f"a version 2 record needs an epoch in 1..{MAX_EPOCH}, got {record.epoch}")
        header = _RECORD_HEADER.pack(version, flags, record.epoch, record.seq, record.t_device_us,
                                     record.model_id, len(record.outputs))
    elif version == RECORD_VERSION_1:
        if record.epoch != NO_EPOCH:
            raise ValueError(f"a version 1 record has no epoch, got {record.epoch}")
        header = _RECORD_HEADER_V1.pack(version, flags, record.seq, record.t_device_us, record.model_id,
                                        len(record.outputs))
    else:
        raise ValueError(f"record version {version} is not one this build writes (1 or 2)")
    parts = [header]
    for output in record.outputs:
        if len(output.values) > MAX_OUTPUT_VALUES:
            raise ValueError(f"an output carries at most {MAX_OUTPUT_VALUES} values, got {len(output.values)}")
        parts.append(_OUTPUT_HEADER.pack(output.dtype, OUTPUT_FLAG_QUANTIZED if output.quantized else 0,
                                         len(output.values)))
        if output.quantized:
            parts.append(_QUANT.pack(output.scale, output.zero_point))
        parts.append(np.asarray(output.values, dtype=_NUMPY_DTYPES[output.dtype]).tobytes())
    return b"".join(parts)


def _header(data: bytes | bytearray | memoryview) -> struct.Struct:
    """The header layout of an encoded record, from its version byte."""
    if len(data) < 1:
        raise MalformedPacket("empty record")
    layout = _HEADERS.get(data[0])
    if layout is None:
        raise UnsupportedVersion(f"record version {data[0]} is not supported (this build reads "
                                 f"{RECORD_VERSION_1} and {RECORD_VERSION})")
    if len(data) < layout.size:
        raise MalformedPacket(f"record truncated: {len(data)} bytes, the header alone is {layout.size}")
    return layout


def with_backfill_flag(encoded: bytes) -> bytes:
    """An encoded record marked as re-sent from the device's buffer (its flags byte set), without re-encoding."""
    _header(encoded)
    return encoded[:1] + bytes([encoded[1] | FLAG_BACKFILL]) + encoded[2:]


_DTYPES_BY_CODE: Final[tuple[OutputDType, ...]] = tuple(OutputDType)
_STRUCT_CODES: Final[dict[OutputDType, str]] = {
    OutputDType.INT8: "b", OutputDType.UINT8: "B", OutputDType.INT16: "h", OutputDType.INT32: "i",
    OutputDType.FLOAT32: "f",
}
_VALUES_CACHE: dict[tuple[OutputDType, int], struct.Struct] = {}


def _values_struct(dtype: OutputDType, count: int) -> struct.Struct:
    # A struct per (dtype, count) is built once: records of one model always repeat the same few layouts,
    # and struct unpacking of small outputs is several times faster than numpy's.
    key = (dtype, count)
    layout = _VALUES_CACHE.get(key)
    if layout is None:
        layout = struct.Struct(f"<{count}{_STRUCT_CODES[dtype]}")
        if len(_VALUES_CACHE) < 1024:
            _VALUES_CACHE[key] = layout
    return layout


def decode_record(data: bytes | bytearray | memoryview) -> Record:
    """A record from its bytes; MalformedPacket (UnsupportedVersion for another version) when they do not decode."""
    view = memoryview(data)
    size = len(view)
    layout = _header(view)
    if layout is _RECORD_HEADER:
        _, flags, epoch, seq, t_device_us, model_id, count = layout.unpack_from(view)
        if epoch == NO_EPOCH:
            raise MalformedPacket(f"record {seq}: epoch 0 is reserved for version 1 records")
    else:
        _, flags, seq, t_device_us, model_id, count = layout.unpack_from(view)
        epoch = NO_EPOCH
    offset = layout.size
    outputs = []
    for index in range(count):
        if size < offset + _OUTPUT_HEADER.size:
            raise MalformedPacket(f"record {seq}: output {index} header truncated")
        dtype_code, output_flags, n_values = _OUTPUT_HEADER.unpack_from(view, offset)
        offset += _OUTPUT_HEADER.size
        if dtype_code >= len(_DTYPES_BY_CODE):
            raise MalformedPacket(f"record {seq}: output {index} has unknown dtype code {dtype_code}")
        dtype = _DTYPES_BY_CODE[dtype_code]
        scale: float | None = None
        zero_point: int | None = None
        if output_flags & OUTPUT_FLAG_QUANTIZED:
            if size < offset + _QUANT.size:
                raise MalformedPacket(f"record {seq}: output {index} quantization truncated")
            scale, zero_point = _QUANT.unpack_from(view, offset)
            offset += _QUANT.size
        layout = _values_struct(dtype, n_values)
        end = offset + layout.size
        if size < end:
            raise MalformedPacket(f"record {seq}: output {index} needs {layout.size} value bytes, "
                                  f"{max(size - offset, 0)} left")
        outputs.append(Output(dtype, layout.unpack_from(view, offset), scale, zero_point))
        offset = end
    if offset != size:
        raise MalformedPacket(f"record {seq}: {size - offset} bytes after the last output")
    return Record(seq, t_device_us, model_id, tuple(outputs), bool(flags & FLAG_BACKFILL), epoch)


def record_key(encoded: bytes | bytearray | memoryview) -> tuple[int, int]:
    """(epoch, seq) of an encoded record, read from its header (epoch NO_EPOCH for version 1)."""
    layout = _header(encoded)
    if layout is _RECORD_HEADER:
        _, _, epoch, seq = struct.unpack_from("<BBII", encoded)
        return int(epoch), int(seq)
    return NO_EPOCH, int(struct.unpack_from("<BBI", encoded)[2])


def record_seq(encoded: bytes) -> int:
    """The sequence number of an encoded record, read from its header."""
    return record_key(encoded)[1]


def payload_bytes_for_mtu(att_mtu: int) -> int:
    """How many bytes one notification carries at this ATT MTU."""
    if not ATT_MTU_MIN <= att_mtu <= ATT_MTU_MAX:
        raise ValueError(f"ATT MTU must be {ATT_MTU_MIN}..{ATT_MTU_MAX}, got {att_mtu}")
    return notification_payload_bytes(att_mtu)


def fragment_record(encoded: bytes, payload_bytes: int) -> list[bytes]:
    """Fragment frames carrying one encoded record in notifications of `payload_bytes`."""
    chunk = payload_bytes - _FRAGMENT_HEADER.size
    if chunk < 1:
        raise ValueError(f"a {payload_bytes}-byte notification cannot carry a fragment")
    total = -(-len(encoded) // chunk)
    if total > MAX_FRAGMENTS:
        raise ValueError(f"a {len(encoded)}-byte record needs {total} fragments at {payload_bytes} bytes each; "
                         f"at most {MAX_FRAGMENTS} are allowed")
    seq = record_seq(encoded)
    return [_FRAGMENT_HEADER.pack(FRAME_FRAGMENT, seq, i, total) + encoded[i * chunk:(i + 1) * chunk]
            for i in range(total)]


def records_frame(encoded_records: Sequence[bytes]) -> bytes:
    """One frame of whole records (the caller checks it fits a notification)."""
    if not 1 <= len(encoded_records) <= 0xFF:
        raise ValueError(f"a records frame carries 1..255 records, got {len(encoded_records)}")
    parts = [_RECORDS_HEADER.pack(FRAME_RECORDS, len(encoded_records))]
    for encoded in encoded_records:
        parts.append(_RECORD_LENGTH.pack(len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


class FrameWriter:
    """The device side: queues encoded records and cuts them into notification frames, packing small ones together."""

    def __init__(self) -> None:
        self._records: deque[bytes] = deque()
        self._fragments: deque[bytes] = deque()

    def push(self, encoded: bytes) -> None:
        self._records.append(encoded)

    def clear(self) -> None:
        """Drop the queued records; a record already being fragmented finishes, so the reader never sees half."""
        self._records.clear()

    @property
    def pending_records(self) -> int:
        return len(self._records) + (1 if self._fragments else 0)

    def __bool__(self) -> bool:
        return bool(self._records or self._fragments)

    @property
    def mid_record(self) -> bool:
        """A record's fragments are being sent: its next frames must follow before any other writer's."""
        return bool(self._fragments)

    def next_frame(self, payload_bytes: int) -> bytes | None:
        """The next notification's bytes (at most payload_bytes), or None when nothing is queued."""
        if self._fragments:
            return self._fragments.popleft()
        if not self._records:
            return None
        first = self._records[0]
        size = _RECORDS_HEADER.size + _RECORD_LENGTH.size + len(first)
        if size > payload_bytes:
            self._records.popleft()
            self._fragments.extend(fragment_record(first, payload_bytes))
            return self._fragments.popleft()
        batch = [self._records.popleft()]
        while self._records and len(batch) < 0xFF:
            grown = size + _RECORD_LENGTH.size + len(self._records[0])
            if grown > payload_bytes:
                break
            size = grown
            batch.append(self._records.popleft())
        return records_frame(batch)


@dataclass(frozen=True)
class Decoded:
    """What one frame gave: whole records, and the records (or partial records) it had to drop, with why."""

    records: tuple[Record, ...]
    errors: tuple[MalformedPacket, ...]


@dataclass
class _Partial:
    seq: int
    total: int
    chunks: list[bytes]


class FrameReader:
    """The host side: turns notification frames back into records, reassembling fragments in arrival order.

    A frame whose own layout is broken raises MalformedPacket; a broken record inside a sound frame, or a
    fragment sequence cut short, is reported in `Decoded.errors` while the frame's other records survive.
    """

    def __init__(self) -> None:
        self._partial: _Partial | None = None

    def reset(self) -> None:
        """Forget a half-received fragmented record (after a reconnect, its rest will never come)."""
        self._partial = None

    def feed(self, frame: bytes | bytearray | memoryview) -> Decoded:
        view = memoryview(frame)
        if len(view) < 1:
            raise MalformedPacket("empty notification")
        kind = view[0]
        if kind == FRAME_RECORDS:
            decoded = self._records(view)
            # Notifications arrive in order: whole records after a fragment mean the rest of it was lost.
            if self._partial is not None:
                dropped = self._partial
                self._partial = None
                cut = MalformedPacket(f"record {dropped.seq} dropped: {len(dropped.chunks)} of "
                                      f"{dropped.total} fragments arrived")
                return Decoded(decoded.records, (cut, *decoded.errors))
            return decoded
        if kind == FRAME_FRAGMENT:
            return self._fragment(view)
        raise MalformedPacket(f"unknown frame kind {kind:#04x}")

    def _records(self, view: memoryview) -> Decoded:
        if len(view) < _RECORDS_HEADER.size:
            raise MalformedPacket("records frame truncated before its count")
        count = view[1]
        if count == 0:
            raise MalformedPacket("records frame with no records")
        offset = _RECORDS_HEADER.size
        slices = []
        for index in range(count):
            if len(view) < offset + _RECORD_LENGTH.size:
                raise MalformedPacket(f"records frame truncated at record {index} of {count}")
            (length,) = _RECORD_LENGTH.unpack_from(view, offset)
            offset += _RECORD_LENGTH.size
            if len(view) < offset + length:
                raise MalformedPacket(f"record {index} of {count} claims {length} bytes, "
                                      f"{len(view) - offset} left in the frame")
            slices.append(view[offset:offset + length])
            offset += length
        if offset != len(view):
            raise MalformedPacket(f"{len(view) - offset} bytes after the last record of the frame")
        records: list[Record] = []
        errors: list[MalformedPacket] = []
        for piece in slices:
            try:
                records.append(decode_record(piece))
            except MalformedPacket as exc:
                errors.append(exc)
        return Decoded(tuple(records), tuple(errors))

    def _fragment(self, view: memoryview) -> Decoded:
        if len(view) <= _FRAGMENT_HEADER.size:
            raise MalformedPacket(f"fragment frame of {len(view)} bytes carries no data")
        _, seq, index, total = _FRAGMENT_HEADER.unpack_from(view)
        if total == 0 or index >= total:
            raise MalformedPacket(f"fragment {index} of {total} for record {seq} is impossible")
        chunk = bytes(view[_FRAGMENT_HEADER.size:])
        errors: list[MalformedPacket] = []
        partial = self._partial
        if partial is not None and (partial.seq != seq or partial.total != total or len(partial.chunks) != index):
            errors.append(MalformedPacket(f"record {partial.seq} dropped: {len(partial.chunks)} of "
                                          f"{partial.total} fragments arrived"))
            partial = self._partial = None
        if partial is None:
            if index != 0:
                errors.append(MalformedPacket(f"fragment {index} of {total} for record {seq} without its start"))
                return Decoded((), tuple(errors))
            partial = self._partial = _Partial(seq, total, [])
        partial.chunks.append(chunk)
        if len(partial.chunks) < total:
            return Decoded((), tuple(errors))
        self._partial = None
        try:
            record = decode_record(b"".join(partial.chunks))
        except MalformedPacket as exc:
            errors.append(exc)
            return Decoded((), tuple(errors))
        if record.seq != seq:
            errors.append(MalformedPacket(f"fragments of record {seq} reassembled into record {record.seq}"))
            return Decoded((), tuple(errors))
        return Decoded((record,), tuple(errors))
