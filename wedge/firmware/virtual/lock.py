"""An exclusive lock on a virtual board's state folder: one board process per flash, as one chip per board.

A second `wedge emulate` on the same folder would flash the same file behind the first one's back; it is refused
with the process that holds the lock. The lock is an flock, so it goes away with its process, even a killed one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Final

from wedge.firmware.errors import VirtualBoardError

LOCK_FILE: Final[str] = "board.lock"


def _holder(path: Path) -> str:
    try:
        pid = int(path.read_text().strip() or "0")
    except (OSError, ValueError):
        return "another process"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return f"process {pid}" + (f" ({command[:120]})" if command else "")


class StateLock:
    """Held from `acquire` until `release` (or the process ends)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise VirtualBoardError(f"cannot lock the state folder {self.path.parent}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise VirtualBoardError(f"the state folder {self.path.parent} is in use by {_holder(self.path)}: "
                                    "one virtual board per state folder (stop it, or use another --state)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
