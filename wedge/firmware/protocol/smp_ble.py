"""SMP over BLE as Zephyr's smp_bt transport speaks it: one GATT characteristic, written without response by the
client and notified by the server, each SMP message cut into ATT-payload-sized fragments.

Followed: zephyrproject-rtos/zephyr subsys/mgmt/mcumgr/transport/src/smp_bt.c (service and characteristic UUIDs,
`BT_GATT_CHRC_WRITE_WITHOUT_RESP | BT_GATT_CHRC_NOTIFY`, fragments reassembled by the length in the SMP header,
replies sent as notifications of at most ATT_MTU - 3 bytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from smp import header as smpheader

SMP_SERVICE_UUID: Final[str] = "8d53dc1d-1db7-4cd3-868b-8a527460aa84"
SMP_CHARACTERISTIC_UUID: Final[str] = "da2e7828-fbce-4e01-ae9e-261174997c48"
ATT_HEADER_BYTES: Final[int] = 3  # opcode + handle of a Write Command or a Handle Value Notification
_HEADER_BYTES: Final[int] = smpheader.Header.SIZE


def fragments(message: bytes, att_mtu: int) -> Iterator[bytes]:
    """`message` cut into pieces that each fit one ATT write or notification at `att_mtu`."""
    room = att_mtu - ATT_HEADER_BYTES
    if room <= 0:
        raise ValueError(f"an ATT MTU of {att_mtu} carries no payload")
    for start in range(0, len(message), room):
        yield message[start : start + room]


class SmpReassembler:
    """Joins fragments back into SMP messages by the header's length field, as smp_bt's reassembly does.

    A fragment that would make a message larger than `max_message_bytes` drops what was gathered (Zephyr frees
    the netbuf); the next fragment starts a new message.
    """

    def __init__(self, max_message_bytes: int = 65_535 + _HEADER_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_message_bytes
        self.dropped = 0

    def feed(self, fragment: bytes) -> list[bytes]:
        self._buffer += fragment
        messages: list[bytes] = []
        while len(self._buffer) >= _HEADER_BYTES:
            length = int.from_bytes(self._buffer[2:4], "big") + _HEADER_BYTES
            if length > self._max:
                self.dropped += 1
                self._buffer.clear()
                break
            if len(self._buffer) < length:
                break
            messages.append(bytes(self._buffer[:length]))
            del self._buffer[:length]
        return messages

    def reset(self) -> None:
        self._buffer.clear()
