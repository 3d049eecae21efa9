"""SMP serial framing: frames survive any chunking and interleaved console text; damage never yields a frame."""

from __future__ import annotations

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st
from smp.image_management import ImageUploadWriteRequest, ImageUploadWriteResponse
from smp.os_management import EchoWriteRequest

from wedge.firmware.protocol.smp_messages import (
    MalformedMessage,
    encode_response,
    error_response,
    is_response,
    parse_header,
)
from wedge.firmware.protocol.smp_serial import (
    BadFrame,
    Console,
    Frame,
    SerialFrameReader,
    encode_frame,
    frame_wire_bytes,
)

messages = st.binary(min_size=1, max_size=600)
# Console text as a shell or the MLPerf Tiny DUT protocol prints it: no control bytes that start frames.
console_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.encode)


def _feed(reader: SerialFrameReader, data: bytes, cuts: list[int]) -> list[object]:
    events: list[object] = []
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        events.extend(reader.feed(data[start:cut]))
        start = max(start, cut)
    return events


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(console_text, messages), min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=12))
def test_frames_and_console_text_come_back_exactly_whatever_the_chunking(parts, cuts) -> None:
    stream = b"".join(text + encode_frame(message) for text, message in parts)
    events = _feed(SerialFrameReader(), stream, cuts)
    assert [e.message for e in events if isinstance(e, Frame)] == [message for _, message in parts]
    assert b"".join(e.text for e in events if isinstance(e, Console)) == b"".join(text for text, _ in parts)
    assert not [e for e in events if isinstance(e, BadFrame)]


@settings(max_examples=100, deadline=None)
@given(messages, st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_a_corrupted_byte_never_delivers_a_wrong_frame(message, position, flip) -> None:
    wire = bytearray(encode_frame(message))
    wire[position % len(wire)] ^= flip
    events = SerialFrameReader().feed(bytes(wire)) + SerialFrameReader().feed(b"")
    frames = [e.message for e in events if isinstance(e, Frame)]
    # CRC-16 plus base64 catch a single damaged byte: the frame is either intact or dropped, never altered.
    assert frames in ([], [message])


def test_lines_are_at_most_127_bytes_and_start_with_zephyr_delimiters() -> None:
    lines = encode_frame(bytes(1000)).split(b"\n")[:-1]
    assert lines[0].startswith(b"\x06\x09")
    assert all(line.startswith(b"\x04\x14") for line in lines[1:])
    assert max(len(line) + 1 for line in lines) <= 127


def test_a_frame_after_an_unterminated_text_command_is_still_found() -> None:
    events = SerialFrameReader().feed(b"name%" + encode_frame(b"\x01\x02\x03"))
    assert events == [Console(b"name%"), Frame(b"\x01\x02\x03")]


def test_continuation_without_start_is_reported_and_the_next_frame_recovers() -> None:
    wire = encode_frame(bytes(300))
    second_line = wire.split(b"\n")[1] + b"\n"
    events = SerialFrameReader().feed(second_line + encode_frame(b"ok"))
    assert isinstance(events[0], BadFrame)
    assert events[-1] == Frame(b"ok")


def test_wire_size_counts_base64_and_line_framing() -> None:
    assert frame_wire_bytes(380) == len(encode_frame(bytes(380))) == 527


def test_responses_mirror_the_request_and_parse_with_the_smp_models() -> None:
    request = ImageUploadWriteRequest(off=0, data=b"x", len=1)
    header = parse_header(request.BYTES)
    reply = encode_response(header, {"off": 1234, "match": True})
    reply_header = parse_header(reply)
    assert is_response(reply_header) and not is_response(header)
    assert (reply_header.group_id, reply_header.command_id, reply_header.sequence) == (1, 1, header.sequence)
    assert ImageUploadWriteResponse.loads(reply).off == 1234  # the smp package reads it as its own


def test_v2_errors_carry_the_group_and_v1_style_errors_a_bare_rc() -> None:
    header = parse_header(EchoWriteRequest(d="x").BYTES)
    assert cbor2.loads(error_response(header, 27)[8:]) == {"err": {"group": 0, "rc": 27}}
    assert cbor2.loads(error_response(header, 8, group_error=False)[8:]) == {"rc": 8}


def test_a_message_shorter_than_a_header_is_malformed() -> None:
    try:
        parse_header(b"\x00\x01")
    except MalformedMessage as exc:
        assert "8-byte" in str(exc)
    else:
        raise AssertionError("a 2-byte message parsed as SMP")
