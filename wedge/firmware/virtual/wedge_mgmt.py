"""wedge's SMP group on the virtual board: board identity and trusted key, and the booted model's status.

The model status carries the last boot event, so a host can say why the board rolled back.
"""

from __future__ import annotations

from collections.abc import Callable

from wedge import __version__
from wedge.boards import Board
from wedge.firmware.image.firmware_image import FirmwareDescriptor
from wedge.firmware.protocol.smp_messages import RawHeader, encode_response
from wedge.firmware.protocol.wedge_group import BoardInfoReadRequest, ModelStatus, ModelStatusReadRequest


class WedgeGroup:
    def __init__(self, board: Board, key_hash: bytes, status: Callable[[], ModelStatus],
                 descriptor: Callable[[], FirmwareDescriptor | None]) -> None:
        self._board = board
        self._key_hash = key_hash
        self._status = status
        self._descriptor = descriptor

    def board_info(self, header: RawHeader, message: bytes) -> bytes:
        BoardInfoReadRequest.loads(message)
        descriptor = self._descriptor()
        body: dict[str, object] = {
            "board": self._board.name,
            "runtime": self._board.compute.runtime,
            "model_slot_bytes": self._board.budgets.model_slot_bytes,
            "arena_bytes": descriptor.arena_bytes if descriptor else self._board.budgets.arena_bytes,
            "key_hash": self._key_hash,
            "firmware": f"{descriptor.name} {descriptor.version}" if descriptor else f"wedge-virtual {__version__}",
        }
        if descriptor is not None:
            body["descriptor"] = descriptor.to_report()
        return encode_response(header, body)

    def model_status(self, header: RawHeader, message: bytes) -> bytes:
        ModelStatusReadRequest.loads(message)
        return encode_response(header, self._status().body())
