"""The virtual board's SMP GATT service: Zephyr's smp_bt transport (one characteristic, write without response
in, notifications out, MTU-sized fragments), paced by the link model's connection events.

`SmpGattService` is added to the board's GATT database while a model runs (BleDevice); `SmpPeripheral` is the
board on the air when no model runs: advertising its name and the SMP service, nothing else, as smp_svr does.
Requests go to the board's SMP server (`handler`), the same one its UART serves. With security on, the
characteristic and its CCCD carry smp_bt.c's SMP_GATT_PERM (CONFIG_MCUMGR_TRANSPORT_BT_PERM_RW_ENCRYPT or _AUTHEN):
an unencrypted write without response is dropped, as Zephyr drops it, and a subscription gets the ATT error.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bumble import gatt
from bumble.att import AttributeValue
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.transport import open_transport

from wedge.errors import first_line
from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.protocol.smp_ble import SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID, SmpReassembler, fragments
from wedge.firmware.virtual.ble.advertising import ADVERTISING_INTERVAL_MS, Advertiser
from wedge.firmware.virtual.ble.gatt_security import (
    Access,
    AccessGuard,
    CccdValue,
    GuardedCharacteristic,
    add_guarded_cccd,
)
from wedge.firmware.virtual.ble.link_model import ConnectionEvents, LinkModel
from wedge.firmware.virtual.ble.security import RingSecurity

SmpHandler = Callable[[bytes], bytes | None]
Properties = gatt.Characteristic.Properties

logger = logging.getLogger(__name__)


class _Link:
    """One connection's SMP traffic: fragments in and out, moved in connection events."""

    def __init__(self, service: SmpGattService, connection: Connection) -> None:
        self.service = service
        self.connection = connection
        self.rx: collections.deque[bytes] = collections.deque()
        self.tx: collections.deque[bytes] = collections.deque()
        self.reassembler = SmpReassembler()
        self.wake = asyncio.Event()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        events = ConnectionEvents(self.service.link)
        loop = asyncio.get_running_loop()
        interval_s = self.service.link.conn_interval_ms / 1000.0
        while True:
            if not (self.rx or self.tx):
                self.wake.clear()
                await self.wake.wait()
            budget = await events.next_event()
            event_end = loop.time() + interval_s
            # One connection event carries `budget` link-layer packets, whichever way they go; data that arrives
            # while the event is still open (the central answering a notification) goes in the same event, as the
            # more-data bit keeps a real event open. The packets' air time is what caps `budget` per interval.
            while budget > 0:
                if not (self.rx or self.tx):
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), max(0.0, event_end - loop.time()))
                    except TimeoutError:
                        break
                    continue
                if self.rx:
                    for message in self.reassembler.feed(self.rx.popleft()):
                        self._answer(message)
                else:
                    await self.service.notify(self.connection, self.tx.popleft())
                budget -= 1

    def _answer(self, message: bytes) -> None:
        reply = self.service.handler(message)
        if reply is not None:
            self.tx.extend(fragments(reply, self.connection.att_mtu))

    def close(self) -> None:
        self.task.cancel()


def smp_access(security: RingSecurity) -> Access:
    """SMP_GATT_PERM: what the SMP characteristic and its CCCD need under the board's security settings."""
    if not security.settings.required:
        return Access.OPEN
    return Access.AUTHENTICATE if security.settings.smp_permission == "authenticate" else Access.ENCRYPT


class SmpGattService:
    """The SMP service (8D53DC1D-...) and its characteristic (DA2E7828-...), for one Bumble device."""

    def __init__(self, handler: SmpHandler, link: LinkModel, guard: AccessGuard, access: Access,
                 cccd_value: CccdValue) -> None:
        self.handler = handler
        self.link = link
        self._device: Device | None = None
        self._links: dict[Connection, _Link] = {}
        # Write-only, as smp_bt.c's `SMP_GATT_PERM & SMP_GATT_PERM_WRITE_MASK`; the CCCD takes the whole of it.
        self.characteristic = GuardedCharacteristic(
            SMP_CHARACTERISTIC_UUID, Properties.WRITE_WITHOUT_RESPONSE | Properties.NOTIFY,
            AttributeValue(write=self._on_write), guard, write=access)
        add_guarded_cccd(self.characteristic, guard, access, cccd_value)
        self.service = gatt.Service(UUID(SMP_SERVICE_UUID), [self.characteristic])

    def attach(self, device: Device) -> None:
        self._device = device
        device.on("connection", self._on_connection)

    def _on_connection(self, connection: Connection) -> None:
        connection.on("disconnection", lambda _reason: self._drop(connection))

    def _on_write(self, connection: Connection, value: bytes) -> None:
        link = self._links.get(connection)
        if link is None:
            link = self._links[connection] = _Link(self, connection)
        link.rx.append(bytes(value))
        link.wake.set()

    async def notify(self, connection: Connection, value: bytes) -> None:
        if self._device is not None:
            with contextlib.suppress(Exception):  # the central went away: its link is dropped next
                await self._device.notify_subscriber(connection, self.characteristic, value)

    def _drop(self, connection: Connection) -> None:
        link = self._links.pop(connection, None)
        if link is not None:
            link.close()

    def close(self) -> None:
        for link in self._links.values():
            link.close()
        self._links.clear()


class SmpPeripheral:
    """The board on the air with only its SMP service (no model runs, so nothing streams), under the same
    identity and bonds as when it streams (`security`)."""

    def __init__(self, name: str, transport_spec: str, handler: SmpHandler, link: LinkModel,
                 security: RingSecurity) -> None:
        self.name = name
        self.transport_spec = transport_spec
        self.handler = handler
        self.security = security
        self.link = link
        self.smp: SmpGattService | None = None
        self._transport: Any = None
        self._device: Device | None = None
        self._advertiser: Advertiser | None = None

    @property
    def address(self) -> str:
        return str(self._advertiser.address if self._advertiser is not None else self.security.identity)

    async def disconnect_all(self) -> int:
        connections = list(self._device.connections.values()) if self._device is not None else []
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.disconnect()
        return len(connections)

    async def start(self) -> None:
        try:
            self._transport = await open_transport(self.transport_spec)
        except Exception as exc:
            raise VirtualBoardError(f"cannot open the BLE transport {self.transport_spec}: {first_line(exc)}") from exc
        device = Device.with_hci(self.name, self.security.identity, self._transport.source, self._transport.sink)
        device.gatt_server.max_mtu = self.link.att_mtu
        self.security.attach(device)
        self.smp = SmpGattService(self.handler, self.link, self.security, smp_access(self.security),
                                  device.gatt_server.make_descriptor_value)
        device.add_service(self.smp.service)
        self.smp.attach(device)
        self._device = device
        self._advertiser = Advertiser(
            device, self.security,
            bytes(AdvertisingData([
                (AdvertisingData.FLAGS, bytes([0x06])),
                (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()[:26]),
            ])),
            # smp_svr advertises the SMP service UUID (BT_DATA_UUID128_ALL); 18 bytes: the scan response.
            bytes(AdvertisingData([
                (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, bytes(UUID(SMP_SERVICE_UUID))),
            ])),
            ADVERTISING_INTERVAL_MS)
        try:
            await device.power_on()
            await self._advertiser.start()
        except Exception as exc:
            await self.close()
            raise VirtualBoardError(f"the BLE controller at {self.transport_spec} did not start: {first_line(exc)}") from exc

    async def close(self) -> None:
        if self._advertiser is not None:
            await self._advertiser.stop()
        if self.smp is not None:
            self.smp.close()
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()
            self._transport = None
