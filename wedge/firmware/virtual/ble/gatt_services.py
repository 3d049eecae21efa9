"""The board's GATT database: Device Information, Battery, Heart Rate (rings) and the wedge stream service.

Only builds Bumble attribute objects; what is read, written and notified is decided by the callbacks given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bumble import gatt
from bumble.att import AttributeValue
from bumble.core import UUID

from wedge.firmware.protocol import gatt_uuids as ids

Properties = gatt.Characteristic.Properties
READABLE = gatt.Characteristic.READABLE
WRITEABLE = gatt.Characteristic.WRITEABLE
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


def _read_only(uuid: str, text: str) -> gatt.Characteristic[Any]:
    return gatt.Characteristic(UUID(uuid), Properties.READ, READABLE, text.encode())


def build_database(
    services: tuple[str, ...],
    info: DeviceInformation,
    *,
    read_battery: Callable[[Any], bytes],
    read_status: Callable[[Any], bytes],
    write_control: Callable[[Any, bytes], Awaitable[None] | None],
    model_info: tuple[Callable[[Any], bytes], Callable[[Any, bytes], None]] | None = None,
) -> GattDatabase:
    """The GATT services a board's profile names (device_information, battery, heart_rate, wedge_stream);
    `model_info` (read, write) adds the model info characteristic to the wedge stream service."""
    built: list[gatt.Service] = []
    battery = heart_rate = None
    records = gatt.Characteristic(UUID(ids.WEDGE_RECORDS), Properties.NOTIFY, READABLE, b"")
    if "device_information" in services:
        built.append(gatt.Service(UUID(ids.DEVICE_INFORMATION_SERVICE), [
            _read_only(ids.MANUFACTURER_NAME, info.manufacturer),
            _read_only(ids.MODEL_NUMBER, info.model_number),
            _read_only(ids.SERIAL_NUMBER, info.serial_number),
            _read_only(ids.HARDWARE_REVISION, info.hardware_revision),
            _read_only(ids.FIRMWARE_REVISION, info.firmware_revision),
        ]))
    if "battery" in services:
        battery = gatt.Characteristic(UUID(ids.BATTERY_LEVEL), Properties.READ | Properties.NOTIFY, READABLE,
                                      AttributeValue(read=read_battery))
        built.append(gatt.Service(UUID(ids.BATTERY_SERVICE), [battery]))
    if "heart_rate" in services:
        heart_rate = gatt.Characteristic(UUID(ids.HEART_RATE_MEASUREMENT), Properties.NOTIFY, 0, b"")
        location = gatt.Characteristic(UUID(ids.BODY_SENSOR_LOCATION), Properties.READ, READABLE,
                                       bytes([BODY_LOCATION_FINGER]))
        built.append(gatt.Service(UUID(ids.HEART_RATE_SERVICE), [heart_rate, location]))
    if "wedge_stream" in services:
        control = gatt.Characteristic(UUID(ids.WEDGE_CONTROL_POINT), Properties.WRITE, WRITEABLE,
                                      AttributeValue(write=write_control))
        status = gatt.Characteristic(UUID(ids.WEDGE_STATUS), Properties.READ, READABLE,
                                     AttributeValue(read=read_status))
        stream = [records, control, status]
        if model_info is not None:
            read_info, write_page = model_info
            stream.append(gatt.Characteristic(UUID(ids.WEDGE_MODEL_INFO), Properties.READ | Properties.WRITE,
                                              READABLE | WRITEABLE, AttributeValue(read=read_info, write=write_page)))
        built.append(gatt.Service(UUID(ids.WEDGE_STREAM_SERVICE), stream))
    return GattDatabase(tuple(built), records, battery, heart_rate)
