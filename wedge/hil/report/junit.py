"""One JUnit XML for CI from the per-board files pytest wrote; a board whose worker failed gets an error case.

Each board's pytest run is one <testsuite> named after the board; they go under one <testsuites>. Every case gets
a `classname` (`<board>.<suite module>`: the suites live outside the worker's rootdir, so pytest leaves it empty),
so CI tools group the cases by board and suite; recorded properties are JSON (the plugin writes them so).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path


def merge_junit(paths: Sequence[Path], problems: Sequence[tuple[str, str | None]], out: Path) -> None:
    root = ET.Element("testsuites")
    for path in paths:
        try:
            tree = ET.parse(path)
        except ET.ParseError:
            continue
        top = tree.getroot()
        suites = [top] if top.tag == "testsuite" else list(top.iter("testsuite"))
        for suite in suites:
            for case in suite.iter("testcase"):
                if not case.get("classname"):
                    module = Path(case.get("file") or "").stem
                    case.set("classname", ".".join(part for part in (suite.get("name", ""), module) if part))
        root.extend(suites)
    for board, problem in problems:
        suite = ET.SubElement(root, "testsuite", name=board, tests="1", errors="1", failures="0", skipped="0")
        case = ET.SubElement(suite, "testcase", classname=f"{board}.bench", name="board_worker")
        ET.SubElement(case, "error", message=problem or "the board's worker failed")
    out.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
