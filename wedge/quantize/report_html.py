"""Building blocks of wedge's HTML report pages: the page and its style, tables, bars and confusion matrices.

Plain HTML and CSS, no script and no images: a page opens anywhere, attaches to a CI run as one file, and a
test can read every number and class name in its DOM. Used by the quantize report and the HIL report.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Final

STYLE: Final = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--good:#1a7f37;--warn:#9a6700;--bad:#cf222e;
--blue:9,105,218;--red:207,34,46}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;background:#fff}
main{max-width:1120px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:36px 0 10px;padding-bottom:4px;
border-bottom:1px solid var(--line)}h3{font-size:1em;margin:16px 0 6px}
p{margin:6px 0}.muted,.note{color:var(--muted)}.note{font-size:.88em}
code{font:.9em ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--soft);padding:1px 4px;border-radius:4px}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}
th,td{border:1px solid var(--line);padding:5px 9px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:var(--soft)}tr.chosen td{background:#ddf4ff}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.card .label{color:var(--muted);font-size:.82em;text-transform:uppercase;letter-spacing:.03em}
.card .value{font-size:1.35em;font-weight:600;margin:2px 0}.card .detail{color:var(--muted);font-size:.85em}
.good{color:var(--good)}.warn{color:var(--warn)}.bad{color:var(--bad)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;font-weight:600;color:#fff}
.badge.good{background:var(--good);color:#fff}.badge.warn{background:var(--warn);color:#fff}
.badge.bad{background:var(--bad);color:#fff}
.bar{position:relative;height:16px;min-width:220px;background:var(--soft);border-radius:3px}
.bar span{position:absolute;left:0;top:0;bottom:0;border-radius:3px}
.bar span.good{background:#4ac26b}.bar span.warn{background:#d4a72c}.bar span.bad{background:#fa4549}
.confusion td{text-align:center;min-width:40px;font-variant-numeric:tabular-nums;font-weight:600}
.confusion th[scope=col]{text-align:center}.confusion td.zero{color:#afb8c1;font-weight:400}
.confusion th.row{text-align:right}.confusion .corner{background:#fff;border:none;color:var(--muted);
font-size:.82em;font-weight:400;text-align:right;vertical-align:bottom}
.confusion caption{caption-side:top;text-align:left;font-weight:600;padding-bottom:4px}
.side{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}
ul.notes{padding-left:20px;color:var(--muted);font-size:.9em}
section{overflow-x:auto}
@media (max-width:700px){main{padding:16px}.bar{min-width:120px}}
"""


def esc(value: object) -> str:
    """Text for HTML, escaped; bytes of a non-UTF-8 file name (surrogates in a str) show as U+FFFD."""
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return html.escape(text)


def page(title: str, body: str) -> str:
    """A whole HTML document."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body><main>{body}</main></body></html>")


def section(title: str, body: str, ident: str) -> str:
    return f"<section id='{esc(ident)}'><h2>{esc(title)}</h2>{body}</section>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = (),
          row_classes: Sequence[str] = (), caption: str = "") -> str:
    """A table; cells are HTML already (escape text with `esc`), columns in `numeric` align right."""
    def cell(tag: str, index: int, content: str) -> str:
        css = " class='num'" if index in numeric else ""
        return f"<{tag}{css}>{content}</{tag}>"

    head = "".join(cell("th", i, esc(h)) for i, h in enumerate(headers))
    body = []
    for index, row in enumerate(rows):
        css = row_classes[index] if index < len(row_classes) and row_classes[index] else ""
        body.append(f"<tr{f' class={chr(39)}{css}{chr(39)}' if css else ''}>"
                    + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>")
    return (f"<table>{f'<caption>{esc(caption)}</caption>' if caption else ''}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def card(label: str, value: str, detail: str = "", tone: str = "") -> str:
    """A summary figure: a label, a big value (HTML) and a line of detail (HTML)."""
    css = f" {tone}" if tone else ""
    return (f"<div class='card'><div class='label'>{esc(label)}</div><div class='value{css}'>{value}</div>"
            f"<div class='detail'>{detail}</div></div>")


def bar(fraction: float, tone: str, text: str) -> str:
    """A horizontal bar filled to `fraction` (0..1) with `text` (escaped) beside it."""
    width = max(0.0, min(1.0, fraction)) * 100
    return (f"<div style='display:flex;gap:8px;align-items:center'><div class='bar' role='img' "
            f"aria-label='{esc(text)}'><span class='{tone}' style='width:{width:.1f}%'></span></div>"
            f"<span style='white-space:nowrap'>{esc(text)}</span></div>")


def confusion_matrix(matrix: Sequence[Sequence[int]], name: Callable[[int], str], caption: str,
                     rows_are: str, columns_are: str) -> str:
    """A confusion matrix with class names on both axes and each cell's count written in it.

    Cells are shaded by their share of the row (blue on the diagonal, red off it), and the text turns white on
    dark cells so every count stays readable.
    """
    classes = len(matrix)
    head = (f"<tr><th class='corner'>{esc(rows_are)} ↓ · {esc(columns_are)} →</th>"
            + "".join(f"<th scope='col'>{esc(name(c))}</th>" for c in range(classes)) + "</tr>")
    rows = []
    for r, values in enumerate(matrix):
        total = sum(values)
        cells = []
        for c, count in enumerate(values):
            share = count / total if total else 0.0
            color = "var(--blue)" if r == c else "var(--red)"
            ink = "#fff" if share > 0.5 else "var(--ink)"
            alpha = 0.08 + 0.85 * share if count else 0.0
            style = f" style='background:rgba({color},{alpha:.2f});color:{ink}'" if count else " class='zero'"
            cells.append(f"<td title='{esc(name(r))} → {esc(name(c))}: {count}'{style}>{count}</td>")
        rows.append(f"<tr><th scope='row' class='row'>{esc(name(r))}</th>{''.join(cells)}</tr>")
    return f"<table class='confusion'><caption>{esc(caption)}</caption>{head}{''.join(rows)}</table>"


def tone_for(ok: bool | None) -> str:
    return "" if ok is None else ("good" if ok else "bad")


def badge(text: str, tone: str) -> str:
    return f"<span class='badge {tone}'>{esc(text)}</span>"
