"""The `wedge` command line: a thin click layer over the library.

Each command group lives in its own module; this one builds the group and turns errors into one line.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from wedge import __version__
from wedge.errors import WedgeError


class WedgeGroup(click.Group):
    """A click group that reports WedgeError as a one-line message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WedgeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=WedgeGroup)
@click.version_option(__version__, prog_name="wedge")
def main() -> None:
    """wedge: quantize models to int8, check they fit a board, and deploy them."""


def _register() -> None:
    from wedge.edge.cli import (
        air, boards, bridge, demo, deploy, device, emulate, flash, generate, hil, inspect, keys, pack, quantize,
    )

    main.add_command(air.air)
    main.add_command(boards.boards)
    main.add_command(bridge.bridge)
    main.add_command(demo.demo)
    main.add_command(deploy.deploy)
    main.add_command(device.device)
    main.add_command(emulate.emulate)
    main.add_command(flash.flash)
    main.add_command(generate.generate)
    main.add_command(hil.hil)
    main.add_command(inspect.inspect)
    main.add_command(keys.keys)
    main.add_command(pack.pack)
    main.add_command(quantize.quantize)


_register()
