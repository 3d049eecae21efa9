"""The BLE streaming check: `wedge bridge` follows the board into SQLite for a few seconds, through a forced
disconnect, and the records say the rate, the latency and what was lost.

A virtual board streams from its own BLE process (`python -m wedge.firmware.virtual.ble`, same profile and
model) on a Bumble virtual air; a real board is followed by its BLE name and cannot be disconnected on demand.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from wedge.hil.errors import HilError

STATUS_TIMEOUT_S: Final[float] = 60.0


@dataclass(frozen=True)
class StreamCheck:
    device: str
    seconds: float
    received_records: int
    lost_records: int
    rate_hz: float
    latency_ms_median: float | None
    latency_ms_p99: float | None
    forced_disconnects: int
    reconnects: int
    seq: tuple[int, ...]
    arrival_s: tuple[float, ...]
    disconnects_s: tuple[tuple[float, float], ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seq"], data["arrival_s"] = list(self.seq), [round(t, 4) for t in self.arrival_s]
        data["disconnects_s"] = [list(span) for span in self.disconnects_s]
        return data


class _Bridge:
    """`wedge bridge --status-json` into one SQLite file; its status lines are read from stderr."""

    def __init__(self, device: str, db: Path, transport: str | None, log: Path) -> None:
        args = [sys.executable, "-m", "wedge.edge.cli", "bridge", "--device", device, "--sink", f"sqlite:{db}",
                "--status-json", "--watchdog-s", "1"]
        if transport is not None:
            args += ["--transport", transport]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = log
        self._status: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.latest: dict[str, Any] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.log.open("w") as log:
            for line in self.process.stderr:
                log.write(line)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict) and "status" in message:
                    self._status.put(message["status"])
        self._status.put(None)

    def wait(self, what: str, predicate: Callable[[dict[str, Any]], bool],
             timeout_s: float = STATUS_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                status = self._status.get(timeout=remaining)
            except queue.Empty:
                break
            if status is None:
                raise HilError(f"the bridge exited while waiting for {what}: see {self.log}")
            self.latest = status
            if predicate(status):
                return status
        raise HilError(f"the bridge never reached {what} within {timeout_s:.0f} s (last status {self.latest})")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _device(status: dict[str, Any]) -> dict[str, Any]:
    devices = status.get("devices") or [{}]
    return dict(devices[0])


def _records(db: Path, device: str) -> list[tuple[int, int, int]]:
    with sqlite3.connect(db) as connection:
        return list(connection.execute(
            "SELECT seq, received_us, t_device_us FROM records WHERE device = ? ORDER BY seq", (device,)))


def stream_check(profile: str, model: Path, name: str, work: Path, *, seconds: float = 3.0,
                 rate_hz: float = 25.0, virtual: bool = True) -> StreamCheck:
    """Stream `seconds` (a forced disconnect halfway on a virtual board) and read back the SQLite records."""
    from wedge.firmware.virtual.ble.processes import AirProcess, BoardProcess

    work.mkdir(parents=True, exist_ok=True)
    db = work / "stream.db"
    air = board = bridge = None
    spans: list[tuple[float, float]] = []
    try:
        if virtual:
            air = AirProcess(work)
            board = BoardProcess(profile, model, air.spec, work, name=name,
                                 extra_args=["--rate-hz", str(rate_hz), "--state-dir", str(work / "ble-state")])
        bridge = _Bridge(name, db, air.spec if air is not None else None, work / "bridge.log")
        bridge.wait("streaming", lambda s: _device(s).get("state") == "streaming")
        started = time.time()
        if board is not None:
            bridge.wait("half the window", lambda s: time.time() - started >= seconds / 2)
            before = _device(bridge.latest).get("records", 0)
            cut = time.time()
            board.command({"cmd": "disconnect"})
            bridge.wait("a reconnect", lambda s: _device(s).get("state") == "streaming"
                        and _device(s).get("records", 0) > before and _device(s).get("connects", 1) > 1)
            spans.append((cut - started, time.time() - started))
        status = bridge.wait("the end of the window", lambda s: time.time() - started >= seconds
                             and _device(s).get("gaps_open", 0) == 0)
    finally:
        if bridge is not None:
            bridge.stop()
        if board is not None:
            board.terminate()
        if air is not None:
            air.terminate()
    rows = _records(db, name)
    if not rows:
        raise HilError(f"no record of {name} reached SQLite")
    seqs = [seq for seq, _, _ in rows]
    first_us = rows[0][1]
    arrival = [(received - first_us) / 1e6 for _, received, _ in rows]
    # The rate the board produced at, from its own clock: arrivals bunch up while a backlog drains.
    span_s = max((rows[-1][2] - rows[0][2]) / 1e6, 1e-9)
    latency = status.get("latency_p50_s"), status.get("latency_p99_s")
    offset = (started * 1e6 - first_us) / 1e6
    return StreamCheck(
        device=name, seconds=seconds, received_records=len(rows), lost_records=seqs[-1] - seqs[0] + 1 - len(set(seqs)),
        rate_hz=round((len(rows) - 1) / span_s, 2),
        latency_ms_median=None if latency[0] is None else round(latency[0] * 1000, 2),
        latency_ms_p99=None if latency[1] is None else round(latency[1] * 1000, 2),
        forced_disconnects=len(spans), reconnects=int(_device(status).get("connects", 1)) - 1,
        seq=tuple(seqs), arrival_s=tuple(arrival),
        disconnects_s=tuple((a + offset, b + offset) for a, b in spans),
    )
