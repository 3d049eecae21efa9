"""The virtual board's MLPerf Tiny DUT server: the `%`-terminated commands, on their own UART or on the one
shared with SMP.

Followed: mlcommons/tiny api/internally_implemented.c (ee_serial_callback: a command buffer of EE_CMD_SIZE whose
last byte is overwritten past the end; ee_benchmark_initialize's boot lines; ee_profile_parse: profile, help,
infer N [W=10]; ee_buffer_parse: db load with its MAX_DB_INPUT_SIZE refusal, db print, db hex; results via
th_results) and the reference submitter_implemented.c (th_load_tensor warns on a short buffer and runs anyway).
Inference runs the booted model in TFLite-Micro; an inference takes the board's modelled time (MACs x cycles
per MAC / clock) on the wall clock, so `m-lap-us` (a wall clock) moves at the pace a runner timing a loop
sees. Host compute time comes in an extra `m-host-wall-us`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np

from wedge.boards import Board
from wedge.errors import first_line
from wedge.firmware.protocol import dut
from wedge.firmware.virtual.runtime import ModelRuntime
from wedge.runtime.artifacts.tflite_info import tflite_info
from wedge.runtime.types import ArtifactError, EngineError

FIRMWARE: Final[str] = "wedge virtual board DUT 1.0 (MLPerf Tiny API)"
VENDOR: Final[str] = "wedge"
# The virtual firmware's EE_CMD_SIZE (the reference has 80): bigger `db` lines mean fewer round trips. Past it,
# every further byte overwrites the last one, as ee_serial_callback clamps g_cmd_pos.
MAX_COMMAND_BYTES: Final[int] = 8192
# MAX_DB_INPUT_SIZE: the input buffer holds one model input; the virtual board's is 1 MiB.
MAX_DB_INPUT_BYTES: Final[int] = 1 << 20


class DutServer:
    """Parses DUT commands from console bytes and answers them; one command at a time, in arrival order."""

    def __init__(self, board: Board, runtime: Callable[[], ModelRuntime | None], send: Callable[[bytes], None]) -> None:
        self._board = board
        self._runtime = runtime
        self._send = send
        self._pending = bytearray()
        self._output_zeros: tuple[float, ...] | None = None
        self._queue: asyncio.Queue[str] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._buffer = bytearray()
        self._expected_bytes = 0
        self._last_results: tuple[float, ...] | None = None
        self._macs: dict[bytes, int] = {}
        self._started = time.monotonic()

    def feed(self, data: bytes) -> None:
        """Console bytes from the UART (in the board's event loop)."""
        parts = data.split(dut.TERMINATOR)
        for index, part in enumerate(parts):
            self._take(part)
            if index < len(parts) - 1:
                raw = bytes(self._pending)
                self._pending.clear()
                self._enqueue(raw.decode("ascii", errors="replace").strip())

    def _take(self, data: bytes) -> None:
        room = MAX_COMMAND_BYTES - len(self._pending)
        if len(data) <= room:
            self._pending += data
            return
        self._pending += data[:room]
        if data[room:]:
            self._pending[-1:] = data[-1:]  # g_cmd_pos stays at EE_CMD_SIZE: the last byte keeps being replaced

    def boot(self) -> None:
        """ee_benchmark_initialize's lines, after the application is up."""
        self._started = time.monotonic()
        self._send(b"".join(dut.line(text) for text in (dut.TIMESTAMP_MODE, dut.lap_line(self.now_us()),
                                                         dut.INIT_DONE, dut.READY)))

    def reset(self) -> None:
        """A reboot clears RAM: the input buffer, the last results and the half-received command."""
        self._pending.clear()
        self._buffer.clear()
        self._expected_bytes = 0
        self._last_results = None

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    # -- dispatch -----------------------------------------------------------------------------------------

    def _enqueue(self, text: str) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.ensure_future(self._work(self._queue))
        self._queue.put_nowait(text)

    async def _work(self, queue: asyncio.Queue[str]) -> None:
        while True:
            text = await queue.get()
            lines = await asyncio.to_thread(self.handle, text)
            self._send(b"".join(dut.line(item) for item in lines))

    def now_us(self) -> int:
        return int((time.monotonic() - self._started) * 1e6)

    def handle(self, text: str) -> list[str]:
        """The reply lines to one command (`m-ready` last), as the reference parser prints them."""
        try:
            command = dut.parse_command(text)
        except dut.DutProtocolError as exc:
            return [dut.error_line(str(exc)), dut.READY]
        if isinstance(command, dut.Empty):
            return [dut.READY]
        return [*self._run(command), dut.READY]

    def _run(self, command: dut.Command) -> list[str]:
        runtime = self._runtime()
        if isinstance(command, dut.Name):
            return [dut.name_line("dut", f"{VENDOR} virtual {self._board.name}")]
        if isinstance(command, dut.Timestamp):
            return [dut.lap_line(self.now_us())]
        if isinstance(command, dut.Profile):
            # TH_MODEL_VERSION: the runner's test-table key (kws01, vww01, ...): the manifest's model name.
            model = "none" if runtime is None else runtime.image.manifest.model_name
            compute = self._board.compute
            return [*dut.profile_lines(FIRMWARE, model),
                    dut.timer_line(f"wall clock; inference paced at {compute.cycles_per_mac} cycles/MAC at "
                                   f"{compute.clock_hz} Hz")]
        if isinstance(command, dut.Help):
            return dut.help_lines(FIRMWARE)
        if isinstance(command, dut.DbLoad):
            self._buffer.clear()
            self._expected_bytes = command.size_bytes
            if command.size_bytes > MAX_DB_INPUT_BYTES:
                return [f"Supplied buffer size {command.size_bytes} exceeds maximum of {MAX_DB_INPUT_BYTES}"]
            return [dut.expecting_line(command.size_bytes)]
        if isinstance(command, dut.DbPrint):
            return dut.buffer_lines(bytes(self._buffer))
        if isinstance(command, dut.DbData):
            return self._load(command.data)
        if isinstance(command, dut.Results):
            if self._last_results is None:
                # th_results prints the output tensor whatever it holds: before any inference, its zeros.
                return [dut.results_line(self._zeros(runtime))]
            return [dut.results_line(self._last_results)]
        assert isinstance(command, dut.Infer)
        return self._infer(runtime, command)

    def _zeros(self, runtime: ModelRuntime | None) -> tuple[float, ...]:
        if runtime is None:
            return ()
        count = sum(int(np.prod([max(int(d), 1) for d in spec.shape])) for spec in runtime.engine.outputs)
        return (0.0,) * count

    def _load(self, data: bytes) -> list[str]:
        if self._expected_bytes == 0 or self._expected_bytes > MAX_DB_INPUT_BYTES:
            return []  # the reference writes nowhere useful and says nothing
        room = self._expected_bytes - len(self._buffer)
        self._buffer += data[:room]
        # The reference ignores digits past the announced size, and says done once the buffer is full.
        return [dut.LOAD_DONE] if len(self._buffer) == self._expected_bytes else []

    def _macs_of(self, runtime: ModelRuntime) -> int:
        key = runtime.image.image_hash
        if key not in self._macs:
            try:
                self._macs[key] = tflite_info(Path("model.tflite"), runtime.image.parts.body).macs
            except ArtifactError:
                self._macs[key] = 0
        return self._macs[key]

    def _feeds(self, runtime: ModelRuntime) -> tuple[dict[str, np.ndarray], str | None]:
        """The input tensors from the buffer, and the reference's warning when the buffer is short (the missing
        bytes keep what the tensor held: zeros here)."""
        feeds: dict[str, np.ndarray] = {}
        need = sum(int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize for spec in runtime.engine.inputs)
        data = bytes(self._buffer[:need])
        warning = None if len(data) == need else f"Input db has {len(data)} elemented, expected {need}"
        data = data.ljust(need, b"\0")
        offset = 0
        for spec in runtime.engine.inputs:
            size = int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize
            array = np.frombuffer(data[offset : offset + size], dtype=spec.dtype)
            feeds[spec.name] = array.reshape(spec.shape)
            offset += size
        return feeds, warning

    def _infer(self, runtime: ModelRuntime | None, command: dut.Infer) -> list[str]:
        if runtime is None:
            return [dut.error_line("no model is running")]
        feeds, warning = self._feeds(runtime)
        latency_s = self._board.estimate_latency_s(self._macs_of(runtime))
        lines = [] if warning is None else [warning]
        lines.append(dut.warmup_start_line(command.warmup_runs))
        try:
            self._paced(runtime, feeds, latency_s, command.warmup_runs)
            lines += [dut.WARMUP_DONE, dut.infer_start_line(command.runs)]
            begin_us = self.now_us()
            outputs, wall_us = self._paced(runtime, feeds, latency_s, command.runs)
            end_us = self.now_us()
        except EngineError as exc:
            return [*lines, dut.error_line(f"inference failed: {first_line(exc)}")]
        lines += [dut.lap_line(begin_us), dut.lap_line(end_us), dut.host_wall_line(wall_us), dut.INFER_DONE]
        self._last_results = _dequantized(runtime, outputs)
        lines.append(dut.results_line(self._last_results))
        return lines


    def _paced(self, runtime: ModelRuntime, feeds: dict[str, np.ndarray], latency_s: float,
               runs: int) -> tuple[dict[str, np.ndarray], int]:
        """`runs` inferences that take the board's modelled time on the wall clock (this thread is the board's
        CPU, busy for that long); returns the last outputs and the host compute time in µs."""
        started = time.monotonic()
        outputs: dict[str, np.ndarray] = {}
        for _ in range(runs):
            outputs = runtime.engine.run(feeds)
        spent = time.monotonic() - started
        if spent < runs * latency_s:
            time.sleep(runs * latency_s - spent)
        return outputs, int(spent * 1e6)


def _dequantized(runtime: ModelRuntime, outputs: dict[str, np.ndarray]) -> tuple[float, ...]:
    values: list[float] = []
    for spec in runtime.engine.outputs:
        array = np.asarray(outputs[spec.name])
        if spec.quant is not None and array.dtype.kind in "iu":
            array = spec.quant.dequantize(array)
        values += [float(v) for v in np.asarray(array, dtype=np.float32).ravel()]
    return tuple(values)
