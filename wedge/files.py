"""Files that appear whole or not at all: written beside their target, then renamed onto it.

They get the mode any new file gets (0666 less the umask), or the one asked for (0600 for keys: the staged file
is 0600 from its creation, so such a file is never readable by others, not even for a moment).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def new_file_mode() -> int:
    """The mode `open()` gives a new file under the process's umask."""
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return 0o666 & ~mask


def stage_bytes(target: Path, data: bytes, mode: int | None = None) -> Path:
    """Write `data` to a hidden file beside `target` (same folder, so renaming it onto `target` is atomic), with
    `mode` (default: a new file's).

    Raises OSError; the staged file is gone again when writing fails.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    staged = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(staged, new_file_mode() if mode is None else mode)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged


def write_atomic(target: Path, data: bytes, mode: int | None = None) -> Path:
    """Write `data` to `target` so a reader sees the old file or the new one, never half of it, with `mode`
    (default: a new file's). Raises OSError."""
    staged = stage_bytes(target, data, mode)
    try:
        os.replace(staged, target)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return target
