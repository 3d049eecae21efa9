"""The link model: when a BLE peripheral may send, so the virtual board's throughput and latency are a radio's.

Bumble's virtual controller delivers packets at once. A real link only moves data in connection events, one
every connection interval, each carrying a few packets of at most ATT_MTU - 3 bytes of notification payload.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from wedge.ble_spec import notification_payload_bytes
from wedge.boards import Board

# Packets one connection event carries. Controllers differ (the central decides how long an event lasts);
# 6 is what an nRF52840 peripheral sustains with the Data Length Extension on a 7.5-30 ms interval, and a
# conservative figure for phones.
DEFAULT_PACKETS_PER_EVENT: Final[int] = 6
DEFAULT_CONN_INTERVAL_MS: Final[float] = 30.0
DEFAULT_ATT_MTU: Final[int] = 247


@dataclass(frozen=True)
class LinkModel:
    """Connection interval, packets per connection event, and the ATT MTU the peripheral offers.

    `enabled=False` sends at once (the raw speed of the virtual controller, for comparison).
    """

    conn_interval_ms: float = DEFAULT_CONN_INTERVAL_MS
    packets_per_event: int = DEFAULT_PACKETS_PER_EVENT
    att_mtu: int = DEFAULT_ATT_MTU
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.conn_interval_ms < 7.5 or self.conn_interval_ms > 4000.0:
            raise ValueError(f"connection interval must be 7.5..4000 ms (Core Spec), got {self.conn_interval_ms}")
        if self.packets_per_event < 1:
            raise ValueError(f"packets per event must be >= 1, got {self.packets_per_event}")

    @classmethod
    def for_board(cls, board: Board, *, enabled: bool = True, packets_per_event: int | None = None) -> LinkModel:
        ble = board.ble
        return cls(
            conn_interval_ms=ble.conn_interval_ms if ble else DEFAULT_CONN_INTERVAL_MS,
            packets_per_event=packets_per_event or DEFAULT_PACKETS_PER_EVENT,
            att_mtu=ble.att_mtu if ble else DEFAULT_ATT_MTU,
            enabled=enabled,
        )

    @property
    def max_payload_bytes_per_s(self) -> float:
        """The notification payload the link moves per second at the full MTU."""
        return notification_payload_bytes(self.att_mtu) * self.packets_per_event * 1000.0 / self.conn_interval_ms


class ConnectionEvents:
    """The connection events of one link, anchored when the link came up."""

    def __init__(self, model: LinkModel) -> None:
        self.model = model
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._anchor = loop.time()

    async def next_event(self) -> int:
        """Wait for the next connection event; returns how many packets it may carry."""
        if not self.model.enabled:
            # Still yield, so a sender never starves the event loop.
            await asyncio.sleep(0)
            return self.model.packets_per_event
        interval_s = self.model.conn_interval_ms / 1000.0
        elapsed = self._loop.time() - self._anchor
        next_at = self._anchor + (int(elapsed / interval_s) + 1) * interval_s
        # Radio timing is what this models: the wait stands for the time until the next event on air.
        await asyncio.sleep(max(next_at - self._loop.time(), 0.0))
        return self.model.packets_per_event
