"""The JSON lines sink: one JSON object per record, to stdout (`jsonl:-`) or appended to a file.

Each line has a `kind`: a record (`wedge`, `heart_rate`, keyed by device, epoch and seq, with the SQLite sink's
column names), `model` (what a model id names: name, version, labels, unit; written before the first record of
that model), or `lost` (a range of records the device produced and no longer holds). Not durable: the daemon
does not resume from it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from wedge.edge.bridge.coverage import Coverage
from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.stream_record import LostRange, StreamRecord, model_dict
from wedge.firmware.protocol.ble_control import EpochSpan
from wedge.firmware.protocol.ble_model_info import ModelInfo


class JsonLinesSink:
    durable = False

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.name = "jsonl:-" if path is None else f"jsonl:{path}"
        self._out: TextIO | None = None
        self._models: dict[int, ModelInfo] = {}  # described in a `model` line already

    async def open(self) -> None:
        if self.path is None:
            self._out = sys.stdout
            return
        try:
            self._out = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot open {self.path} for JSON lines: {exc.strerror}") from exc

    def _lines(self, lines: str) -> None:
        assert self._out is not None
        try:
            self._out.write(lines)
            self._out.flush()
        except OSError as exc:
            raise SinkError(f"{self.name}: {exc.strerror}") from exc

    async def write(self, batch: Sequence[StreamRecord]) -> None:
        lines = []
        described = dict(self._models)
        for r in batch:
            if r.model is not None and described.get(r.model.model_id) != r.model:
                described[r.model.model_id] = r.model
                lines.append(json.dumps(model_dict(r.model), separators=(",", ":"), ensure_ascii=False))
            lines.append(r.to_json())
        self._lines("".join(line + "\n" for line in lines))
        self._models = described

    async def note_lost(self, ranges: Sequence[LostRange]) -> None:
        self._lines("".join(r.to_json() + "\n" for r in ranges))

    async def coverage(self, device: str, windows: Sequence[EpochSpan]) -> Coverage:
        return Coverage()

    async def close(self) -> None:
        if self._out is not None and self.path is not None:
            self._out.close()
        self._out = None
