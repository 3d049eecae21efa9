"""The status line shows what a user watches: rate, latency, loss, reconnects, battery and RSSI per device."""

from __future__ import annotations

from rich.console import Console

from wedge.edge.bridge.daemon import BridgeStatus
from wedge.edge.bridge.session import DeviceStats
from wedge.edge.bridge.status import render_status


def test_the_status_line_names_each_device_with_its_loss_battery_and_rssi() -> None:
    ring = DeviceStats("wedge-ring", state="streaming", key="ring-7", rssi=-61, battery_percent=83, mtu=247,
                       connects=3, records=1200, lost=0, duplicates=4)
    status = BridgeStatus(12.0, 1200, 100.0, 0.021, 0.064, (ring.to_dict(),),
                          ({"sink": "sqlite:s.db", "written": 1200, "pending": 0, "errors": 0, "dropped": 0,
                            "last_error": None},))
    console = Console(width=200, record=True)
    console.print(render_status(status))
    text = console.export_text()
    assert "1200 records" in text and "100/s" in text and "p50 21 ms" in text and "p99 64 ms" in text
    assert "ring-7" in text and "streaming" in text and "lost 0" in text and "reconnects 2" in text
    assert "battery 83%" in text and "rssi -61 dBm" in text and "mtu 247" in text
