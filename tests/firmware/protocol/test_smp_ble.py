"""SMP over BLE framing (smp_bt): fragments of at most ATT_MTU - 3 bytes, reassembled by the header's length."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wedge.firmware.protocol.smp_ble import SmpReassembler, fragments
from wedge.firmware.protocol.smp_messages import OP, encode_request, parse_header


@given(bodies=st.lists(st.binary(min_size=0, max_size=600), min_size=1, max_size=5),
       mtu=st.integers(min_value=23, max_value=517))
def test_messages_cut_at_any_mtu_come_back_whole_and_in_order(bodies: list[bytes], mtu: int) -> None:
    messages = [encode_request(OP.WRITE, 1, 1, {"data": body}, sequence=i) for i, body in enumerate(bodies)]
    reassembler = SmpReassembler()
    out: list[bytes] = []
    for message in messages:
        pieces = list(fragments(message, mtu))
        assert all(len(piece) <= mtu - 3 for piece in pieces)
        for piece in pieces:
            out += reassembler.feed(piece)
    assert out == messages


def test_a_message_larger_than_the_netbuf_is_dropped_and_the_next_one_still_arrives() -> None:
    reassembler = SmpReassembler(max_message_bytes=100)
    big = encode_request(OP.WRITE, 1, 1, {"data": bytes(200)})
    assert reassembler.feed(big) == [] and reassembler.dropped == 1
    small = encode_request(OP.READ, 0, 0, {"d": "x"}, sequence=3)
    assert reassembler.feed(small) == [small]


def test_headers_of_commands_the_smp_package_does_not_know_are_read() -> None:
    header = parse_header(encode_request(OP.READ, 0, 42, {}))
    assert (header.group_id, header.command_id, header.op) == (0, 42, OP.READ)
