"""`wedge air`: the virtual BLE air that virtual boards (`wedge emulate --ble`) and `wedge bridge` share.

A thin click layer over `wedge.firmware.virtual.ble.air`; it prints the transport spec to hand to both.
"""

from __future__ import annotations

import asyncio

import click


@click.command()
@click.option("--tcp-port", type=click.IntRange(min=0, max=65535), default=0, show_default=True,
              help="TCP port on 127.0.0.1 (0: any free one; --port always means a serial port in wedge).")
def air(tcp_port: int) -> None:
    """Serve a virtual BLE link on the loopback until Ctrl-C; prints {"air": SPEC, "port": N}."""
    from wedge.firmware.virtual.ble.air import serve_forever

    asyncio.run(serve_forever(tcp_port))
