"""`wedge deploy MODEL.onnx`: quantize to int8, export the .tflite, sign an image, flash it and confirm it, in one go.

A thin click layer chaining `wedge.quantize` (pipeline with TFLite export), `wedge.firmware.image` and
`wedge.firmware.flash`; every intermediate file stays in --out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from wedge.boards import load as load_board
from wedge.cli.flash import port_options
from wedge.cli.grammar import out_dir_option
from wedge.cli.pack import read_labels


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--board", "board_name", required=True, metavar="NAME", help="Board profile to deploy to.")
@click.option("--calib", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration data for the int8 quantization (as `wedge quantize --calib`).")
@click.option("--eval", "eval_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Evaluation data: report int8 accuracy against fp32 (as `wedge quantize --eval`).")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Private ed25519 key to sign the image with.")
@port_options
@click.option("--version", "version", default="1.0.0", show_default=True, help="Image version.")
@out_dir_option(default=Path("deploy"), help="Folder for the int8 ONNX, the .tflite, the report and the image.")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Text file of output labels, one per line, for the image manifest (default: the model's metadata).")
@click.option("--unit", help="For a regression output: the unit of its value, for the image manifest.")
@click.option("--upgrade-only", is_flag=True, help="Refuse to flash an image that is not newer than the running one.")
@click.option("--json", "as_json", is_flag=True, help="Print the quantize, image and flash records as JSON.")
def deploy(model: Path, board_name: str, calib: Path, eval_path: Path | None, key_path: Path, port: str | None,
           ble_name: str | None, ble_transport: str | None, ble_keystore: Path | None, baud: int,
           timeout_s: float, version: str, out_dir: Path, labels_path: Path | None, unit: str | None,
           upgrade_only: bool,
           as_json: bool) -> None:
    """Quantize an ONNX model, pack it for a board and flash it (test boot, then confirm)."""
    from wedge.cli.flash import with_device
    from wedge.cli.flash_render import RichFlashObserver, print_flash_report
    from wedge.cli.image_render import image_record
    from wedge.cli.quantize_render import render_quantize_report
    from wedge.firmware.flash.flasher import FlashOptions, flash_image_async
    from wedge.firmware.image.build import build_image, write_image
    from wedge.firmware.image.keys import load_public_key
    from wedge.firmware.image.model_image import check_image
    from wedge.quantize.labels import ClassNames
    from wedge.quantize.pipeline import QuantizeOptions, run_quantize

    board = load_board(board_name)
    labels = read_labels(labels_path)
    observer = None if as_json else RichFlashObserver()
    if observer is not None:
        observer.phase("quantize", f"{model.name} to int8 for {board.name} (with the TFLite export)")
    names = ClassNames(labels, f"--labels {labels_path}") if labels else None
    report = run_quantize(model, out_dir, calib=calib, evaluation=eval_path, board=board,
                          options=QuantizeOptions(format="tflite", class_names=names, unit=unit))
    export = report.tflite
    if export is None:
        raise click.ClickException("the quantize step wrote no .tflite")
    if observer is not None:
        # What it cost and whether it fits, as `wedge quantize` shows it, before anything is flashed.
        render_quantize_report(report, Console(highlight=False, width=None if sys.stdout.isatty() else 120))
        observer.phase("pack", f"{export.path.name} signed as {version}")
    # Named as `wedge pack` names it: the model is the .tflite's stem, the image sits beside it.
    packed = write_image(
        # The labels travel in the .tflite (from --labels, or the model's metadata): the image reads them there.
        build_image(export.path, board, key_path, version, arena_bytes=export.arena_bytes),
        export.path.with_suffix(".img"),
    )
    options = FlashOptions(upgrade_only=upgrade_only, baud=baud, timeout_s=timeout_s, board=board.name)
    if (port is None) == (ble_name is None):
        raise click.UsageError("give the board as --port PORT or --ble NAME (one of them)")
    try:
        name = packed.path.name if packed.path else model.stem
        flashed = with_device(port, ble_name, ble_transport, ble_keystore, lambda address, transport: flash_image_async(
            address, packed.image, name, options, observer, transport))
    finally:
        if observer is not None:
            observer.close()
    if as_json:
        image = image_record(packed.image, check_image(packed.image, load_public_key(key_path)), str(packed.path))
        click.echo(json.dumps({"quantize": report.to_dict(), "image": image, "flash": flashed.to_dict()}, indent=2))
        return
    print_flash_report(flashed)
