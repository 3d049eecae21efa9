"""The host side of the MLPerf Tiny DUT protocol: send one command, collect reply lines until `m-ready`.

Opens the port (path or pyserial URL) exclusively; lines that are not DUT replies (boot banner, SMP frames, logs)
are skipped. A DUT that stays silent or answers garbage raises DutError with the tail of what it printed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import serial

from wedge.firmware.protocol import dut
from wedge.firmware.serial_port import open_failure, open_serial
from wedge.hil.errors import DutError

DEFAULT_TIMEOUT_S: Final[float] = 10.0
_READ_BYTES: Final[int] = 4096
_TAIL_CHARS: Final[int] = 300
_TRANSCRIPT_LINES: Final[int] = 64


@dataclass(frozen=True)
class InferResult:
    """One `infer N W%`: the device's lap times, its outputs, and what the host measured around it."""

    runs: int
    warmup_runs: int
    device_us: int
    results: tuple[float, ...]
    host_round_trip_s: float
    device_host_wall_us: int | None

    @property
    def latency_us(self) -> float:
        return self.device_us / self.runs


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    vendor: str
    firmware: str
    model: str
    timer: str | None


class DutClient:
    """One DUT on one port; use as a context manager."""

    def __init__(self, port: str, *, baud: int = 115_200, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_command_bytes: int = dut.REFERENCE_COMMAND_BYTES) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.max_command_bytes = max_command_bytes
        self._baud = baud
        self._serial: serial.SerialBase | None = None
        self._lines = dut.LineSplitter()
        self.transcript: list[str] = []

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        try:
            self._serial = open_serial(self.port, self._baud, timeout_s=0.05)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise DutError(open_failure(self.port, exc)) from None

    def close(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    # -- commands -------------------------------------------------------------------------------------------

    def command(self, command: dut.Command, timeout_s: float | None = None) -> list[dut.Reply]:
        """Send one command; the DUT's replies up to (not including) `m-ready`. DutError on `e-[...]`."""
        replies = self._exchange(dut.encode_command(command), timeout_s or self.timeout_s)
        errors = [r for r in replies if r.kind == "error"]
        if errors:
            raise DutError(f"the DUT on {self.port} refused {dut.encode_command(command)[:24]!r}: {errors[0].value}")
        return replies

    def name(self) -> tuple[str, str]:
        reply = self._one(self.command(dut.Name()), "name")
        assert isinstance(reply.value, tuple)
        return reply.value

    def profile(self) -> DeviceProfile:
        replies = self.command(dut.Profile())
        name, vendor = self.name()
        kinds = {r.kind: r.value for r in replies}
        if "profile" not in kinds:
            raise DutError(f"the DUT on {self.port} answered profile% without m-profile: {self._tail()}")
        return DeviceProfile(name, vendor, str(kinds["profile"]), str(kinds.get("model", "")),
                             None if "timer" not in kinds else str(kinds["timer"]))

    def timestamp_us(self) -> int:
        value = self._one(self.command(dut.Timestamp()), "lap").value
        assert isinstance(value, int)
        return value

    def load(self, data: bytes) -> None:
        """Fill the DUT's input buffer with `data` (db load, then db hex pieces)."""
        self.command(dut.DbLoad(len(data)))
        done = False
        for piece in dut.db_commands(data, self.max_command_bytes):
            done = any(r.kind == "load-done" for r in self.command(piece))
        if not done:
            raise DutError(f"the DUT on {self.port} did not say m-load-done after {len(data)} bytes")

    def infer(self, runs: int, warmup_runs: int, timeout_s: float | None = None) -> InferResult:
        started = time.perf_counter()
        replies = self.command(dut.Infer(runs, warmup_runs), timeout_s)
        round_trip = time.perf_counter() - started
        laps = [r.value for r in replies if r.kind == "lap"]
        results = [r.value for r in replies if r.kind == "results"]
        if len(laps) != 2 or len(results) != 1:
            raise DutError(f"the DUT on {self.port} answered infer with {len(laps)} lap line(s) and "
                           f"{len(results)} result line(s) (expected 2 and 1): {self._tail()}")
        wall = next((r.value for r in replies if r.kind == "host-wall"), None)
        assert isinstance(laps[0], int) and isinstance(laps[1], int) and isinstance(results[0], tuple)
        return InferResult(runs, warmup_runs, laps[1] - laps[0], results[0], round_trip,
                           wall if isinstance(wall, int) else None)

    def results(self) -> tuple[float, ...]:
        value = self._one(self.command(dut.Results()), "results").value
        assert isinstance(value, tuple)
        return value

    # -- the line ---------------------------------------------------------------------------------------------

    def _one(self, replies: list[dut.Reply], kind: str) -> dut.Reply:
        found = [r for r in replies if r.kind == kind]
        if not found:
            raise DutError(f"the DUT on {self.port} sent no {kind} line: {self._tail()}")
        return found[0]

    def _tail(self) -> str:
        text = " | ".join(self.transcript[-8:])
        return repr(text[-_TAIL_CHARS:]) if text else "nothing"

    def _exchange(self, data: bytes, timeout_s: float) -> list[dut.Reply]:
        port = self._serial
        if port is None:
            raise DutError(f"the DUT port {self.port} is not open")
        try:
            port.reset_input_buffer()
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DutError(f"cannot write to {self.port}: {exc}") from None
        replies: list[dut.Reply] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                # One byte blocks up to the port timeout; the rest is taken as it is, so a reply is not held back.
                chunk = port.read(1)
                if chunk and port.in_waiting:
                    chunk += port.read(min(port.in_waiting, _READ_BYTES))
            except (serial.SerialException, OSError) as exc:
                raise DutError(f"the port {self.port} went away: {exc}") from None
            if not chunk:
                continue
            try:
                lines = self._lines.feed(chunk)
            except dut.DutProtocolError as exc:
                raise DutError(f"the DUT on {self.port}: {exc}") from None
            for text in lines:
                self.transcript.append(text)
                del self.transcript[:-_TRANSCRIPT_LINES]
                try:
                    reply = dut.parse_reply(text)
                except dut.DutProtocolError as exc:
                    raise DutError(f"the DUT on {self.port} answered garbage: {exc}") from None
                if reply.kind == "ready":
                    return replies
                if reply.kind == "other":
                    continue
                replies.append(reply)
        pending = self._lines.pending.decode("ascii", errors="replace")
        seen = self._tail() if self.transcript else repr(pending[-_TAIL_CHARS:]) if pending else "nothing"
        raise DutError(f"the DUT on {self.port} did not answer {data[:24]!r} with m-ready within {timeout_s:.1f} s "
                       f"(it printed {seen})")
