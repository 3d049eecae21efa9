"""`wedge ports`: serial ports with their USB ids, and what answers SMP (mcumgr) on each.

A thin click layer over `wedge.firmware.flash.ports`.
"""

from __future__ import annotations

import asyncio
import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table


@click.command()
@click.option("--port", "ports", multiple=True, metavar="PORT",
              help="Also probe this port (a pty such as a virtual board's, or a pyserial URL); repeat for several.")
@click.option("--no-probe", is_flag=True, help="Only list the ports; send nothing to them.")
@click.option("--baud", type=click.IntRange(min=1), default=115_200, show_default=True)
@click.option("--timeout-s", type=click.FloatRange(min=0.05), default=0.5, show_default=True,
              help="How long each port has to answer the SMP echo.")
@click.option("--json", "as_json", is_flag=True, help="Print the ports as JSON.")
def ports(ports: tuple[str, ...], no_probe: bool, baud: int, timeout_s: float, as_json: bool) -> None:
    """List serial ports (VID:PID, serial number, maker) and probe each for an SMP server: the board, its
    firmware and the model it runs."""
    from wedge.cli import flash_render  # noqa: F401  (quiets smpclient's logging)
    from wedge.firmware.flash.ports import probe_ports, serial_ports

    found = serial_ports(ports)
    probes = [None] * len(found) if no_probe else asyncio.run(probe_ports(found, timeout_s=timeout_s, baud=baud))
    if as_json:
        click.echo(json.dumps({"ports": [{**p.to_dict(), "smp": None if s is None else s.to_dict()}
                                         for p, s in zip(found, probes, strict=True)]}, indent=2))
        return
    if not found:
        click.echo("no serial ports (a virtual board's pty is not listed: give it with --port)")
        return
    table = Table(show_edge=False, header_style="bold")
    for header in ("port", "usb id", "device", "serial", "smp"):
        table.add_column(header)
    for port, probe in zip(found, probes, strict=True):
        maker = " · ".join(x for x in (port.manufacturer, port.product or port.description) if x)
        smp = "-" if probe is None else (f"[green]{escape(probe.detail)}[/]" if probe.answers
                                         else f"[dim]{escape(probe.detail)}[/]")
        table.add_row(escape(port.device), port.usb_id or "-", escape(maker) or "-", escape(port.serial_number or "-"),
                      smp)
    Console(highlight=False).print(table)
