"""Finding a device: by advertised name, by address, or by an advertised service UUID, through any bleak backend.

`BleStack` says which backend bleak uses (the platform's, or Bumble on a given HCI transport); the rest of
the bridge never needs to know which. A name or a service UUID may match several devices: each is followed by
its own session, and `AddressClaims` keeps two sessions from following one device.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str

from wedge.edge.bridge.errors import BridgeError
from wedge.errors import first_line


@dataclass(frozen=True)
class DeviceSelector:
    """Which device a session follows; at least one field is set, and every set field must match."""

    name: str | None = None
    address: str | None = None
    service_uuid: str | None = None

    def __post_init__(self) -> None:
        if not (self.name or self.address or self.service_uuid):
            raise BridgeError("a device is chosen by name, address or service UUID: none was given")
        if self.service_uuid:
            try:
                object.__setattr__(self, "service_uuid", normalize_uuid_str(self.service_uuid))
            except ValueError as exc:
                raise BridgeError(f"{self.service_uuid!r} is not a service UUID") from exc

    def matches(self, device: BLEDevice, adv: AdvertisementData) -> bool:
        if self.name is not None and adv.local_name != self.name and device.name != self.name:
            return False
        if self.address is not None and device.address.upper() != self.address.upper():
            return False
        return self.service_uuid is None or self.service_uuid in adv.service_uuids

    def describe(self) -> str:
        parts = [p for p in (self.name, self.address, self.service_uuid) if p]
        return " / ".join(parts)


@dataclass
class BleStack:
    """The bleak backend in use: `scanner_args`/`client_args` are passed to BleakScanner/BleakClient as is."""

    label: str
    scanner_args: dict[str, Any] = field(default_factory=dict)
    client_args: dict[str, Any] = field(default_factory=dict)
    adapter: Any = None

    @classmethod
    def platform(cls) -> BleStack:
        return cls("the OS Bluetooth stack")

    @classmethod
    def bumble(cls, transport_spec: str, *, keystore: Path | None = None, prompts: Any = None) -> BleStack:
        """Bumble driving the controller at `transport_spec`, its bonds in `keystore` (None: in memory only) and
        `prompts` (a PairingPrompts) answering passkey entry and numeric comparison."""
        # Imported here: a bridge on the OS stack never loads Bumble.
        from wedge.edge.bridge.bumble_backend import BleakClientBumble, BleakScannerBumble, BumbleAdapter

        adapter = BumbleAdapter(transport_spec, keystore=keystore, prompts=prompts)
        args = {"bumble": {"adapter": adapter}}
        return cls(f"Bumble on {transport_spec}", {"backend": BleakScannerBumble, **args},
                   {"backend": BleakClientBumble, **args}, adapter)

    def security_of(self, address: str) -> Any:
        """How the last link to `address` was secured (a LinkSecurity), when the stack tells (Bumble does; the OS
        stack pairs and encrypts on its own and does not say)."""
        return None if self.adapter is None else self.adapter.security.get(address.upper())

    async def close(self) -> None:
        if self.adapter is not None:
            await self.adapter.close()


@dataclass(frozen=True)
class Found:
    device: BLEDevice
    rssi: int | None


class AddressClaims:
    """Which session follows which device address: one session per device, whatever the selectors say."""

    def __init__(self) -> None:
        self._owners: dict[str, object] = {}

    def claimed(self) -> frozenset[str]:
        return frozenset(self._owners)

    def claim(self, address: str, owner: object) -> bool:
        """Take the address for `owner`; False when another owner has it."""
        return self._owners.setdefault(address.upper(), owner) is owner

    def release(self, address: str, owner: object) -> None:
        if self._owners.get(address.upper()) is owner:
            del self._owners[address.upper()]


def scan_failure(stack: BleStack, exc: BaseException) -> BridgeError:
    """The one-line error of a scan that could not start (no adapter, a transport that is not there)."""
    hint = "" if stack.adapter is not None else " (no Bluetooth adapter? --transport drives one with Bumble)"
    return BridgeError(f"cannot scan with {stack.label}: {first_line(exc)}{hint}")


async def find_device(selector: DeviceSelector, stack: BleStack, timeout_s: float, *,
                      exclude: Collection[str] = ()) -> Found | None:
    """The first advertising device the selector matches (and whose address is not in `exclude`), or None after
    timeout_s; BridgeError without adapter."""
    seen: dict[str, int] = {}

    def match(device: BLEDevice, adv: AdvertisementData) -> bool:
        if device.address.upper() not in exclude and selector.matches(device, adv):
            seen[device.address] = adv.rssi
            return True
        return False

    service_filter = [selector.service_uuid] if selector.service_uuid else None
    try:
        device = await BleakScanner.find_device_by_filter(match, timeout=timeout_s, service_uuids=service_filter,
                                                          **stack.scanner_args)
    except (BleakError, OSError, EOFError) as exc:
        raise scan_failure(stack, exc) from exc
    if device is None:
        return None
    return Found(device, seen.get(device.address))
