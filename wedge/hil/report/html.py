"""The HTML summary of a bench run: every board side by side, then per board its tests (readable titles, the
reason of each failure), its key figures, the confusion matrix on the device with class names, its latency per
repeat, and the BLE streaming timeline when it streamed.

Tables and bars are HTML (`wedge.quantize.report_html`, shared with the quantize report); only the streaming
timeline is a matplotlib PNG, embedded as base64, so the page stays one file to attach to a CI run.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any, Final

from wedge.quantize.report_html import badge, bar, confusion_matrix, esc, page, section, table

# Repeats closer than this share of their median are one value for a histogram: the page says so instead.
LATENCY_SPREAD_MIN: Final = 0.01
_OUTCOME_TONES: Final = {"passed": "good", "failed": "bad", "error": "bad", "skipped": "warn"}


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return (f"<img alt='BLE streaming timeline' style='max-width:100%;border:1px solid #d1d9e0' "
            f"src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>")


def _timeline_plot(stream: dict[str, Any], board: str) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3))
    axes.plot(stream.get("arrival_s", []), stream.get("seq", []), ".", markersize=3, color="#0969da",
              label="record received")
    for index, (start, end) in enumerate(stream.get("disconnects_s", [])):
        axes.axvspan(start, end, color="#cf222e", alpha=0.2, label="link down" if index == 0 else None)
    axes.set_xlabel("time since the bridge started (s)")
    axes.set_ylabel("record sequence number")
    axes.set_title(f"{board}: records over BLE")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return _png(figure)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _us(value: float) -> str:
    return f"{value:,.1f} µs"


def key_figures(board: dict[str, Any]) -> list[tuple[str, str]]:
    """A board's figures as (what, value) for people, in the order a reader asks for them."""
    metrics = board["metrics"]
    counts = ", ".join(f"{n} {k}" for k, n in board["summary"].items() if n) or "no tests"
    rows = [("tests", counts), ("profile", board["profile"])]
    accuracy = metrics.get("accuracy")
    if isinstance(accuracy, dict):
        if accuracy.get("device_accuracy") is not None:
            rows.append(("accuracy on the device", f"{_pct(accuracy['device_accuracy'])} (host "
                                                   f"{_pct(accuracy.get('host_accuracy'))})"))
        rows += [("top-1 agreement with the host", _pct(accuracy.get("top1_agreement"))),
                 ("cosine similarity", f"{accuracy['cosine_similarity']:.6f}"),
                 ("RMSE · MAE · max abs error", f"{accuracy['rmse']:.4g} · {accuracy['mae']:.4g} · "
                                                f"{accuracy['max_abs_error']:.4g}"),
                 ("outputs identical to the host", f"{accuracy['exact_samples']} of {accuracy['samples']} samples")]
    exact = metrics.get("bit_exact_vs_host_tflm")
    if isinstance(exact, dict):
        rows.append(("bit-exact with TFLite-Micro on the host", f"{exact['exact_samples']} of {exact['samples']} "
                                                                 "samples"))
    latency = metrics.get("latency")
    if isinstance(latency, dict):
        rows.append(("latency per inference", f"{_us(latency['median_us'])} median ({_us(latency['min_us'])} … "
                                              f"{_us(latency['max_us'])}), {latency['throughput_ips']:,.1f}/s"))
        if latency.get("host_wall_median_us") is not None:
            rows.append(("host compute per inference", f"{_us(latency['host_wall_median_us'])} (TFLM on the host)"))
    flash = metrics.get("flash")
    if isinstance(flash, dict):
        rows.append(("flash", f"{flash['outcome']}: {flash['model']} {flash['version']} in {flash['total_s']:.2f} s"))
    rollback = metrics.get("rollback")
    if isinstance(rollback, dict):
        back = "rolled back" if rollback.get("rolled_back") else "did not roll back"
        rows.append(("unconfirmed update", f"test boot ran {rollback['during_test']}; after the reset {back} to "
                                           f"{rollback['after_reset']}"))
    cut = metrics.get("power_cut")
    if isinstance(cut, dict):
        rows.append(("power cut mid-flash", f"before {cut['before']}, after {cut['after']}"))
    stream = metrics.get("ble_stream")
    if isinstance(stream, dict):
        rows.append(("BLE stream", f"{stream.get('received_records', 0)} records, {stream.get('lost_records', 0)} "
                                   f"lost, {stream.get('rate_hz', 0):g} Hz, latency p50 "
                                   f"{stream.get('latency_ms_median')} ms"))
    return rows


def _side_by_side(boards: list[dict[str, Any]]) -> str:
    figures = [dict(key_figures(board)) for board in boards]
    keys = list(dict.fromkeys(key for board in boards for key, _ in key_figures(board)))
    rows = [[esc(key), *(esc(f.get(key, "—")) for f in figures)] for key in keys]
    verdicts = ["verdict", *(badge("passed", "good") if b["exit_code"] == 0 and not b.get("problem")
                             else badge("failed", "bad") for b in boards)]
    return section("Boards side by side", table(["", *(b["name"] for b in boards)], [verdicts, *rows]), "boards")


def _latency(latency: dict[str, Any]) -> str:
    values = [float(v) for v in latency.get("per_repeat_us", [])]
    if not values:
        return ""
    median = float(latency["median_us"])
    spread = max(values) - min(values)
    virtual = str(latency.get("source", "")).startswith("virtual board")
    why = (" A virtual board's clock is its profile's cycle model, which paces every inference alike."
           if virtual else "")
    if spread == 0:
        body = (f"<p>Every one of the {len(values)} repeats took {_us(median)} per inference "
                f"({latency['runs']} runs each): no histogram, nothing varies.{esc(why)}</p>")
    elif median > 0 and spread / median < LATENCY_SPREAD_MIN:
        body = (f"<p>The {len(values)} repeats ({latency['runs']} runs each) are within {_us(spread)} "
                f"({100 * spread / median:.2f}%) of each other around {_us(median)}: too close for a histogram."
                f"{esc(why)}</p>")
    else:
        top = max(values)
        rows = [[str(index + 1), bar(value / top, "good" if value <= median else "warn",
                                     f"{_us(value)} ({100 * (value - median) / median:+.1f}% vs the median)")]
                for index, value in enumerate(values)]
        body = table(["repeat", f"per inference ({latency['runs']} runs, after {latency['warmup_runs']} warm-up)"],
                     rows, numeric=(0,))
    return f"<h3>Latency per repeat</h3>{body}<p class='note'>{esc(latency.get('source', ''))}</p>"


def _board_section(board: dict[str, Any], name: Callable[[int], str]) -> str:
    summary = board["summary"]
    parts = [f"<p class='muted'>{esc(board['profile'])} on <code>{esc(board['port'])}</code> · "
             f"{board['wall_s']:.1f} s</p>",
             "<p style='display:flex;gap:8px'>" + "".join(badge(f"{n} {k}", _OUTCOME_TONES.get(k, ""))
                                                        for k, n in summary.items() if n) + "</p>"]
    if board.get("problem"):
        parts.append(f"<p class='bad'>{esc(board['problem'])}</p>")
    rows = [[esc(test.get("title") or test["name"]), badge(test["outcome"], _OUTCOME_TONES.get(test["outcome"], "")),
             f"{test['duration_s']:.2f} s", esc(test["message"] or "")] for test in board["tests"]]
    parts.append(table(["test", "outcome", "time", "reason"], rows, numeric=(2,)))
    parts.append("<h3>Key figures</h3>" + table(["", "value"], [[esc(k), esc(v)] for k, v in key_figures(board)]))
    metrics = board["metrics"]
    matrix = metrics.get("confusion")
    if isinstance(matrix, list) and matrix:
        parts.append("<h3>Confusion on the device</h3><p class='note'>Rows are the eval set's labels, columns what "
                     "the board predicted; the diagonal is right.</p>"
                     + confusion_matrix(matrix, name, board["name"], "label", "device prediction"))
    if isinstance(metrics.get("latency"), dict):
        parts.append(_latency(metrics["latency"]))
    if isinstance(metrics.get("ble_stream"), dict):
        parts.append("<h3>BLE streaming</h3>" + _timeline_plot(metrics["ble_stream"], board["name"]))
    return section(board["name"], "".join(parts), f"board-{board['name']}")


def render_html(report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    labels = list(report.get("labels") or [])

    def name(index: int) -> str:
        return labels[index] if 0 <= index < len(labels) else str(index)

    boards = list(report["boards"])
    verdict = "passed" if report["passed"] else "failed"
    model = str(report["model"]).rsplit("/", 1)[-1]
    head = (f"<h1>HIL report: {esc(model)} {badge(verdict, 'good' if report['passed'] else 'bad')}</h1>"
            f"<p class='muted'>model <code>{esc(report['model'])}</code> · eval "
            f"<code>{esc(report['eval'] or 'none')}</code> · suites {esc(', '.join(report.get('suites', [])))} · "
            f"{len(boards)} board{'s' if len(boards) != 1 else ''} · {report['wall_s']:.1f} s"
            + (f" · classes {esc(', '.join(labels))}" if labels else "") + "</p>"
            f"<p class='note'>{esc(report['latency_note'])}</p>")
    body = [head]
    if len(boards) > 1:
        body.append(_side_by_side(boards))
    body += [_board_section(board, name) for board in boards]
    return page(f"wedge HIL report: {model}", "".join(body))
