"""The link model: notifications leave in connection events, a few packets each, as on a real BLE link."""

from __future__ import annotations

import asyncio

import pytest

from wedge.boards import load
from wedge.firmware.virtual.ble.link_model import ConnectionEvents, LinkModel


def test_a_board_s_link_uses_its_profile_interval_and_mtu() -> None:
    link = LinkModel.for_board(load("glasses-esp32s3"))
    assert (link.conn_interval_ms, link.att_mtu) == (15.0, 247)
    assert link.max_payload_bytes_per_s == pytest.approx(244 * 6 * 1000 / 15)


def test_events_come_once_per_connection_interval() -> None:
    async def five_events() -> float:
        events = ConnectionEvents(LinkModel(conn_interval_ms=20.0, packets_per_event=3))
        loop = asyncio.get_running_loop()
        start = loop.time()
        budgets = [await events.next_event() for _ in range(5)]
        assert budgets == [3] * 5
        return loop.time() - start

    assert asyncio.run(five_events()) >= 0.08


def test_without_the_link_model_events_do_not_wait() -> None:
    async def many_events() -> float:
        events = ConnectionEvents(LinkModel(enabled=False))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(200):
            await events.next_event()
        return loop.time() - start

    assert asyncio.run(many_events()) < 0.5


@pytest.mark.parametrize("interval_ms", [5.0, 5000.0])
def test_intervals_outside_the_spec_are_refused(interval_ms: float) -> None:
    with pytest.raises(ValueError):
        LinkModel(conn_interval_ms=interval_ms)
