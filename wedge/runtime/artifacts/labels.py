"""What a model's outputs mean, carried inside the model file: class labels, or the unit of a regression value.

An ONNX model keeps them in `metadata_props` (wedge writes `wedge.labels`; the usual keys of other exporters
are read too: `labels`, `class_names`, `classes`, `names` as Ultralytics writes it, `id2label`), a .tflite in a
metadata entry named `wedge.labels` (TFLite-Micro and LiteRT skip metadata they do not know). So the labels a
model was quantized with reach its signed image's manifest without being named again. A labels file is one label
a line. One reader for every command that shows or packs labels (`wedge.quantize.labels` adds where they came
from).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from wedge.errors import first_line
from wedge.runtime.types import ArtifactError

LABELS_KEY: Final[str] = "wedge.labels"
# metadata_props keys other exporters use for class names, in the order they are tried after wedge's own (wedge's
# samples write `labels`; Ultralytics exports `names` as a Python dict literal, Keras-to-ONNX tools `classes`
# or `class_names`, Hugging Face configs `id2label`).
FOREIGN_KEYS: Final[tuple[str, ...]] = ("labels", "class_names", "classes", "names", "id2label")
MAX_LABEL_CHARS: Final[int] = 200


class LabelsError(ArtifactError):
    """A labels file cannot be read, or what a model carries as labels is not one label a line."""


def _checked(names: tuple[str, ...], where: str) -> tuple[str, ...]:
    long = next((name for name in names if len(name) > MAX_LABEL_CHARS), None)
    if long is not None:
        raise LabelsError(f"{where}: a label is {len(long)} characters long (at most {MAX_LABEL_CHARS}); "
                          "is it one label a line?")
    if any(not name.strip() or "\n" in name for name in names):
        raise LabelsError(f"{where}: every label is one line of text, none empty")
    return names


@dataclass(frozen=True)
class ModelLabels:
    """Class names of the first output (index order), or the unit of its value when it is a regression."""

    labels: tuple[str, ...] = ()
    unit: str | None = None

    def __post_init__(self) -> None:
        _checked(self.labels, "labels")
        if self.unit is not None and (not self.unit.strip() or len(self.unit) > MAX_LABEL_CHARS):
            raise LabelsError(f"unit {self.unit!r} must be 1..{MAX_LABEL_CHARS} characters")

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
            raise LabelsError(f"the model's {LABELS_KEY} is not JSON: {exc}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("labels", []), list) \
                or not all(isinstance(v, str) for v in raw.get("labels", [])) \
                or not isinstance(raw.get("unit"), (str, type(None))):
            raise LabelsError(f"the model's {LABELS_KEY} is not {{\"labels\": [str], \"unit\": str | null}}")
        return ModelLabels(tuple(raw.get("labels", [])), raw.get("unit"))

    def check_classes(self, classes: int | None, what: str) -> None:
        """LabelsError when there are labels, but not one per class of an output with `classes` values."""
        if self.labels and classes is not None and classes > 1 and len(self.labels) != classes:
            raise LabelsError(f"{len(self.labels)} labels for {what}, whose first output has {classes} classes")


def parse_labels(text: str) -> tuple[str, ...]:
    """Class names from a metadata value: a JSON or Python list, a {index: name} map (JSON, or a Python literal
    as Ultralytics writes `names`), else names a line or comma-separated."""
    text = text.strip()
    if not text:
        return ()
    value: Any = None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
            break
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    if isinstance(value, (list, tuple)):
        return tuple(str(item).strip() for item in value)
    if isinstance(value, Mapping):
        try:
            ordered = sorted(value.items(), key=lambda item: int(item[0]))
        except (TypeError, ValueError):
            return ()
        return tuple(str(name).strip() for _, name in ordered)
    separator = "\n" if "\n" in text else ","
    return tuple(part.strip() for part in text.split(separator) if part.strip())


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


def onnx_labels(metadata: Mapping[str, str]) -> ModelLabels | None:
    """The labels an ONNX model's metadata_props (as a dict) carries, or None."""
    if LABELS_KEY in metadata:
        return ModelLabels.from_json(metadata[LABELS_KEY])
    for key in FOREIGN_KEYS:
        names = parse_labels(metadata.get(key, ""))
        if names:
            return ModelLabels(_checked(names, f"metadata {key!r}"))
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
    """The labels in a .tflite's metadata (wedge's `wedge.labels` entry, else an entry under one of the keys
    other tools use), or None, also for a file that is not a .tflite."""
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        return None
    entries: dict[str, bytes] = {}
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            name = (entry.Name() or b"").decode("utf-8", "replace")
            if name == LABELS_KEY or name in FOREIGN_KEYS:
                entries[name] = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    except Exception:  # a corrupt flatbuffer fails with whatever the bad offset gives; the reader says so elsewhere
        return None
    if LABELS_KEY in entries:
        return ModelLabels.from_json(entries[LABELS_KEY])
    try:
        return onnx_labels({k: v.decode("utf-8") for k, v in entries.items()})
    except UnicodeDecodeError:
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
