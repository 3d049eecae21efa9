"""`wedge pack MODEL.tflite`: sign a model into an MCUboot image for a board, with its manifest.

A thin click layer over `wedge.firmware.image`; the TFLM arena comes from `--arena-bytes` or is measured
with the TFLite export's arena probe.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from wedge.boards import load as load_board


def read_labels(path: Path | None) -> tuple[str, ...] | None:
    """The labels of a `--labels FILE` (one a line), read as every command reads them; None without one (the
    labels the .tflite carries from `wedge quantize` are used)."""
    from wedge.runtime.artifacts.labels import read_labels_file

    return None if path is None else read_labels_file(path)


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
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--board", "board_name", required=True, metavar="NAME", help="Board profile the image is for.")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Private ed25519 key to sign with (wedge.pem from `wedge keys generate`).")
@click.option("--version", "version", required=True, help="Image version MAJOR.MINOR.REVISION[+BUILD].")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Image file to write.")
@click.option("--name", "model_name", help="Model name in the manifest (default: the file name).")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Text file of output labels, one per line (default: those the .tflite carries from `wedge quantize`).")
@click.option("--unit", help="For a regression output: the unit of its value (default: the one the .tflite carries).")
@click.option("--arena-bytes", type=click.IntRange(min=1),
              help="TFLM arena the model needs (default: measure it with TFLite-Micro).")
@click.option("--no-fit-check", is_flag=True,
              help="Build even if the model does not fit the board (the board will refuse or roll it back).")
@click.option("--image", "image_number", type=click.IntRange(1, 15),
              help="MCUboot image the model goes to (default: the board's model image, 1).")
@click.option("--min-firmware", metavar="VERSION",
              help="Application version the model needs at least: an MCUboot dependency TLV on image 0.")
@click.option("--firmware", "firmware", is_flag=True,
              help="Build an application firmware image (image 0) for a virtual board instead of a model image.")
@click.option("--ops", metavar="OP,OP", help="With --firmware: the ops its resolver registers (default: every TFLM kernel).")
@click.option("--json", "as_json", is_flag=True, help="Print the image record as JSON.")
def pack(model: Path | None, board_name: str, key_path: Path, version: str, out_path: Path, model_name: str | None,
         labels_path: Path | None, unit: str | None, arena_bytes: int | None, no_fit_check: bool, image_number: int | None,
         min_firmware: str | None, firmware: bool, ops: str | None, as_json: bool) -> None:
    """Sign a .tflite model into an MCUboot image for a board (or, with --firmware, an application image)."""
    from wedge.cli.image_render import image_record, print_image
    from wedge.firmware.flash.preflight import sensor_warning
    from wedge.firmware.image.build import build_image, check_model_path, write_image, write_image_bytes
    from wedge.firmware.image.keys import load_public_key
    from wedge.firmware.image.model_image import check_image

    board = load_board(board_name)
    if firmware:
        if model is not None or image_number is not None or min_firmware or labels_path or model_name or unit:
            raise click.UsageError("--firmware builds an application image: it takes no MODEL, --image, "
                                   "--min-firmware, --labels, --unit or --name")
        from wedge.firmware.image.firmware_image import build_firmware_image

        chosen = None if ops is None else [op.strip() for op in ops.split(",") if op.strip()]
        image = build_firmware_image(board, key_path, version, ops=chosen, arena_bytes=arena_bytes)
        path = write_image_bytes(image.data, out_path)
        record = {"path": str(path), "image": 0, "size_bytes": image.size_bytes, "version": str(image.version),
                  "image_hash": image.image_hash.hex(), "key_hash": image.key_hash.hex(),
                  "descriptor": image.descriptor.to_dict()}
        if as_json:
            click.echo(json.dumps(record, indent=2))
        else:
            click.echo(f"{image.label} for {board.name} (image 0): {image.size_bytes:,} bytes, "
                       f"{len(image.descriptor.ops)} ops, {image.descriptor.arena_bytes:,}-byte arena -> {path}")
        return
    if model is None:
        raise click.UsageError("pack needs a MODEL.tflite (or --firmware)")
    if ops is not None:
        raise click.UsageError("--ops goes with --firmware")
    labels = read_labels(labels_path)
    check_model_path(model)
    if arena_bytes is None:
        arena_bytes = measured_arena_bytes(model)
    result = build_image(model, board, key_path, version, arena_bytes=arena_bytes, model_name=model_name,
                         labels=labels, unit=unit, check_fit=not no_fit_check, image=image_number, min_firmware=min_firmware)
    result = write_image(result, out_path)
    # The image was just signed with --key: check it against that key, so "trusted key" answers yes or no.
    check = check_image(result.image, load_public_key(key_path))
    mismatch = sensor_warning(board, result.image.manifest)
    notes = [*result.notes, *([mismatch] if mismatch else [])]
    if as_json:
        record = image_record(result.image, check, str(out_path))
        record["notes"] = notes
        click.echo(json.dumps(record, indent=2))
        return
    print_image(result.image, check, str(out_path))
    for note in notes:
        click.echo(note if note.startswith("warning: ") else f"note: {note}")
