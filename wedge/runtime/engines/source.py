"""Where an engine's model comes from: a file path or the model's bytes already in memory.

One place turns a missing or unreadable file into an EngineError, for every backend.
"""

from __future__ import annotations

from pathlib import Path

from wedge.runtime.types import EngineError

ModelSource = str | Path | bytes


def describe_source(model: ModelSource) -> str:
    """A short name for messages: the file name, or the size of in-memory bytes."""
    if isinstance(model, bytes):
        return f"<{len(model)} bytes of model>"
    return Path(model).name


def existing_path(model: str | Path) -> Path:
    """The model path, checked to be a readable file, so a typo is reported as such."""
    path = Path(model)
    if not path.exists():
        raise EngineError(f"model file not found: {path}")
    if not path.is_file():
        raise EngineError(f"model path is not a file: {path}")
    return path


def load_bytes(model: ModelSource) -> bytes:
    """The model's bytes, read from disk when given a path."""
    if isinstance(model, bytes):
        return model
    path = existing_path(model)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EngineError(f"cannot read model {path}: {exc.strerror or exc}") from exc
