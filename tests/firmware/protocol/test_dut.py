"""The MLPerf Tiny DUT protocol text: commands and replies round-trip, and decoders never crash on junk."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wedge.firmware.protocol import dut

commands = st.one_of(
    st.just(dut.Name()), st.just(dut.Profile()), st.just(dut.Timestamp()), st.just(dut.Results()),
    st.integers(1, 1 << 20).map(dut.DbLoad),
    st.binary(min_size=1, max_size=64).map(dut.DbData),
    st.builds(dut.Infer, st.integers(1, 10_000), st.integers(0, 1000)),
)


@given(commands)
def test_every_command_parses_back_from_its_wire_text(command: dut.Command) -> None:
    wire = dut.encode_command(command)
    assert wire.endswith(b"%") and b"\n" not in wire
    assert dut.parse_command(wire[:-1].decode()) == command


def test_command_text_matches_the_reference_runner() -> None:
    assert dut.encode_command(dut.DbLoad(3072)) == b"db load 3072%"
    assert dut.encode_command(dut.DbData(b"\x00\xff")) == b"db 00ff%"
    assert dut.encode_command(dut.Infer(1, 0)) == b"infer 1 0%"
    assert dut.parse_command("infer") == dut.Infer(1, 10)  # the reference's defaults: N=1, W=10


@pytest.mark.parametrize("text, reason", [
    ("db", "requires a subcommand"), ("db load", "requires the # of bytes"),
    ("db load 0", "must be >0"), ("db abc", "Insufficent number of hex digits"), ("db zz", "Invalid hex"),
    ("infer 0", "must be >0"), ("infer 1 -1", "must be >=0"), ("infer x", "integer"), ("launch", "Unknown command"),
    # a firmware reads numbers into a 32-bit int (atoi): past that it says so instead of wrapping around
    ("db load 2147483648", "does not fit in 32 bits"), ("infer 1 -2147483649", "does not fit in 32 bits"),
])
def test_bad_commands_are_refused_with_the_reference_reason(text: str, reason: str) -> None:
    with pytest.raises(dut.DutProtocolError, match=reason):
        dut.parse_command(text)


@given(st.binary(min_size=1, max_size=500), st.integers(20, 200))
def test_db_commands_fit_the_buffer_and_carry_every_byte(data: bytes, buffer_bytes: int) -> None:
    pieces = list(dut.db_commands(data, buffer_bytes))
    assert b"".join(p.data for p in pieces) == data
    assert all(len(dut.encode_command(p)) <= buffer_bytes for p in pieces)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=20))
def test_results_lines_give_back_every_float32_exactly(values: list[float]) -> None:
    reply = dut.parse_reply(dut.results_line(values))
    assert reply.kind == "results"
    assert np.array_equal(np.asarray(reply.value, dtype=np.float32), np.asarray(values, dtype=np.float32))


@pytest.mark.parametrize("text, kind, value", [
    ("m-ready", "ready", None),
    ("m-name-dut-[ML Commons]", "name", ("dut", "ML Commons")),
    ("m-profile-[MLPerf Tiny Firmware V0.1.0]", "profile", "MLPerf Tiny Firmware V0.1.0"),
    ("m-model-[ic01]", "model", "ic01"),
    ("m-[Expecting 3072 bytes]", "expecting", 3072),
    ("m-load-done", "load-done", None),
    ("m-warmup-start-10", "warmup-start", 10),
    ("m-infer-start-1", "infer-start", 1),
    ("m-lap-us-2789341993", "lap", 2789341993),
    ("m-results-[0.992,0.000,0.004]", "results", (0.992, 0.0, 0.004)),
    ("e-[Unknown command: launch]", "error", "Unknown command: launch"),
    ("*** Booting wedge virtual board ***", "other", None),
])
def test_reply_lines_of_real_firmware_are_understood(text: str, kind: str, value: object) -> None:
    reply = dut.parse_reply(text)
    assert reply.kind == kind
    if value is not None:
        assert reply.value == value


def test_a_results_line_with_a_non_number_is_garbage() -> None:
    with pytest.raises(dut.DutProtocolError, match="non-number"):
        dut.parse_reply("m-results-[0.1,zz]")


@given(st.binary(max_size=300))
def test_reply_parsing_never_crashes_on_junk(data: bytes) -> None:
    splitter = dut.LineSplitter()
    for text in splitter.feed(data):
        try:
            dut.parse_reply(text)
        except dut.DutProtocolError:
            pass


@given(st.lists(st.sampled_from(["m-ready", "m-lap-us-5", "m-results-[1,2]"]), max_size=10), st.integers(1, 7))
def test_lines_split_the_same_however_the_bytes_arrive(lines: list[str], step: int) -> None:
    wire = b"".join(dut.line(text) for text in lines)
    splitter = dut.LineSplitter()
    seen = []
    for start in range(0, len(wire), step):
        seen += splitter.feed(wire[start : start + step])
    assert seen == lines


def test_an_empty_command_is_a_command_of_its_own() -> None:
    assert dut.parse_command("") == dut.Empty() and dut.encode_command(dut.Empty()) == b"%"
