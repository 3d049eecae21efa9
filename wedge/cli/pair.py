"""`wedge pair NAME` / `wedge unpair NAME`: bond a BLE device with this machine's adapter, or forget the bond.

A thin click layer over `wedge.edge.bridge.pairing`; `TerminalPrompts` asks for passkeys and number comparisons
on the terminal (prompts on stderr, answers from stdin), for `wedge bridge --pair` too.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # bleak loads only when a BLE command runs: `wedge flash --port` imports this module too
    from wedge.edge.bridge.discovery import BleStack

PASSKEY_MAX = 999_999
KEYSTORE_HELP = ("With a Bumble transport: the adapter's bonds (default: one file per adapter under "
                 "$XDG_STATE_HOME/wedge/bluetooth, mode 0600).")


def _ask(question: str) -> str | None:
    click.echo(question, err=True, nl=False)
    line = sys.stdin.readline()
    return line.strip() if line else None


class TerminalPrompts:
    """The person at the terminal: reads the device's display, types or confirms."""

    def say(self, message: str) -> None:
        click.echo(message, err=True)

    async def passkey(self, peer: str) -> int | None:
        answer = await asyncio.to_thread(_ask, f"{peer}: passkey entry. Type the 6 digits it displays: ")
        if answer is None or not answer.isdigit() or int(answer) > PASSKEY_MAX:
            return None
        return int(answer)

    async def confirm_number(self, peer: str, number: int) -> bool:
        answer = await asyncio.to_thread(_ask, f"{peer}: numeric comparison. Does it show {number:06d}? "
                                               f"Confirm on it too. [y/N] ")
        return answer is not None and answer.lower() in ("y", "yes")

    async def show_passkey(self, peer: str, passkey: int) -> None:
        self.say(f"{peer}: passkey entry. Type {passkey:06d} on its keypad.")


def ble_stack(transport: str | None, keystore: Path | None, *, prompts: object = None) -> BleStack:
    """Bumble on `transport` with the adapter's keystore (default: one per adapter in the user's state folder),
    or the OS stack, which keeps its own bonds."""
    from wedge.edge.bridge.discovery import BleStack

    if transport is None:
        if keystore is not None:
            raise click.UsageError("--keystore goes with --transport (the OS Bluetooth stack keeps its own bonds)")
        return BleStack.platform()
    from wedge.edge.bridge.bumble_backend import default_keystore_path

    return BleStack.bumble(transport, keystore=keystore or default_keystore_path(transport), prompts=prompts)


def transport_options(command: click.Command) -> click.Command:
    for option in reversed((
        click.option("--transport", metavar="SPEC",
                     help="Drive a Bluetooth controller with Bumble: tcp-client:127.0.0.1:PORT (virtual air), usb:0, "
                          "serial:PORT. Default: the OS Bluetooth stack (which pairs through its own agent)."),
        click.option("--keystore", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
                     help=KEYSTORE_HELP),
    )):
        command = option(command)
    return command


@click.command()
@click.argument("name")
@transport_options
@click.option("--scan-timeout-s", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def pair(name: str, transport: str | None, keystore: Path | None, scan_timeout_s: float, as_json: bool) -> None:
    """Pair and bond with the BLE device advertising NAME (or at address NAME), so the bridge and `wedge flash
    --ble` reach it over an encrypted link; the method (Just Works, passkey entry, numeric comparison) follows
    from the device's display and buttons, and is said."""
    from wedge.edge.bridge.discovery import DeviceSelector
    from wedge.edge.bridge.pairing import pair_device

    selector = DeviceSelector(address=name) if ":" in name else DeviceSelector(name=name)
    stack = ble_stack(transport, keystore, prompts=TerminalPrompts())

    async def run() -> None:
        try:
            result = await pair_device(selector, stack, scan_timeout_s=scan_timeout_s)
        finally:
            await stack.close()
        if as_json:
            click.echo(json.dumps({"paired": result.to_dict()}))
            return
        click.echo(f"paired with {result.name or name} ({result.address}): {result.summary}")
        if result.keystore:
            click.echo(f"bond kept in {result.keystore}")

    asyncio.run(run())


@click.command()
@click.argument("name")
@transport_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def unpair(name: str, transport: str | None, keystore: Path | None, as_json: bool) -> None:
    """Forget the bond with the device NAME (or address): the next connection has to pair again."""
    from wedge.edge.bridge.pairing import unpair_device

    stack = ble_stack(transport, keystore)

    async def run() -> list[str]:
        try:
            return await unpair_device(name, stack)
        finally:
            await stack.close()

    forgotten = asyncio.run(run())
    if as_json:
        click.echo(json.dumps({"unpaired": forgotten}))
        return
    for address in forgotten:
        click.echo(f"forgot the bond with {name} ({address}); erase it on the device too before pairing again")
