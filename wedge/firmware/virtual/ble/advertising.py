"""Connectable advertising for the virtual board, under the address its Security Manager picks.

Unbonded, the board advertises its identity address; bonded, a resolvable private address made from its IRK,
a new one at every advertising start (boot, after each disconnection) and every `rpa_timeout_s` while idle, as
Zephyr rotates it (CONFIG_BT_RPA_TIMEOUT). The controller's random address and the advertising set's are set
together, so a central connecting to the advertised address reaches this board.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from bumble import hci
from bumble.device import Connection, Device

from wedge.firmware.virtual.ble.security import RingSecurity

# Zephyr's BT_GAP_ADV_FAST_INT_MIN_2 (100 ms), what its peripheral samples advertise with.
ADVERTISING_INTERVAL_MS: Final[float] = 100.0

RESTART_WAIT_S: Final[float] = 5.0

logger = logging.getLogger(__name__)


class Advertiser:
    """Keeps one Bumble device advertising `advertising_data` / `scan_response` until `stop`."""

    def __init__(self, device: Device, security: RingSecurity, advertising_data: bytes, scan_response: bytes,
                 interval_ms: float = ADVERTISING_INTERVAL_MS) -> None:
        self.device = device
        self.security = security
        self.advertising_data = advertising_data
        self.scan_response = scan_response
        self.interval_ms = interval_ms
        self.address: hci.Address = security.identity
        self._stopped = False
        self._rotation: asyncio.Task[None] | None = None
        self._restarts: set[asyncio.Task[None]] = set()
        device.on("connection", self._on_connection)

    async def start(self) -> None:
        await self._advertise()
        if self._rotation is None:
            self._rotation = asyncio.create_task(self._rotate(), name="rpa-rotation")

    async def _advertise(self) -> None:
        if self._stopped:
            return
        # With a central still connected the controller keeps its address (its link is addressed by it).
        address = self.device.random_address if self.device.connections else self.security.advertising_address()
        if address != self.device.random_address:
            await self.device.stop_advertising()
            await self.device.send_sync_command(hci.HCI_LE_Set_Random_Address_Command(random_address=address))
            self.device.random_address = address
        self.address = address
        await self.device.start_advertising(
            advertising_data=self.advertising_data, scan_response_data=self.scan_response,
            own_address_type=hci.OwnAddressType.RANDOM, auto_restart=False,
            advertising_interval_min=self.interval_ms, advertising_interval_max=self.interval_ms)

    def _on_connection(self, connection: Connection) -> None:
        connection.on("disconnection", lambda _reason: self._restart())

    def _restart(self) -> None:
        if self._stopped:
            return
        task = asyncio.create_task(self._advertise(), name="advertise")
        self._restarts.add(task)
        task.add_done_callback(self._restart_done)

    def _restart_done(self, task: asyncio.Task[None]) -> None:
        self._restarts.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("advertising did not restart: %s", task.exception())

    async def _rotate(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.security.settings.rpa_timeout_s)
            if self.security.private and not self.device.connections:
                with contextlib.suppress(Exception):  # a central connecting meanwhile: the next period will do
                    await self._advertise()

    async def stop(self) -> None:
        self._stopped = True
        if self._rotation is not None:
            self._rotation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rotation
        # A restart under way is let finish: Bumble's host cannot take a command cancelled mid-flight.
        if self._restarts:
            await asyncio.wait(list(self._restarts), timeout=RESTART_WAIT_S)
