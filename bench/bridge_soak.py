"""Soak of the BLE bridge's restart scenarios: for N minutes, boards crash (kill -9) and reboot, the bridge is
stopped and killed, links drop, and SQLite is checked against what the boards say they produced.

Two boards advertise the same name the whole time (two devices, one `--device`). Prints one JSON summary on
stdout: records produced / stored / lost / duplicated (goal: 0 lost, 0 duplicated at any N); progress on stderr.
`python bench/bridge_soak.py --minutes 2`.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from wedge.edge.bridge.errors import BridgeError
from wedge.edge.bridge.process import BridgeProcess
from wedge.edge.bridge.sinks.sqlite import gap_check
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.samples import sample_path

NAME: Final[str] = "soak-ring"
SCENARIOS: Final[tuple[str, ...]] = ("board-kill", "bridge-restart", "board-restart", "bridge-kill", "disconnect")
SETTLE_TIMEOUT_S: Final[float] = 90.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Board:
    """One virtual board, restartable on its state folder; `epochs` keeps every epoch's end it announced."""

    air: AirProcess
    state: Path
    rate_hz: float
    ring_records: int
    process: BleBoardProcess | None = None
    epochs: dict[int, int] = field(default_factory=dict)

    def start(self) -> None:
        self.process = BleBoardProcess(
            "ring-nrf52840", sample_path("ppg_quality"), self.air.spec, self.state.parent, name=NAME,
            extra_args=["--rate-hz", str(self.rate_hz), "--state-dir", str(self.state),
                        "--ring-records", str(self.ring_records)])
        self.note_epochs()

    @property
    def key(self) -> str:
        assert self.process is not None
        return str(self.process.info["device_id"])

    @property
    def epoch(self) -> int:
        assert self.process is not None
        return int(self.process.info["epoch"])

    def note_epochs(self) -> None:
        """What the board buffers: each epoch's [first, end); a reboot lists the epoch before with its final end."""
        assert self.process is not None
        for span in self.process.command({"cmd": "status"})["status"]["epochs"]:
            if span["first_seq"] != 0:
                raise SystemExit(f"error: the board's buffer overflowed (epoch {span['epoch']} starts at "
                                 f"{span['first_seq']}): raise --ring-records")
            self.epochs[span["epoch"]] = max(self.epochs.get(span["epoch"], 0), span["end_seq"])

    def stop(self, *, kill: bool = False) -> None:
        assert self.process is not None
        if kill:
            self.process.kill()
        else:
            self.note_epochs()
            self.process.terminate()
        self.process = None


class Bridge:
    """The bridge process, one JSON lines file per run (to tell re-sent records from new ones)."""

    def __init__(self, air: AirProcess, work: Path) -> None:
        self.air = air
        self.work = work
        self.db = work / "soak.db"
        self.runs: list[tuple[Path, set[tuple[str, int, int]]]] = []
        self.process: BridgeProcess | None = None
        self.reported = Counter[str]()

    def start(self) -> None:
        jsonl = self.work / f"run{len(self.runs)}.jsonl"
        self.runs.append((jsonl, stored_keys(self.db)))
        self.process = BridgeProcess([NAME], [f"sqlite:{self.db}", f"jsonl:{jsonl}"], jsonl.with_suffix(".log"),
                                     transport=self.air.spec)

    def stop(self, *, kill: bool = False) -> None:
        assert self.process is not None
        latest = self.process.latest
        if kill:
            self.process.kill()
        else:
            self.process.terminate(60)
        for device in latest.get("devices", []):
            self.reported["lost"] += device["lost"]
            self.reported["duplicates"] += device["duplicates"]
        self.process = None

    def wait(self, what: str, predicate: Callable[[dict[str, Any]], bool]) -> bool:
        assert self.process is not None
        try:
            self.process.wait_status(what, predicate, SETTLE_TIMEOUT_S)
        except BridgeError as exc:
            log(f"  stall: {exc}")
            return False
        return True


def stored_keys(db: Path) -> set[tuple[str, int, int]]:
    if not db.exists():
        return set()
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
        return set(connection.execute("SELECT device, epoch, seq FROM records"))


def settled(boards: list[Board], since: dict[str, int]) -> Callable[[dict[str, Any]], bool]:
    """Every board followed in its current epoch, no gap open, and streaming on (some records past `since`)."""
    def check(status: dict[str, Any]) -> bool:
        devices = {d["key"]: d for d in status["devices"]}
        for board in boards:
            d = devices.get(board.key)
            if d is None or d["state"] != "streaming" or d["epoch"] != board.epoch or d["gaps_open"] != 0:
                return False
            if d["records"] < since.get(board.key, 0) + 10:
                return False
        return True
    return check


def released(status: dict[str, Any]) -> dict[str, int]:
    return {d["key"]: d["records"] for d in status.get("devices", []) if d["key"]}


def soak(work: Path, minutes: float, rate_hz: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    air = AirProcess(work)
    ring_records = max(60_000, int(rate_hz * 60 * minutes * 1.5))
    boards = [Board(air, work / f"board-{i}", rate_hz, ring_records) for i in range(2)]
    bridge = Bridge(air, work)
    scenarios = Counter[str]()
    stalls = 0
    try:
        with ThreadPoolExecutor(len(boards)) as pool:
            list(pool.map(lambda b: b.start(), boards))
        bridge.start()
        stalls += not bridge.wait("both boards streaming", settled(boards, {}))
        deadline = time.monotonic() + minutes * 60
        cycle = 0
        while time.monotonic() < deadline:
            scenario = SCENARIOS[cycle % len(SCENARIOS)]
            board = rng.choice(boards)
            cycle += 1
            scenarios[scenario] += 1
            assert bridge.process is not None
            since = released(bridge.process.latest)
            log(f"[{cycle}] {scenario}" + (f" ({board.key})" if scenario.startswith("board") else ""))
            if scenario == "board-kill":
                board.stop(kill=True)
                board.start()
            elif scenario == "board-restart":
                board.stop()
                board.start()
            elif scenario in ("bridge-restart", "bridge-kill"):
                bridge.stop(kill=scenario == "bridge-kill")
                bridge.start()
                since = {}
            else:
                board.process.command({"cmd": "disconnect"})  # type: ignore[union-attr]
            stalls += not bridge.wait(f"settled after {scenario}", settled(boards, since))
        # The measurement ends here: what the boards produced so far must all be stored.
        for board in boards:
            board.note_epochs()
        produced = {(b.key, epoch, seq) for b in boards for epoch, end in b.epochs.items() for seq in range(end)}
        assert bridge.process is not None
        bridge.wait("every produced record stored", lambda _s: produced <= stored_keys(bridge.db))
        bridge.stop()
    finally:
        if bridge.process is not None:
            bridge.stop()
        for board in boards:
            if board.process is not None:
                board.process.terminate()
        air.terminate()
    stored = stored_keys(bridge.db)
    epochs_of = {(b.key, e) for b in boards for e in b.epochs}
    resent = within_run = 0
    for jsonl, before in bridge.runs:
        sent = [(r["device"], r["epoch"], r["seq"]) for r in map(json.loads, jsonl.read_text().splitlines())
                if "seq" in r]
        within_run += len(sent) - len(set(sent))
        resent += len(set(sent) & before)
    gaps = gap_check(bridge.db)
    return {
        "minutes": minutes, "boards": len(boards), "same_name": NAME, "rate_hz_per_board": rate_hz, "seed": seed,
        "cycles": sum(scenarios.values()), "scenarios": dict(scenarios),
        "epochs": sum(len(b.epochs) for b in boards), "bridge_runs": len(bridge.runs),
        "produced": len(produced), "stored": len(stored & produced),
        "lost": len(produced - stored),
        "duplicated": within_run + resent, "duplicated_within_a_run": within_run, "re_sent_after_stored": resent,
        "mixed_up": len({(d, e) for d, e, _ in stored} - epochs_of),
        "bridge_reported": {"lost": bridge.reported["lost"], "duplicates_dropped": bridge.reported["duplicates"]},
        "db_gap_check": {"open_records": sum(g.open_records for g in gaps),
                         "lost_records": sum(g.lost_records for g in gaps)},
        "stalls": stalls,
        "goal_zero_lost_zero_duplicated": len(produced - stored) == 0 and within_run + resent == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=2.0, help="how long to cycle through the scenarios")
    parser.add_argument("--rate-hz", type=float, default=50.0, help="records per second of each board")
    parser.add_argument("--seed", type=int, default=0, help="which board each scenario hits")
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate_hz <= 0:
        raise SystemExit("error: --minutes and --rate-hz must be > 0")
    with tempfile.TemporaryDirectory() as tmp:
        summary = soak(Path(tmp), args.minutes, args.rate_hz, args.seed)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
