"""The bleak scanner of the Bumble backend: advertisements seen by a Bumble host, as bleak's AdvertisementData;
a bonded device's resolvable private address is resolved to its identity address with the IRK from its bond.

Pass it to `BleakScanner(backend=BleakScannerBumble, bumble={"adapter": adapter})`.
"""

from __future__ import annotations

import struct
from typing import Any, Literal, TypedDict

from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str
from bumble.core import AdvertisingData
from bumble.device import Advertisement

from wedge.edge.bridge.bumble_backend.adapter import BumbleAdapter

_UUID_LISTS = (
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


class BumbleArgs(TypedDict, total=False):
    """The Bumble backend's own arguments (bleak's `bumble=` keyword, like its `bluez=` and `cb=`)."""

    adapter: BumbleAdapter


def require_adapter(bumble: BumbleArgs | None, details: Any = None) -> BumbleAdapter:
    adapter = (bumble or {}).get("adapter")
    if adapter is None and isinstance(details, BumbleDetails):
        adapter = details.adapter
    if adapter is None:
        raise BleakError("the Bumble backend needs an adapter: pass bumble={'adapter': BumbleAdapter(transport)}")
    return adapter


class BumbleDetails:
    """BLEDevice.details for a device seen through Bumble: the adapter and the typed address to connect to."""

    __slots__ = ("adapter", "address")

    def __init__(self, adapter: BumbleAdapter, address: Any) -> None:
        self.adapter = adapter
        self.address = address


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """Bumble's parsed advertisement as bleak's AdvertisementData."""
    data = advertisement.data
    name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(AdvertisingData.SHORTENED_LOCAL_NAME)
    uuids: list[str] = []
    for kind in _UUID_LISTS:
        for uuid_list in data.get_all(kind):
            uuids.extend(normalize_uuid_str(uuid.to_hex_str("-")) for uuid in uuid_list)
    manufacturer: dict[int, bytes] = {}
    for company_id, payload in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA) or ():
        manufacturer[int(company_id)] = bytes(payload)
    service_data: dict[str, bytes] = {}
    for kind in (AdvertisingData.SERVICE_DATA_16_BIT_UUID, AdvertisingData.SERVICE_DATA_32_BIT_UUID,
                 AdvertisingData.SERVICE_DATA_128_BIT_UUID):
        for uuid, payload in data.get_all(kind) or ():
            service_data[normalize_uuid_str(uuid.to_hex_str("-"))] = bytes(payload)
    tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=name if isinstance(name, str) else None,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power if isinstance(tx_power, int) else None,
        rssi=int(advertisement.rssi),
        platform_data=(advertisement,),
    )


class BleakScannerBumble(BaseBleakScanner):
    """Scans through a BumbleAdapter; always active (scan responses carry names and 128-bit UUIDs)."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        bumble: BumbleArgs | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._adapter = require_adapter(bumble)
        self._token = object()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        try:
            adv = advertisement_data(advertisement)
        except (ValueError, UnicodeDecodeError, struct.error):
            return  # a malformed advertisement: a real scanner drops it too
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        # A bonded device's private address is reported as its identity address, as BlueZ does once it holds
        # the IRK: the device keeps one address for the bridge while it changes on the air.
        identity = self._adapter.resolve(advertisement.address)
        address = (identity or advertisement.address).to_string(False)
        device = self.create_or_update_device(
            address, address, adv.local_name, BumbleDetails(self._adapter, advertisement.address), adv,
        )
        self.call_detection_callbacks(device, adv)

    async def start(self) -> None:
        self.seen_devices = {}
        await self._adapter.add_listener(self._token, self._on_advertisement)

    async def stop(self) -> None:
        await self._adapter.remove_listener(self._token)
