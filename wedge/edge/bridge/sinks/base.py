"""The sink interface and its spec parser: `sqlite:PATH`, `jsonl:-` / `jsonl:PATH`, `ws://HOST:PORT`,
`mqtt://HOST:PORT/PREFIX` (and `mqtts://`).

A sink is an object given to the daemon; each one runs behind its own queue, so a slow or broken sink
never holds up the others. An MQTT sink forwards from an SQLite sink (its outbox), which `parse_sinks` pairs
it with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from wedge.edge.bridge.coverage import Coverage
from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.sinks.jsonl import JsonLinesSink
from wedge.edge.bridge.sinks.sqlite import SqliteSink
from wedge.edge.bridge.sinks.websocket import DEFAULT_KEEPALIVE_S, WebSocketSink, parse_ws_address
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.firmware.protocol.ble_control import EpochSpan

DEFAULT_SINK: Final[str] = "sqlite:stream.db"


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
class DeviceListener(Protocol):
    """A sink that shows the devices' state (the live page, a broker): about once a second it hears their
    snapshots, as in the bridge's status (link state, battery, RSSI, heart rate, reconnects, events)."""

    def note_devices(self, devices: Sequence[dict[str, Any]]) -> None: ...


@runtime_checkable
class RemoteSink(DeviceListener, Protocol):
    """A sink that forwards to a service of its own (a broker): it hears of the devices and says how it is doing,
    for the status line."""

    def state(self) -> dict[str, Any]: ...


def parse_sink(spec: str, *, ws_token: str | None = None, ws_keepalive_s: float = DEFAULT_KEEPALIVE_S) -> Sink:
    """A sink from its spec; SinkError for an unknown kind or a bad address. An MQTT sink alone keeps its outbox in
    the default database (`parse_sinks` gives it the SQLite sink of the same command line instead)."""
    if spec.startswith(("mqtt://", "mqtts://")):
        return _mqtt_sink(spec, SqliteSink(Path(DEFAULT_SINK.removeprefix("sqlite:"))))
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
    raise SinkError(f"unknown sink {spec!r}: expected sqlite:PATH, jsonl:-|PATH, ws://HOST:PORT or "
                    "mqtt[s]://HOST:PORT/PREFIX")


def _mqtt_sink(spec: str, store: SqliteSink) -> Sink:
    from wedge.edge.bridge.sinks.mqtt import MqttSink
    from wedge.edge.bridge.sinks.mqtt_address import parse_mqtt_url

    return MqttSink(parse_mqtt_url(spec), store)


def parse_sinks(specs: Sequence[str], *, ws_token: str | None = None,
                ws_keepalive_s: float = DEFAULT_KEEPALIVE_S) -> list[Sink]:
    """The sinks of a command line. An MQTT sink takes the SQLite sink given with it as its outbox (the first
    `sqlite:` one, else the default database): records are stored there, then published from there."""
    remote = [s for s in specs if s.startswith(("mqtt://", "mqtts://"))]
    if len(remote) > 1:
        raise SinkError("one mqtt:// sink per bridge: its SQLite outbox forwards to one broker")
    sinks = [parse_sink(s, ws_token=ws_token, ws_keepalive_s=ws_keepalive_s) for s in specs if s not in remote]
    if remote:
        store = next((s for s in sinks if isinstance(s, SqliteSink)), None)
        if store is None:
            store = SqliteSink(Path(DEFAULT_SINK.removeprefix("sqlite:")))
        else:
            sinks.remove(store)
        sinks.insert(0, _mqtt_sink(remote[0], store))
    return sinks


