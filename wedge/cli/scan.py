"""`wedge scan`: BLE devices nearby, with name, RSSI, services, and wedge / Heart Rate / SMP support.

A thin click layer over `wedge.edge.bridge.scan`.
"""

from __future__ import annotations

import asyncio
import json
import logging

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wedge.edge.bridge.scan import DEFAULT_SCAN_S, SeenDevice, scan_nearby

_MARKS = {True: "[green]yes[/]", False: "[dim]no[/]", None: "[dim]?[/]"}


def _row(device: SeenDevice) -> list[str]:
    supports = device.supports()
    services = device.to_dict()["gatt" if device.gatt is not None else "advertised"]
    listed = ", ".join(services) if services else ("-" if device.gatt_error is None else f"(gatt: {device.gatt_error})")
    return [escape(device.name or "-"), device.address, "-" if device.rssi is None else f"{device.rssi} dBm",
            escape(listed), *(_MARKS[supports[k]] for k in ("wedge", "heart_rate", "smp"))]


@click.command()
@click.option("--transport", metavar="SPEC",
              help="Drive a Bluetooth controller with Bumble: tcp-client:127.0.0.1:PORT (virtual air), usb:0, serial:PORT. "
                   "Default: the OS Bluetooth stack.")
@click.option("--timeout-s", type=click.FloatRange(min=0.1), default=DEFAULT_SCAN_S, show_default=True,
              help="How long to listen for advertisements.")
@click.option("--device", "name", metavar="NAME", help="Only devices advertising this name.")
@click.option("--gatt", is_flag=True,
              help="Connect to each device and list its GATT services (an advertisement names only some).")
@click.option("--json", "as_json", is_flag=True, help="Print the devices as JSON.")
def scan(transport: str | None, timeout_s: float, name: str | None, gatt: bool, as_json: bool) -> None:
    """List the BLE devices advertising nearby, strongest first."""
    from wedge.edge.bridge.discovery import BleStack

    logging.getLogger("bumble").setLevel(logging.ERROR)
    stack = BleStack.bumble(transport) if transport else BleStack.platform()
    devices = asyncio.run(scan_nearby(stack, timeout_s, gatt=gatt, name=name))
    if as_json:
        click.echo(json.dumps({"devices": [d.to_dict() for d in devices]}, indent=2))
        return
    if not devices:
        click.echo(f"no BLE device advertised within {timeout_s:g} s" + (f" as {name}" if name else ""))
        return
    table = Table(show_edge=False, header_style="bold")
    table.add_column("name")
    table.add_column("address", no_wrap=True)
    table.add_column("rssi", no_wrap=True)
    table.add_column("gatt services" if gatt else "advertised", overflow="fold", min_width=22)
    for header in ("wedge", "heart rate", "smp"):
        table.add_column(header, no_wrap=True)
    for device in devices:
        table.add_row(*_row(device))
    Console(highlight=False).print(table)
    if not gatt:
        click.echo("?: not advertised (a scan response may name more); --gatt connects to each device to check",
                   err=True)
