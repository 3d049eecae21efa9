"""How the pipeline reports progress without knowing who draws it.

The CLI passes a rich-backed implementation; library callers get silence by default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    """Starts a stage of `total` units and returns the function that advances it."""

    def stage(self, description: str, total: int | None) -> Callable[[int], None]: ...


class SilentProgress:
    """Progress that shows nothing."""

    def stage(self, description: str, total: int | None) -> Callable[[int], None]:
        return _ignore


def _ignore(count: int) -> None:
    del count
