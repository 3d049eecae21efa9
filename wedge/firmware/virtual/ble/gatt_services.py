"""The board's GATT database: Device Information, Battery, Heart Rate (rings) and the wedge stream service.

Only builds Bumble attribute objects; what is read, written and notified is decided by the callbacks given, and
who may is decided by the guard (the ring's Security Manager). With security on, as Zephyr's services build with
their _PERM_RW_ENCRYPT options: the stream's characteristics and CCCD, the Heart Rate CCCD and body location
(CONFIG_BT_HRS_DEFAULT_PERM_RW_ENCRYPT) and the serial number (it is the stream's device id, so it names the
wearer) need an encrypted link; battery and the rest of Device Information stay open, as BAS and DIS ship.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bumble import gatt
from bumble.att import AttributeValue
from bumble.core import UUID

from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.virtual.ble.gatt_security import (
    Access,
    AccessGuard,
    CccdValue,
    GuardedCharacteristic,
    add_guarded_cccd,
)

Properties = gatt.Characteristic.Properties
READABLE = gatt.Characteristic.READABLE
# Body Sensor Location (0x2A38): 3 = finger (Heart Rate Service 1.0, 3.2).
BODY_LOCATION_FINGER = 3


@dataclass(frozen=True)
class DeviceInformation:
    """What the Device Information service (0x180A) tells a phone about the board."""

    manufacturer: str
    model_number: str
    serial_number: str
    hardware_revision: str
    firmware_revision: str


@dataclass(frozen=True)
class GattDatabase:
    """The services to register, and the characteristics the device notifies."""

    services: tuple[gatt.Service, ...]
    records: gatt.Characteristic[Any]
    battery: gatt.Characteristic[Any] | None
    heart_rate: gatt.Characteristic[Any] | None


def _read_only(uuid: str, text: str, guard: AccessGuard, access: Access = Access.OPEN) -> gatt.Characteristic[Any]:
    return GuardedCharacteristic(uuid, Properties.READ, text.encode(), guard, read=access)


def build_database(
    services: tuple[str, ...],
    info: DeviceInformation,
    *,
    read_battery: Callable[[Any], bytes],
    read_status: Callable[[Any], bytes],
    write_control: Callable[[Any, bytes], Awaitable[None] | None],
    guard: AccessGuard,
    cccd_value: CccdValue,
    model_info: tuple[Callable[[Any], bytes], Callable[[Any, bytes], None]] | None = None,
) -> GattDatabase:
    """The GATT services a board's profile names (device_information, battery, heart_rate, wedge_stream).

    cccd_value: the GATT server's CCCD value maker (`device.gatt_server.make_descriptor_value`);
    `model_info` (read, write) adds the model info characteristic to the wedge stream service.
    """
    built: list[gatt.Service] = []
    battery = heart_rate = None
    # Notify only, like Heart Rate Measurement (BT_GATT_PERM_NONE): nothing to read, the CCCD is what is guarded.
    records = GuardedCharacteristic(ids.WEDGE_RECORDS, Properties.NOTIFY, b"", guard)
    add_guarded_cccd(records, guard, Access.ENCRYPT, cccd_value)
    if "device_information" in services:
        built.append(gatt.Service(UUID(ids.DEVICE_INFORMATION_SERVICE), [
            _read_only(ids.MANUFACTURER_NAME, info.manufacturer, guard),
            _read_only(ids.MODEL_NUMBER, info.model_number, guard),
            _read_only(ids.SERIAL_NUMBER, info.serial_number, guard, Access.ENCRYPT),
            _read_only(ids.HARDWARE_REVISION, info.hardware_revision, guard),
            _read_only(ids.FIRMWARE_REVISION, info.firmware_revision, guard),
        ]))
    if "battery" in services:
        battery = gatt.Characteristic(UUID(ids.BATTERY_LEVEL), Properties.READ | Properties.NOTIFY, READABLE,
                                      AttributeValue(read=read_battery))
        built.append(gatt.Service(UUID(ids.BATTERY_SERVICE), [battery]))
    if "heart_rate" in services:
        heart_rate = GuardedCharacteristic(ids.HEART_RATE_MEASUREMENT, Properties.NOTIFY, b"", guard)
        add_guarded_cccd(heart_rate, guard, Access.ENCRYPT, cccd_value)
        location = GuardedCharacteristic(ids.BODY_SENSOR_LOCATION, Properties.READ, bytes([BODY_LOCATION_FINGER]),
                                         guard, read=Access.ENCRYPT)
        built.append(gatt.Service(UUID(ids.HEART_RATE_SERVICE), [heart_rate, location]))
    if "wedge_stream" in services:
        control = GuardedCharacteristic(ids.WEDGE_CONTROL_POINT, Properties.WRITE, AttributeValue(write=write_control),
                                        guard, write=Access.ENCRYPT)
        status = GuardedCharacteristic(ids.WEDGE_STATUS, Properties.READ, AttributeValue(read=read_status), guard,
                                       read=Access.ENCRYPT)
        stream = [records, control, status]
        if model_info is not None:
            read_info, write_page = model_info
            stream.append(GuardedCharacteristic(ids.WEDGE_MODEL_INFO, Properties.READ | Properties.WRITE,
                                                AttributeValue(read=read_info, write=write_page), guard,
                                                read=Access.ENCRYPT, write=Access.ENCRYPT))
        built.append(gatt.Service(UUID(ids.WEDGE_STREAM_SERVICE), stream))
    return GattDatabase(tuple(built), records, battery, heart_rate)
