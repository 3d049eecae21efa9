"""Round trips and fuzzing of the wedge stream's control point commands and status value (version 2, with the
device id and its buffered epochs; version 1 still read), and the status layout byte by byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wedge.firmware.protocol.ble_control import (
    BACKFILL_TO_NEWEST,
    MAX_PAST_EPOCHS,
    ControlOpcode,
    EpochSpan,
    StreamStatus,
    backfill_command,
    backfill_epoch_command,
    decode_command,
    decode_status,
    encode_status,
    set_rate_command,
    start_command,
    stop_command,
)
from wedge.firmware.protocol.ble_errors import MalformedPacket, UnsupportedVersion

u32 = st.integers(0, 2**32 - 1)


def test_start_and_stop_decode_to_their_opcodes() -> None:
    assert decode_command(start_command()).opcode is ControlOpcode.START
    assert decode_command(stop_command()).opcode is ControlOpcode.STOP


@given(st.floats(min_value=0.001, max_value=4_000_000))
def test_a_rate_survives_the_round_trip_to_the_millihertz(rate_hz: float) -> None:
    command = decode_command(set_rate_command(rate_hz))
    assert abs(command.rate_hz - rate_hz) <= 0.0005


@given(u32, u32)
def test_a_backfill_range_survives_the_round_trip(a: int, b: int) -> None:
    first, end = min(a, b), max(a, b)
    command = decode_command(backfill_command(first, end))
    assert (command.opcode, command.first_seq, command.end_seq) == (ControlOpcode.BACKFILL, first, end)


def test_backfill_defaults_to_everything_up_to_the_newest_record() -> None:
    assert decode_command(backfill_command(10)).end_seq == BACKFILL_TO_NEWEST
    assert decode_command(backfill_command(10)).epoch is None  # the current epoch


@given(st.integers(1, 2**32 - 1), u32, u32)
def test_a_backfill_naming_its_epoch_survives_the_round_trip(epoch: int, a: int, b: int) -> None:
    first, end = min(a, b), max(a, b)
    command = decode_command(backfill_epoch_command(epoch, first, end))
    assert (command.opcode, command.epoch, command.first_seq, command.end_seq) == (
        ControlOpcode.BACKFILL_EPOCH, epoch, first, end)


def test_a_backfill_of_epoch_0_is_malformed() -> None:
    with pytest.raises(MalformedPacket, match="epoch 0"):
        decode_command(bytes([0x05]) + bytes(12))


@given(st.binary(max_size=12))
def test_arbitrary_control_writes_decode_or_raise_malformed_packet(data: bytes) -> None:
    try:
        decode_command(data)
    except MalformedPacket:
        pass


@pytest.mark.parametrize("data", [b"", b"\x09", b"\x01\x00", b"\x03\x00\x00\x00\x00", b"\x04\x05\x00\x00\x00\x01\x00\x00\x00"])
def test_empty_unknown_extra_zero_rate_and_reversed_commands_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode_command(data)


statuses_v1 = st.builds(
    lambda streaming, a, b, cap, rate, model, boots: StreamStatus(streaming, min(a, b), max(a, b), cap, rate, model, boots),
    st.booleans(), u32, u32, u32, u32, u32, u32,
)


@st.composite
def spans(draw: st.DrawFn, epoch: int) -> EpochSpan:
    a, b = draw(u32), draw(u32)
    return EpochSpan(epoch, min(a, b), max(a, b))


@st.composite
def statuses(draw: st.DrawFn) -> StreamStatus:
    base = draw(statuses_v1)
    epochs = draw(st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=MAX_PAST_EPOCHS + 1, unique=True))
    past = tuple(draw(spans(e)) for e in epochs[:-1])
    return StreamStatus(base.streaming, base.oldest_seq, base.next_seq, base.capacity_records, base.rate_mhz,
                        base.model_id, base.boot_count, draw(st.integers(1, 2**64 - 1)), epochs[-1], past)


@given(statuses())
def test_a_status_decodes_to_what_was_encoded(status: StreamStatus) -> None:
    encoded = encode_status(status)
    assert encoded[0] == 2 and len(encoded) == 39 + 12 * len(status.past_epochs)
    assert decode_status(encoded) == status


@given(statuses_v1)
def test_a_version_1_status_still_decodes_without_device_or_epoch(status: StreamStatus) -> None:
    encoded = encode_status(status)
    assert encoded[0] == 1
    decoded = decode_status(encoded)
    assert decoded == status and decoded.device_id is None and decoded.epoch == 0 and decoded.version == 1


def test_the_version_2_status_layout_byte_by_byte() -> None:
    status = StreamStatus(True, 5, 9, 60000, 50000, 0xA1B2C3D4, 3, device_id=0x0102030405060708, epoch=0x11,
                          past_epochs=(EpochSpan(0x10, 100, 260),))
    assert encode_status(status).hex(" ") == (
        "02 01 08 07 06 05 04 03 02 01 11 00 00 00 05 00 00 00 09 00 00 00 60 ea 00 00 50 c3 00 00 "
        "d4 c3 b2 a1 03 00 00 00 01 "   # 39-byte head: version .. boot count, 1 past epoch
        "10 00 00 00 64 00 00 00 04 01 00 00"  # epoch 16: [100, 260)
    )


@pytest.mark.parametrize(("patch", "message"), [
    ({2: bytes(8)}, "device id 0"),
    ({10: bytes(4)}, "epoch 0"),
    ({39: (0x11).to_bytes(4, "little")}, "twice"),
    ({38: bytes([9])}, "at most 8"),
    ({43: (500).to_bytes(4, "little")}, "after its end"),
])
def test_inconsistent_version_2_statuses_are_malformed(patch: dict[int, bytes], message: str) -> None:
    encoded = bytearray(encode_status(StreamStatus(True, 0, 1, 2, 3, 4, 5, 77, 0x11, (EpochSpan(0x10, 0, 10),))))
    for offset, value in patch.items():
        encoded[offset:offset + len(value)] = value
    with pytest.raises(MalformedPacket, match=message):
        decode_status(bytes(encoded))


@given(statuses() | statuses_v1, st.data())
def test_a_truncated_status_is_malformed(status: StreamStatus, data: st.DataObject) -> None:
    encoded = encode_status(status)
    with pytest.raises(MalformedPacket):
        decode_status(encoded[: data.draw(st.integers(0, len(encoded) - 1))])


def test_a_status_of_another_version_is_unsupported() -> None:
    encoded = bytearray(encode_status(StreamStatus(True, 0, 1, 2, 3, 4, 5, 6, 7)))
    encoded[0] = 7
    with pytest.raises(UnsupportedVersion):
        decode_status(bytes(encoded))


@given(st.binary(max_size=40))
def test_arbitrary_status_bytes_decode_or_raise_malformed_packet(data: bytes) -> None:
    try:
        decode_status(data)
    except MalformedPacket:
        pass
