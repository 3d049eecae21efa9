"""The HTML summary of a bench run: per board, the tests and their reasons, key figures, and plots.

Plots are matplotlib PNGs embedded as base64 (one file to attach to a CI run): latency per repeat, the
device's confusion matrix, and the BLE streaming timeline when a board streamed.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;
font-size:.9em;vertical-align:top}
.passed{color:#1a7f37}.failed,.error{color:#cf222e;font-weight:bold}.skipped{color:#9a6700}
.note{color:#555;font-size:.85em}img{max-width:48%;margin:.5em 1%;border:1px solid #eee}
"""


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _latency_plot(latency: dict[str, Any], board: str) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3))
    values = latency["per_repeat_us"]
    axes.hist(values, bins=max(5, len(values)), color="#4c72b0")
    axes.axvline(latency["median_us"], color="#cf222e", linestyle="--", label=f"median {latency['median_us']:.0f} us")
    axes.set_xlabel("latency per inference (us)")
    axes.set_ylabel("repeats")
    axes.set_title(f"{board}: latency ({latency['runs']} runs x {latency['repeats']})")
    axes.legend()
    return _png(figure)


def _confusion_plot(matrix: list[list[int]], board: str) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 3.5))
    image = axes.imshow(matrix, cmap="Blues")
    for row, values in enumerate(matrix):
        for column, count in enumerate(values):
            axes.text(column, row, str(count), ha="center", va="center", fontsize=8)
    axes.set_xticks(range(len(matrix)))
    axes.set_yticks(range(len(matrix)))
    axes.set_xlabel("device prediction")
    axes.set_ylabel("label")
    axes.set_title(f"{board}: confusion on the device")
    figure.colorbar(image, ax=axes)
    return _png(figure)


def _timeline_plot(stream: dict[str, Any], board: str) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3))
    times = stream.get("arrival_s", [])
    seqs = stream.get("seq", [])
    axes.plot(times, seqs, ".", markersize=3)
    for start, end in stream.get("disconnects_s", []):
        axes.axvspan(start, end, color="#cf222e", alpha=0.2)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("record sequence number")
    axes.set_title(f"{board}: BLE streaming timeline")
    return _png(figure)


def _figures(board: dict[str, Any]) -> list[tuple[str, str]]:
    metrics = board["metrics"]
    rows = []
    accuracy = metrics.get("accuracy")
    if isinstance(accuracy, dict):
        for key in ("device_accuracy", "host_accuracy", "top1_agreement", "rmse", "mae", "l2_relative_error",
                    "cosine_similarity", "exact_samples", "samples"):
            if accuracy.get(key) is not None:
                value = accuracy[key]
                rows.append((key.replace("_", " "), f"{value:.6g}" if isinstance(value, float) else str(value)))
    latency = metrics.get("latency")
    if isinstance(latency, dict):
        rows.append(("latency median", f"{latency['median_us']:.1f} us ({latency['source']})"))
        rows.append(("throughput", f"{latency['throughput_ips']:.1f} inferences/s"))
        if latency.get("host_wall_median_us") is not None:
            rows.append(("host wall time per inference", f"{latency['host_wall_median_us']:.1f} us (TFLM on the host)"))
    flash = metrics.get("flash")
    if isinstance(flash, dict):
        rows.append(("flash", f"{flash['outcome']} {flash['model']} {flash['version']} in {flash['total_s']:.2f} s"))
    rollback = metrics.get("rollback")
    if isinstance(rollback, dict):
        rows.append(("rollback", f"test boot {rollback['during_test']}, after reset {rollback['after_reset']}"))
    cut = metrics.get("power_cut")
    if isinstance(cut, dict):
        rows.append(("power cut mid-flash", f"before {cut['before']}, after {cut['after']}"))
    stream = metrics.get("ble_stream")
    if isinstance(stream, dict):
        for key in ("rate_hz", "latency_ms_median", "lost_records", "received_records"):
            if key in stream:
                rows.append((f"BLE {key.replace('_', ' ')}", str(stream[key])))
    return rows


def _board_section(board: dict[str, Any]) -> str:
    name = html.escape(board["name"])
    summary = board["summary"]
    parts = [(f"<h2>{name} <span class='note'>({html.escape(board['profile'])} on {html.escape(board['port'])}, "
             f"{board['wall_s']:.1f} s)</span></h2>"),
             "<p>" + " · ".join(f"<span class='{k}'>{v} {k}</span>" for k, v in summary.items() if v) + "</p>"]
    if board.get("problem"):
        parts.append(f"<p class='error'>{html.escape(board['problem'])}</p>")
    parts.append("<table><tr><th>test</th><th>outcome</th><th>time</th><th>reason</th></tr>")
    for test in board["tests"]:
        outcome = test["outcome"]
        parts.append(f"<tr><td>{html.escape(test['name'])}</td><td class='{outcome}'>{outcome}</td>"
                     f"<td>{test['duration_s']:.2f} s</td><td>{html.escape(test['message'] or '')}</td></tr>")
    parts.append("</table>")
    rows = _figures(board)
    if rows:
        parts.append("<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                                         for k, v in rows) + "</table>")
    metrics = board["metrics"]
    plots = []
    if isinstance(metrics.get("latency"), dict):
        plots.append(_latency_plot(metrics["latency"], board["name"]))
    if isinstance(metrics.get("confusion"), list):
        plots.append(_confusion_plot(metrics["confusion"], board["name"]))
    if isinstance(metrics.get("ble_stream"), dict):
        plots.append(_timeline_plot(metrics["ble_stream"], board["name"]))
    parts.extend(plots)
    return "\n".join(parts)


def render_html(report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    boards = "\n".join(_board_section(board) for board in report["boards"])
    verdict = "passed" if report["passed"] else "failed"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>wedge HIL report</title>"
            f"<style>{_STYLE}</style></head><body><h1>wedge HIL report: <span class='{verdict}'>{verdict}</span></h1>"
            f"<p>model {html.escape(report['model'])} · eval {html.escape(str(report['eval']))} · "
            f"{len(report['boards'])} board(s) · {report['wall_s']:.1f} s</p>"
            f"<p class='note'>{html.escape(report['latency_note'])}</p>{boards}</body></html>")
