"""What a bench run produced: each board's tests and how its worker ended, and the run as a whole.

The runner fills these; the reports (JSON, JUnit, HTML) only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from wedge.hil.board_map import BenchBoard

_OUTCOMES: Final[tuple[str, ...]] = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class BoardRun:
    """One board's worker: its tests (as the plugin recorded them) and how the worker ended."""

    board: BenchBoard
    exit_code: int
    wall_s: float
    tests: tuple[dict[str, Any], ...]
    junit_path: Path | None
    problem: str | None

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(_OUTCOMES, 0)
        for test in self.tests:
            counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
        return counts

    def metrics(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for test in self.tests:
            merged.update(test["properties"])
        return merged

    def to_dict(self) -> dict[str, Any]:
        return {**self.board.to_dict(), "exit_code": self.exit_code, "wall_s": round(self.wall_s, 3),
                "problem": self.problem, "summary": self.summary(), "tests": list(self.tests),
                "metrics": self.metrics()}


@dataclass(frozen=True)
class BenchRun:
    model: Path
    eval_path: Path | None
    board_map: Path
    suites: tuple[str, ...]
    wall_s: float
    boards: tuple[BoardRun, ...]
    files: dict[str, Path] = field(default_factory=dict)
    labels: tuple[str, ...] = ()  # the model's class names, for the confusion matrices

    @property
    def passed(self) -> bool:
        return all(b.exit_code == 0 and b.problem is None for b in self.boards)

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "eval": None if self.eval_path is None else str(self.eval_path),
                "board_map": str(self.board_map), "suites": list(self.suites), "wall_s": round(self.wall_s, 3),
                "passed": self.passed, "labels": list(self.labels), "boards": [b.to_dict() for b in self.boards],
                "latency_note": "a virtual board's m-lap-us clock is its profile's cycle model "
                                "(MACs x cycles/MAC / clock); host wall time is reported separately"}
