"""The C control point parser and status encoder against wedge/firmware/protocol/ble_control.py: any bytes
written to the control point get the virtual board's answer (command, or ATT error 0x80 / 0x81)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.device_c.core import Core
from wedge.firmware.protocol.ble_control import (
    ATT_ERROR_BAD_PARAMETER,
    ATT_ERROR_UNKNOWN_OPCODE,
    BACKFILL_TO_NEWEST,
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
from wedge.firmware.protocol.ble_errors import MalformedPacket

u32 = st.integers(0, 0xFFFF_FFFF)
writes = st.binary(max_size=16) | st.builds(
    lambda op, params: bytes([op]) + params, st.integers(0, 7),
    st.sampled_from([b"", b"\x00" * 4, b"\x00" * 8, b"\x00" * 12]) | st.binary(max_size=13)) | st.builds(
    lambda e, a, b: bytes([5]) + struct.pack("<III", e, a, b), u32 | st.just(0), u32, u32)


def virtual_board_answer(data: bytes) -> tuple[int, ControlOpcode | None]:
    """The ATT error the virtual board's control point handler answers (0: accepted), and the command."""
    try:
        return 0, decode_command(data).opcode
    except MalformedPacket:
        known = len(data) > 0 and data[0] in {op.value for op in ControlOpcode}
        return (ATT_ERROR_BAD_PARAMETER if known else ATT_ERROR_UNKNOWN_OPCODE), None


@settings(max_examples=500, deadline=None)
@given(data=writes)
def test_any_write_gets_the_virtual_boards_answer(core: Core, data: bytes) -> None:
    att, opcode = virtual_board_answer(data)
    rc, c_att, parsed = core.control_parse(data)
    assert c_att == att
    if opcode is not None:
        assert rc == 0
        command = decode_command(data)
        assert parsed["opcode"] == int(command.opcode)
        if opcode is ControlOpcode.SET_RATE:
            assert parsed["rate_mhz"] == command.rate_mhz
        if opcode in (ControlOpcode.BACKFILL, ControlOpcode.BACKFILL_EPOCH):
            assert (parsed["first_seq"], parsed["end_seq"]) == (command.first_seq, command.end_seq)
            assert parsed["epoch"] == (command.epoch or 0)


def test_the_bridges_commands_parse(core: Core) -> None:
    assert core.control_parse(start_command())[2]["opcode"] == 1
    assert core.control_parse(stop_command())[2]["opcode"] == 2
    assert core.control_parse(set_rate_command(12.5))[2]["rate_mhz"] == 12500
    assert core.control_parse(backfill_command(3))[2]["end_seq"] == BACKFILL_TO_NEWEST
    parsed = core.control_parse(backfill_epoch_command(77, 10, 20))[2]
    assert (parsed["epoch"], parsed["first_seq"], parsed["end_seq"]) == (77, 10, 20)


spans = st.builds(lambda e, a, n: EpochSpan(e, a, min(a + n, 0xFFFF_FFFF)), st.integers(1, 0xFFFF_FFFF), u32,
                  st.integers(0, 1000))


@settings(max_examples=200, deadline=None)
@given(streaming=st.booleans(), device_id=st.none() | st.integers(1, 2**64 - 1), current=spans,
       past=st.lists(spans, max_size=8), capacity=u32, rate=st.integers(1, 0xFFFF_FFFF), model_id=u32, boots=u32)
def test_status_values_are_the_bytes_python_encodes(core: Core, streaming: bool, device_id: int | None,
                                                    current: EpochSpan, past: list[EpochSpan], capacity: int,
                                                    rate: int, model_id: int, boots: int) -> None:
    status = StreamStatus(streaming, current.first_seq, current.end_seq, capacity, rate, model_id, boots,
                          device_id, current.epoch if device_id is not None else 0,
                          tuple(past) if device_id is not None else ())
    expected = encode_status(status)
    rc, data = core.status_encode({
        "streaming": streaming, "device_id": device_id or 0, "epoch": status.epoch, "oldest_seq": status.oldest_seq,
        "next_seq": status.next_seq, "capacity_records": capacity, "rate_mhz": rate, "model_id": model_id,
        "boot_count": boots, "past": [(s.epoch, s.first_seq, s.end_seq) for s in status.past_epochs]})
    assert (rc, data) == (0, expected)
    if len({s.epoch for s in status.buffered()}) == len(status.buffered()):
        assert decode_status(data) == status
