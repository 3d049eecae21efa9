"""Shows a flash as it happens (phases, and a progress bar with bytes, rate and ETA) and its outcome.

Shared by `wedge flash` and `wedge deploy`; with --json nothing but the final record is printed.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

# smpclient logs timeouts and retries at ERROR level; wedge reports the outcome itself, in one line.
for _name in ("smpclient", "smp"):
    logging.getLogger(_name).addHandler(logging.NullHandler())
    logging.getLogger(_name).propagate = False


class RichFlashObserver:
    """A FlashObserver that prints each phase and draws the upload as a progress bar (on stderr)."""

    def __init__(self) -> None:
        self.console = Console(stderr=True, highlight=False)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def phase(self, name: str, detail: str) -> None:
        self._stop_bar()
        self.console.print(f"[bold]{name:>8}[/bold] {escape(detail)}")
        if name == "upload":
            self._progress = Progress(
                TextColumn("         "), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self._progress.start()

    def progress(self, sent_bytes: int, total_bytes: int) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task("upload", total=total_bytes)
        self._progress.update(self._task, completed=sent_bytes)

    def close(self) -> None:
        self._stop_bar()

    def _stop_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None


def print_flash_report(report: Any) -> None:
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 1000)
    upload = report.upload
    line = (f"{escape(report.model)} {escape(report.version)} {report.outcome} on {escape(report.board)} image "
            f"{report.image} ({escape(report.port)})")
    out.print(f"[green]{line}[/green]")
    if report.previous:
        out.print(f"previous model: {escape(report.previous)}")
    if upload is not None:
        rate = upload.image_bytes / upload.duration_s if upload.duration_s else 0.0
        out.print(f"uploaded {upload.image_bytes:,} bytes in {upload.duration_s:.1f} s ({rate / 1024:.1f} KiB/s, "
                  f"{upload.resumes} resumes, {upload.resent_bytes:,} bytes re-sent)")
    for note in report.notes:
        out.print(f"[yellow]{escape(note)}[/yellow]" if note.startswith("warning: ") else f"note: {escape(note)}")
    out.print(f"total {report.total_s:.1f} s")
