"""The WebSocket sink's live page, rendered by headless Chromium while a virtual ring streams through the bridge:
the DOM at desktop and phone sizes, and screenshots at both whose chart pixels are counted."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.edge.bridge.bridge_harness import CollectingSink, Ticks, run_bridge
from tests.edge.bridge.chromium import CHROMIUM, open_page
from wedge.edge.bridge.daemon import Bridge
from wedge.edge.bridge.sinks.websocket import WebSocketSink
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.samples import PPG_QUALITY, sample_path

DESKTOP = (1280, 900)
PHONE = (390, 844)
# The page's colours of the three PPG classes (PALETTE in live_page.html, in label order).
CLASS_COLORS = ((0x16, 0xA3, 0x4A), (0xF5, 0x9E, 0x0B), (0xDC, 0x26, 0x26))
# Drawn: the big label says a class, and the chart drew at least this many records.
DRAWN = ("document.querySelector('.current-label')?.textContent.trim().length > 1 && "
         "Number(document.querySelector('canvas.chart')?.dataset.points) >= 40 && "
         "document.querySelector('.link')?.textContent === 'streaming'")


def class_pixels(png: Path, from_x: int = 0, from_y: int = 0) -> int:
    """How many pixels right of `from_x` and below `from_y` are drawn in one of the class colours (the chart's
    lines, its label strip, the big label)."""
    image = Image.open(png).convert("RGB")
    image = image.crop((from_x, from_y, image.width, image.height))
    return sum(count for count, rgb in image.getcolors(maxcolors=1 << 20) or []
               if any(sum(abs(a - b) for a, b in zip(rgb, color, strict=True)) < 40 for color in CLASS_COLORS))


def card(html: str) -> str:
    match = re.search(r'<section class="device".*?</section>', html, re.S)
    assert match is not None, "no device card"
    return match.group(0)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install -y chromium)")
def test_the_live_page_shows_label_score_chart_and_link_at_desktop_and_phone_sizes(tmp_path: Path) -> None:
    air = AirProcess(tmp_path)
    board = BleBoardProcess("ring-nrf52840", sample_path("ppg_quality"), air.spec, tmp_path, name="page-ring",
                            extra_args=["--rate-hz", "10"])
    page = WebSocketSink("127.0.0.1", 0, token="t0k")
    collected = CollectingSink()
    pages: dict[str, str] = {}

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        # A few seconds of streaming, and a status tick that already knows the battery.
        await collected.wait_for(lambda r: len(r) >= 40, timeout_s=30)
        await ticks.wait_for(lambda s: any(d["battery_percent"] is not None for d in s.devices))
        url = f"http://127.0.0.1:{page.bound_port}/?token=t0k"
        for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            async with open_page(url, tmp_path / f"chromium-{name}", size, mobile=name == "phone") as tab:
                await tab.wait_for(DRAWN, timeout_s=30)
                pages[name] = await tab.html()
                await tab.screenshot(tmp_path / f"{name}.png")

    try:
        asyncio.run(run_bridge(air.spec, ["page-ring"], [page, collected], scenario))
    finally:
        board.terminate()
        air.terminate()
    for name, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
        html = pages[name]
        assert '<span id="state">live</span>' in html
        count = re.search(r'<span id="count">(\d+)</span>', html)
        assert count is not None and int(count.group(1)) >= 40
        device = card(html)
        assert f'data-device="{board.info["device_id"]}" data-name="page-ring"' in device
        # The big current label: one of the model's classes, with its score; the ring replays "at rest".
        label = re.search(r'<div class="current-label"[^>]*>([^<]+)</div>', device)
        score = re.search(r'<div class="current-score">(\d+) %</div>', device)
        assert label is not None and label.group(1) in PPG_QUALITY.labels, device[:2000]
        assert score is not None and 0 < int(score.group(1)) <= 100
        # The legend names every class; the chart drew the records of the window, and fits the viewport.
        for class_name in PPG_QUALITY.labels:
            assert f"{class_name} " in device or f">{class_name}<" in device
        points = re.search(r'data-points="(\d+)"', device)
        drawn = re.search(r'data-drawn="(\d+)"', device)
        canvas_width = re.search(r'<canvas class="chart"[^>]*\bwidth="(\d+)"', device)
        assert points is not None and drawn is not None and canvas_width is not None
        assert int(points.group(1)) >= 40 and int(drawn.group(1)) > 0
        assert int(canvas_width.group(1)) < width  # the chart fits the viewport
        assert "ppg_quality" in device and "100 %" in device  # the model's name; the battery from the status
        assert 'class="pill link ok">streaming<' in device
        # The screenshot: the chart's lines and label strip are there, in the classes' colours.
        shot = tmp_path / f"{name}.png"
        assert Image.open(shot).size == (width, height)
        assert class_pixels(shot) > 500, f"{name}: the chart looks empty"
        # The newest records are drawn at the chart's right edge ("now"), below the card's header (its green
        # "streaming" pill): inside the viewport, not cut off.
        assert class_pixels(shot, from_x=width * 3 // 4, from_y=height * 3 // 10) > 50, \
            f"{name}: the chart's right end is not on screen"
