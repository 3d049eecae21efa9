"""Progress bars for long library calls: the pipelines' Progress protocol drawn as rich bars on stderr.

Shared by `wedge quantize` (int8) and its language-model branch; stdout stays clean for --json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


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
def progress_bars(enabled: bool) -> Iterator[_RichProgress | None]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield _RichProgress(progress)


