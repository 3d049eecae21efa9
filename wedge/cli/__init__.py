"""The `wedge` command line: a thin click layer over the library.

Each command group lives in its own module; this one builds the group and turns errors into one line.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Final

import click

from wedge import __version__
from wedge.errors import WedgeError

# Command name -> its module: a command's module (and what it imports: onnxruntime, LiteRT, Bumble, ...) loads
# only when that command runs, so `wedge bridge` does not carry the quantizer in memory. A new command is
# one line here and one module beside this one.
COMMANDS: Final[dict[str, str]] = {
    "air": "air",
    "boards": "boards",
    "bridge": "bridge",
    "demo": "demo",
    "deploy": "deploy",
    "device": "device",
    "emulate": "emulate",
    "export": "export",
    "flash": "flash",
    "fleet": "fleet",
    "generate": "generate",
    "hil": "hil",
    "inspect": "inspect",
    "keys": "keys",
    "mcp": "mcp",
    "pack": "pack",
    "pair": "pair",
    "ports": "ports",
    "quantize": "quantize",
    "scan": "scan",
    "unpair": "pair",
}


def _pass_undecodable_names() -> None:
    """File names that are not UTF-8 reach Python as surrogates; print them back as their original bytes.

    Python does so by itself only in the C locale; under en_US.UTF-8 printing such a name would raise.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="surrogateescape")
            except (ValueError, OSError):  # a stream that cannot change, e.g. already closed
                pass


class WedgeGroup(click.Group):
    """A click group that loads each command on first use and reports WedgeError as one line and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = getattr(importlib.import_module(f"wedge.cli.{module}"), cmd_name)
        return command if isinstance(command, click.Command) else None

    def invoke(self, ctx: click.Context) -> Any:
        _pass_undecodable_names()
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
