"""The bridge's status line: per device state, rate, latency, loss, battery and RSSI, as rich text.

Rendering only; the numbers come from `Bridge.status()`.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from wedge.edge.bridge.daemon import BridgeStatus


def _ms(value_s: float | None) -> str:
    return "-" if value_s is None else f"{value_s * 1000:.0f} ms"


def device_label(device: dict[str, Any]) -> str:
    """The advertised name (several devices may share it) and the device id that tells them apart."""
    name = device.get("name") or device["selector"]
    return f"{name} {device['key']}" if device.get("key") else name


def render_status(status: BridgeStatus) -> Table:
    """One header line (totals) and one line per device."""
    table = Table.grid(padding=(0, 2))
    header = Text.assemble(
        ("bridge ", "bold"), f"{status.records} records · {status.rate_per_s:.0f}/s · latency p50 ",
        _ms(status.latency_p50_s), " p99 ", _ms(status.latency_p99_s),
    )
    for sink in status.sinks:
        if sink["errors"] or sink["pending"] > 1000:
            header.append(f" · {sink['sink']}: {sink['pending']} pending, {sink['errors']} errors", style="yellow")
        remote = sink.get("state")
        if remote and remote.get("broker") == "buffering":
            header.append(f" · {sink['sink']}: buffering {remote['buffering']} records ({remote['last_error']})",
                          style="yellow")
    table.add_row(header)
    for device in status.devices:
        style = "green" if device["state"] == "streaming" else "yellow"
        line = Text.assemble(
            ("  ● ", style), (device_label(device), "bold"), f"  {device['state']}",
            f"  epoch {device['epoch'] if device['epoch'] is not None else '-'}",
            f"  {device['records']} rec  lost {device['lost']}  dup {device['duplicates']}",
            f"  gaps {device['gaps_open']}  reconnects {max(device['connects'] - 1, 0)}",
            f"  silent {device['silent_disconnects']}  bad {device['malformed'] + device['unsupported']}",
            f"  battery {device['battery_percent'] if device['battery_percent'] is not None else '-'}%",
            f"  hr {device['heart_rate_bpm'] if device.get('heart_rate_bpm') is not None else '-'} bpm",
            f"  rssi {device['rssi'] if device['rssi'] is not None else '-'} dBm",
            f"  mtu {device['mtu'] or '-'}",
        )
        table.add_row(line)
        if device.get("last_event"):
            table.add_row(Text(f"    {device['last_event']}", style="yellow"))
    return table
