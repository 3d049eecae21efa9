"""The virtual board's MLPerf Tiny DUT server: the `%`-terminated commands on the UART it shares with SMP.

Inference runs the booted model in TFLite-Micro; the `m-lap-us` clock is the board's cycle model (MACs x cycles
per MAC / clock), not host time, and says so in `profile%` (host wall time comes in an extra `m-host-wall-us`).
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
# The reference buffer (MAX_DB_INPUT_SIZE) is 10 KB on small parts; the virtual board holds any model input.
MAX_COMMAND_BYTES: Final[int] = 8192
# Longer input without a `%` is garbage; the reference firmware clamps its command buffer the same way.
_MAX_PENDING_BYTES: Final[int] = MAX_COMMAND_BYTES * 2


class DutServer:
    """Parses DUT commands from console bytes and answers them; one command at a time, in arrival order."""

    def __init__(self, board: Board, runtime: Callable[[], ModelRuntime | None], send: Callable[[bytes], None]) -> None:
        self._board = board
        self._runtime = runtime
        self._send = send
        self._pending = bytearray()
        self._queue: asyncio.Queue[str] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._buffer = bytearray()
        self._expected_bytes = 0
        self._last_results: tuple[float, ...] | None = None
        self._macs: dict[bytes, int] = {}
        self._started = time.monotonic()
        # Modelled minus real time of all inferences so far: the virtual clock runs at the cycle model's pace.
        self._offset_us = 0

    def feed(self, data: bytes) -> None:
        """Console bytes from the UART (in the board's event loop)."""
        self._pending += data
        while (end := self._pending.find(dut.TERMINATOR)) != -1:
            raw = bytes(self._pending[:end])
            del self._pending[: end + 1]
            self._enqueue(raw.decode("ascii", errors="replace").strip())
        if len(self._pending) > _MAX_PENDING_BYTES:
            self._pending.clear()

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
        if not text:
            return
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
        return int((time.monotonic() - self._started) * 1e6) + self._offset_us

    def handle(self, text: str) -> list[str]:
        """The reply lines to one command (`m-ready` last), as the reference parser prints them."""
        try:
            command = dut.parse_command(text) if len(text) <= MAX_COMMAND_BYTES else None
        except dut.DutProtocolError as exc:
            return [dut.error_line(str(exc)), dut.READY]
        if command is None:
            return [dut.error_line(f"command longer than {MAX_COMMAND_BYTES} bytes"), dut.READY]
        return [*self._run(command), dut.READY]

    def _run(self, command: dut.Command) -> list[str]:
        runtime = self._runtime()
        if isinstance(command, dut.Name):
            return [dut.name_line("dut", f"{VENDOR} virtual {self._board.name}")]
        if isinstance(command, dut.Timestamp):
            return [dut.lap_line(self.now_us())]
        if isinstance(command, dut.Profile):
            model = "none" if runtime is None else \
                f"{runtime.image.manifest.model_name} {runtime.image.manifest.model_version}"
            compute = self._board.compute
            return [*dut.profile_lines(FIRMWARE, model),
                    dut.timer_line(f"cycle model {compute.cycles_per_mac} cycles/MAC at {compute.clock_hz} Hz")]
        if isinstance(command, dut.DbLoad):
            self._buffer.clear()
            self._expected_bytes = command.size_bytes
            return [dut.expecting_line(command.size_bytes)]
        if isinstance(command, dut.DbData):
            return self._load(command.data)
        if isinstance(command, dut.Results):
            if self._last_results is None:
                return [dut.error_line("no results yet: run infer first")]
            return [dut.results_line(self._last_results)]
        assert isinstance(command, dut.Infer)
        return self._infer(runtime, command)

    def _load(self, data: bytes) -> list[str]:
        if self._expected_bytes == 0:
            return [dut.error_line("db data before db load")]
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

    def _feeds(self, runtime: ModelRuntime) -> dict[str, np.ndarray] | str:
        feeds: dict[str, np.ndarray] = {}
        need = sum(int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize for spec in runtime.engine.inputs)
        if len(self._buffer) != need:
            return f"Input db has {len(self._buffer)} bytes, expected {need}"
        offset = 0
        for spec in runtime.engine.inputs:
            size = int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize
            array = np.frombuffer(bytes(self._buffer[offset : offset + size]), dtype=spec.dtype)
            feeds[spec.name] = array.reshape(spec.shape)
            offset += size
        return feeds

    def _infer(self, runtime: ModelRuntime | None, command: dut.Infer) -> list[str]:
        if runtime is None:
            return [dut.error_line("no model is running")]
        feeds = self._feeds(runtime)
        if isinstance(feeds, str):
            return [dut.error_line(feeds)]
        latency_us = round(self._board.estimate_latency_s(self._macs_of(runtime)) * 1e6)
        lines = [dut.warmup_start_line(command.warmup_runs)]
        try:
            for _ in range(command.warmup_runs):
                runtime.engine.run(feeds)
            lines += [dut.WARMUP_DONE, dut.infer_start_line(command.runs)]
            begin_us = self.now_us()
            started = time.perf_counter()
            outputs: dict[str, np.ndarray] = {}
            for _ in range(command.runs):
                outputs = runtime.engine.run(feeds)
            wall_us = int((time.perf_counter() - started) * 1e6)
        except EngineError as exc:
            return [*lines, dut.error_line(f"inference failed: {first_line(exc)}")]
        self._offset_us += command.runs * latency_us - wall_us
        lines += [dut.lap_line(begin_us), dut.lap_line(begin_us + command.runs * latency_us),
                  dut.host_wall_line(wall_us), dut.INFER_DONE]
        self._last_results = _dequantized(runtime, outputs)
        lines.append(dut.results_line(self._last_results))
        return lines


def _dequantized(runtime: ModelRuntime, outputs: dict[str, np.ndarray]) -> tuple[float, ...]:
    values: list[float] = []
    for spec in runtime.engine.outputs:
        array = np.asarray(outputs[spec.name])
        if spec.quant is not None and array.dtype.kind in "iu":
            array = spec.quant.dequantize(array)
        values += [float(v) for v in np.asarray(array, dtype=np.float32).ravel()]
    return tuple(values)
