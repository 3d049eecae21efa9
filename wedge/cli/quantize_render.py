"""Rich rendering of a quantization report: methods tried, fp32 vs int8, size, worst layers, board fit.

Only presentation; every number comes from `wedge.quantize.report.QuantizeReport`.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from wedge.cli.units import human_bytes
from wedge.quantize.evaluate import OutputAgreement, format_added_sqnr, format_sqnr
from wedge.quantize.report import QuantizeReport
from wedge.quantize.tflite import ExportResult


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%"


def _db(value: float | None) -> str:
    return "—" if value is None else format_sqnr(value)


def _max_error(report: QuantizeReport, out: OutputAgreement) -> str:
    """The max abs error with its unit and in int8 steps of the output: 4.03 logits = 16.0 steps of 0.251."""
    scale = report.output_scale(out.name)
    if scale is None:
        return f"{out.max_abs_error:.4g}"
    steps = scale.steps(out.max_abs_error)
    in_steps = "" if steps is None else f" = {steps:.1f} int8 steps of {scale.int8_step:.3g}"
    return f"{out.max_abs_error:.4g} {scale.unit}{in_steps} (range {out.fp32_min:.3g} … {out.fp32_max:.3g})"


def _short(name: str, limit: int = 48) -> str:
    """Keep both ends of long layer names: converters put the informative part at either end."""
    return name if len(name) <= limit else f"{name[: limit // 2 - 1]}…{name[-(limit // 2):]}"


def _verdict(ok: bool) -> str:
    return "[green]fits[/]" if ok else "[red]does not fit[/]"


def _tflite_table(export: ExportResult) -> Table:
    """The .tflite against onnxruntime on the int8 ONNX, per runtime, and its measured TFLM arena."""
    table = Table(title="TFLite export vs onnxruntime on the int8 ONNX", title_justify="left")
    for column in ("runtime", "identical", "max diff", "top-1 agreement", "SQNR", "invoke"):
        table.add_column(column, justify="left" if column == "runtime" else "right")
    for run in export.validation.runtimes:
        table.add_row(run.runtime, _pct(run.identical_pct), f"{run.max_quanta_diff} q",
                      _pct(run.top1_agreement_pct), _db(run.sqnr_db),
                      f"{run.invoke_ms:.2f} ms")
    arena = export.arena
    ratio = export.size_bytes / export.onnx_size_bytes
    table.caption = (f"{export.path.name}: {human_bytes(export.size_bytes)} ({ratio:.2f}x "
                     f"the int8 ONNX), {export.io} I/O, {export.validation.samples} samples; TFLM arena "
                     f"{arena.arena_bytes:,} B measured (recorded allocation {arena.recorded_bytes:,} B); ops: "
                     + ", ".join(f"{name} x{count}" for name, count in export.op_histogram.items()))
    table.caption_justify = "left"
    return table


def render_quantize_report(report: QuantizeReport, console: Console) -> None:
    """Print the report as a few tables, the most important first."""
    outputs = report.output if report.tflite is None else f"{report.output}, {report.tflite.path}"
    console.print(f"[bold]{report.source}[/] → [bold green]{outputs}[/]  "
                  f"(calibration: [cyan]{report.chosen_method}[/], {report.calibration_samples} samples; "
                  f"eval: {report.evaluation.samples} samples)")
    if report.class_names is not None:
        console.print(f"classes ({report.class_names.source}): " + ", ".join(report.class_names.names))

    methods = Table(title="Calibration methods (scored on the eval set)", title_justify="left")
    metric = report.evaluation.primary.metric or "task metric"
    for column in ("method", "int8 accuracy", metric, "SQNR", "cosine", "calibration time"):
        methods.add_column(column, justify="left" if column == "method" else "right")
    for cand in report.candidates:
        chosen = cand.method.value == report.chosen_method
        name = f"[bold cyan]{cand.method.value} ✓[/]" if chosen else cand.method.value
        ev = cand.evaluation
        methods.add_row(name, _pct(ev.int8_accuracy_pct), _pct(ev.primary.metric_pct),
                        _db(ev.primary.sqnr_db), f"{ev.primary.cosine:.5f}", f"{cand.calibration_s:.2f} s")
    for skipped in report.skipped_methods:
        methods.add_row(f"[dim]{skipped.method.value}[/]", "[dim]skipped[/]", "", "", "", "")
    console.print(methods)

    ev = report.evaluation
    quality = Table(title=f"fp32 vs int8 ({ev.task})", title_justify="left")
    if ev.task_reason:
        quality.caption = f"task {ev.task}: {ev.task_reason}"
        quality.caption_justify = "left"
    quality.add_column("metric")
    quality.add_column("value", justify="right")
    if ev.fp32_accuracy_pct is not None:
        quality.add_row("accuracy fp32", _pct(ev.fp32_accuracy_pct))
        quality.add_row("accuracy int8", _pct(ev.int8_accuracy_pct))
        drop = ev.accuracy_drop_pp or 0.0
        quality.add_row("accuracy drop", f"[{'red' if drop > 0.5 else 'green'}]{drop:+.2f} pp[/]")
    for out in ev.outputs:
        prefix = f"{out.name}: " if len(ev.outputs) > 1 else ""
        if out.metric is not None:
            quality.add_row(f"{prefix}{out.metric}", _pct(out.metric_pct))
        for key, value in out.metric_extras.items():
            shown = _pct(value) if key.endswith("_pct") else f"{value:g}"
            quality.add_row(f"{prefix}  {key.removesuffix('_pct').replace('_', ' ')}", shown)
        quality.add_row(f"{prefix}SQNR", _db(out.sqnr_db))
        quality.add_row(f"{prefix}cosine similarity", f"{out.cosine:.5f}")
        quality.add_row(f"{prefix}max abs error", _max_error(report, out))
    kernels = report.host_kernels.primary
    quality.add_row("SQNR with onnxruntime's int8 kernels", _db(kernels.sqnr_db))
    if ev.reconstruction is not None:
        quality.add_row("anomaly score correlation", f"{ev.reconstruction.correlation:.4f}")
        quality.add_row("anomaly score rel. error", f"{100 * ev.reconstruction.mean_relative_error:.2f}%")
    console.print(quality)

    size = report.size
    sizes = Table(title="Size", title_justify="left")
    for column in ("fp32", "int8", "ratio", "parameters", "MACs"):
        sizes.add_column(column, justify="right")
    sizes.add_row(human_bytes(size.fp32_bytes), human_bytes(size.int8_bytes), f"{size.ratio:.2f}x",
                  f"{size.params:,}", f"{size.macs:,}")
    console.print(sizes)

    worst = report.worst_layers
    if worst:
        layers = Table(title="Layers that add the most noise (SQNR vs fp32; lower is worse)", title_justify="left")
        for column in ("layer", "op", "in", "out", "added by layer", "weights"):
            layers.add_column(column, justify="left" if column in ("layer", "op") else "right")
        for layer in worst:
            layers.add_row(_short(layer.node), layer.op_type, _db(layer.input_sqnr_db),
                           _db(layer.sqnr_db), f"[bold]{format_added_sqnr(layer.own_sqnr_db)}[/]", _db(layer.weight_sqnr_db))
        console.print(layers)

    if report.tflite is not None:
        console.print(_tflite_table(report.tflite))

    fit = report.fit
    if fit is not None:
        slot = fit.slot
        table = Table(title=f"Board fit: {slot.board} ({slot.runtime})", title_justify="left")
        for column in ("budget", "needed", "available", "verdict"):
            table.add_column(column, justify="left" if column == "budget" else "right")
        table.add_row("flash (model slot)", human_bytes(slot.model_bytes), human_bytes(slot.slot_bytes),
                      _verdict(slot.fits))
        ram = "RAM (TFLM arena, measured)" if fit.ram_measured else "RAM (estimate)"
        table.add_row(ram, human_bytes(fit.ram_needed_bytes), human_bytes(slot.arena_budget_bytes),
                      _verdict(fit.fits_ram))
        budget = "" if fit.latency_budget_ms is None else f"{fit.latency_budget_ms:g} ms"
        within = fit.fits_latency
        table.add_row("latency (estimate)", f"{fit.latency_ms:.2f} ms", budget,
                      "" if within is None else "[green]within budget[/]" if within else "[red]over budget[/]")
        if fit.energy_uj is not None:
            table.add_row("energy per inference (estimate)", f"{fit.energy_uj:.3g} µJ", "", "")
        if fit.latency_budget_source is not None:
            table.caption = f"latency budget from {fit.latency_budget_source}"
            table.caption_justify = "left"
        console.print(table)

    for note in (*report.notes, *(fit.slot.notes + fit.notes if fit else ())):
        console.print(f"[dim]• {note}[/]")
    if report.html is not None:
        console.print(f"report page: [bold]{report.html}[/] (per class, per layer, board fit)")
    budget = report.budget
    if budget.max_drop_pp is not None and not budget.exceeded and budget.drop_pp is not None:
        console.print(f"[green]within the accuracy budget[/]: {budget.metric} drop {budget.drop_pp:.2f} pp "
                      f"≤ {budget.max_drop_pp:g} pp")
