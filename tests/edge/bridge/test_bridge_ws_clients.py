"""`wedge bridge` with a WebSocket sink and clients that misbehave: stuck ones are closed on keepalive, vanishing
ones leave no traceback, the bridge's memory stays bounded and SQLite keeps every record."""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

from tests.edge.bridge.bridge_harness import stuck_ws_client
from wedge.edge.bridge.process import BridgeProcess
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.samples import sample_path

STUCK_CLIENTS = 16
VANISHING_CLIENTS = 4
# 16 stuck clients may hold at most their backlog (1 MiB) each before they are dropped; far less in practice.
RSS_GROWTH_BOUND_BYTES = 40 << 20


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_stuck_websocket_clients_are_closed_and_the_bridge_s_memory_stays_bounded(tmp_path: Path) -> None:
    air = AirProcess(tmp_path)
    board = BleBoardProcess("ring-nrf52840", sample_path("ppg_quality"), air.spec, tmp_path, name="ws-ring",
                            extra_args=["--rate-hz", "200", "--state-dir", str(tmp_path / "state")])
    key = board.info["device_id"]
    port = free_port()
    bridge = BridgeProcess(["ws-ring"], [f"sqlite:{tmp_path / 's.db'}", f"ws://127.0.0.1:{port}"],
                           tmp_path / "bridge.log", transport=air.spec, extra=["--ws-keepalive-s", "1"])

    def device(status: dict[str, Any]) -> dict[str, Any]:
        return next((d for d in status["devices"] if d["key"] == key), {})

    try:
        bridge.wait_status("streaming", lambda s: device(s).get("gaps_open") == 0 and device(s)["records"] >= 400)
        baseline = peak = rss_bytes(bridge.process.pid)
        stuck = [stuck_ws_client(port) for _ in range(STUCK_CLIENTS)]
        for _ in range(VANISHING_CLIENTS):
            gone = stuck_ws_client(port)
            gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            gone.close()  # reset with the history and the stream on their way

        def all_closed(_status: dict[str, Any]) -> bool:
            nonlocal peak
            peak = max(peak, rss_bytes(bridge.process.pid))
            log = bridge.log_path.read_text()
            return log.count("closed client") + log.count("dropped client") >= STUCK_CLIENTS

        bridge.wait_status("every stuck client closed", all_closed, timeout_s=30)
        before = device(bridge.latest)["records"]
        status = bridge.wait_status("the stream going on", lambda s: device(s)["records"] >= before + 400
                                    and device(s)["gaps_open"] == 0)
        for sock in stuck:
            sock.close()
    finally:
        bridge.terminate(30)
        board.terminate()
        air.terminate()
    assert device(status)["lost"] == 0 and device(status)["duplicates"] == 0
    log = bridge.log_path.read_text()
    assert "Traceback" not in log and "ERROR" not in log
    assert peak - baseline < RSS_GROWTH_BOUND_BYTES, f"bridge RSS grew by {(peak - baseline) >> 20} MiB"
