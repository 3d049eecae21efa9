"""Class names of a model's outputs: from a labels file, the model's own metadata, or what the caller knows.

One reader for every command that shows or packs labels; a labels file is one name a line.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from wedge.errors import first_line
from wedge.quantize.errors import LabelsError

# Metadata keys that hold class names: wedge's samples write `labels`; converters use the others
# (Ultralytics exports `names` as a Python dict literal, Keras-to-ONNX tools `classes` or `class_names`).
LABEL_KEYS: Final[tuple[str, ...]] = ("labels", "class_names", "classes", "names")
MAX_LABEL_CHARS: Final[int] = 200


@dataclass(frozen=True)
class ClassNames:
    """The names of the output classes, in index order, and where they came from (for the report)."""

    names: tuple[str, ...]
    source: str

    def name(self, index: int) -> str:
        """The name of class `index`, or the index itself past the end of the list."""
        return self.names[index] if 0 <= index < len(self.names) else str(index)

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "source": self.source}


def read_labels_file(path: str | Path) -> tuple[str, ...]:
    """The labels of a text file, one a line (blank lines skipped); LabelsError when unreadable or empty."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabelsError(f"cannot read the labels file {path}: {exc.strerror or first_line(exc)}") from None
    except UnicodeDecodeError:
        raise LabelsError(f"the labels file {path} is not UTF-8 text (one label a line)") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise LabelsError(f"the labels file {path} holds no labels (one label a line)")
    return _checked(names, str(path))


def parse_labels(text: str) -> tuple[str, ...]:
    """Labels from a metadata value: a JSON or Python list, a {index: name} dict, or names a line / comma."""
    text = text.strip()
    if not text:
        return ()
    value: Any = None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
            break
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
    if isinstance(value, (list, tuple)):
        return tuple(str(item) for item in value)
    if isinstance(value, dict):
        try:
            ordered = sorted(value.items(), key=lambda item: int(item[0]))
        except (TypeError, ValueError):
            return ()
        return tuple(str(name) for _, name in ordered)
    separator = "\n" if "\n" in text else ","
    return tuple(part.strip() for part in text.split(separator) if part.strip())


def model_labels(path: str | Path) -> tuple[str, ...]:
    """Class names stored in the model file itself: ONNX `metadata_props`, or a .tflite metadata entry."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        return ()
    entries = _tflite_metadata(data) if path.suffix.lower() == ".tflite" else _onnx_metadata(data)
    for key in LABEL_KEYS:
        if key in entries:
            names = parse_labels(entries[key])
            if names:
                return _checked(names, f"{path.name} metadata '{key}'")
    return ()


def resolve_class_names(labels_file: str | Path | None = None, model: str | Path | None = None,
                        known: Sequence[str] = (), known_source: str = "") -> ClassNames | None:
    """The class names a user means: a labels file first, then the model's metadata, then `known` (a sample's)."""
    if labels_file is not None:
        return ClassNames(read_labels_file(labels_file), f"--labels {labels_file}")
    if model is not None:
        names = model_labels(model)
        if names:
            return ClassNames(names, f"the model's metadata ({Path(model).name})")
    if known:
        return ClassNames(tuple(known), known_source or "given")
    return None


def _checked(names: tuple[str, ...], where: str) -> tuple[str, ...]:
    long = next((name for name in names if len(name) > MAX_LABEL_CHARS), None)
    if long is not None:
        raise LabelsError(f"{where}: a label is {len(long)} characters long (at most {MAX_LABEL_CHARS}); "
                          "is it one label a line?")
    return names


def _onnx_metadata(data: bytes) -> dict[str, str]:
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # not ONNX: no labels to read, the caller reports the model itself
        return {}
    return {prop.key: prop.value for prop in model.metadata_props}


def _tflite_metadata(data: bytes) -> dict[str, str]:
    from wedge.runtime.artifacts.tflite_flatbuffer import read_tflite

    try:
        model = read_tflite(data, "model")
    except Exception:  # not a flatbuffer we can read: no labels
        return {}
    entries: dict[str, str] = {}
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else str(entry.name)
        buffers = model.buffers or []
        if 0 <= entry.buffer < len(buffers) and buffers[entry.buffer].data is not None:
            try:
                entries[name] = bytes(buffers[entry.buffer].data).decode("utf-8")
            except UnicodeDecodeError:
                continue
    return entries
