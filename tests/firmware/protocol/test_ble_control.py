"""Round trips and fuzzing of the wedge stream's control point commands and status value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wedge.firmware.protocol.ble_control import (
    BACKFILL_TO_NEWEST,
    ControlOpcode,
    StreamStatus,
    backfill_command,
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


statuses = st.builds(
    lambda streaming, a, b, cap, rate, model, boots: StreamStatus(streaming, min(a, b), max(a, b), cap, rate, model, boots),
    st.booleans(), u32, u32, u32, u32, u32, u32,
)


@given(statuses)
def test_a_status_decodes_to_what_was_encoded(status: StreamStatus) -> None:
    assert decode_status(encode_status(status)) == status


@given(statuses, st.data())
def test_a_truncated_status_is_malformed(status: StreamStatus, data: st.DataObject) -> None:
    encoded = encode_status(status)
    with pytest.raises(MalformedPacket):
        decode_status(encoded[: data.draw(st.integers(0, len(encoded) - 1))])


def test_a_status_of_another_version_is_unsupported() -> None:
    encoded = bytearray(encode_status(StreamStatus(True, 0, 1, 2, 3, 4, 5)))
    encoded[0] = 7
    with pytest.raises(UnsupportedVersion):
        decode_status(bytes(encoded))


@given(st.binary(max_size=40))
def test_arbitrary_status_bytes_decode_or_raise_malformed_packet(data: bytes) -> None:
    try:
        decode_status(data)
    except MalformedPacket:
        pass
