"""The C MLPerf Tiny DUT parser and responder against wedge/firmware/protocol/dut.py and the virtual board's DUT
server: the same reply bytes for any command stream (split anywhere, overlong, garbage), and inference runs
printing what the reference firmware prints."""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Iterator

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.device_c.core import Core
from tests.firmware.firmware_models import RING
from wedge.boards import load as load_board
from wedge.firmware.protocol import dut
from wedge.firmware.virtual import dut_server

COMMAND_BYTES = 80  # WEDGE_DUT_CMD_BYTES, the reference's EE_CMD_SIZE
INPUT_CAP = 48      # the C session's db buffer (MAX_DB_INPUT_SIZE)


def virtual_config() -> dict[str, str]:
    """What the C responder is configured with to answer as the virtual board does without a model."""
    compute = load_board(RING).compute
    return {"firmware": dut_server.FIRMWARE, "device": "dut", "vendor": f"{dut_server.VENDOR} virtual {RING}",
            "model": "none",
            "timer": f"wall clock; inference paced at {compute.cycles_per_mac} cycles/MAC at {compute.clock_hz} Hz"}


@contextlib.contextmanager
def virtual_server() -> Iterator[tuple[dut_server.DutServer, list[str]]]:
    """The virtual board's DUT server (no model), its commands collected instead of queued to a worker."""
    with contextlib.ExitStack() as stack:
        for name, value in (("MAX_COMMAND_BYTES", COMMAND_BYTES), ("MAX_DB_INPUT_BYTES", INPUT_CAP)):
            original = getattr(dut_server, name)
            setattr(dut_server, name, value)
            stack.callback(setattr, dut_server, name, original)
        server = dut_server.DutServer(load_board(RING), lambda: None, lambda _data: None)
        texts: list[str] = []
        server._enqueue = texts.append  # type: ignore[method-assign]
        yield server, texts


commands = st.sampled_from([
    b"name", b"profile", b"help", b"results", b"db print", b"db load 8", b"db load 100", b"db load 0", b"db load",
    b"db load -3", b"db load 99999999999", b"db 0011aaBBccDD", b"db 00112233445566778899", b"db 0", b"db zz",
    b"db", b"infer", b"infer 2", b"infer 0", b"infer 3 x", b"infer -1 4", b"infer 1 -2", b"infer 12x",
    b"bogus", b"", b"   ", b"\tname\r\n", b"na me", b"db \xff\xfe", b"infer '\"", b"infer \x01\\", b"infer 4294967296",
    b"db load 2147483647", b"db load 2147483648", b"infer -2147483648", b"x" * 120, b"db " + b"ab" * 50,
])
noise = st.binary(max_size=20).map(lambda b: b.replace(b"%", b"")) | st.text(
    alphabet=" \t\x0b\x0c\x1c\x1fdbinfeloadprt0123456789abcxyz-'\"\\", max_size=20).map(str.encode)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(commands | noise, min_size=1, max_size=8), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_replies_are_the_virtual_boards_byte_for_byte(core: Core, errors: dict[str, int], pieces: list[bytes],
                                                      cuts: list[int]) -> None:
    stream = b"%".join(pieces) + b"%"
    session = core.dut_new(virtual_config(), INPUT_CAP)
    try:
        got = bytearray()
        rcs = []
        at = 0
        for cut in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
            rc, out = core.dut_feed(session, stream[at:cut])
            got += out
            rcs.append(rc)
            at = cut
        with virtual_server() as (server, texts):
            server.feed(stream)
            expected = b"".join(dut.line(item) for text in texts for item in server.handle(text))
        assert bytes(got) == expected
        assert got.count(b"m-ready\r\n") == stream.count(b"%")
        overlong = any(len(piece) > COMMAND_BYTES for piece in stream.split(b"%"))
        assert (errors["WEDGE_ERR_RANGE"] in rcs) == overlong
        assert set(rcs) <= {0, errors["WEDGE_ERR_RANGE"]}
    finally:
        core.drop(session)


@settings(max_examples=300, deadline=None)
@given(text=st.binary(max_size=90))
def test_the_parser_agrees_with_parse_command_on_any_bytes(core: Core, errors: dict[str, int], text: bytes) -> None:
    rc, c = core.dut_parse(text)
    try:
        command = dut.parse_command(text.decode("ascii", errors="replace"))
    except dut.DutProtocolError:
        assert rc == errors["WEDGE_ERR_MALFORMED"]
        return
    assert rc == 0
    if isinstance(command, dut.DbLoad):
        assert c["size_bytes"] == command.size_bytes
    elif isinstance(command, dut.DbData):
        assert bytes.fromhex(c["hex"].decode()) == command.data
    elif isinstance(command, dut.Infer):
        assert (c["runs"], c["warmup_runs"]) == (command.runs, command.warmup_runs)


@settings(max_examples=500, deadline=None)
@given(value=st.floats(width=32, allow_nan=True, allow_infinity=True))
def test_results_values_print_as_python_prints_them(core: Core, value: float) -> None:
    assert core.format_f32(value) == dut.format_value(value)


def test_results_formatting_at_the_edges(core: Core) -> None:
    edges = [0.0, -0.0, 1e-45, -1e-45, 1.17549435e-38, 3.4028235e38, 1e-5, 9.9999999e-5, 1e-4, 123456789.0,
             999999999.0, 1e9, 0.1, 1 / 3, 16777216.0, 5e-324]
    bits = [0x3F800001, 0x4E6E6B28, 0x7F7FFFFF, 0x00000001, 0x007FFFFF, 0x00800000, 0x7FC00000, 0xFFC00000]
    values = [float(np.float32(v)) for v in edges] + [struct.unpack("<f", struct.pack("<I", b))[0] for b in bits]
    for value in values:
        assert core.format_f32(value) == dut.format_value(value), value


def fake_outputs(data: bytes, count: int) -> list[float]:
    """What the host port's fake runtime outputs: (sum of the input bytes + i) / 8, as float32."""
    return [float(np.float32(np.float32(sum(data) + i) / np.float32(8))) for i in range(count)]


def test_an_inference_run_prints_what_the_reference_firmware_prints(core: Core) -> None:
    runtime = {"arena_bytes": 4096, "input_bytes": 12, "output_count": 4}
    session = core.dut_new({**virtual_config(), "model": "kws01", "timer": None}, INPUT_CAP, runtime, step_us=250)
    try:
        data = bytes(range(200, 212))
        stream = b"".join(dut.encode_command(c) for c in (dut.DbLoad(12), *dut.db_commands(data, COMMAND_BYTES),
                                                          dut.Infer(3, 2), dut.Results(), dut.DbPrint(), dut.Profile()))
        _, out = core.dut_feed(session, stream)
        lines = dut.LineSplitter().feed(out)
        laps = [dut.parse_reply(item).value for item in lines if item.startswith("m-lap-us-")]
        assert len(laps) == 2 and laps[0] < laps[1]
        values = fake_outputs(data, 4)
        assert lines == [
            dut.expecting_line(12), dut.READY, dut.LOAD_DONE, dut.READY,
            dut.warmup_start_line(2), dut.WARMUP_DONE, dut.infer_start_line(3), dut.lap_line(laps[0]),
            dut.lap_line(laps[1]), dut.INFER_DONE, dut.results_line(values), dut.READY,
            dut.results_line(values), dut.READY,
            *dut.buffer_lines(data), dut.READY,
            *dut.profile_lines(dut_server.FIRMWARE, "kws01"), dut.READY,
        ]
        assert core.dut_runtime_counters(session)["inferences"] == 5
        assert [dut.parse_reply(item).value for item in lines if item.startswith("m-results")][0] == tuple(values)
    finally:
        core.drop(session)


def test_a_short_buffer_warns_and_a_failing_runtime_says_so(core: Core) -> None:
    runtime = {"arena_bytes": 4096, "input_bytes": 16, "output_count": 2, "fail_infer_after": 3}
    session = core.dut_new(virtual_config(), INPUT_CAP, runtime)
    try:
        _, out = core.dut_feed(session, b"db load 4%db 01020304%infer 1 1%results%infer 5 0%")
        lines = dut.LineSplitter().feed(out)
        assert lines[:5] == [dut.expecting_line(4), dut.READY, dut.LOAD_DONE, dut.READY,
                             "Input db has 4 elemented, expected 16"]
        assert lines[-6:] == ["Input db has 4 elemented, expected 16", dut.warmup_start_line(0), dut.WARMUP_DONE,
                              dut.infer_start_line(5), dut.error_line("inference failed: runtime error -42"),
                              dut.READY]
        results = [dut.parse_reply(item).value for item in lines if item.startswith("m-results")]
        assert results[0] == tuple(fake_outputs(bytes([1, 2, 3, 4]), 2)) == results[1]
    finally:
        core.drop(session)


def test_before_any_inference_results_are_zeros_and_a_reset_forgets_everything(core: Core) -> None:
    session = core.dut_new(virtual_config(), INPUT_CAP, {"arena_bytes": 1, "input_bytes": 4, "output_count": 3})
    try:
        rc, boot = core.dut_boot(session)
        assert rc == 0
        boot_lines = dut.LineSplitter().feed(boot)
        assert [boot_lines[0], *boot_lines[2:]] == [dut.TIMESTAMP_MODE, dut.INIT_DONE, dut.READY]
        assert dut.parse_reply(boot_lines[1]).kind == "lap"
        _, out = core.dut_feed(session, b"results%db load 4%db 0a0b")
        assert dut.LineSplitter().feed(out) == [dut.results_line([0.0] * 3), dut.READY, dut.expecting_line(4),
                                                dut.READY]
        core.dut_reset(session)
        _, out = core.dut_feed(session, b"0c0d%db print%")  # the half command before the reset is gone
        assert dut.LineSplitter().feed(out) == [dut.error_line("Unknown command: 0c0d"), dut.READY, dut.READY]
    finally:
        core.drop(session)


def test_timestamps_come_from_the_port_clock(core: Core) -> None:
    session = core.dut_new(virtual_config(), INPUT_CAP, step_us=1000)
    try:
        _, out = core.dut_feed(session, b"timestamp%timestamp%")
        laps = [dut.parse_reply(item).value for item in dut.LineSplitter().feed(out) if item.startswith("m-lap")]
        assert len(laps) == 2 and laps[1] - laps[0] == 1000
        assert not math.isnan(laps[0])
    finally:
        core.drop(session)
