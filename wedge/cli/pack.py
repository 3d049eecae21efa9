"""`wedge pack MODEL.tflite`: sign a model into an MCUboot image for a board, with its manifest.

A thin click layer over `wedge.firmware.image`; the TFLM arena comes from `--arena-bytes` or is measured
with the TFLite export's arena probe.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from wedge.boards import load as load_board


def read_labels(path: Path | None) -> tuple[str, ...]:
    if path is None:
        return ()
    try:
        return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint="--labels") from exc


def measured_arena_bytes(model: Path) -> int:
    """The TFLM arena of a .tflite, as the TFLite export measures it."""
    from wedge.firmware.errors import ImageError
    from wedge.quantize.tflite.arena import measure_arena
    from wedge.quantize.tflite.errors import ExportError

    try:
        return measure_arena(model, source=model.name).arena_bytes
    except ExportError as exc:
        raise ImageError(str(exc)) from exc


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--board", "board_name", required=True, metavar="NAME", help="Board profile the image is for.")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Private ed25519 key to sign with (wedge.pem from `wedge keys generate`).")
@click.option("--version", "version", required=True, help="Image version MAJOR.MINOR.REVISION[+BUILD].")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Image file to write.")
@click.option("--name", "model_name", help="Model name in the manifest (default: the file name).")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Text file of output labels, one per line.")
@click.option("--arena-bytes", type=click.IntRange(min=1),
              help="TFLM arena the model needs (default: measure it with TFLite-Micro).")
@click.option("--no-fit-check", is_flag=True,
              help="Build even if the model does not fit the board (the board will refuse or roll it back).")
@click.option("--json", "as_json", is_flag=True, help="Print the image record as JSON.")
def pack(model: Path, board_name: str, key_path: Path, version: str, out_path: Path, model_name: str | None,
         labels_path: Path | None, arena_bytes: int | None, no_fit_check: bool, as_json: bool) -> None:
    """Sign a .tflite model into an MCUboot image for a board."""
    from wedge.cli.image_render import image_record, print_image
    from wedge.firmware.image.build import build_image, check_model_path, write_image
    from wedge.firmware.image.model_image import check_image

    board = load_board(board_name)
    labels = read_labels(labels_path)
    check_model_path(model)
    if arena_bytes is None:
        arena_bytes = measured_arena_bytes(model)
    result = build_image(model, board, key_path, version, arena_bytes=arena_bytes, model_name=model_name,
                         labels=labels, check_fit=not no_fit_check)
    result = write_image(result, out_path)
    check = check_image(result.image)
    if as_json:
        record = image_record(result.image, check, str(out_path))
        record["notes"] = list(result.notes)
        click.echo(json.dumps(record, indent=2))
        return
    print_image(result.image, check, str(out_path))
    for note in result.notes:
        click.echo(f"note: {note}")
