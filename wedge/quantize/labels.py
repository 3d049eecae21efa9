"""Class names of a model's outputs for the quantize report: from a labels file, the model's own metadata, or
what the caller knows (a sample's), with where they came from.

Reading and writing labels is `wedge.runtime.artifacts.labels` (one reader for every command, below the
pipeline, so images and the virtual board read them too); this adds the report's view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wedge.runtime.artifacts.labels import (
    MAX_LABEL_CHARS,
    LabelsError,
    parse_labels,
    read_labels_file,
    read_model_labels,
)
from wedge.runtime.types import ArtifactError

__all__ = ["MAX_LABEL_CHARS", "ClassNames", "LabelsError", "model_labels", "parse_labels", "read_labels_file",
           "resolve_class_names"]


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


def model_labels(path: str | Path) -> tuple[str, ...]:
    """Class names stored in the model file itself (ONNX `metadata_props`, a .tflite metadata entry); () when
    it has none or cannot be read (the caller reports the model itself)."""
    try:
        carried = read_model_labels(path)
    except LabelsError:
        raise
    except ArtifactError:
        return ()
    return () if carried is None else carried.labels


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
