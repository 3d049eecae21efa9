"""Progress of long library calls: the pipelines' Progress protocol drawn as rich bars on stderr, or written as
periodic plain lines on stderr where bars would be noise (CI logs, pipes).

Shared by `wedge quantize` (int8), its language-model branch and `wedge export`; stdout stays clean for --json.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

PROGRESS_EVERY_S: Final = 10.0


class _RichProgress:
    """One rich Progress; each stage is a bar, filled when the next stage begins."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._previous: tuple[TaskID, int | None] | None = None

    def stage(self, description: str, total: int | None) -> Callable[[int], None]:
        if self._previous is not None:
            # A stage ends when the next begins; show it full even if its last tick was skipped.
            task, previous_total = self._previous
            self._progress.update(task, completed=previous_total or 0)
        task = self._progress.add_task(description, total=total)
        self._previous = (task, total)
        return lambda count: self._progress.advance(task, count)


@contextmanager
def _bars() -> Iterator[_RichProgress]:
    columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield _RichProgress(progress)


@contextmanager
def progress_bars(enabled: bool) -> Iterator[_RichProgress | None]:
    if not enabled:
        yield None
        return
    with _bars() as bars:
        yield bars




class LineProgress:
    """The Progress protocol as plain lines on stderr: one when a stage starts, then one every `every_s` while it
    runs, and its time when it ends."""

    def __init__(self, prefix: str = "wedge", every_s: float = PROGRESS_EVERY_S) -> None:
        self._prefix = prefix
        self._every_s = every_s
        self._current: tuple[str, float] | None = None

    def _finish(self) -> None:
        if self._current is not None:
            description, began = self._current
            click.echo(f"[{self._prefix}] {description}: done in {time.monotonic() - began:.1f} s", err=True)

    def stage(self, description: str, total: int | None) -> Callable[[int], None]:
        self._finish()
        began = time.monotonic()
        self._current = (description, began)
        click.echo(f"[{self._prefix}] {description}" + (f" (0/{total})" if total else ""), err=True)
        state = {"done": 0, "shown": began}

        def advance(count: int) -> None:
            state["done"] += count
            now = time.monotonic()
            if now - state["shown"] >= self._every_s:
                state["shown"] = now
                share = f"{state['done']}/{total} ({100 * state['done'] / total:.0f}%)" if total else str(state["done"])
                click.echo(f"[{self._prefix}] {description}: {share}, {now - began:.0f} s", err=True)

        return advance

    def close(self) -> None:
        self._finish()
        self._current = None


@contextmanager
def progress_bars_or_lines(bars: bool) -> Iterator[_RichProgress | LineProgress]:
    """Rich bars when `bars` (a terminal, no --json), periodic lines otherwise."""
    if bars:
        with _bars() as drawn:
            yield drawn
        return
    lines = LineProgress()
    yield lines
    lines.close()  # not after an error: the stage it was in did not get done
