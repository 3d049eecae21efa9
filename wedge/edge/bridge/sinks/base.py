"""The sink interface and its spec parser: `sqlite:PATH`, `jsonl:-` / `jsonl:PATH`, `ws://HOST:PORT`.

A sink is an object given to the daemon; each one runs behind its own queue, so a slow or broken sink
never holds up the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.sinks.jsonl import JsonLinesSink
from wedge.edge.bridge.sinks.sqlite import SqliteSink
from wedge.edge.bridge.sinks.websocket import WebSocketSink, parse_ws_address
from wedge.edge.bridge.stream_record import StreamRecord


@runtime_checkable
class Sink(Protocol):
    """Where records go. A durable sink answers `resume_after(device)`: the number up to which it holds every
    record of the device (None: nothing stored), so a restarted bridge asks the device for the rest."""

    name: str
    durable: bool

    async def open(self) -> None: ...

    async def write(self, batch: Sequence[StreamRecord]) -> None: ...

    async def resume_after(self, device: str) -> int | None: ...

    async def close(self) -> None: ...


def parse_sink(spec: str, *, ws_token: str | None = None) -> Sink:
    """A sink from its spec; SinkError for an unknown kind or a bad address."""
    if spec.startswith("sqlite:"):
        path = spec[len("sqlite:"):]
        if not path:
            raise SinkError("sqlite sink needs a file: sqlite:stream.db")
        return SqliteSink(Path(path))
    if spec.startswith("jsonl:"):
        target = spec[len("jsonl:"):]
        if not target:
            raise SinkError("jsonl sink needs a file or '-' for stdout: jsonl:-")
        return JsonLinesSink(None if target == "-" else Path(target))
    if spec.startswith("ws://"):
        host, port = parse_ws_address(spec)
        return WebSocketSink(host, port, token=ws_token)
    raise SinkError(f"unknown sink {spec!r}: expected sqlite:PATH, jsonl:-|PATH or ws://HOST:PORT")


