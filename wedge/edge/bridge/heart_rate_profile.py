"""The standard Heart Rate profile (`--profile heart-rate`): any chest strap, watch or ring with service 0x180D.

The standard measurement has no sequence number: the bridge numbers what it receives, continuing after the
last number stored for the device, so records from several sessions never collide.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from bleak import BleakClient
from bleak.exc import BleakError

from wedge.edge.bridge.session import Link
from wedge.edge.bridge.stream_record import StreamRecord
from wedge.edge.bridge.wedge_profile import read_key, subscribe_battery
from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.protocol.ble_control import EpochSpan
from wedge.firmware.protocol.ble_errors import MalformedPacket
from wedge.firmware.protocol.ble_records import NO_EPOCH
from wedge.firmware.protocol.heart_rate import decode_heart_rate

# Heart rate monitors notify about once a second (Heart Rate Service 1.0 leaves it to the device).
EXPECTED_PERIOD_S: Final[float] = 1.0

logger = logging.getLogger(__name__)


class HeartRateProfile:
    name = "heart-rate"

    def __init__(self) -> None:
        self._next_seq: int | None = None
        self._key: str | None = None

    def expected_period_s(self) -> float:
        return EXPECTED_PERIOD_S

    async def attach(self, client: BleakClient, link: Link) -> None:
        if client.services.get_characteristic(ids.HEART_RATE_MEASUREMENT) is None:
            raise BleakError(f"{client.address} has no Heart Rate Measurement characteristic")
        # A wedge ring streams both profiles: its heart rate numbers must not collide with its records' numbers.
        key = f"{await read_key(client)}/heart-rate"
        self._key = link.stats.key = key
        if self._next_seq is None:
            # Epoch 0 (the bridge numbers these): an empty window asks only for the newest number stored.
            stored = await link.coverage(key, [EpochSpan(NO_EPOCH, 0, 0)])
            self._next_seq = stored.epoch(NO_EPOCH).newest or 0
        await client.start_notify(ids.HEART_RATE_MEASUREMENT, lambda _c, data: self._on_measurement(data, link))
        await subscribe_battery(client, link)

    def _on_measurement(self, data: bytearray, link: Link) -> None:
        link.frame_seen()
        try:
            measurement = decode_heart_rate(data)
        except MalformedPacket as exc:
            link.stats.malformed += 1
            logger.info("%s: malformed heart rate measurement: %s", self._key, exc)
            return
        assert self._next_seq is not None and self._key is not None
        record = StreamRecord.from_heart_rate(self._key, self._next_seq, measurement, time.time_ns() // 1000,
                                              link.stats.name)
        self._next_seq += 1
        link.stats.records += 1
        link.emit([record])

    def drain(self, link: Link) -> None:
        """Nothing is held: each measurement goes to the sinks as it arrives."""

    async def maintain(self, client: BleakClient, link: Link) -> None:
        """Nothing to keep up: the standard measurement has no sequence, so no gap to ask for."""
