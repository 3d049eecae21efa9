"""`wedge scan`: the BLE devices nearby, with name, RSSI and services, and whether each speaks the wedge stream,
the standard Heart Rate profile and SMP (mcumgr over BLE, for flashing).

What a device advertises is often a part of what it serves (31 bytes hold one 128-bit UUID and a name), so with
`gatt` each device is also connected to, briefly, and its GATT services listed: the answer is then what it has.
Any bleak backend: the platform's Bluetooth stack, or Bumble on a virtual air or a USB dongle (`BleStack`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Final

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from wedge.edge.bridge.discovery import BleStack, scan_failure
from wedge.errors import first_line
from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.protocol.smp_ble import SMP_SERVICE_UUID

SERVICE_NAMES: Final[dict[str, str]] = {
    ids.WEDGE_STREAM_SERVICE: "wedge stream",
    ids.HEART_RATE_SERVICE: "heart rate",
    SMP_SERVICE_UUID: "SMP",
    ids.BATTERY_SERVICE: "battery",
    ids.DEVICE_INFORMATION_SERVICE: "device information",
}
# What `supports` reports, by the service that gives it.
CAPABILITIES: Final[dict[str, str]] = {"wedge": ids.WEDGE_STREAM_SERVICE, "heart_rate": ids.HEART_RATE_SERVICE,
                                       "smp": SMP_SERVICE_UUID}
# Generic Access and Generic Attribute: every device has them, listing them says nothing.
GENERIC_SERVICES: Final[frozenset[str]] = frozenset({ids.sig_uuid(0x1800), ids.sig_uuid(0x1801)})
DEFAULT_SCAN_S: Final[float] = 5.0
GATT_TIMEOUT_S: Final[float] = 10.0


def service_name(uuid: str) -> str:
    """A service by its name when wedge knows it, else its UUID (16-bit SIG numbers as 0xNNNN)."""
    if uuid in SERVICE_NAMES:
        return SERVICE_NAMES[uuid]
    if uuid.endswith("-0000-1000-8000-00805f9b34fb") and uuid.startswith("0000"):
        return f"0x{uuid[4:8]}"
    return uuid


@dataclass
class _Heard:
    device: BLEDevice
    name: str | None = None
    rssi: int | None = None
    uuids: dict[str, None] = field(default_factory=dict)
    manufacturers: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class SeenDevice:
    """One device heard advertising; `gatt` lists its GATT services when it was connected to (None: not asked,
    or the connection failed, then `gatt_error` says why)."""

    address: str
    name: str | None
    rssi: int | None
    advertised: tuple[str, ...]
    manufacturer_ids: tuple[int, ...] = ()
    gatt: tuple[str, ...] | None = None
    gatt_error: str | None = None

    def supports(self) -> dict[str, bool | None]:
        """Per capability: True when served (or advertised), False when the GATT listing lacks it, None when only
        the advertisement was seen and it does not say."""
        if self.gatt is not None:
            return {k: uuid in self.gatt for k, uuid in CAPABILITIES.items()}
        return {k: True if uuid in self.advertised else None for k, uuid in CAPABILITIES.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "name": self.name, "rssi": self.rssi,
                "advertised": [service_name(u) for u in self.advertised],
                "advertised_uuids": list(self.advertised), "manufacturer_ids": list(self.manufacturer_ids),
                "gatt": None if self.gatt is None else [service_name(u) for u in self.gatt],
                "gatt_error": self.gatt_error, "supports": self.supports()}


async def _gatt_services(device: BLEDevice, stack: BleStack, timeout_s: float) -> tuple[tuple[str, ...] | None, str | None]:
    try:
        async with asyncio.timeout(timeout_s), BleakClient(device, timeout=timeout_s, **stack.client_args) as client:
            return tuple(sorted(s.uuid for s in client.services if s.uuid not in GENERIC_SERVICES)), None
    except (BleakError, OSError, TimeoutError, EOFError) as exc:
        return None, first_line(exc) or type(exc).__name__


async def scan_devices(stack: BleStack, timeout_s: float = DEFAULT_SCAN_S, *, gatt: bool = False,
                       name: str | None = None) -> list[SeenDevice]:
    """Every device advertising within timeout_s (only those named `name`, when given), strongest first; with
    `gatt`, each is connected to in turn and its services listed. BridgeError without an adapter."""
    heard: dict[str, _Heard] = {}

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        # Advertisements and scan responses come apart on some stacks: a device is what all of them said.
        entry = heard.setdefault(device.address, _Heard(device))
        entry.device = device
        entry.name = adv.local_name or device.name or entry.name
        entry.rssi = adv.rssi
        entry.uuids.update(dict.fromkeys(adv.service_uuids))
        entry.manufacturers.update(adv.manufacturer_data)

    try:
        scanner = BleakScanner(on_advertisement, **stack.scanner_args)
        await scanner.start()
        try:
            await asyncio.sleep(timeout_s)  # the scan window itself, not a synchronization
        finally:
            await scanner.stop()
    except (BleakError, OSError, EOFError) as exc:
        raise scan_failure(stack, exc) from exc
    seen = [SeenDevice(address, entry.name, entry.rssi, tuple(entry.uuids), tuple(sorted(entry.manufacturers)))
            for address, entry in heard.items() if name is None or entry.name == name]
    seen.sort(key=lambda d: (-(d.rssi if d.rssi is not None else -999), d.name or "", d.address))
    if not gatt:
        return seen
    listed = []
    for entry in seen:
        services, error = await _gatt_services(heard[entry.address].device, stack, GATT_TIMEOUT_S)
        listed.append(SeenDevice(entry.address, entry.name, entry.rssi, entry.advertised, entry.manufacturer_ids,
                                 services, error))
    return listed


async def scan_nearby(stack: BleStack, timeout_s: float = DEFAULT_SCAN_S, *, gatt: bool = False,
               name: str | None = None) -> list[SeenDevice]:
    """`scan_devices`, then the stack closed (a Bumble adapter is a connection to its controller)."""
    try:
        return await scan_devices(stack, timeout_s, gatt=gatt, name=name)
    finally:
        with contextlib.suppress(Exception):
            await stack.close()
