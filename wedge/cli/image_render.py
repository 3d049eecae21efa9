"""Renders a signed model image for `wedge inspect X.img` and `wedge pack`: manifest, hashes, signature verdict.

Tables for people, the full record with --json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wedge.cli.units import human_bytes

_PIPE_WIDTH: Final[int] = 1000


def console() -> Console:
    return Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH, highlight=False)


def image_record(image: Any, check: Any, path: str) -> dict[str, Any]:
    return {
        "path": path,
        "format": "mcuboot",
        "size_bytes": image.size_bytes,
        "version": str(image.version),
        "image_hash": image.image_hash.hex(),
        "key_hash": image.key_hash.hex(),
        "check": check.to_dict(),
        "manifest": image.manifest.to_dict(),
    }


def _yes_no(ok: bool | None, yes: str, no: str) -> str:
    if ok is None:
        return "-"
    return f"[green]{yes}[/green]" if ok else f"[red]{no}[/red]"


def print_image(image: Any, check: Any, path: str) -> None:
    manifest = image.manifest
    out = console()
    out.print(f"[bold]{escape(path)}[/bold]")
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("format", "MCUboot image (wedge manifest)")
    table.add_row("size", f"{human_bytes(image.size_bytes)} ({image.size_bytes:,} bytes)")
    table.add_row("model", escape(f"{manifest.model_name} {manifest.model_version}"))
    table.add_row("board", escape(manifest.board))
    table.add_row("runtime", manifest.runtime)
    table.add_row("arena", f"{human_bytes(manifest.arena_bytes)} ({manifest.arena_bytes:,} bytes)")
    table.add_row("image version", str(image.version))
    table.add_row("SHA-256", _yes_no(check.hash_ok, "ok", "MISMATCH") + f" {image.image_hash.hex()}")
    table.add_row("signature", _yes_no(check.signature_ok, "ed25519 ok", "INVALID") + f" key {image.key_hash.hex()[:16]}")
    table.add_row("trusted key", _yes_no(check.trusted, "yes (signed by the given key)", "NO: another key signed it")
                  if check.trusted is not None else "not checked (give --key)")
    if manifest.labels:
        table.add_row("labels", escape(", ".join(manifest.labels)))
    out.print(table)
    tensors = Table(title="inputs and outputs", title_justify="left")
    for header in ("", "name", "shape", "dtype", "scale", "zero point"):
        tensors.add_column(header)
    for role, specs in (("input", manifest.inputs), ("output", manifest.outputs)):
        for spec in specs:
            scale = "-" if not spec.scales else (f"{spec.scales[0]:.6g}" if len(spec.scales) == 1 else f"{len(spec.scales)} scales")
            zero = "-" if not spec.zero_points else (str(spec.zero_points[0]) if len(spec.zero_points) == 1 else "per axis")
            tensors.add_row(role, escape(spec.name), str(list(spec.shape)), spec.dtype, scale, zero)
    out.print(tensors)
    for problem in check.problems:
        out.print(f"[red]problem:[/red] {escape(problem)}")


def show_image_file(path: str, key_path: Path | None, as_json: bool) -> None:
    """`wedge inspect X.img`: exit status 1 when the hash or signature fails."""
    from wedge.firmware.errors import ImageError
    from wedge.firmware.image.keys import load_public_key
    from wedge.firmware.image.model_image import check_image, read_image_file

    image = read_image_file(path)
    check = check_image(image, load_public_key(key_path) if key_path is not None else None)
    if as_json:
        click.echo(json.dumps(image_record(image, check, path), indent=2))
    else:
        print_image(image, check, path)
    if check.problems:
        raise ImageError(f"{Path(path).name} cannot be trusted: {check.problems[0]}")
