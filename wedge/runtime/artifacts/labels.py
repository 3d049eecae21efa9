"""What a model's outputs mean, carried inside the model file: class labels, or the unit of a regression value.

An ONNX model keeps them in `metadata_props` (wedge writes `wedge.labels`; the usual keys of other exporters
are read too: `labels`, `class_names`, `classes`, `names` as Ultralytics writes it, `id2label`), a .tflite in a
metadata entry named `wedge.labels` (TFLite-Micro and LiteRT skip metadata they do not know). So the labels a
model was quantized with reach its signed image's manifest without being named again.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from wedge.runtime.types import ArtifactError

LABELS_KEY: Final[str] = "wedge.labels"
# metadata_props keys other exporters use for class names, in the order they are tried after wedge's own.
FOREIGN_KEYS: Final[tuple[str, ...]] = ("labels", "class_names", "classes", "names", "id2label")
MAX_LABEL_CHARS: Final[int] = 64


@dataclass(frozen=True)
class ModelLabels:
    """Class names of the first output (index order), or the unit of its value when it is a regression."""

    labels: tuple[str, ...] = ()
    unit: str | None = None

    def __post_init__(self) -> None:
        for label in self.labels:
            if not label.strip() or len(label) > MAX_LABEL_CHARS or "\n" in label:
                raise ArtifactError(f"label {label!r} must be one line of 1..{MAX_LABEL_CHARS} characters")
        if self.unit is not None and (not self.unit.strip() or len(self.unit) > MAX_LABEL_CHARS):
            raise ArtifactError(f"unit {self.unit!r} must be 1..{MAX_LABEL_CHARS} characters")

    def __bool__(self) -> bool:
        return bool(self.labels) or self.unit is not None

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "unit": self.unit}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @staticmethod
    def from_json(text: str | bytes) -> ModelLabels:
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"the model's {LABELS_KEY} is not JSON: {exc}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("labels", []), list) \
                or not all(isinstance(v, str) for v in raw.get("labels", [])) \
                or not isinstance(raw.get("unit"), (str, type(None))):
            raise ArtifactError(f"the model's {LABELS_KEY} is not {{\"labels\": [str], \"unit\": str | null}}")
        return ModelLabels(tuple(raw.get("labels", [])), raw.get("unit"))

    def check_classes(self, classes: int | None, what: str) -> None:
        """ArtifactError when there are labels, but not one per class of an output with `classes` values."""
        if self.labels and classes is not None and classes > 1 and len(self.labels) != classes:
            raise ArtifactError(f"{len(self.labels)} labels for {what}, whose first output has {classes} classes")


def parse_labels(value: str) -> tuple[str, ...]:
    """Class names from a metadata value: a JSON list, a {index: name} map (JSON or a Python literal, as
    Ultralytics writes `names`), else comma- or newline-separated text."""
    text = value.strip()
    parsed: Any = None
    for reader in (json.loads, ast.literal_eval):
        try:
            parsed = reader(text)
            break
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    if isinstance(parsed, (list, tuple)):
        return tuple(str(v).strip() for v in parsed)
    if isinstance(parsed, Mapping):
        try:
            ordered = sorted(((int(k), str(v).strip()) for k, v in parsed.items()))
        except (TypeError, ValueError):
            raise ArtifactError(f"label map {text[:60]!r} is not keyed by class index") from None
        if [k for k, _ in ordered] != list(range(len(ordered))):
            raise ArtifactError(f"label map {text[:60]!r} does not number the classes 0..{len(ordered) - 1}")
        return tuple(v for _, v in ordered)
    separator = "\n" if "\n" in text else ","
    return tuple(part.strip() for part in text.split(separator) if part.strip())


def read_labels_file(path: Path) -> tuple[str, ...]:
    """Labels from a text file: one per line (blank lines skipped), or a JSON list / {index: name} map."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ArtifactError(f"cannot read labels from {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ArtifactError(f"{path} is not a UTF-8 text file of labels") from None
    if text.lstrip().startswith(("[", "{")):
        return parse_labels(text)
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def onnx_labels(metadata: Mapping[str, str]) -> ModelLabels | None:
    """The labels an ONNX model's metadata_props (as a dict) carries, or None."""
    if LABELS_KEY in metadata:
        return ModelLabels.from_json(metadata[LABELS_KEY])
    for key in FOREIGN_KEYS:
        if metadata.get(key, "").strip():
            return ModelLabels(parse_labels(metadata[key]))
    return None


def set_onnx_labels(model: Any, labels: ModelLabels) -> None:
    """Write `labels` under wedge's key into an onnx.ModelProto's metadata_props."""
    for prop in model.metadata_props:
        if prop.key == LABELS_KEY:
            prop.value = labels.to_json()
            return
    entry = model.metadata_props.add()
    entry.key, entry.value = LABELS_KEY, labels.to_json()


def tflite_metadata(labels: ModelLabels) -> dict[str, bytes]:
    """The .tflite metadata entries that carry `labels` (none when there is nothing to carry)."""
    return {LABELS_KEY: labels.to_json().encode()} if labels else {}


def tflite_labels(data: bytes) -> ModelLabels | None:
    """The labels in a .tflite's `wedge.labels` metadata entry, or None (also for a file that is not a .tflite)."""
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        return None
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == LABELS_KEY.encode():
                buffer = model.Buffers(entry.Buffer())
                return ModelLabels.from_json(buffer.DataAsNumpy().tobytes())
    except ArtifactError:
        raise
    except Exception:  # a corrupt flatbuffer fails with whatever the bad offset gives; the reader says so elsewhere
        return None
    return None


def read_model_labels(path: str | Path) -> ModelLabels | None:
    """The labels a .onnx or .tflite file carries, or None; ArtifactError when it cannot be read."""
    model_path = Path(path)
    try:
        if model_path.suffix.lower() == ".tflite":
            return tflite_labels(model_path.read_bytes())
        if model_path.suffix.lower() == ".onnx":
            import onnx

            model = onnx.load(str(model_path), load_external_data=False)
            return onnx_labels({p.key: p.value for p in model.metadata_props})
    except OSError as exc:
        raise ArtifactError(f"cannot read {model_path}: {exc.strerror or exc}") from None
    except Exception as exc:  # onnx's DecodeError and friends: not a model this reader can open
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"{model_path.name} is not a readable model: {exc}") from None
    return None
