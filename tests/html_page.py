"""Reading a report page as a browser's DOM would: section ids, table cells and text, with html.parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Page:
    """What a user sees on a page: its sections by id, every table as rows of cell text, and all its text."""

    sections: list[str] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)
    text: str = ""
    images: int = 0

    def table_with(self, header: str) -> list[list[str]]:
        """The first table whose first row has `header` among its cells."""
        return next(t for t in self.tables if t and header in t[0])


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._stack: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        if tag == "section":
            self.page.sections.append(dict(attrs).get("id") or "")
        if tag == "img":
            self.page.images += 1
        if tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._stack[-1].append([])
        elif tag in ("td", "th") and self._stack:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1
        if tag in ("td", "th") and self._cell is not None and self._stack and self._stack[-1]:
            self._stack[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._stack:
            self.page.tables.append(self._stack.pop())

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def close(self) -> None:
        super().close()
        self.page.text = " ".join("".join(self._text).split())


def read_page(html_text: str) -> Page:
    reader = _Reader()
    reader.feed(html_text)
    reader.close()
    assert html_text.lstrip().lower().startswith("<!doctype html>")
    return reader.page
