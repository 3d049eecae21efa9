"""`wedge flash X.img --port P`: upload a signed image over SMP, boot it for test, confirm it or report the rollback.

A thin click layer over `wedge.firmware.flash`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from wedge.cli.pair import KEYSTORE_HELP

T = TypeVar("T")


def port_options(command: click.Command) -> click.Command:
    for option in reversed((
        click.option("--port", metavar="PORT",
                     help="Serial port of the board (a path such as /dev/ttyACM0, or a pyserial URL)."),
        click.option("--ble", "ble_name", metavar="NAME",
                     help="Reach the board over BLE instead (its advertised name or address; Zephyr's SMP service)."),
        click.option("--ble-transport", metavar="SPEC",
                     help="With --ble: a Bumble HCI transport (tcp-client:127.0.0.1:PORT for the virtual air from "
                          "`wedge air`, usb:0 for a dongle). Default: the OS Bluetooth stack."),
        click.option("--ble-keystore", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
                     help=KEYSTORE_HELP),
        click.option("--baud", type=click.IntRange(min=1), default=115_200, show_default=True,
                     help="Baud rate of a real UART (ignored by USB CDC and virtual ports)."),
        click.option("--timeout-s", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
                     help="How long to wait for each SMP reply."),
    )):
        command = option(command)
    return command


def identity_options(command: click.Command) -> click.Command:
    for option in reversed((
        click.option("--board", "board_name", metavar="NAME",
                     help="Board profile, for a device that does not say what it is (no OS info)."),
        click.option("--wedge-group-id", type=click.IntRange(64, 65535), default=96, show_default=True,
                     help="SMP group id of wedge's group on the device (absent groups are not needed)."),
    )):
        command = option(command)
    return command


def with_device(port: str | None, ble_name: str | None, ble_transport: str | None, ble_keystore: Path | None,
                body: Callable[[str, Any], Awaitable[T]]) -> T:
    """Run `body(address, transport)` in an event loop: a serial port (transport None) or a BLE device through
    bleak, on the OS stack or wedge's Bumble backend with the adapter's bonds (closed again when done)."""
    if (port is None) == (ble_name is None):
        raise click.UsageError("give the board as --port PORT or --ble NAME (one of them)")
    if ble_transport is not None and ble_name is None:
        raise click.UsageError("--ble-transport goes with --ble NAME")
    if ble_keystore is not None and ble_transport is None:
        raise click.UsageError("--ble-keystore goes with --ble-transport (the OS Bluetooth stack keeps its own bonds)")
    if port is not None:
        return asyncio.run(body(port, None))

    async def run() -> T:
        from wedge.cli.pair import ble_stack
        from wedge.firmware.flash.ble_transport import BleSmpTransport

        stack = ble_stack(ble_transport, ble_keystore)
        try:
            transport = BleSmpTransport(scanner_args=stack.scanner_args, client_args=stack.client_args)
            return await body(ble_name or "", transport)
        finally:
            await stack.close()

    return asyncio.run(run())


@click.command()
@click.argument("image_path", metavar="IMAGE", type=click.Path(dir_okay=False, path_type=Path))
@port_options
@identity_options
@click.option("--upgrade-only", is_flag=True, help="Refuse an image that is not newer than the running one.")
@click.option("--window", type=click.IntRange(min=1, max=4),
              help="Upload chunks in flight at once (1 = wait for each reply). Default: 2 on a UART, 1 over BLE.")
@click.option("--image", "image_number", type=click.IntRange(0, 15),
              help="MCUboot image to flash (default: the one the file is packed for: 1 for a model, 0 for firmware).")
@click.option("--firmware", "firmware_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The application image the device runs: the model is checked against its descriptor when "
                   "the device does not describe its firmware itself.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no progress display).")
def flash(image_path: Path, port: str | None, ble_name: str | None, ble_transport: str | None,
          ble_keystore: Path | None, board_name: str | None, wedge_group_id: int, baud: int, timeout_s: float, upgrade_only: bool, window: int | None,
          image_number: int | None, firmware_path: Path | None, as_json: bool) -> None:
    """Flash a signed image (a model to image 1, firmware to image 0) over SMP, with resume, test boot, confirm
    or rollback."""
    from wedge.cli.flash_render import RichFlashObserver, print_flash_report
    from wedge.firmware.errors import ImageError
    from wedge.firmware.flash.flasher import FlashOptions, flash_image_async
    from wedge.firmware.image.firmware_image import FirmwareImage
    from wedge.firmware.image.model_image import read_any_image_file

    image = read_any_image_file(image_path)
    firmware = None
    if firmware_path is not None:
        firmware = read_any_image_file(firmware_path)
        if not isinstance(firmware, FirmwareImage):
            raise ImageError(f"{firmware_path.name} is not an application firmware image (--firmware)")
    options = FlashOptions(upgrade_only=upgrade_only, baud=baud, timeout_s=timeout_s, window=window,
                           image=image_number, board=board_name, wedge_group_id=wedge_group_id, firmware=firmware)
    observer = None if as_json else RichFlashObserver()
    try:
        report = with_device(port, ble_name, ble_transport, ble_keystore, lambda address, transport: flash_image_async(
            address, image, image_path.name, options, observer, transport))
    finally:
        if observer is not None:
            observer.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_flash_report(report)
