"""stream_query over the SQLite store a virtual ring streamed into (through a real bridge on the virtual air), and
stream_tail on that bridge's WebSocket sink while it runs."""

from __future__ import annotations

import itertools
import json
import socket
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import anyio

from tests.mcp.mcp_harness import stdio_client, structured
from wedge.edge.bridge.process import BridgeProcess
from wedge.edge.bridge.sinks.sqlite import stored_records
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.samples import SAMPLES, sample_path

RING = "mcp-ring"
LABELS = list(SAMPLES["ppg_quality"].labels)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).isoformat()


def _records_of(status: dict) -> int:
    return next((d.get("records", 0) for d in status.get("devices", []) if d.get("name") == RING), 0)


def test_an_agent_tails_a_running_bridge_and_queries_what_the_ring_stored(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    db = workspace / "stream.db"
    ws = f"ws://127.0.0.1:{_free_port()}"
    air = AirProcess(tmp_path)
    board = bridge = None
    try:
        board = BleBoardProcess("ring-nrf52840", sample_path("ppg_quality"), air.spec, tmp_path, name=RING,
                                extra_args=["--rate-hz", "50", "--state-dir", str(tmp_path / "ble-state")])
        bridge = BridgeProcess([RING], [f"sqlite:{db}", ws], tmp_path / "bridge.log", transport=air.spec)
        device = board.info["device_id"]  # records are stored under the ring's device id, not its name
        bridge.wait_status("100 records", lambda status: _records_of(status) >= 100)

        async def while_streaming() -> None:
            async with stdio_client(workspace, "--bridge", ws) as client:
                tail = structured(await client.call_tool("stream_tail", {"device": device, "duration_s": 1.0,
                                                                          "max_records": 5000, "labels": LABELS}))
                newest = structured(await client.call_tool("stream_query", {"database": "stream.db", "last_n": 10}))
            seqs = [record["seq"] for record in tail["records"]]
            assert len(seqs) >= 100 and seqs == sorted(seqs)
            assert {(record["device"], record["name"]) for record in tail["records"]} == {(device, RING)}
            (summary,) = tail["devices"]
            assert summary["records"] == len(seqs) and set(summary["label_counts"]) <= set(LABELS)
            assert newest["selected"] == 10 and len(newest["records"]) == 10

        anyio.run(while_streaming)
        assert bridge.terminate(30) == 0
        bridge = None
    finally:
        for process in (bridge, board, air):
            if process is not None:
                process.terminate()

    stored = stored_records(db, device)
    received = sorted({r.received_us for r in stored})
    cut = next((a + b) // 2 for a, b in itertools.pairwise(received) if b - a > 2)

    async def after() -> None:
        async with stdio_client(workspace, "--stream-db", str(db)) as client:
            whole = structured(await client.call_tool("stream_query", {
                "database": "stream.db", "device": device, "labels": LABELS, "max_records": 0}))
            since = structured(await client.call_tool("stream_query", {
                "database": str(db), "since": _iso(cut), "max_records": 3}))
            last = structured(await client.call_tool("stream_query", {"database": "stream.db", "last_n": 7}))
            resource = json.loads((await client.read_resource("wedge://streams/stream.db")).contents[0].text)
        (summary,) = whole["devices"]
        assert whole["selected"] == summary["records"] == len(stored) and whole["records"] == []
        assert (summary["first_seq"], summary["last_seq"]) == (stored[0].seq, stored[-1].seq)
        argmax = Counter(LABELS[max(range(3), key=lambda i: r.values[i])] for r in stored)
        assert summary["label_counts"] == dict(argmax)
        assert summary["rate_hz"] > 10 and len(summary["values"]) == 3
        assert since["selected"] == sum(1 for r in stored if r.received_us >= cut)
        by_arrival = sorted(stored, key=lambda r: (r.received_us, r.seq))
        assert [r["seq"] for r in since["records"]] == [r.seq for r in by_arrival if r.received_us >= cut][-3:]
        newest_seven = by_arrival[-7:]
        assert sorted(r["seq"] for r in last["records"]) == sorted(r.seq for r in newest_seven)
        assert resource["records"] == len(stored) and resource["devices"][0]["device"] == device

    anyio.run(after)
