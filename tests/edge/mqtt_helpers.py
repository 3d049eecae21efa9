"""Shared by the MQTT tests: a plain subscriber (aiomqtt, in the test's event loop) keeping every message under a
prefix in arrival order, waitable, to check what a bridge put on the wire; records to publish; an MQTT sink."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from wedge.edge.bridge.sinks.base import parse_sinks
from wedge.edge.bridge.sinks.mqtt import MqttSink
from wedge.edge.bridge.sinks.mqtt_address import parse_mqtt_url
from wedge.edge.bridge.stream_record import StreamRecord

DEVICE = "00c0ffee00000001"


def records(seqs: range, device: str = DEVICE, epoch: int = 3) -> list[StreamRecord]:
    now_us = time.time_ns() // 1000
    return [StreamRecord(device, epoch, seq, 1_000 * seq, now_us, "wedge", 0xABCD1234, (0.25, 0.75),
                         {"outputs": [{"dtype": "int8", "raw": [1, 2], "scale": 0.5, "zero_point": 0}]},
                         name="ring-a") for seq in seqs]


def mqtt_sink(url: str, db: Path) -> MqttSink:
    """The MQTT sink `wedge bridge --sink URL --sink sqlite:DB` builds."""
    (sink,) = parse_sinks([url, f"sqlite:{db}"])
    assert isinstance(sink, MqttSink)
    return sink


@dataclass
class Message:
    topic: str
    payload: Any
    retain: bool
    size_bytes: int


@dataclass
class Listener:
    url: str
    client_id: str = "test-listener"
    clean_session: bool = True
    messages: list[Message] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _client: aiomqtt.Client | None = None

    async def __aenter__(self) -> Listener:
        address = parse_mqtt_url(self.url)
        self._client = address.client(self.client_id, clean_session=self.clean_session)
        await self._client.__aenter__()
        await self._client.subscribe(f"{address.prefix}/#", qos=2)
        self._task = asyncio.create_task(self._collect(self._client))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None and self._client is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await self._task
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def _collect(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            raw = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            self.messages.append(Message(str(message.topic), json.loads(raw) if raw else None, message.retain,
                                         len(raw)))
            self._changed.set()

    def on(self, leaf: str) -> list[Message]:
        return [m for m in self.messages if m.topic.endswith("/" + leaf)]

    def records(self) -> list[dict[str, Any]]:
        return [r for m in self.on("records") for r in m.payload["records"]]

    def keys(self) -> list[tuple[str, int, int]]:
        return [(r["device"], r["epoch"], r["seq"]) for r in self.records()]

    async def wait_for(self, predicate: Callable[[Listener], bool], timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()
