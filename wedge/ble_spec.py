"""Numbers and rules from the Bluetooth Core Specification that several layers share (board profiles, the wire
formats, the virtual peripheral, the bridge): one home for each, with the section it comes from.

A leaf module like `wedge.errors`: it imports nothing of wedge, so every layer may use it.
"""

from __future__ import annotations

from typing import Final

# ATT_MTU is at least 23 on LE; 517 carries the largest attribute value (512) in one PDU (Vol 3, Part F, 3.2.8-9).
ATT_MTU_MIN: Final[int] = 23
ATT_MTU_MAX: Final[int] = 517
# A notification carries ATT_MTU - 3 bytes: 1 byte opcode and 2 bytes handle (Vol 3, Part F, 3.4.7.1).
ATT_NOTIFY_OVERHEAD_BYTES: Final[int] = 3
# The connection interval is N x 1.25 ms with N in 6..3200, i.e. 7.5 ms .. 4 s (Vol 6, Part B, 4.5.1).
CONN_INTERVAL_STEP_MS: Final[float] = 1.25
CONN_INTERVAL_MIN_MS: Final[float] = 7.5
CONN_INTERVAL_MAX_MS: Final[float] = 4000.0
ADDRESS_BYTES: Final[int] = 6


def notification_payload_bytes(att_mtu: int) -> int:
    """The value bytes one notification carries at `att_mtu`."""
    return att_mtu - ATT_NOTIFY_OVERHEAD_BYTES


def static_random_address(raw: bytes) -> str:
    """A static random device address from 6 bytes (random, or a hash for a stable one), as `C0:11:22:...`.

    The two most significant bits of a static random address are 1 (Vol 6, Part B, 1.3.2.1).
    """
    if len(raw) < ADDRESS_BYTES:
        raise ValueError(f"a BLE address needs {ADDRESS_BYTES} bytes, got {len(raw)}")
    address = bytearray(raw[:ADDRESS_BYTES])
    address[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in address)
