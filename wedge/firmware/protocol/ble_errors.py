"""The errors of the BLE byte layouts: a value that does not decode, or a record version this build does not know.

Every decoder in `ble_records`, `ble_control` and `heart_rate` raises only these, whatever the input bytes.
"""

from __future__ import annotations

from wedge.firmware.errors import FirmwareError


class MalformedPacket(FirmwareError):
    """A notification, record or attribute value that is truncated, inconsistent or otherwise not decodable."""


class UnsupportedVersion(MalformedPacket):
    """A record or status value whose version byte is newer (or older) than this build understands."""
