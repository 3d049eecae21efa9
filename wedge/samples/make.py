"""Makes the shipped sample models from scratch: data, numpy training, ONNX export, onnxruntime check.

`python -m wedge.samples.make [--out DIR]`; needs the `samples` extra (scikit-learn, heartpy) only here.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Final, Protocol

import click
import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from wedge.errors import WedgeError
from wedge.samples import DIGITS, PPG_QUALITY, SAMPLES_DIR, Sample, SampleError, ppg
from wedge.samples.export import to_onnx
from wedge.samples.train import (
    Conv,
    Dense,
    EpochReport,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool,
    Params,
    ReLU,
    TrainConfig,
    fit,
    predict,
)
from wedge.signals.recordings import heartpy_recordings

# ONNX Runtime and the float64 numpy forward of the same float32 weights must agree this closely,
# relative to the largest logit: anything looser means the export changed the model.
LOGIT_RTOL: Final = 1e-6
DIGITS_SEED: Final = 8
PPG_SEED: Final = 50
DIGITS_CALIB_FRACTION: Final = 0.10
DIGITS_TEST_FRACTION: Final = 0.25
PPG_CALIB_FRACTION: Final = 0.10
PPG_TEST_FRACTION: Final = 0.20
PPG_TRAIN_PER_CLASS: Final = 1000
PPG_CALIB_PER_CLASS: Final = 50
PPG_TEST_PER_CLASS: Final = 100
# Module → distribution of what the `samples` extra brings (threadpoolctl comes with scikit-learn).
REQUIRED_MODULES: Final = MappingProxyType(
    {"sklearn": "scikit-learn", "heartpy": "heartpy", "threadpoolctl": "threadpoolctl"}
)



class Reporter(Protocol):
    """Hears how making the samples goes (the CLI draws progress bars from it)."""

    def begin(self, sample: Sample, epochs: int) -> None:
        """`sample`'s data is ready and its training starts."""
        ...

    def epoch(self, sample: Sample, report: EpochReport) -> None:
        """One training epoch of `sample` finished."""
        ...


@dataclass(frozen=True)
class Dataset:
    """Inputs and labels of one sample, split into train / calibration / test."""

    train_x: NDArray[np.float32]
    train_y: NDArray[np.int64]
    calib_x: NDArray[np.float32]
    test_x: NDArray[np.float32]
    test_y: NDArray[np.int64]


@dataclass(frozen=True)
class Recipe:
    """How one sample is made: its network, how to train it, and what its ONNX metadata says."""

    sample: Sample
    network: tuple[Layer, ...]
    config: TrainConfig
    metadata: dict[str, str]


@dataclass(frozen=True)
class MadeSample:
    """What the final onnxruntime check measured on the written files."""

    sample: Sample
    parameter_count: int
    accuracy: float
    numpy_accuracy: float
    logit_rel_error: float
    files_size_bytes: int


DIGITS_RECIPE: Final = Recipe(
    sample=DIGITS,
    network=(
        Conv(1, 16, (3, 3), padding=1),
        ReLU(),
        Conv(16, 32, (3, 3), padding=1),
        ReLU(),
        MaxPool((2, 2)),
        Flatten(),
        Dense(512, 64),
        ReLU(),
        Dense(64, 10),
    ),
    config=TrainConfig(epochs=15, batch_size=32, learning_rate=2e-3, seed=DIGITS_SEED),
    metadata={
        "labels": json.dumps(list(DIGITS.labels)),
        "task": DIGITS.task,
        "normalization": "pixel / 16 -> [0, 1]",
    },
)

PPG_RECIPE: Final = Recipe(
    sample=PPG_QUALITY,
    network=(
        Conv(1, 8, (7,), padding=3),
        ReLU(),
        MaxPool((4,)),
        Conv(8, 16, (5,), padding=2),
        ReLU(),
        MaxPool((2,)),
        Conv(16, 16, (5,), padding=2),
        ReLU(),
        GlobalAvgPool(),
        Flatten(),
        Dense(16, 3),
    ),
    config=TrainConfig(epochs=20, batch_size=32, learning_rate=3e-3, seed=PPG_SEED),
    metadata={
        "labels": json.dumps(list(PPG_QUALITY.labels)),
        "task": PPG_QUALITY.task,
        "sensor": "ppg",
        "rate_hz": str(ppg.RATE_HZ),
        "window_s": str(ppg.WINDOW_S),
        "normalization": "z-score per window",
    },
)


def check_requirements() -> None:
    """Fails with the install command when the `samples` extra is missing, before any work starts."""
    # find_spec looks without importing: heartpy and scikit-learn take seconds to import.
    missing = [dist for module, dist in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise SampleError(f"making the samples needs {', '.join(missing)}: pip install 'wedge[samples]'")


def _require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SampleError(f"making the samples needs {module}: pip install 'wedge[samples]'") from None


def stratified_split(
    labels: NDArray[np.integer[Any]], fractions: Sequence[float], rng: np.random.Generator
) -> list[NDArray[np.intp]]:
    """Index sets taking `fractions` of every class each (the remainder forms a first, extra set)."""
    parts: list[list[NDArray[np.intp]]] = [[] for _ in range(len(fractions) + 1)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = 0
        for part, fraction in enumerate(fractions, start=1):
            size = round(fraction * len(members))
            parts[part].append(members[cut : cut + size])
            cut += size
        parts[0].append(members[cut:])
    return [np.sort(np.concatenate(p)) for p in parts]


def digits_dataset() -> Dataset:
    """scikit-learn's bundled 8x8 digits as [n, 1, 8, 8] float32 in [0, 1], split 65/10/25 by class."""
    datasets = _require("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(DIGITS_SEED)
    train, calib, test = stratified_split(y, (DIGITS_CALIB_FRACTION, DIGITS_TEST_FRACTION), rng)
    return Dataset(x[train], y[train], x[calib], x[test], y[test])


def ppg_dataset() -> Dataset:
    """Labelled 4 s PPG windows: real clean windows, plus the same corrupted by motion, plus no-contact."""
    rng = np.random.default_rng(PPG_SEED)
    _require("heartpy")
    clean = ppg.split_clean_windows(heartpy_recordings(), rng, PPG_CALIB_FRACTION, PPG_TEST_FRACTION)
    train_x, train_y = ppg.make_split(rng, clean.train, PPG_TRAIN_PER_CLASS)
    calib_x, _ = ppg.make_split(rng, clean.calib, PPG_CALIB_PER_CLASS)
    test_x, test_y = ppg.make_split(rng, clean.test, PPG_TEST_PER_CLASS)
    return Dataset(train_x, train_y, calib_x, test_x, test_y)


def _written_files(sample: Sample, out_dir: Path) -> tuple[Path, Path, Path]:
    return (
        out_dir / sample.model_path.name,
        out_dir / sample.calib_path.name,
        out_dir / sample.eval_path.name,
    )


def verify(recipe: Recipe, params: Sequence[Params], out_dir: Path) -> MadeSample:
    """Runs the written model on the written eval set with onnxruntime and checks it against numpy."""
    import onnxruntime as ort

    sample = recipe.sample
    model_file, calib_file, eval_file = _written_files(sample, out_dir)
    with np.load(eval_file) as data:
        x, labels = data[sample.input_name], data["labels"]
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    logits = session.run([sample.output_name], {sample.input_name: x})[0]
    # The float32 weights the model file holds, evaluated in float64 as the reference.
    params64 = [{k: v.astype(np.float32).astype(np.float64) for k, v in p.items()} for p in params]
    reference = predict(recipe.network, params64, x.astype(np.float64))
    rel_error = float(np.abs(logits - reference).max() / np.abs(reference).max())
    accuracy = float((logits.argmax(axis=1) == labels).mean())
    numpy_accuracy = float((reference.argmax(axis=1) == labels).mean())
    if rel_error > LOGIT_RTOL:
        raise SampleError(f"{sample.name}: onnxruntime logits differ from numpy by {rel_error:.2e} (> {LOGIT_RTOL})")
    if accuracy != numpy_accuracy:
        raise SampleError(f"{sample.name}: onnxruntime accuracy {accuracy:.4f} != numpy accuracy {numpy_accuracy:.4f}")
    if accuracy < sample.min_accuracy:
        raise SampleError(f"{sample.name}: test accuracy {accuracy:.4f} is below {sample.min_accuracy}")
    return MadeSample(
        sample=sample,
        parameter_count=sum(v.size for p in params for v in p.values()),
        accuracy=accuracy,
        numpy_accuracy=numpy_accuracy,
        logit_rel_error=rel_error,
        files_size_bytes=sum(f.stat().st_size for f in (model_file, calib_file, eval_file)),
    )


def make_sample(recipe: Recipe, dataset: Dataset, out_dir: Path, reporter: Reporter | None = None) -> MadeSample:
    """Trains, exports and writes one sample into `out_dir`, then verifies the written files."""
    sample = recipe.sample
    if reporter is not None:
        reporter.begin(sample, recipe.config.epochs)

    def report(epoch: EpochReport) -> None:
        if reporter is not None:
            reporter.epoch(sample, epoch)

    # Training runs in float64 and only the result is rounded to float32: the rounding hides the last-bit
    # differences between BLAS kernels of different CPUs, so other machines write the same bytes too.
    train_x = dataset.train_x.astype(np.float64)
    params = fit(recipe.network, train_x, dataset.train_y, recipe.config, on_epoch=report)
    model = to_onnx(
        recipe.network,
        params,
        graph_name=sample.name,
        input_name=sample.input_name,
        input_shape=sample.input_shape,
        output_name=sample.output_name,
        output_size=len(sample.labels),
        doc=sample.description,
        metadata=recipe.metadata,
    )
    model_file, calib_file, eval_file = _written_files(sample, out_dir)
    model_file.write_bytes(model.SerializeToString())
    # numpy stamps archive members with a fixed 1980 date, so equal arrays give equal .npz bytes.
    np.savez_compressed(calib_file, **{sample.input_name: dataset.calib_x})
    np.savez_compressed(eval_file, **{sample.input_name: dataset.test_x, "labels": dataset.test_y})
    return verify(recipe, params, out_dir)


RECIPES: Final[tuple[tuple[Recipe, Callable[[], Dataset]], ...]] = (
    (DIGITS_RECIPE, digits_dataset),
    (PPG_RECIPE, ppg_dataset),
)


def make_all(out_dir: Path, reporter: Reporter | None = None) -> list[MadeSample]:
    """Makes every sample into `out_dir`; the same environment always writes the same bytes.

    Nothing in `out_dir` changes unless every sample passes its check.
    """
    check_requirements()
    if out_dir.exists() and not out_dir.is_dir():
        raise SampleError(f"{out_dir} is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    threadpoolctl = _require("threadpoolctl")
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".making-") as staging_name:
        staging = Path(staging_name)
        # One BLAS thread: faster for these small matrices, and no dependence on the machine's core count.
        with threadpoolctl.threadpool_limits(limits=1):
            made = [make_sample(recipe, load(), staging, reporter) for recipe, load in RECIPES]
        for made_file in sorted(staging.iterdir()):
            made_file.replace(out_dir / made_file.name)
    return made


class _ProgressBars:
    """A Reporter drawing one rich progress bar of epochs per sample."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def begin(self, sample: Sample, epochs: int) -> None:
        self._tasks[sample.name] = self._progress.add_task(sample.name, total=epochs, loss=float("nan"), accuracy=0.0)

    def epoch(self, sample: Sample, report: EpochReport) -> None:
        self._progress.update(
            self._tasks[sample.name], completed=report.epoch, loss=report.loss, accuracy=report.accuracy
        )


def _render(made: Sequence[MadeSample], out_dir: Path) -> None:
    table = Table(title=f"samples written to {out_dir}")
    for column in ("sample", "params", "test accuracy", "min", "ORT vs numpy", "files"):
        table.add_column(column, justify="left" if column == "sample" else "right")
    for m in made:
        table.add_row(
            m.sample.name,
            f"{m.parameter_count:,}",
            f"{m.accuracy:.4f}",
            f"{m.sample.min_accuracy:.2f}",
            f"{m.logit_rel_error:.1e}",
            f"{m.files_size_bytes / 1024:.0f} KiB",
        )
    Console().print(table)


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=SAMPLES_DIR,
    show_default=True,
    help="Directory to write the .onnx/.npz files into.",
)
def main(out_dir: Path) -> None:
    """Make the sample models (digits, ppg_quality) and their calibration/eval data."""
    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs  loss {task.fields[loss]:.4f}  train acc {task.fields[accuracy]:.3f}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns) as progress:
            made = make_all(out_dir, _ProgressBars(progress))
    except WedgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    _render(made, out_dir)


if __name__ == "__main__":
    main()
