"""The bench's reports: `report.json` (everything), `junit.xml` (all boards, for CI) and `report.html` (plots).

`write_reports(run, folder)` writes the three and returns the run with their paths.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from wedge.hil.report.html import render_html
from wedge.hil.report.junit import merge_junit
from wedge.hil.results import BenchRun


def write_reports(run: BenchRun, folder: Path) -> BenchRun:
    folder.mkdir(parents=True, exist_ok=True)
    data = run.to_dict()
    files = {"json": folder / "report.json", "junit": folder / "junit.xml", "html": folder / "report.html"}
    files["json"].write_text(json.dumps(data, indent=2, default=str))
    merge_junit([b.junit_path for b in run.boards if b.junit_path is not None],
                [(b.board.name, b.problem) for b in run.boards if b.problem], files["junit"])
    files["html"].write_text(render_html(data))
    return replace(run, files=files)
