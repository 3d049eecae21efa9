"""Round trips and fuzzing of the wedge stream's record and frame layout: version 2 (with the boot epoch) as
written, version 1 as still read, and the byte layout a C implementation must match."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedge.firmware.protocol.ble_errors import MalformedPacket, UnsupportedVersion
from wedge.firmware.protocol.ble_records import (
    FRAGMENT_HEADER_BYTES,
    FRAME_FRAGMENT,
    FrameReader,
    FrameWriter,
    Output,
    OutputDType,
    Record,
    decode_record,
    encode_record,
    fragment_record,
    payload_bytes_for_mtu,
    record_key,
    with_backfill_flag,
)

_INT_RANGES = {
    OutputDType.INT8: (-128, 127),
    OutputDType.UINT8: (0, 255),
    OutputDType.INT16: (-32768, 32767),
    OutputDType.INT32: (-(2**31), 2**31 - 1),
}


@st.composite
def outputs(draw: st.DrawFn) -> Output:
    dtype = draw(st.sampled_from(list(OutputDType)))
    size = draw(st.integers(0, 40))
    if dtype is OutputDType.FLOAT32:
        values = draw(st.lists(st.floats(width=32, allow_nan=False), min_size=size, max_size=size))
        return Output(dtype, tuple(values))
    low, high = _INT_RANGES[dtype]
    values = draw(st.lists(st.integers(low, high), min_size=size, max_size=size))
    if draw(st.booleans()):
        scale = draw(st.floats(min_value=0.001953125, max_value=1.0, width=32))
        return Output(dtype, tuple(values), scale, draw(st.integers(-128, 127)))
    return Output(dtype, tuple(values))


records = st.builds(
    Record,
    seq=st.integers(0, 2**32 - 1),
    t_device_us=st.integers(0, 2**64 - 1),
    model_id=st.integers(0, 2**32 - 1),
    outputs=st.lists(outputs(), max_size=4).map(tuple),
    backfill=st.booleans(),
    epoch=st.integers(1, 2**32 - 1),
)
records_v1 = records.map(lambda r: Record(r.seq, r.t_device_us, r.model_id, r.outputs, r.backfill))


@given(records)
def test_a_record_decodes_to_what_was_encoded(record: Record) -> None:
    encoded = encode_record(record)
    assert encoded[0] == 2
    assert decode_record(encoded) == record
    assert record_key(encoded) == (record.epoch, record.seq)


@given(records_v1)
def test_version_1_records_still_decode_with_no_epoch(record: Record) -> None:
    encoded = encode_record(record, version=1)
    assert encoded[0] == 1
    assert decode_record(encoded) == record and decode_record(encoded).epoch == 0
    assert record_key(encoded) == (0, record.seq)


def test_the_version_2_layout_byte_by_byte() -> None:
    # What the module docstring documents, and what the device's C library must produce for the same record.
    record = Record(seq=0x01020304, t_device_us=0x1122334455667788, model_id=0xA1B2C3D4, epoch=0x0A0B0C0D,
                    outputs=(Output(OutputDType.INT8, (-1, 2), 0.5, -3),), backfill=True)
    assert encode_record(record).hex(" ") == (
        "02 01 0d 0c 0b 0a 04 03 02 01 88 77 66 55 44 33 22 11 d4 c3 b2 a1 01 "  # header, 23 bytes
        "00 01 02 00 00 00 00 3f fd ff ff ff ff 02"                              # int8, quantized, 2 values
    )


def test_a_version_2_record_cannot_carry_epoch_0() -> None:
    with pytest.raises(ValueError, match="epoch"):
        encode_record(Record(1, 2, 3))
    encoded = bytearray(encode_record(Record(1, 2, 3, epoch=5)))
    encoded[2:6] = bytes(4)
    with pytest.raises(MalformedPacket, match="epoch 0"):
        decode_record(bytes(encoded))


@given(st.binary(max_size=300))
def test_arbitrary_bytes_either_decode_or_raise_malformed_packet(data: bytes) -> None:
    try:
        decode_record(data)
    except MalformedPacket:
        pass


@given(records, st.data())
def test_every_truncation_of_a_record_is_reported_as_malformed(record: Record, data: st.DataObject) -> None:
    encoded = encode_record(record)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(MalformedPacket):
        decode_record(encoded[:cut])


def test_a_newer_record_version_is_reported_as_unsupported() -> None:
    encoded = bytearray(encode_record(Record(1, 2, 3, epoch=1)))
    encoded[0] = 3
    with pytest.raises(UnsupportedVersion, match="version 3"):
        decode_record(bytes(encoded))


def test_quantized_outputs_dequantize_with_their_scale_and_zero_point() -> None:
    output = Output.from_array(np.array([[-128, 0, 127]], dtype=np.int8), scale=0.5, zero_point=-128)
    assert output.real_values() == (0.0, 64.0, 127.5)


def test_float64_model_outputs_travel_as_float32() -> None:
    output = Output.from_array(np.array([0.25, 1.5]))
    assert output.dtype is OutputDType.FLOAT32 and output.values == (0.25, 1.5)


def test_the_backfill_flag_is_set_without_reencoding() -> None:
    for version, epoch in ((2, 4), (1, 0)):
        encoded = encode_record(Record(7, 8, 9, (Output(OutputDType.UINT8, (1, 2)),), epoch=epoch), version)
        assert decode_record(with_backfill_flag(encoded)) == Record(7, 8, 9, (Output(OutputDType.UINT8, (1, 2)),),
                                                                    True, epoch)


@settings(max_examples=60)
@given(st.lists(records | records_v1, min_size=1, max_size=30), st.integers(23, 247))
def test_frames_carry_every_record_in_order_at_any_mtu(batch: list[Record], att_mtu: int) -> None:
    payload = payload_bytes_for_mtu(att_mtu)
    writer = FrameWriter()
    for record in batch:
        writer.push(encode_record(record, 2 if record.epoch else 1))
    reader = FrameReader()
    received: list[Record] = []
    while (frame := writer.next_frame(payload)) is not None:
        assert len(frame) <= payload
        decoded = reader.feed(frame)
        assert decoded.errors == ()
        received.extend(decoded.records)
    assert received == batch


def test_small_records_share_one_notification() -> None:
    writer = FrameWriter()
    for seq in range(10):
        writer.push(encode_record(Record(seq, seq, 1, (Output(OutputDType.INT8, (1, 2, 3)),), epoch=1)))
    frames = []
    while (frame := writer.next_frame(244)) is not None:
        frames.append(frame)
    reader = FrameReader()
    assert [[r.seq for r in reader.feed(f).records] for f in frames] == [list(range(7)), [7, 8, 9]]


def test_a_record_larger_than_a_notification_is_split_and_reassembled() -> None:
    big = Record(5, 6, 7, (Output(OutputDType.FLOAT32, tuple(float(i) for i in range(640))),), epoch=3)
    fragments = fragment_record(encode_record(big), 20)
    assert len(fragments) > 100
    reader = FrameReader()
    results = [reader.feed(f) for f in fragments]
    assert all(r.records == () for r in results[:-1])
    assert results[-1].records == (big,)


def test_a_fragmented_record_cut_short_is_dropped_and_reported() -> None:
    first = fragment_record(encode_record(Record(1, 0, 0, (Output(OutputDType.UINT8, tuple(range(100))),),
                                                 epoch=1)), 40)
    second = encode_record(Record(2, 0, 0, epoch=1))
    reader = FrameReader()
    reader.feed(first[0])
    writer = FrameWriter()
    writer.push(second)
    frame = writer.next_frame(40)
    assert frame is not None
    decoded = reader.feed(frame)
    assert [r.seq for r in decoded.records] == [2]
    assert len(decoded.errors) == 1 and "record 1 dropped" in str(decoded.errors[0])


def test_a_bad_record_inside_a_frame_spares_its_neighbours() -> None:
    good = encode_record(Record(1, 0, 0, epoch=1))
    bad = bytearray(encode_record(Record(2, 0, 0, epoch=1)))
    bad[0] = 9
    frame = bytes([1, 2]) + len(good).to_bytes(2, "little") + good + len(bad).to_bytes(2, "little") + bytes(bad)
    decoded = FrameReader().feed(frame)
    assert [r.seq for r in decoded.records] == [1]
    assert isinstance(decoded.errors[0], UnsupportedVersion)


@given(st.lists(st.binary(max_size=60), max_size=20))
def test_any_notification_sequence_decodes_or_raises_malformed_packet(frames: list[bytes]) -> None:
    reader = FrameReader()
    for frame in frames:
        try:
            reader.feed(frame)
        except MalformedPacket:
            pass


@given(records, st.data())
def test_every_truncated_frame_is_reported_as_malformed(record: Record, data: st.DataObject) -> None:
    writer = FrameWriter()
    writer.push(encode_record(record))
    frame = writer.next_frame(512 - 3)
    assert frame is not None
    # A fragment cut after its header and first byte is a shorter valid fragment (the reassembly notices, not
    # the frame): only a records frame, or a fragment's header, is malformed on its own when cut.
    longest = FRAGMENT_HEADER_BYTES if frame[0] == FRAME_FRAGMENT else len(frame) - 1
    cut = data.draw(st.integers(0, longest))
    with pytest.raises(MalformedPacket):
        FrameReader().feed(frame[:cut])


def test_mtus_outside_the_att_range_are_refused() -> None:
    with pytest.raises(ValueError):
        payload_bytes_for_mtu(22)
