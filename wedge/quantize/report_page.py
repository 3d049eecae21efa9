"""The quantization report as one HTML page: what int8 cost, class by class and layer by layer, and the board.

Sections: summary, accuracy by class, confusion matrices (fp32 and int8, with class names), fp32 vs int8
outputs (units and int8 steps beside the errors), calibration methods, per-layer SQNR bars, per-layer cost
(MACs, weight and activation bytes, as ST's `analyze` tabulates them), board fit (latency budget, energy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from wedge.quantize.evaluate import SQNR_CAP_DB, Confusion, OutputAgreement, format_added_sqnr, format_sqnr
from wedge.quantize.report import QuantizeReport
from wedge.quantize.report_html import badge, bar, card, confusion_matrix, esc, page, section, table, tone_for
from wedge.units import human_bytes

# SQNR bars run from 0 to this many dB; above it the noise is far below what int8 itself adds.
SQNR_BAR_FULL_DB: Final = 60.0
# A layer is flagged below this SQNR of its own noise; int8 of a well-ranged tensor reaches ~40 dB.
SQNR_WARN_DB: Final = 30.0
SQNR_BAD_DB: Final = 20.0
DROP_WARN_PP: Final = 0.5
# Rows of the per-layer tables; a bigger model's layers are summed in one "other layers" row.
MAX_LAYER_ROWS: Final = 300


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%"


def _sqnr_tone(value_db: float) -> str:
    if value_db >= SQNR_WARN_DB:
        return "good"
    return "warn" if value_db >= SQNR_BAD_DB else "bad"


def _sqnr_bar(value_db: float, added: bool = False) -> str:
    fraction = 1.0 if value_db >= SQNR_CAP_DB else value_db / SQNR_BAR_FULL_DB
    return bar(fraction, _sqnr_tone(value_db), format_added_sqnr(value_db) if added else format_sqnr(value_db))


def _name(report: QuantizeReport) -> str:
    return Path(report.source).name


def _file(path: object) -> str:
    """A file by its name, the whole path on hover (report.json keeps it)."""
    return f"<span title='{esc(path)}'>{esc(Path(str(path)).name)}</span>"


def _summary(report: QuantizeReport) -> str:
    ev = report.evaluation
    cards = []
    if ev.fp32_accuracy_pct is not None and ev.int8_accuracy_pct is not None:
        drop = ev.accuracy_drop_pp or 0.0
        cards.append(card("int8 accuracy", _pct(ev.int8_accuracy_pct),
                          f"fp32 {_pct(ev.fp32_accuracy_pct)} · drop {drop:+.2f} pp on {ev.samples} samples",
                          "bad" if drop > DROP_WARN_PP else "good"))
    primary = ev.primary
    if primary.metric is not None:
        cards.append(card(primary.metric, _pct(primary.metric_pct), f"int8 against fp32, {esc(primary.name)}"))
    cards.append(card("SQNR", esc(format_sqnr(primary.sqnr_db)), f"cosine {primary.cosine:.5f}",
                      _sqnr_tone(primary.sqnr_db)))
    size = report.size
    cards.append(card("size", esc(human_bytes(size.int8_bytes)),
                      f"fp32 {esc(human_bytes(size.fp32_bytes))} · {size.ratio:.2f}x · {size.params:,} parameters"))
    cards.append(card("compute", f"{size.macs:,} MACs", "per inference, from the shape-fixed graph"))
    fit = report.fit
    if fit is not None:
        cards.append(card(f"fits {fit.slot.board}", "yes" if fit.fits else "no",
                          f"flash {esc(human_bytes(fit.slot.model_bytes))} of {esc(human_bytes(fit.slot.slot_bytes))}"
                          f" · RAM {esc(human_bytes(fit.ram_needed_bytes))} of "
                          f"{esc(human_bytes(fit.slot.arena_budget_bytes))}", tone_for(fit.fits)))
        budget = ("no latency budget" if fit.latency_budget_ms is None else
                  f"budget {fit.latency_budget_ms:g} ms ({esc(fit.latency_budget_source or '')})")
        cards.append(card("latency (estimate)", f"{fit.latency_ms:.2f} ms", budget, tone_for(fit.fits_latency)))
        if fit.energy_uj is not None and fit.power_mw is not None:
            cards.append(card("energy per inference", f"{fit.energy_uj:.3g} µJ",
                              f"{fit.power_mw:.3g} mW × {fit.latency_ms:.2f} ms (estimate)"))
    outputs = _file(report.output) + ("" if report.tflite is None else f" and {_file(report.tflite.path)}")
    labels = report.class_names
    where = (f"<p class='muted'>{_file(report.source)} → {outputs}</p>"
             f"<p class='muted'>calibration: <b>{esc(report.chosen_method)}</b> on {report.calibration_samples} "
             f"samples of {_file(report.calibration_source)} · evaluation: {ev.samples} samples of "
             f"{_file(report.evaluation_source)} · task {esc(ev.task)}"
             f"{f' ({esc(ev.task_reason)})' if ev.task_reason else ''}"
             + ("" if labels is None else f" · class names from {esc(labels.source)}") + "</p>")
    return where + f"<div class='cards'>{''.join(cards)}</div>" + _verdicts(report)


def _verdicts(report: QuantizeReport) -> str:
    items = []
    budget = report.budget
    if budget.max_drop_pp is not None:
        ok = not budget.exceeded
        shown = "no metric" if budget.drop_pp is None else f"{budget.drop_pp:.2f} pp"
        items.append(badge(f"accuracy budget {'held' if ok else 'exceeded'}: {shown} ≤ {budget.max_drop_pp:g} pp"
                           if ok else f"accuracy budget exceeded: {shown} > {budget.max_drop_pp:g} pp",
                           "good" if ok else "bad"))
    fit = report.fit
    if fit is not None:
        items.append(badge(f"flash: {'fits' if fit.slot.fits else 'does not fit'}", tone_for(fit.slot.fits)))
        items.append(badge(f"RAM: {'fits' if fit.fits_ram else 'does not fit'}", tone_for(fit.fits_ram)))
        if fit.latency_budget_ms is not None:
            within = bool(fit.fits_latency)
            items.append(badge(f"latency {fit.latency_ms:.2f} ms {'within' if within else 'over'} the "
                               f"{fit.latency_budget_ms:g} ms budget", tone_for(within)))
    return f"<p style='display:flex;gap:8px;flex-wrap:wrap'>{''.join(items)}</p>" if items else ""


def _per_class(report: QuantizeReport, confusion: Confusion) -> str:
    names = report.class_names
    name = names.name if names is not None else str
    if confusion.fp32 is None or confusion.int8 is None:
        return ""
    fp32, int8 = Confusion.per_class_pct(confusion.fp32), Confusion.per_class_pct(confusion.int8)
    rows, classes = [], []
    for index in range(confusion.classes):
        samples = sum(confusion.fp32[index])
        a, b = fp32[index], int8[index]
        delta = None if a is None or b is None else b - a
        tone = "" if delta is None or abs(delta) < 1e-9 else ("bad" if delta < 0 else "good")
        rows.append([esc(name(index)), str(samples), _pct(a), _pct(b),
                     "—" if delta is None else f"<span class='{tone}'>{delta:+.2f} pp</span>"])
        classes.append("")
    text = ("Per-class accuracy (recall: the share of each class's samples predicted as that class) of the fp32 "
            "and the int8 model on the eval set.")
    return section("Accuracy by class", f"<p class='note'>{text}</p>" + table(
        ["class", "samples", "fp32", "int8", "int8 − fp32"], rows, numeric=(1, 2, 3, 4), row_classes=classes),
        "per-class")


def _confusions(report: QuantizeReport, confusion: Confusion) -> str:
    names = report.class_names
    name = names.name if names is not None else str
    parts = []
    if confusion.fp32 is not None and confusion.int8 is not None:
        parts.append(confusion_matrix(confusion.fp32, name, "fp32 model", "label", "fp32 prediction"))
        parts.append(confusion_matrix(confusion.int8, name, "int8 model", "label", "int8 prediction"))
        text = "Rows are the eval set's labels, columns each model's prediction; the diagonal is right."
    else:
        text = ("The eval set has no labels: rows are the fp32 model's prediction, columns the int8 model's; "
                "off the diagonal, int8 changed its mind.")
    parts.append(confusion_matrix(confusion.agreement, name, "int8 against fp32", "fp32 prediction",
                                  "int8 prediction"))
    return section("Confusion matrices", f"<p class='note'>{esc(text)}</p><div class='side'>{''.join(parts)}</div>",
                   "confusion")


def _error_text(report: QuantizeReport, out: OutputAgreement) -> str:
    scale = report.output_scale(out.name)
    unit = scale.unit if scale is not None else "output units"
    text = f"{out.max_abs_error:.4g} {unit}"
    steps = None if scale is None else scale.steps(out.max_abs_error)
    if steps is not None and scale is not None and scale.int8_step is not None:
        text += f" = {steps:.1f} int8 steps of {scale.int8_step:.4g}"
    return text + f"; fp32 range {out.fp32_min:.4g} … {out.fp32_max:.4g}"


def _outputs(report: QuantizeReport) -> str:
    ev = report.evaluation
    rows = []
    for out in ev.outputs:
        metric = "—" if out.metric is None else f"{esc(out.metric)} {_pct(out.metric_pct)}"
        extras = ", ".join(f"{esc(k.removesuffix('_pct').replace('_', ' '))} "
                           f"{_pct(v) if k.endswith('_pct') else f'{v:g}'}" for k, v in out.metric_extras.items())
        rows.append([esc(out.name), metric + (f"<br><span class='note'>{extras}</span>" if extras else ""),
                     _sqnr_bar(out.sqnr_db), f"{out.cosine:.5f}", esc(_error_text(report, out)),
                     f"{out.mean_abs_error:.4g}"])
    kernels = report.host_kernels.primary
    note = (f"<p class='note'>The int8 model is evaluated with exact int8 arithmetic, as a board's int32 "
            f"accumulators compute. onnxruntime's own int8 kernels on this host: SQNR "
            f"{esc(format_sqnr(kernels.sqnr_db))}. An int8 step is the real value one integer of the int8 output "
            f"stands for (its quantization scale).</p>")
    reconstruction = ""
    if ev.reconstruction is not None:
        reconstruction = (f"<p>Anomaly score (reconstruction error per sample): correlation "
                          f"{ev.reconstruction.correlation:.4f}, mean relative error "
                          f"{100 * ev.reconstruction.mean_relative_error:.2f}%.</p>")
    return section("fp32 vs int8 outputs", table(
        ["output", "task metric", "SQNR", "cosine", "max abs error", "mean abs error"], rows, numeric=(3, 5))
        + reconstruction + note, "outputs")


def _methods(report: QuantizeReport) -> str:
    rows, classes = [], []
    best_sqnr = max((c.evaluation.primary.sqnr_db for c in report.candidates), default=0.0)
    for cand in report.candidates:
        ev = cand.evaluation
        chosen = cand.method.value == report.chosen_method
        rows.append([esc(cand.method.value) + (" ✓ chosen" if chosen else ""), _pct(ev.int8_accuracy_pct),
                     "—" if ev.primary.metric is None else f"{_pct(ev.primary.metric_pct)}",
                     _sqnr_bar(ev.primary.sqnr_db), f"{ev.primary.cosine:.5f}", f"{cand.calibration_s:.2f} s"])
        classes.append("chosen" if chosen else "")
    for skipped in report.skipped_methods:
        rows.append([esc(skipped.method.value), "skipped", "", esc(skipped.reason), "", ""])
        classes.append("")
    metric = report.evaluation.primary.metric or "task metric"
    rule = ("the best int8 accuracy on the eval set wins, then the best SQNR"
            if report.evaluation.int8_accuracy_pct is not None else "the best SQNR of the first output wins")
    text = (f"Each method sets the activation ranges from the calibration data; each int8 model is scored on the "
            f"eval set ({esc(rule)}; best SQNR here {esc(format_sqnr(best_sqnr))}).")
    return section("Calibration methods compared", f"<p class='note'>{text}</p>" + table(
        ["method", "int8 accuracy", metric, "SQNR", "cosine", "calibration time"], rows, numeric=(1, 2, 4, 5),
        row_classes=classes), "methods")


def _layers_sqnr(report: QuantizeReport) -> str:
    if not report.layers:
        return ""
    worst = {layer.node for layer in report.worst_layers}
    rows, classes = [], []
    for layer in report.layers[:MAX_LAYER_ROWS]:
        rows.append([esc(layer.node), esc(layer.op_type), _sqnr_bar(layer.own_sqnr_db, added=True),
                     _sqnr_bar(layer.sqnr_db),
                     "—" if layer.weight_sqnr_db is None else esc(format_sqnr(layer.weight_sqnr_db))])
        classes.append("chosen" if layer.node in worst and layer.own_sqnr_db < SQNR_CAP_DB else "")
    more = len(report.layers) - MAX_LAYER_ROWS
    text = ("SQNR against the fp32 model, layer by layer in graph order, on the first eval samples. "
            "<b>Added by the layer</b> is the noise the layer itself adds (comparable across layers); "
            "<b>at its output</b> is what has accumulated there (lossless: identical to fp32). No added noise: "
            "the layer's output is no noisier than its input (a max pool; a layer whose rounding averages out). "
            f"Highlighted: the layers that add the most. Bars are full at {SQNR_BAR_FULL_DB:g} dB.")
    tail = f"<p class='note'>{more} more layers in report.json.</p>" if more > 0 else ""
    return section("Per-layer SQNR", f"<p class='note'>{text}</p>" + table(
        ["layer", "op", "added by the layer", "at its output", "weights"], rows, row_classes=classes) + tail,
        "layer-sqnr")


def _layers_cost(report: QuantizeReport) -> str:
    costs = report.layer_costs
    if not costs:
        return ""
    sqnr = {part: layer for layer in report.layers for part in layer.node.split(" + ")}
    total_macs = sum(c.macs for c in costs) or 1
    rows = []
    shown = costs[:MAX_LAYER_ROWS]
    for cost in shown:
        layer = next((sqnr[p] for p in cost.node.split(" + ") if p in sqnr), None)
        # The SQNR's name when it has one: onnxruntime drops a ReLU its quantization range already clips.
        rows.append([esc(cost.node if layer is None else layer.node),
                     esc(cost.op_type if layer is None else layer.op_type), "×".join(str(d) for d in cost.output_shape) or "—",
                     f"{cost.macs:,}", f"{100 * cost.macs / total_macs:.1f}%", f"{cost.weight_bytes:,}",
                     f"{cost.activation_bytes:,}", "int8" if cost.int8 else "<span class='warn'>float</span>",
                     "—" if layer is None else esc(format_added_sqnr(layer.own_sqnr_db))])
    rest = costs[MAX_LAYER_ROWS:]
    classes = [""] * len(rows)
    if rest:
        rows.append([f"{len(rest)} other layers", "", "", f"{sum(c.macs for c in rest):,}",
                     f"{100 * sum(c.macs for c in rest) / total_macs:.1f}%", f"{sum(c.weight_bytes for c in rest):,}",
                     f"{max(c.activation_bytes for c in rest):,} max", "", ""])
        classes.append("")
    rows.append(["total", "", "", f"{sum(c.macs for c in costs):,}", "100%", f"{sum(c.weight_bytes for c in costs):,}",
                 f"{max(c.activation_bytes for c in costs):,} largest", "", ""])
    classes.append("total")
    text = ("From the int8 graph: weight bytes as stored (int8 weights, int32 biases, float32 where a layer "
            "stayed float; flash), activation bytes of the layer's output (int8, or float32 where it is not "
            "quantized; RAM). The arena holds the outputs alive at the same time, not their sum: see board fit.")
    return section("Per-layer cost", f"<p class='note'>{esc(text)}</p>" + table(
        ["layer", "op", "output", "MACs", "share", "weight bytes", "activation bytes", "type", "SQNR added"],
        rows, numeric=(3, 4, 5, 6), row_classes=classes), "layer-cost")


def _board(report: QuantizeReport) -> str:
    fit = report.fit
    if fit is None:
        return ""
    slot = fit.slot

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else badge("fits" if ok else "does not fit", tone_for(ok))

    rows = [["flash (model slot)", esc(human_bytes(slot.model_bytes)), esc(human_bytes(slot.slot_bytes)),
             verdict(slot.fits)],
            ["RAM (TFLM arena, measured)" if fit.ram_measured else "RAM (estimate)",
             esc(human_bytes(fit.ram_needed_bytes)), esc(human_bytes(slot.arena_budget_bytes)), verdict(fit.fits_ram)]]
    latency_ok = fit.fits_latency
    rows.append(["latency (estimate)", f"{fit.latency_ms:.2f} ms",
                 "no budget" if fit.latency_budget_ms is None else
                 f"{fit.latency_budget_ms:g} ms ({esc(fit.latency_budget_source or '')})",
                 "—" if latency_ok is None else badge("within budget" if latency_ok else "over budget",
                                                     tone_for(latency_ok))])
    if fit.energy_uj is not None and fit.power_mw is not None:
        rows.append(["energy per inference (estimate)", f"{fit.energy_uj:.3g} µJ",
                     f"at {fit.power_mw:.3g} mW active", "—"])
    hint = ("" if fit.latency_budget_ms is not None else
            "<p class='note'>No latency budget: give <code>--latency-budget-ms</code>, or "
            "<code>budgets.latency_ms</code> in the board profile.</p>")
    if fit.energy_uj is None:
        hint += ("<p class='note'>No energy estimate: the board profile has no power figure "
                 "(<code>compute.active_current_ma</code> and <code>supply_v</code>).</p>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in (*slot.notes, *fit.notes))
    return section(f"Board fit: {slot.board} ({slot.runtime})", table(
        ["budget", "needed", "available", "verdict"], rows, numeric=(1, 2)) + hint
        + (f"<ul class='notes'>{notes}</ul>" if notes else ""), "board")


def _tflite(report: QuantizeReport) -> str:
    export = report.tflite
    if export is None:
        return ""
    rows = [[esc(run.runtime), _pct(run.identical_pct), f"{run.max_quanta_diff} q", _pct(run.top1_agreement_pct),
             esc(format_sqnr(run.sqnr_db)), f"{run.invoke_ms:.2f} ms"] for run in export.validation.runtimes]
    ops = ", ".join(f"{name} ×{count}" for name, count in export.op_histogram.items())
    text = (f"{Path(export.path).name}: {human_bytes(export.size_bytes)}, {export.io} I/O, validated on "
            f"{export.validation.samples} eval samples against onnxruntime on the int8 ONNX; TFLite-Micro arena "
            f"{export.arena.arena_bytes:,} bytes measured. Ops: {ops}.")
    return section("TFLite export", f"<p class='note'>{esc(text)}</p>" + table(
        ["runtime", "identical outputs", "max difference", "top-1 agreement", "SQNR", "invoke"], rows,
        numeric=(1, 2, 3, 5)), "tflite")


def _notes(report: QuantizeReport) -> str:
    if not report.notes:
        return ""
    return section("Notes", "<ul class='notes'>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>",
                   "notes")


def render_report_page(report: QuantizeReport) -> str:
    """The report as a self-contained HTML page."""
    confusion = report.evaluation.confusion
    body = [f"<h1>{esc(_name(report))} → int8</h1>", _summary(report)]
    if confusion is not None:
        body += [_per_class(report, confusion), _confusions(report, confusion)]
    body += [_outputs(report), _methods(report), _layers_sqnr(report), _layers_cost(report), _board(report),
             _tflite(report), _notes(report)]
    versions = " · ".join(f"{esc(k)} {esc(v)}" for k, v in report.versions.items())
    body.append(f"<p class='note' style='margin-top:32px'>wedge quantize in {report.wall_s:.1f} s · {versions}</p>")
    return page(f"{_name(report)}: int8 report", "".join(body))
