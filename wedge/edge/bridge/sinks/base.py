"""The sink interface and its spec parser: `sqlite:PATH`, `jsonl:-` / `jsonl:PATH`, `ws://HOST:PORT`.

A sink is an object given to the daemon; each one runs behind its own queue, so a slow or broken sink
never holds up the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from wedge.edge.bridge.coverage import Coverage
from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.sinks.jsonl import JsonLinesSink
from wedge.edge.bridge.sinks.sqlite import SqliteSink
from wedge.edge.bridge.sinks.websocket import DEFAULT_KEEPALIVE_S, WebSocketSink, parse_ws_address
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.firmware.protocol.ble_control import EpochSpan


@runtime_checkable
class Sink(Protocol):
    """Where records go. A durable sink answers `coverage(device, windows)`: which numbers of each epoch window
    (what the device still buffers) it holds, so a restarted bridge asks the device for exactly the rest; a
    sink that keeps nothing answers an empty Coverage. `note_lost` hears of records no sink will ever get."""

    name: str
    durable: bool

    async def open(self) -> None: ...

    async def write(self, batch: Sequence[StreamRecord]) -> None: ...

    async def note_lost(self, ranges: Sequence[LostRange]) -> None: ...

    async def coverage(self, device: str, windows: Sequence[EpochSpan]) -> Coverage: ...

    async def close(self) -> None: ...


@runtime_checkable
class StatusListener(Protocol):
    """A sink that also shows the bridge's state (the live page): `note_status` gets `BridgeStatus.to_dict()`
    about once a second."""

    def note_status(self, status: dict[str, Any]) -> None: ...


def parse_sink(spec: str, *, ws_token: str | None = None, ws_keepalive_s: float = DEFAULT_KEEPALIVE_S) -> Sink:
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
        return WebSocketSink(host, port, token=ws_token, keepalive_s=ws_keepalive_s)
    raise SinkError(f"unknown sink {spec!r}: expected sqlite:PATH, jsonl:-|PATH or ws://HOST:PORT")


