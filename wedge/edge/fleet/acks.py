"""Acknowledge a broker's messages only once the fleet's durable sinks hold what they carried.

paho-mqtt acknowledges a QoS 1/2 message as soon as it is delivered; a fleet killed before its SQLite commit then
loses records the broker will never send again. With manual acks (paho's `manual_ack_set`, reached through
aiomqtt's client as aiomqtt issue #345 describes until aiomqtt exposes it), each message is acknowledged, in the
order it came (MQTT 3.1.1 4.6.0-2), when every durable sink has written everything put before it. Messages of a
connection that drops are never acknowledged: with the persistent session the broker sends them again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt

from wedge.edge.bridge.sink_runner import SinkRunner


@dataclass(frozen=True)
class _Waiting:
    mid: int
    qos: int
    marks: tuple[tuple[int, int], ...]  # one per durable runner


def enable_manual_acks(client: aiomqtt.Client) -> None:
    """Before connecting: the application acknowledges each message itself."""
    client._client.manual_ack_set(True)


class DurableAcks:
    """The acknowledgements of one connection, sent as the durable runners catch up."""

    def __init__(self, client: aiomqtt.Client, runners: Sequence[SinkRunner]) -> None:
        self._paho: Any = client._client
        self._runners = [r for r in runners if r.sink.durable]
        self._waiting: deque[_Waiting] = deque()
        self._wake = asyncio.Event()
        self.sent = 0

    def handled(self, message: aiomqtt.Message) -> None:
        """`message` was handled (its records put into the runners): acknowledge it once they are written."""
        if message.qos == 0:
            return
        self._waiting.append(_Waiting(message.mid, message.qos, tuple(r.mark() for r in self._runners)))
        self._wake.set()

    def _send_ready(self) -> None:
        while self._waiting and all(r.reached(m) for r, m in zip(self._runners, self._waiting[0].marks, strict=True)):
            head = self._waiting.popleft()
            self._paho.ack(head.mid, head.qos)
            self.sent += 1

    async def run(self) -> None:
        """Send acknowledgements until cancelled (with the connection)."""
        for runner in self._runners:
            runner.listen(self._wake)
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self._send_ready()
        finally:
            for runner in self._runners:
                runner.unlisten(self._wake)
