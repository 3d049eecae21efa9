"""The CLI's shared grammar: `-o` is always an output file (`-o -`: stdout where a command allows it), a folder
of outputs is always `--out-dir`; `--port` is always a serial port, `--board` always a board profile.

A command that writes a folder still recognises `-o` and `--out`, hidden, to refuse them with the option to use
instead: a script written for an older wedge stops with one line, not with a folder where a file was meant.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _refuse_o(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.UsageError(f"-o names an output file in wedge; give this command's output folder with "
                               f"--out-dir {value}", ctx)


def out_dir_option(help: str, default: Path | None = None, required: bool = False) -> Callable[[F], F]:
    """`--out-dir DIR` (the parameter `out_dir`), and a hidden `-o/--out` that says to use it."""

    def decorate(command: F) -> F:
        command = click.option("-o", "--out", "_old_out", hidden=True, expose_value=False, callback=_refuse_o,
                               is_eager=True)(command)
        return click.option("--out-dir", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                            default=default, required=required, show_default=default is not None, metavar="DIR",
                            help=help)(command)

    return decorate


def one_writer_of_stdout(as_json: bool, sink_specs: tuple[str, ...]) -> None:
    """`--json` prints its result on stdout; a `jsonl:-` sink streams records there too: refuse the pair."""
    if as_json and "jsonl:-" in sink_specs:
        raise click.UsageError("--json prints the summary on stdout, where --sink jsonl:- writes the records: "
                               "give the records a file (jsonl:PATH) or drop --json")
