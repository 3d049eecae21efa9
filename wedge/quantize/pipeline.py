"""The whole `wedge quantize` job: prepare, search calibration methods, evaluate, per-layer, fit, report.

Work happens in a hidden folder inside the output folder; only a finished run moves its files into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Final, Literal

import onnx

from wedge.boards import Board
from wedge.errors import first_line
from wedge.files import stage_bytes
from wedge.quantize.auto_float import AUTO, AutoFloatStep, keep_worst_float
from wedge.quantize.calibrate import DEFAULT_METHODS, Method
from wedge.quantize.calibration import ImagePreprocess, SampleSet, feed_batch_size, load_samples
from wedge.quantize.errors import LabelsError, OutputError, QuantizeError
from wedge.quantize.evaluate import compare_models
from wedge.quantize.fit import activation_peak_bytes, assess_fit
from wedge.quantize.float_ops import float_ops
from wedge.quantize.labels import ClassNames, resolve_class_names
from wedge.quantize.layer_cost import layer_costs
from wedge.quantize.layers import LAYER_SAMPLES, per_layer_errors
from wedge.quantize.load import load_prepared, prepare_model
from wedge.quantize.metrics import DEFAULT_THRESHOLD
from wedge.quantize.outputs import output_scales
from wedge.quantize.plan import QuantPlan, plan_for
from wedge.quantize.progress import Progress, SilentProgress
from wedge.quantize.report import AccuracyBudget, QuantizeReport, SizeInfo
from wedge.quantize.report_page import render_report_page
from wedge.quantize.search import Candidate, search_calibration
from wedge.quantize.stream import check_pairs, streamed_samples
from wedge.quantize.tflite import ExportResult, export_tflite
from wedge.quantize.tflite.convert import IO_KINDS, IoKind
from wedge.quantize.tflite.dry_run import dry_run_export
from wedge.quantize.tflite.errors import ExportDriftError
from wedge.quantize.tflite.float_ops import FLOAT_LOWERINGS
from wedge.runtime.artifacts import inspect_model
from wedge.runtime.artifacts.labels import ModelLabels, read_model_labels, set_onnx_labels
from wedge.runtime.engines import open_engine
from wedge.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine
from wedge.runtime.types import ArtifactError

REPORT_NAME: Final = "report.json"
PAGE_NAME: Final = "report.html"
OutputFormat = Literal["onnx", "tflite"]
FORMATS: Final = ("onnx", "tflite")
# Eval samples the TFLite export runs in LiteRT and TFLite-Micro to validate the file (TFLM is slow).
EXPORT_VALIDATION_SAMPLES: Final = 100
# Below this, a difference between ORT's int8 kernels and exact int8 math is rounding, not saturation.
HOST_KERNEL_WARN_DB: Final = 3.0


@dataclass(frozen=True)
class QuantizeOptions:
    """Knobs of the pipeline; the defaults are what `wedge quantize` uses."""

    methods: tuple[Method, ...] = DEFAULT_METHODS
    calib_samples: int | None = None
    eval_samples: int | None = None
    threshold: float = DEFAULT_THRESHOLD  # decides 1-value outputs and detection scores
    input_shapes: Mapping[str | None, tuple[int, ...]] = field(default_factory=dict)
    preprocess: ImagePreprocess = field(default_factory=ImagePreprocess)
    max_drop_pp: float | None = None
    batch_size: int = 32
    task: str = "auto"
    layer_samples: int = LAYER_SAMPLES
    format: OutputFormat = "onnx"  # "tflite" also writes <stem>.int8.tflite for TFLite-Micro boards
    io: IoKind = "int8"  # the .tflite's input/output type: "int8", or "float" with (DE)QUANTIZE at the edges
    keep_float: tuple[str, ...] = ()  # node names or op types left in float (--keep-float)
    pinned_inputs: Mapping[str, float] = field(default_factory=dict)  # --input name=const:VALUE
    batch_axes: Mapping[str, int] = field(default_factory=dict)  # --batch-axis name=AXIS
    stream_states: tuple[tuple[str, str], ...] = ()  # --stream-state IN=OUT
    class_names: ClassNames | None = None  # --labels FILE or a sample's; default: the model's metadata
    unit: str | None = None  # --unit: a regression output's unit; default: the model's metadata
    latency_budget_ms: float | None = None  # --latency-budget-ms; default: the board profile's
    html_path: Path | None = None  # --html; default: report.html in the output folder


def output_path(model: Path, out_dir: Path) -> Path:
    """Where the int8 model of `model` lands: `<out>/<stem>.int8.onnx`."""
    return out_dir / f"{model.stem}.int8.onnx"


def tflite_output_path(model: Path, out_dir: Path) -> Path:
    """Where the int8 TFLite export of `model` lands: `<out>/<stem>.int8.tflite`."""
    return out_dir / f"{model.stem}.int8.tflite"


def make_workdir(out_dir: Path) -> Path:
    """A hidden work folder inside `out_dir` (so results land by a rename on one file system).

    onnxruntime takes paths as UTF-8 only: when `out_dir`'s name is not UTF-8 (bytes a file system allows), the
    folder is reached through a UTF-8 symlink in the temp folder instead. `remove_workdir` removes both."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=".wedge-", dir=out_dir))
        try:
            str(workdir).encode("utf-8")
            return workdir
        except UnicodeEncodeError:
            link = Path(tempfile.mkdtemp(prefix="wedge-link-")) / "work"
            link.symlink_to(workdir.resolve(), target_is_directory=True)
            return link
    except OSError as exc:
        raise OutputError(f"output folder {out_dir} is not writable: {exc.strerror or first_line(exc)}") from None


def remove_workdir(workdir: Path) -> None:
    """Remove a folder `make_workdir` made (and the symlink it was reached by)."""
    if workdir.is_symlink():
        target = workdir.readlink()
        workdir.unlink(missing_ok=True)
        shutil.rmtree(workdir.parent, ignore_errors=True)
        workdir = target
    shutil.rmtree(workdir, ignore_errors=True)


def run_quantize(
    model: Path,
    out_dir: Path,
    *,
    calib: Path,
    evaluation: Path | None = None,
    board: Board | None = None,
    options: QuantizeOptions | None = None,
    progress: Progress | None = None,
) -> QuantizeReport:
    """Quantize `model` to int8 with `calib` data, judge it on `evaluation`, write model + report to `out_dir`."""
    options = options or QuantizeOptions()
    if options.format not in FORMATS:
        raise OutputError(f"unknown output format {options.format!r}: expected {' or '.join(FORMATS)}")
    if options.io not in IO_KINDS:
        raise OutputError(f"unknown TFLite I/O type {options.io!r}: expected {' or '.join(IO_KINDS)}")
    progress = progress or SilentProgress()
    started = time.perf_counter()
    page = options.html_path or out_dir / PAGE_NAME
    workdir = make_workdir(out_dir)
    staged: Path | None = None
    try:
        report = _run(model, out_dir, workdir, calib, evaluation, board, replace(options, html_path=page), progress,
                      started)
        # A page outside the output folder is copied beside its target first, so every file lands by a rename.
        staged = _stage(workdir / PAGE_NAME, page)
        # Files land only now, each by an atomic rename within its folder.
        os.replace(workdir / "model.int8.onnx", report.output)
        if report.tflite is not None:
            os.replace(workdir / "model.int8.tflite", report.tflite.path)
        os.replace(workdir / REPORT_NAME, out_dir / REPORT_NAME)
        os.replace(staged, page)
        staged = None
        return report
    finally:
        remove_workdir(workdir)
        if staged is not None:
            staged.unlink(missing_ok=True)


def _stage(source: Path, target: Path) -> Path:
    """`source` in `target`'s folder, ready to be renamed onto it (itself when the work folder is there)."""
    if source.parent.resolve().parent == target.parent.resolve():
        return source  # the work folder sits in the output folder: a rename stays on one file system
    try:
        return stage_bytes(target, source.read_bytes())
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or first_line(exc)}") from None


def _run(model: Path, out_dir: Path, workdir: Path, calib_path: Path, eval_path: Path | None,
         board: Board | None, options: QuantizeOptions, progress: Progress, started: float) -> QuantizeReport:
    advance = progress.stage("preparing model", 1)
    prepared = prepare_model(model, workdir, options.input_shapes, pinned_inputs=options.pinned_inputs,
                             batch_axes=options.batch_axes)
    stream = options.stream_states
    check_pairs(stream, [s.name for s in prepared.inputs], prepared.output_names)
    advance(1)
    auto_float = AUTO in options.keep_float
    if auto_float and options.max_drop_pp is None:
        raise QuantizeError("--keep-float auto keeps layers float until --max-drop holds: give --max-drop")
    plan = plan_for(load_prepared(prepared), tflite=options.format == "tflite",
                    keep_float=[k for k in options.keep_float if k != AUTO])
    if options.format == "tflite":
        # Fail in seconds, not after calibration, when the export cannot lower an op.
        advance = progress.stage("checking TFLite export", 1)
        dry_run_export(prepared.path, plan, options.io)
        advance(1)
    calib = load_samples(calib_path, prepared.inputs, role="calibration",
                         max_samples=options.calib_samples, preprocess=options.preprocess)
    notes = list(prepared.notes)
    if eval_path is not None:
        eval_set = load_samples(eval_path, prepared.inputs, role="evaluation",
                                max_samples=options.eval_samples, preprocess=options.preprocess)
    else:
        eval_set = calib
        notes.append("no --eval set: scored on the calibration data, which flatters every method")
    batch_size = feed_batch_size(prepared.inputs, options.batch_size)

    with open_engine(prepared.path, "onnxruntime") as fp32:
        class_names = _class_names(options.class_names, model, fp32.outputs[0].shape, notes)
        # What travels on in the int8 ONNX and the .tflite, to the image manifest and the phone.
        carried = _carried(model, class_names, options.unit)
        if stream:
            # Calibrate on the states the model feeds itself, not on whatever states the data holds.
            calib = streamed_samples(fp32, calib, stream)
            notes.append("streaming evaluation: each step's output state is fed back as the next step's input, "
                         "for fp32 and int8 separately (what the device sees)")
        best, candidates, skipped = search_calibration(prepared, fp32, calib, eval_set, options.methods, workdir,
                                                       batch_size=batch_size, task=options.task, progress=progress,
                                                       plan=plan, threshold=options.threshold, stream=stream)
        notes += [f"calibration method {s.method.value} skipped: {s.reason}" for s in skipped]
        auto_steps: list[AutoFloatStep] = []
        if auto_float and options.max_drop_pp is not None:
            floatable = set(FLOAT_LOWERINGS) if options.format == "tflite" else None
            best, plan, auto_steps = keep_worst_float(
                prepared, fp32, calib, eval_set, best, plan, workdir, max_drop_pp=options.max_drop_pp,
                batch_size=batch_size, task=options.task, threshold=options.threshold, stream=stream,
                layer_samples=options.layer_samples, floatable=floatable, progress=progress)
            notes += [step.describe() for step in auto_steps]
        exported: ExportResult | None = None
        if options.format == "tflite":
            ranked = [best] if auto_steps else sorted(candidates, key=lambda c: c.score, reverse=True)
            best, exported, export_notes = _export_first_passing(ranked, workdir, options, eval_set, plan, progress,
                                                                 carried)
            notes += export_notes
        advance = progress.stage("onnxruntime int8 kernels", len(eval_set))
        with OnnxRuntimeEngine(best.path) as kernels:
            host_kernels = compare_models(fp32, kernels, eval_set, batch_size=batch_size,
                                          task=best.evaluation.task, on_batch=advance, threshold=options.threshold,
                                          stream=stream)
    lost_db = best.evaluation.primary.sqnr_db - host_kernels.primary.sqnr_db
    if lost_db > HOST_KERNEL_WARN_DB:
        notes.append(f"onnxruntime's own int8 kernels on this CPU lose {lost_db:.1f} dB SQNR against exact int8 "
                     "math (x86 u8s8 saturation without VNNI); the board's int32 accumulators do not. To run "
                     "this ONNX on such a host, use graph optimization level 'basic'")
    advance = progress.stage("per-layer error", 1)
    layers = per_layer_errors(prepared.path, best.path, eval_set, batch_size=batch_size,
                              max_samples=options.layer_samples)
    advance(1)

    final_model = workdir / "model.int8.onnx"
    shutil.copyfile(best.path, final_model)
    if carried:
        _stamp_labels(final_model, carried)
    left_float = float_ops(final_model, plan.float_nodes)
    notes += [f.describe() for f in left_float]
    fp32_info = inspect_model(model)
    int8_info = inspect_model(final_model)
    # MACs from the shape-fixed graph: a model with dynamic spatial dims counts them as 1 otherwise.
    size = SizeInfo(fp32_bytes=fp32_info.size_bytes, int8_bytes=int8_info.size_bytes,
                    params=fp32_info.param_count, macs=inspect_model(prepared.path).macs)
    fit = None
    if board is not None:
        # The board gets the .tflite when there is one: its bytes fill the slot, its measured arena the RAM.
        board_info = int8_info if exported is None else inspect_model(exported.path)
        fit = assess_fit(board, board_info, activation_peak_bytes(prepared.path),
                         measured_arena_bytes=None if exported is None else exported.arena_bytes,
                         latency_budget_ms=options.latency_budget_ms)
    if exported is not None:
        exported = replace(exported, path=tflite_output_path(model, out_dir))
    report = QuantizeReport(
        source=str(model),
        output=str(output_path(model, out_dir)),
        inputs=[{"name": s.name, "shape": list(s.shape), "dtype": str(s.dtype), "dynamic_batch": s.batch_dynamic}
                for s in prepared.inputs],
        notes=tuple(notes),
        calibration_source=calib.source,
        calibration_samples=len(calib),
        evaluation_source=eval_set.source,
        chosen_method=best.method.value,
        candidates=candidates,
        evaluation=best.evaluation,
        host_kernels=host_kernels,
        layers=layers,
        size=size,
        fit=fit,
        budget=AccuracyBudget.judge(best.evaluation, options.max_drop_pp),
        wall_s=time.perf_counter() - started,
        versions=_versions(),
        tflite=exported,
        skipped_methods=skipped,
        float_nodes=plan.float_nodes,
        float_ops=left_float,
        auto_float=auto_steps,
        class_names=class_names,
        unit=carried.unit,
        layer_costs=layer_costs(final_model),
        output_scales=output_scales(prepared.path, int8_info, best.evaluation.task),
        html=None if options.html_path is None else str(options.html_path),
    )
    report.write(workdir / REPORT_NAME)
    (workdir / PAGE_NAME).write_text(render_report_page(report), encoding="utf-8")
    return report


def _class_names(given: ClassNames | None, model: Path, output_shape: tuple[int | str | None, ...],
                 notes: list[str]) -> ClassNames | None:
    """The names of the first output's classes: given (--labels, a sample's) or from the model's metadata.

    Given names must match the output's classes; names from metadata that do not are dropped with a note.
    """
    names = given or resolve_class_names(model=model)
    classes = output_shape[-1] if output_shape else None
    if names is None or not isinstance(classes, int) or classes < 2 or len(names.names) == classes:
        return names
    problem = f"{names.source} names {len(names.names)} classes; the model's first output has {classes}"
    if given is not None:
        raise LabelsError(problem)
    notes.append(f"labels ignored: {problem}")
    return None


def _carried(model: Path, class_names: ClassNames | None, unit: str | None) -> ModelLabels:
    """The class names (or a regression's unit) the exported models carry in their metadata."""
    try:
        own = read_model_labels(model)
    except ArtifactError:
        own = None
    return ModelLabels(() if class_names is None else class_names.names,
                       unit if unit is not None else None if own is None else own.unit)


def _stamp_labels(path: Path, labels: ModelLabels) -> None:
    """Write the labels into the int8 ONNX's metadata_props, so what reads the model later finds them."""
    model = onnx.load(str(path))
    set_onnx_labels(model, labels)
    onnx.save(model, str(path))


def _export_first_passing(ranked: list[Candidate], workdir: Path, options: QuantizeOptions, eval_set: SampleSet,
                          plan: QuantPlan, progress: Progress,
                          labels: ModelLabels) -> tuple[Candidate, ExportResult, list[str]]:
    """Export the best candidate whose .tflite stays within the validation bounds in LiteRT and TFLite-Micro.

    Methods differ in how close TFLM's fixed-point rounding stays to onnxruntime (a clipped range puts more
    values near a rounding edge); a drifting export of the best method falls back to the next, and says so.
    """
    validation_inputs = eval_set.batch(0, min(len(eval_set), EXPORT_VALIDATION_SAMPLES))
    drifted: list[str] = []
    first_error: ExportDriftError | None = None
    for candidate in ranked:
        advance = progress.stage(f"exporting TFLite ({candidate.method.value})", 1)
        try:
            exported = export_tflite(candidate.path, workdir / "model.int8.tflite", io=options.io,
                                     eval_samples=validation_inputs, float_nodes=plan.float_nodes,
                                     labels=labels)
        except ExportDriftError as exc:
            first_error = first_error or exc
            drifted.append(f"{candidate.method.value} ({exc.problem})")
            continue
        advance(1)
        notes = [f"the .tflite of {', '.join(drifted)} drifted from its int8 ONNX in validation; exported "
                 f"{candidate.method.value} instead (its int8 ONNX is the one written)"] if drifted else []
        return candidate, exported, notes
    assert first_error is not None
    raise first_error


def _versions() -> dict[str, str]:
    versions = {}
    for package in ("wedge", "onnx", "onnxruntime", "numpy", "ai-edge-litert", "tflite-micro"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions
