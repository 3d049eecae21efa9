"""GATT UUIDs a wedge board serves: the standard services it exposes and the wedge stream service.

Defined once here, as full lowercase 128-bit strings (the form bleak and Bumble both accept).
"""

from __future__ import annotations

from typing import Final

# The Bluetooth Base UUID: a 16-bit SIG-assigned number n stands for 0000nnnn-0000-1000-8000-00805f9b34fb
# (Core Specification Vol 3, Part B, 2.5.1).
_SIG_BASE_SUFFIX: Final[str] = "-0000-1000-8000-00805f9b34fb"


def sig_uuid(number: int) -> str:
    """The 128-bit form of a 16-bit SIG-assigned UUID."""
    if not 0 <= number <= 0xFFFF:
        raise ValueError(f"a 16-bit UUID is 0..0xFFFF, got {number:#x}")
    return f"0000{number:04x}{_SIG_BASE_SUFFIX}"


# Standard services and characteristics (Bluetooth SIG Assigned Numbers, section 3.4 and 3.8).
DEVICE_INFORMATION_SERVICE: Final[str] = sig_uuid(0x180A)
MANUFACTURER_NAME: Final[str] = sig_uuid(0x2A29)
MODEL_NUMBER: Final[str] = sig_uuid(0x2A24)
SERIAL_NUMBER: Final[str] = sig_uuid(0x2A25)
HARDWARE_REVISION: Final[str] = sig_uuid(0x2A27)
FIRMWARE_REVISION: Final[str] = sig_uuid(0x2A26)

BATTERY_SERVICE: Final[str] = sig_uuid(0x180F)
BATTERY_LEVEL: Final[str] = sig_uuid(0x2A19)

HEART_RATE_SERVICE: Final[str] = sig_uuid(0x180D)
HEART_RATE_MEASUREMENT: Final[str] = sig_uuid(0x2A37)
BODY_SENSOR_LOCATION: Final[str] = sig_uuid(0x2A38)

CLIENT_CHARACTERISTIC_CONFIGURATION: Final[str] = sig_uuid(0x2902)

# The wedge stream service: one random 128-bit base ("7765" = "we" in ASCII), the last field numbers its parts.
WEDGE_STREAM_SERVICE: Final[str] = "77656467-0001-4e3a-9d5c-2b6f1a4c8e00"
WEDGE_RECORDS: Final[str] = "77656467-0001-4e3a-9d5c-2b6f1a4c8e01"        # notify: framed inference records
WEDGE_CONTROL_POINT: Final[str] = "77656467-0001-4e3a-9d5c-2b6f1a4c8e02"  # write: start/stop/rate/backfill
WEDGE_STATUS: Final[str] = "77656467-0001-4e3a-9d5c-2b6f1a4c8e03"         # read: ring buffer and stream state
WEDGE_MODEL_INFO: Final[str] = "77656467-0001-4e3a-9d5c-2b6f1a4c8e04"     # read/write: model name, labels, unit

# Board profile service names (wedge.boards BLE_SERVICES) to their service UUIDs.
SERVICE_BY_NAME: Final[dict[str, str]] = {
    "device_information": DEVICE_INFORMATION_SERVICE,
    "battery": BATTERY_SERVICE,
    "heart_rate": HEART_RATE_SERVICE,
    "wedge_stream": WEDGE_STREAM_SERVICE,
}
