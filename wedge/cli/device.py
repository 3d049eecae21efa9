"""`wedge device info|images|reset --port P`: what an SMP board is, what its slots hold, and resetting it.

A thin click layer over `wedge.firmware.flash.session.DeviceSession`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wedge.cli.flash import identity_options, port_options, with_device

T = TypeVar("T")


def _with_session(target: tuple[str | None, str | None, str | None, Path | None], baud: int, timeout_s: float,
                  body: Callable[[Any], Awaitable[T]], board: str | None = None, wedge_group_id: int = 96) -> T:
    from wedge.cli import flash_render  # noqa: F401  (quiets smpclient's logging)
    from wedge.firmware.flash.session import DeviceSession, Identify

    async def run(address: str, transport: Any) -> T:
        session = DeviceSession(address, baud=baud, timeout_s=timeout_s, transport=transport,
                                identify=Identify(board=board, wedge_group_id=wedge_group_id))
        await session.open()
        try:
            return await body(session)
        finally:
            await session.close()

    return with_device(*target, run)


def _console() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else 1000)


def _slot_table(slots: list[dict[str, Any]]) -> Table:
    table = Table(title="image slots", title_justify="left")
    for header in ("image", "slot", "version", "hash", "flags"):
        table.add_column(header)
    roles = {0: "0 (application)", 1: "1 (model)"}
    for slot in slots:
        flags = [name for name in ("active", "confirmed", "pending", "permanent", "bootable") if slot[name]]
        table.add_row(roles.get(slot["image"], str(slot["image"])), str(slot["slot"]), escape(slot["version"]),
                      slot["hash"][:16], ", ".join(flags))
    return table


def _bootloader(data: dict[str, Any]) -> str:
    if not data["bootloader"]:
        return "- (no bootloader info)"
    from smp.os_management import MCUbootMode

    mode = data["bootloader_mode"]
    known = {m.value: m.name.lower().replace("_", " ") for m in MCUbootMode}
    return data["bootloader"] + ("" if mode is None else f" ({known.get(mode, f'mode {mode}')})")


@click.group()
def device() -> None:
    """Talk to a board over SMP (serial)."""


@device.command()
@port_options
@identity_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info(port: str | None, ble_name: str | None, ble_transport: str | None, ble_keystore: Path | None,
         board_name: str | None, wedge_group_id: int, baud: int, timeout_s: float, as_json: bool) -> None:
    """Identify the board: profile, SMP buffer, trusted key, running model."""

    async def body(session: Any) -> dict[str, Any]:
        report = await session.model_report()
        slots = await session.image_states()
        return {**session.identity.to_dict(), "model": None if report is None else report.to_dict(),
                "slots": [slot.to_dict() for slot in slots]}

    data = _with_session((port, ble_name, ble_transport, ble_keystore), baud, timeout_s, body, board_name,
                         wedge_group_id)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    out = _console()
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("board", escape(data["board"]))
    table.add_row("firmware", escape(data["firmware"] or "-"))
    table.add_row("SMP buffer", f"{data['buf_size']} bytes x {data['buf_count']}")
    table.add_row("trusted key", (data["key_hash"] or "-")[:16])
    table.add_row("zephyr board", escape(data["zephyr_board"] or "- (no OS info)"))
    table.add_row("bootloader", escape(_bootloader(data)))
    if not data["wedge_group"]:
        table.add_row("wedge group", "absent: no model report, no self-test to wait for")
    model = data["model"]
    if model is not None:
        label = f"{model['model']} {model['version']}" if model["model"] else "no model"
        table.add_row("model", escape(f"{label} ({model['state']})"))
        table.add_row("boots", str(model["boot_count"]))
        if model["event"]:
            table.add_row("last event", escape(model["event"]))
        pending = [s for s in data["slots"] if s["image"] == 1 and s["slot"] == 0 and not s["confirmed"]]
        table.add_row("model state", "test boot: reverts at the next reset unless confirmed" if pending
                      else "confirmed")
    out.print(table)
    out.print(_slot_table(data["slots"]))


@device.command()
@port_options
@identity_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def images(port: str | None, ble_name: str | None, ble_transport: str | None, ble_keystore: Path | None,
           board_name: str | None, wedge_group_id: int, baud: int, timeout_s: float, as_json: bool) -> None:
    """List the image slots (SMP image state read)."""

    async def body(session: Any) -> list[dict[str, Any]]:
        return [slot.to_dict() for slot in await session.image_states()]

    slots = _with_session((port, ble_name, ble_transport, ble_keystore), baud, timeout_s, body, board_name,
                         wedge_group_id)
    if as_json:
        click.echo(json.dumps(slots, indent=2))
        return
    _console().print(_slot_table(slots))


@device.command()
@port_options
@identity_options
@click.option("--boot-timeout-s", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="How long to wait for the board to boot.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def reset(port: str | None, ble_name: str | None, ble_transport: str | None, ble_keystore: Path | None,
          board_name: str | None, wedge_group_id: int, baud: int, timeout_s: float, boot_timeout_s: float,
          as_json: bool) -> None:
    """Reset the board (an unconfirmed test image rolls back) and wait until it answers again."""

    async def body(session: Any) -> dict[str, Any]:
        await session.reset(boot_timeout_s)
        report = await session.model_report()
        return {"port": session.port, "model": None if report is None else report.to_dict()}

    data = _with_session((port, ble_name, ble_transport, ble_keystore), baud, timeout_s, body, board_name,
                         wedge_group_id)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    model = data["model"]
    text = "the board is back" if model is None else f"the board is back: {model['model'] or 'no model'} ({model['state']})"
    _console().print(escape(text))
    if model is not None and model["event"]:
        _console().print(escape(model["event"]))
