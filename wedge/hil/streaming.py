"""The BLE streaming check: `wedge bridge` follows the board into SQLite for a few seconds, through a forced
disconnect, and the records say the rate, the latency and what was lost.

A virtual board streams from its own BLE process (`python -m wedge.firmware.virtual.ble`, same profile and
model) on a Bumble virtual air; a real board is followed by its BLE name and cannot be disconnected on demand.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wedge.edge.bridge.process import BridgeProcess
from wedge.edge.bridge.sinks.sqlite import stored_records
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.hil.errors import HilError


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
    labels: dict[str, int] = field(default_factory=dict)  # what the model said, by the device's own labels

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seq"], data["arrival_s"] = list(self.seq), [round(t, 4) for t in self.arrival_s]
        data["disconnects_s"] = [list(span) for span in self.disconnects_s]
        return data


def _device(status: dict[str, Any]) -> dict[str, Any]:
    devices = status.get("devices") or [{}]
    return dict(devices[0])


def stream_check(profile: str, model: Path, name: str, work: Path, *, seconds: float = 3.0,
                 rate_hz: float = 25.0, virtual: bool = True) -> StreamCheck:
    """Stream `seconds` (a forced disconnect halfway on a virtual board) and read back the SQLite records."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / "stream.db"
    air = board = bridge = None
    spans: list[tuple[float, float]] = []
    try:
        if virtual:
            air = AirProcess(work)
            board = BleBoardProcess(profile, model, air.spec, work, name=name,
                                 extra_args=["--rate-hz", str(rate_hz), "--state-dir", str(work / "ble-state")])
        bridge = BridgeProcess([name], [f"sqlite:{db}"], work / "bridge.log",
                               transport=air.spec if air is not None else None, error=HilError)
        bridge.wait_status("streaming", lambda s: _device(s).get("state") == "streaming")
        started = time.time()
        if board is not None:
            bridge.wait_status("half the window", lambda s: time.time() - started >= seconds / 2)
            before = _device(bridge.latest).get("records", 0)
            cut = time.time()
            board.command({"cmd": "disconnect"})
            bridge.wait_status("a reconnect", lambda s: _device(s).get("state") == "streaming"
                        and _device(s).get("records", 0) > before and _device(s).get("connects", 1) > 1)
            spans.append((cut - started, time.time() - started))
        status = bridge.wait_status("the end of the window", lambda s: time.time() - started >= seconds
                             and _device(s).get("gaps_open", 0) == 0)
    finally:
        if bridge is not None:
            bridge.terminate(30)
        if board is not None:
            board.terminate()
        if air is not None:
            air.terminate()
    key = _device(status).get("key")
    stored = stored_records(db, key) if key else []
    rows = [(r.epoch, r.seq, r.received_us, r.t_device_us) for r in stored]
    labels = Counter(r.label for r in stored if r.label is not None)
    if not rows:
        raise HilError(f"no record of {name} reached SQLite")
    seqs = [seq for _, seq, _, _ in rows]
    # Each epoch (a board reboot starts one) is numbered on its own: a hole is one inside an epoch.
    lost = 0
    for epoch in {e for e, _, _, _ in rows}:
        numbers = {seq for e, seq, _, _ in rows if e == epoch}
        lost += max(numbers) - min(numbers) + 1 - len(numbers)
    first_us = rows[0][2]
    arrival = [(received - first_us) / 1e6 for _, _, received, _ in rows]
    # The rate the board produced at, from its own clock: arrivals bunch up while a backlog drains.
    span_s = max((max(r[3] for r in rows) - min(r[3] for r in rows)) / 1e6, 1e-9)
    latency = status.get("latency_p50_s"), status.get("latency_p99_s")
    offset = (started * 1e6 - first_us) / 1e6
    return StreamCheck(
        device=name, seconds=seconds, received_records=len(rows), lost_records=lost,
        rate_hz=round((len(rows) - 1) / span_s, 2),
        latency_ms_median=None if latency[0] is None else round(latency[0] * 1000, 2),
        latency_ms_p99=None if latency[1] is None else round(latency[1] * 1000, 2),
        forced_disconnects=len(spans), reconnects=int(_device(status).get("connects", 1)) - 1,
        seq=tuple(seqs), arrival_s=tuple(arrival),
        disconnects_s=tuple((a + offset, b + offset) for a, b in spans),
        labels=dict(labels.most_common()),
    )
