"""Stage 2: calibration and evaluation data readers (.npz, .npy, image folders, CSV sensor windows).

Every reader validates against the model's inputs up front and then streams batches, never the whole set at once.
"""

from __future__ import annotations

import csv
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from wedge.errors import first_line
from wedge.quantize.errors import CalibrationDataError
from wedge.quantize.load import InputSpec

LABELS_KEY: Final = "labels"
IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".gif", ".webp", ".tif", ".tiff"})

Batch = dict[str, np.ndarray]


class SampleSet(ABC):
    """Samples for a model's inputs, read in batches; `labels` is set when the source has them."""

    labels: np.ndarray | None = None
    source: str = ""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def batch(self, start: int, stop: int) -> Batch:
        """Samples [start, stop) for every input, float32 or the input's dtype, batch on axis 0."""

    def batches(self, batch_size: int, limit: int | None = None) -> Iterator[Batch]:
        """Consecutive batches of at most `batch_size` samples, up to `limit` samples in all."""
        total = len(self) if limit is None else min(limit, len(self))
        for start in range(0, total, batch_size):
            yield self.batch(start, min(start + batch_size, total))


@dataclass(frozen=True)
class ImagePreprocess:
    """How image files become input tensors: `x = (pixels / scale - mean) / std`, resized to the input."""

    scale: float = 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "auto"  # "nchw", "nhwc", or "auto" (channels where the 1 or 3 is)
    color: str = "auto"  # "rgb", "bgr", "gray", or "auto" (from the channel count)

    @classmethod
    def parse(cls, items: Sequence[str]) -> ImagePreprocess:
        """Parse `--preprocess key=value` items (scale, mean, std, layout, color)."""
        values: dict[str, object] = {}
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if not sep:
                raise CalibrationDataError(f"--preprocess {item!r}: expected key=value (scale, mean, std, layout, color)")
            try:
                if key == "scale":
                    values[key] = float(value)
                elif key in ("mean", "std"):
                    values[key] = tuple(float(v) for v in value.split(","))
                elif key == "layout" and value.lower() in ("nchw", "nhwc", "auto"):
                    values[key] = value.lower()
                elif key == "color" and value.lower() in ("rgb", "bgr", "gray", "auto"):
                    values[key] = value.lower()
                else:
                    raise ValueError
            except ValueError:
                raise CalibrationDataError(f"--preprocess {item!r}: unknown key or bad value "
                                           "(scale=255, mean=0.5,0.5,0.5, std=0.5,0.5,0.5, layout=nchw|nhwc, "
                                           "color=rgb|bgr|gray)") from None
        std = values.get("std", (1.0,))
        if any(s == 0 for s in std):  # type: ignore[union-attr]
            raise CalibrationDataError("--preprocess std must not contain 0")
        return cls(**values)  # type: ignore[arg-type]


# --- array sources -------------------------------------------------------------------------


class ArraySampleSet(SampleSet):
    """Samples held as arrays keyed by input name (from .npz, .npy or CSV)."""

    def __init__(self, arrays: Mapping[str, np.ndarray], labels: np.ndarray | None, source: str) -> None:
        self._arrays = dict(arrays)
        self.labels = labels
        self.source = source
        self._count = len(next(iter(self._arrays.values())))

    def __len__(self) -> int:
        return self._count

    def batch(self, start: int, stop: int) -> Batch:
        return {name: np.ascontiguousarray(a[start:stop]) for name, a in self._arrays.items()}


def _check_array(array: np.ndarray, spec: InputSpec, key: str, role: str, label: str) -> np.ndarray:
    expected = ("N", *spec.sample_shape)
    if array.ndim != len(spec.shape) or tuple(array.shape[1:]) != spec.sample_shape:
        raise CalibrationDataError(
            f"{role} array {key!r} in {label} has shape {tuple(array.shape)}, expected "
            f"({', '.join(map(str, expected))}) for input {spec.name!r} (samples on axis 0)")
    if len(array) == 0:
        raise CalibrationDataError(f"{role} array {key!r} in {label} is empty (0 samples)")
    if np.issubdtype(spec.dtype, np.floating):
        if not np.issubdtype(array.dtype, np.floating):
            raise CalibrationDataError(
                f"{role} array {key!r} in {label} has dtype {array.dtype}, but input {spec.name!r} expects "
                f"{spec.dtype}: convert and normalize it the way the model was trained")
        finite = np.isfinite(array)
        if not finite.all():
            bad = int(np.size(finite) - np.count_nonzero(finite))
            first = int(np.argwhere(~finite)[0][0])
            raise CalibrationDataError(f"{role} array {key!r} in {label} holds {bad} NaN/Inf value(s), "
                                       f"first in sample {first}")
        return array.astype(spec.dtype, copy=False)
    if array.dtype != spec.dtype:
        if np.can_cast(array.dtype, spec.dtype, casting="same_kind") and np.issubdtype(array.dtype, np.integer):
            return array.astype(spec.dtype)
        raise CalibrationDataError(f"{role} array {key!r} in {label} has dtype {array.dtype}, "
                                   f"input {spec.name!r} expects {spec.dtype}")
    return array


def _check_labels(labels: np.ndarray, count: int, label: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != count:
        raise CalibrationDataError(f"'{LABELS_KEY}' in {label} has shape {labels.shape}, expected ({count},): "
                                   "one class index per sample")
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise CalibrationDataError(f"'{LABELS_KEY}' in {label} must hold integer class indices, "
                                       f"not {labels.dtype}")
    return labels.astype(np.int64, copy=False)


def _load_npz(path: Path, inputs: Sequence[InputSpec], role: str) -> ArraySampleSet:
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {k: archive[k] for k in archive.files}
    except Exception as exc:
        raise CalibrationDataError(f"cannot read {role} data {path.name}: {first_line(exc)}") from None
    labels_raw = data.pop(LABELS_KEY, None)
    if not data:
        raise CalibrationDataError(f"{path.name} holds no arrays for the model's inputs")
    names = [s.name for s in inputs]
    arrays: dict[str, np.ndarray] = {}
    if len(inputs) == 1 and len(data) == 1:
        # A single-input model accepts any single key: people name arrays "x" or "images".
        key, array = next(iter(data.items()))
        arrays[inputs[0].name] = _check_array(array, inputs[0], key, role, path.name)
    else:
        missing = [n for n in names if n not in data]
        if missing:
            raise CalibrationDataError(f"{path.name} has arrays {sorted(data)}, but the model's inputs are "
                                       f"{names}: missing {missing}")
        for spec in inputs:
            arrays[spec.name] = _check_array(data[spec.name], spec, spec.name, role, path.name)
    counts = {len(a) for a in arrays.values()}
    if len(counts) != 1:
        raise CalibrationDataError(f"{path.name}: the input arrays hold different sample counts {sorted(counts)}")
    count = counts.pop()
    labels = None if labels_raw is None else _check_labels(labels_raw, count, path.name)
    return ArraySampleSet(arrays, labels, str(path))


def _load_npy(path: Path, inputs: Sequence[InputSpec], role: str) -> ArraySampleSet:
    if len(inputs) != 1:
        raise CalibrationDataError(f"{path.name} is a .npy (one array) but the model has {len(inputs)} inputs: "
                                   "use an .npz keyed by input name")
    try:
        # mmap keeps a large calibration file on disk; batches are read as they are fed.
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise CalibrationDataError(f"cannot read {role} data {path.name}: {first_line(exc)}") from None
    return ArraySampleSet({inputs[0].name: _check_array(array, inputs[0], path.name, role, path.name)},
                          None, str(path))


def _load_csv(path: Path, inputs: Sequence[InputSpec], role: str) -> ArraySampleSet:
    """One sensor window a row: the flattened sample values, and an optional `label` column."""
    if len(inputs) != 1:
        raise CalibrationDataError(f"{path.name}: CSV data feeds single-input models; the model has {len(inputs)}")
    spec = inputs[0]
    width = int(np.prod(spec.sample_shape))
    rows: list[list[float]] = []
    labels: list[float] = []
    label_col: int | None = None
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for line_no, row in enumerate(csv.reader(handle), start=1):
                if not row or all(not c.strip() for c in row):
                    continue
                if line_no == 1 and not _is_number(row[0]) and not _is_number(row[-1]):
                    header = [c.strip().lower() for c in row]
                    label_col = header.index("label") if "label" in header else None
                    continue
                try:
                    values = [float(c) for c in row]
                except ValueError:
                    raise CalibrationDataError(f"{path.name} line {line_no}: non-numeric value") from None
                if label_col is not None:
                    labels.append(values.pop(label_col))
                if len(values) != width:
                    raise CalibrationDataError(f"{path.name} line {line_no}: {len(values)} values, input "
                                               f"{spec.name!r} needs {width} per window (shape {spec.sample_shape})")
                rows.append(values)
    except UnicodeDecodeError:
        raise CalibrationDataError(f"{path.name} is not a text CSV file") from None
    if not rows:
        raise CalibrationDataError(f"{path.name} holds no windows (0 rows)")
    array = np.asarray(rows, dtype=np.float64).reshape((len(rows), *spec.sample_shape))
    array = _check_array(array, spec, path.name, role, path.name)
    label_array = _check_labels(np.asarray(labels), len(rows), path.name) if label_col is not None else None
    return ArraySampleSet({spec.name: array}, label_array, str(path))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- image folders -------------------------------------------------------------------------


class ImageFolderSampleSet(SampleSet):
    """Image files decoded, resized and normalized batch by batch; subfolders name classes when present."""

    def __init__(self, files: Sequence[Path], spec: InputSpec, preprocess: ImagePreprocess,
                 labels: np.ndarray | None, source: str) -> None:
        self._files = list(files)
        self._spec = spec
        self._pre = preprocess
        self.labels = labels
        self.source = source
        self._layout = _image_layout(spec, preprocess)

    def __len__(self) -> int:
        return len(self._files)

    def batch(self, start: int, stop: int) -> Batch:
        return {self._spec.name: np.stack([self._load(f) for f in self._files[start:stop]])}

    def _load(self, path: Path) -> np.ndarray:
        from PIL import Image

        dims = self._spec.sample_shape
        channels, height, width = (dims[0], dims[1], dims[2]) if self._layout == "nchw" else (dims[2], dims[0], dims[1])
        try:
            with Image.open(path) as image:
                image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
                pixels = np.asarray(image, dtype=np.float32)
        except Exception as exc:
            raise CalibrationDataError(f"cannot decode image {path}: {first_line(exc)}") from None
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if self._pre.color == "bgr":
            pixels = pixels[:, :, ::-1]
        mean = np.asarray(self._pre.mean, dtype=np.float32)
        std = np.asarray(self._pre.std, dtype=np.float32)
        if mean.size not in (1, channels) or std.size not in (1, channels):
            raise CalibrationDataError(f"--preprocess mean/std need 1 or {channels} values")
        pixels = (pixels / self._pre.scale - mean) / std
        if self._layout == "nchw":
            pixels = pixels.transpose(2, 0, 1)
        return np.ascontiguousarray(pixels, dtype=self._spec.dtype)


def _image_layout(spec: InputSpec, preprocess: ImagePreprocess) -> str:
    dims = spec.sample_shape
    if len(dims) != 3:
        raise CalibrationDataError(f"an image folder feeds image inputs (C,H,W or H,W,C); input {spec.name!r} "
                                   f"has sample shape {dims}")
    if preprocess.layout != "auto":
        return preprocess.layout
    if dims[0] in (1, 3) and dims[2] not in (1, 3):
        return "nchw"
    if dims[2] in (1, 3):
        return "nhwc"
    raise CalibrationDataError(f"cannot tell the channel axis of input {spec.name!r} {dims}: "
                               "pass --preprocess layout=nchw or layout=nhwc")


def _load_image_folder(path: Path, inputs: Sequence[InputSpec], preprocess: ImagePreprocess) -> ImageFolderSampleSet:
    if len(inputs) != 1:
        raise CalibrationDataError(f"an image folder feeds single-input models; the model has {len(inputs)} inputs")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationDataError(f"image folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    classes = sorted({f.parent.name for f in files if f.parent != path})
    labels = None
    if classes and all(f.parent != path for f in files):
        # ImageFolder convention: one subfolder per class, sorted names give class indices.
        index = {name: i for i, name in enumerate(classes)}
        labels = np.asarray([index[f.parent.name] for f in files], dtype=np.int64)
    return ImageFolderSampleSet(files, inputs[0], preprocess, labels, str(path))


# --- entry point ---------------------------------------------------------------------------


def feed_batch_size(inputs: Sequence[InputSpec], wanted: int) -> int:
    """How many samples one model run can take: `wanted` when every batch dim is dynamic, else the fixed one."""
    if all(spec.batch_dynamic for spec in inputs):
        return max(1, wanted)
    return 1


def load_samples(
    path: Path,
    inputs: Sequence[InputSpec],
    *,
    role: str = "calibration",
    max_samples: int | None = None,
    preprocess: ImagePreprocess | None = None,
) -> SampleSet:
    """Open `path` as samples for `inputs` (by suffix or folder), validated; `max_samples` keeps the first N."""
    if not path.exists():
        raise CalibrationDataError(f"{role} data not found: {path}")
    if path.is_dir():
        samples: SampleSet = _load_image_folder(path, inputs, preprocess or ImagePreprocess())
    else:
        suffix = path.suffix.lower()
        if suffix == ".npz":
            samples = _load_npz(path, inputs, role)
        elif suffix == ".npy":
            samples = _load_npy(path, inputs, role)
        elif suffix == ".csv":
            samples = _load_csv(path, inputs, role)
        else:
            raise CalibrationDataError(f"{role} data {path.name}: unknown format {suffix or '(none)'} "
                                       "(use .npz, .npy, .csv or a folder of images)")
    if len(samples) == 0:
        raise CalibrationDataError(f"{role} data {path.name} is empty (0 samples)")
    if max_samples is not None:
        if max_samples <= 0:
            raise CalibrationDataError(f"--{role[:5]}-samples must be positive, got {max_samples}")
        samples = _Head(samples, max_samples)
    return samples


class _Head(SampleSet):
    """The first N samples of another set."""

    def __init__(self, inner: SampleSet, count: int) -> None:
        self._inner = inner
        self._count = min(count, len(inner))
        self.labels = None if inner.labels is None else inner.labels[: self._count]
        self.source = inner.source

    def __len__(self) -> int:
        return self._count

    def batch(self, start: int, stop: int) -> Batch:
        return self._inner.batch(start, min(stop, self._count))
