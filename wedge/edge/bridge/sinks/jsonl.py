"""The JSON lines sink: one JSON object per record, to stdout (`jsonl:-`) or appended to a file.

Not durable: the daemon does not resume from it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.stream_record import StreamRecord


class JsonLinesSink:
    durable = False

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.name = "jsonl:-" if path is None else f"jsonl:{path}"
        self._out: TextIO | None = None

    async def open(self) -> None:
        if self.path is None:
            self._out = sys.stdout
            return
        try:
            self._out = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot open {self.path} for JSON lines: {exc.strerror}") from exc

    async def write(self, batch: Sequence[StreamRecord]) -> None:
        assert self._out is not None
        try:
            self._out.write("".join(r.to_json() + "\n" for r in batch))
            self._out.flush()
        except OSError as exc:
            raise SinkError(f"{self.name}: {exc.strerror}") from exc

    async def resume_after(self, device: str) -> int | None:
        return None

    async def close(self) -> None:
        if self._out is not None and self.path is not None:
            self._out.close()
        self._out = None
