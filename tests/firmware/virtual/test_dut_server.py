"""The virtual board's MLPerf Tiny DUT server: replies as the reference firmware, runs the booted model, and
shares the UART with SMP (a flash and DUT commands on the same port)."""

from __future__ import annotations

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
    replies = [dut.parse_reply(text) for text in server.handle("infer 4 1")]
    kinds = [r.kind for r in replies]
    assert kinds == ["warmup-start", "warmup-done", "infer-start", "lap", "lap", "host-wall", "infer-done",
                     "results", "ready"]
    laps = [r.value for r in replies if r.kind == "lap"]
    assert laps[1] - laps[0] == 4 * round(RING.estimate_latency_s(inspect_model(tiny_model).macs) * 1e6)
    with open_engine(tiny_model, "tflm", arena_bytes=RING.budgets.arena_bytes) as engine:
        spec, out = engine.inputs[0], engine.outputs[0]
        expected = out.quant.dequantize(engine.run({spec.name: sample.reshape(spec.shape)})[out.name]).ravel()
    results = next(r.value for r in replies if r.kind == "results")
    assert np.array_equal(np.asarray(results, dtype=np.float32), expected)
    assert server.handle("results") == [dut.results_line(results), "m-ready"]


def test_infer_with_a_short_buffer_says_how_many_bytes_it_expected(server: DutServer) -> None:
    server.handle("db load 8")
    server.handle("db 0001020304050607")
    assert server.handle("infer 1 0")[-2:] == ["e-[Input db has 8 bytes, expected 64]", "m-ready"]


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
    assert profile.model == "fc 1.0.0" and "cycle model" in (profile.timer or "")
    assert len(result.results) == 8 and result.device_us > 0
