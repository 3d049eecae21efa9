"""The virtual board's MLPerf Tiny DUT server: replies as the reference firmware, runs the booted model, and
shares the UART with SMP (a flash and DUT commands on the same port)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.firmware.firmware_models import pack
from wedge.boards import load as load_board
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.protocol import dut
from wedge.firmware.virtual.dut_server import DutServer
from wedge.firmware.virtual.runtime import start_runtime
from wedge.hil.dut_client import DutClient
from wedge.runtime.artifacts import inspect_model
from wedge.runtime.engines import open_engine

RING = load_board("ring-nrf52840")


@pytest.fixture
def server(tiny_model: Path, keys) -> DutServer:
    image = pack(tiny_model, keys, "1.0.0", name="fc")
    runtime, test = start_runtime(image, RING.budgets.arena_bytes)
    assert test.passed
    return DutServer(RING, lambda: runtime, lambda data: None)


def test_every_reply_ends_with_m_ready_even_for_unknown_commands(server: DutServer) -> None:
    assert server.handle("name") == ["m-name-dut-[wedge virtual ring-nrf52840]", "m-ready"]
    assert server.handle("launch") == ["e-[Unknown command: launch]", "m-ready"]


def test_infer_runs_the_model_and_times_it_with_the_cycle_model(server: DutServer, tiny_model: Path) -> None:
    sample = np.arange(64, dtype=np.int8)
    assert server.handle("db load 64") == ["m-[Expecting 64 bytes]", "m-ready"]
    assert server.handle(f"db {sample[:32].tobytes().hex()}") == ["m-ready"]
    assert server.handle(f"db {sample[32:].tobytes().hex()}") == ["m-load-done", "m-ready"]
    started = time.monotonic()
    replies = [dut.parse_reply(text) for text in server.handle("infer 4 1")]
    host_us = (time.monotonic() - started) * 1e6
    kinds = [r.kind for r in replies]
    assert kinds == ["warmup-start", "warmup-done", "infer-start", "lap", "lap", "host-wall", "infer-done",
                     "results", "ready"]
    laps = [r.value for r in replies if r.kind == "lap"]
    # m-lap-us is a wall clock and each inference takes at least the modelled time on it: a runner timing the
    # loop from the host sees the latency the laps report.
    modelled_us = 4 * RING.estimate_latency_s(inspect_model(tiny_model).macs) * 1e6
    assert modelled_us - 10 <= laps[1] - laps[0] <= host_us
    with open_engine(tiny_model, "tflm", arena_bytes=RING.budgets.arena_bytes) as engine:
        spec, out = engine.inputs[0], engine.outputs[0]
        expected = out.quant.dequantize(engine.run({spec.name: sample.reshape(spec.shape)})[out.name]).ravel()
    results = next(r.value for r in replies if r.kind == "results")
    assert np.array_equal(np.asarray(results, dtype=np.float32), expected)
    assert server.handle("results") == [dut.results_line(results), "m-ready"]


def test_infer_with_a_short_buffer_says_how_many_bytes_it_expected(server: DutServer) -> None:
    server.handle("db load 8")
    server.handle("db 0001020304050607")
    replies = server.handle("infer 1 0")
    # The reference's th_load_tensor warns and the inference runs on what there is.
    assert replies[0] == "Input db has 8 elemented, expected 64"
    assert any(line.startswith("m-results-[") for line in replies) and replies[-1] == "m-ready"


def test_reference_commands_answer_as_the_reference_firmware(server: DutServer) -> None:
    help_lines = server.handle("help")
    assert help_lines[0].startswith("wedge virtual board DUT") and "results      : Return the result fp32 vector" in help_lines
    assert server.handle("") == ["m-ready"]  # an empty `%`
    assert server.handle("results") == [dut.results_line([0.0] * 8), "m-ready"]  # the output tensor before any infer
    assert server.handle("db load 9999999") == ["Supplied buffer size 9999999 exceeds maximum of 1048576", "m-ready"]
    server.handle("db load 3")
    server.handle("db 0a0b0c")
    assert server.handle("db print") == ["m-buffer-0a-0b-0c", "m-ready"]
    assert server.handle("db 0g") == ["e-[Invalid hex digit '0g']", "m-ready"]


def test_the_command_buffer_is_bounded_as_ee_cmd_size_bounds_it() -> None:
    sent: list[bytes] = []
    server = DutServer(RING, lambda: None, sent.append)
    received: list[str] = []
    server._enqueue = received.append  # type: ignore[method-assign]
    server.feed(b"name" + b"x" * 10_000 + b"y%")
    # Past the buffer every byte overwrites the last: the command is cut at the bound, its last byte the last sent.
    assert len(received[0]) == 8192 and received[0].startswith("namexxx") and received[0].endswith("xy")


def test_boot_prints_the_reference_initialisation_lines() -> None:
    sent: list[bytes] = []
    DutServer(RING, lambda: None, sent.append).boot()
    lines = b"".join(sent).decode().split("\r\n")
    assert lines[0] == "m-timestamp-mode-performance" and lines[1].startswith("m-lap-us-")
    assert lines[2:4] == ["m-init-done", "m-ready"]


def test_without_a_model_infer_is_refused() -> None:
    empty = DutServer(RING, lambda: None, lambda data: None)
    assert empty.handle("infer 1 0") == ["e-[no model is running]", "m-ready"]


def test_dut_commands_and_smp_share_one_port_on_a_running_board(board, tiny_model: Path, keys) -> None:
    image = pack(tiny_model, keys, "1.0.0", name="fc")
    with DutClient(board.port) as client:
        assert client.profile().model == "none"
    flash_image(board.port, image, "fc", FlashOptions())
    with DutClient(board.port) as client:
        profile = client.profile()
        client.load(bytes(64))
        result = client.infer(3, 1)
    # m-model-[...] is the runner's test-table key: the manifest's model name.
    assert profile.model == "fc" and "wall clock" in (profile.timer or "")
    assert len(result.results) == 8 and result.device_us > 0


def test_with_its_own_uart_the_dut_protocol_leaves_the_smp_port_alone(tmp_path: Path, keys, tiny_model: Path) -> None:
    from wedge.firmware.virtual.processes import EmulatorProcess
    from wedge.hil.dut_client import DutClient
    from wedge.hil.errors import DutError

    dut_link = tmp_path / "dut"
    board = EmulatorProcess(tmp_path / "board", keys.private_path, extra=("--dut-link", str(dut_link)))
    board.start()
    try:
        flash_image(board.port, pack(tiny_model, keys, "1.0.0", name="fc"), "fc", FlashOptions())
        with DutClient(str(dut_link)) as client:
            assert client.profile().model == "fc"
        # As on a dev kit whose mcumgr UART (uart_mcumgr) drops every line that is not an SMP frame.
        with DutClient(board.port, timeout_s=1.0) as client, pytest.raises(DutError, match="did not answer"):
            client.name()
    finally:
        board.stop()
