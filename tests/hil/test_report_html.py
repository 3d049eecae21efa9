"""The HIL page from a run's record: latency shown only where it varies, class names on the confusion matrix."""

from __future__ import annotations

from typing import Any

from tests.html_page import read_page
from wedge.hil.report.html import render_html


def _run(per_repeat_us: list[float], labels: list[str]) -> dict[str, Any]:
    latency = {"repeats": len(per_repeat_us), "runs": 10, "warmup_runs": 2, "median_us": sorted(per_repeat_us)[2],
               "min_us": min(per_repeat_us), "max_us": max(per_repeat_us), "throughput_ips": 337.0,
               "per_repeat_us": per_repeat_us, "source": "device timer (m-lap-us)", "host_wall_median_us": None}
    board = {"name": "desk-ring", "profile": "ring-nrf5340", "port": "/dev/ttyACM0", "wall_s": 3.0, "exit_code": 0,
             "problem": None, "summary": {"passed": 2, "failed": 0, "error": 0, "skipped": 0},
             "tests": [{"name": "test_latency_median_over_repeated_runs", "title": "Latency: median of repeated runs",
                        "outcome": "passed", "message": None, "duration_s": 0.2, "properties": {}}],
             "metrics": {"latency": latency, "confusion": [[5, 1], [0, 6]]}}
    return {"model": "/m/ppg.tflite", "eval": "/m/eval.npz", "suites": ["latency"], "wall_s": 3.1, "passed": True,
            "labels": labels, "boards": [board], "latency_note": "note"}


def test_identical_repeats_get_a_sentence_not_a_histogram() -> None:
    page = read_page(render_html(_run([2965.9] * 5, ["good", "no contact"])))
    assert "Every one of the 5 repeats took 2,965.9 µs" in page.text and "nothing varies" in page.text
    assert not any(t and t[0] and t[0][0] == "repeat" for t in page.tables)
    assert page.sections == ["board-desk-ring"]  # one board: no side-by-side table
    matrix = next(t for t in page.tables if t and t[0][0].startswith("label"))
    assert matrix[0][1:] == ["good", "no contact"] and [r[0] for r in matrix[1:]] == ["good", "no contact"]
    assert "Latency: median of repeated runs" in page.text


def test_repeats_that_vary_are_drawn_one_bar_each() -> None:
    page = read_page(render_html(_run([2900.0, 3100.0, 2950.0, 3300.0, 2990.0], [])))
    repeats = page.table_with("repeat")
    assert len(repeats) == 6 and "+10.4% vs the median" in repeats[4][1]
    matrix = next(t for t in page.tables if t and t[0][0].startswith("label"))
    assert matrix[0][1:] == ["0", "1"]  # no names known: the indices
