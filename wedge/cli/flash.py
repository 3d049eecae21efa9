"""`wedge flash X.img --port P`: upload a signed image over SMP, boot it for test, confirm it or report the rollback.

A thin click layer over `wedge.firmware.flash`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


def port_options(command: click.Command) -> click.Command:
    for option in reversed((
        click.option("--port", required=True, metavar="PORT",
                     help="Serial port of the board (a path such as /dev/ttyACM0, or a pyserial URL)."),
        click.option("--baud", type=click.IntRange(min=1), default=115_200, show_default=True,
                     help="Baud rate of a real UART (ignored by USB CDC and virtual ports)."),
        click.option("--timeout-s", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
                     help="How long to wait for each SMP reply."),
    )):
        command = option(command)
    return command


@click.command()
@click.argument("image_path", metavar="IMAGE", type=click.Path(dir_okay=False, path_type=Path))
@port_options
@click.option("--upgrade-only", is_flag=True, help="Refuse an image that is not newer than the running one.")
@click.option("--window", type=click.IntRange(min=1, max=4), default=2, show_default=True,
              help="Upload chunks in flight at once (1 = wait for each reply).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no progress display).")
def flash(image_path: Path, port: str, baud: int, timeout_s: float, upgrade_only: bool, window: int,
          as_json: bool) -> None:
    """Flash a signed model image to a board over SMP (serial), with resume, test boot and rollback."""
    from wedge.cli.flash_render import RichFlashObserver, print_flash_report
    from wedge.firmware.flash.flasher import FlashOptions, flash_image
    from wedge.firmware.image.model_image import read_image_file

    image = read_image_file(image_path)
    options = FlashOptions(upgrade_only=upgrade_only, baud=baud, timeout_s=timeout_s, window=window)
    observer = None if as_json else RichFlashObserver()
    try:
        report = flash_image(port, image, image_path.name, options, observer)
    finally:
        if observer is not None:
            observer.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_flash_report(report)
