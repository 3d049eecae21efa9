"""`wedge keys generate`: make the ed25519 key pair that signs model images (wedge.pem) and that boards trust (wedge.pub).

A thin click layer over `wedge.firmware.image.keys`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from wedge.cli.grammar import out_dir_option


@click.group()
def keys() -> None:
    """Signing keys for model images."""


@keys.command("generate")
@out_dir_option(required=True, help="Folder for wedge.pem (private, keep it secret) and wedge.pub (public, for boards).")
@click.option("--json", "as_json", is_flag=True, help="Print the paths and key hash as JSON.")
def generate(out_dir: Path, as_json: bool) -> None:
    """Generate an ed25519 key pair (never overwrites an existing key)."""
    from wedge.firmware.image.keys import generate_keys

    pair = generate_keys(out_dir)
    if as_json:
        click.echo(json.dumps(pair.to_dict(), indent=2))
        return
    click.echo(f"private key {pair.private_path} (sign with it; keep it secret)")
    click.echo(f"public key  {pair.public_path} (provision boards with it)")
    click.echo(f"key hash    {pair.key_hash.hex()}")
