"""The WebSocket sink's live page, rendered by headless Chromium while a virtual ring streams through the bridge."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.edge.bridge.bridge_harness import CollectingSink, Ticks, run_bridge
from wedge.edge.bridge.daemon import Bridge
from wedge.edge.bridge.sinks.websocket import WebSocketSink
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.samples import sample_path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install -y chromium)")
def test_the_live_page_shows_the_ring_s_stream_in_chromium(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    air = AirProcess(tmp_path)
    board = BleBoardProcess("ring-nrf52840", sample_path("ppg_quality"), air.spec, tmp_path, name="page-ring",
                         extra_args=["--rate-hz", "20"])
    page = WebSocketSink("127.0.0.1", 0, token="t0k")
    collected = CollectingSink()
    dom: list[str] = []

    async def scenario(_bridge: Bridge, _ticks: Ticks) -> None:
        await collected.wait_for(lambda r: len(r) >= 20)
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
                "--virtual-time-budget=3000", "--dump-dom", f"http://127.0.0.1:{page.bound_port}/?token=t0k"]
        result = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=60)
        dom.append(result.stdout)

    try:
        asyncio.run(run_bridge(air.spec, ["page-ring"], [page, collected], scenario))
    finally:
        board.terminate()
        air.terminate()
    (html,) = dom
    assert '<span id="state">live</span>' in html
    count = re.search(r'<span id="count">(\d+)</span>', html)
    assert count is not None and int(count.group(1)) >= 20
    assert f'data-device="{board.info["device_id"]}" data-name="page-ring"' in html
