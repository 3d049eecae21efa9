"""The SMP OS group of the virtual board: echo, reset, MCUmgr parameters and OS/application info, as Zephyr answers.

Info format letters follow Zephyr's os_mgmt (`s n r v b m p i o`, `a` for all); `i` (hardware platform) is the
board profile name, which is how a host identifies the board.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from smp.os_management import OS_MGMT_RET_RC

from wedge import __version__
from wedge.boards import Board
from wedge.firmware.protocol.smp_messages import (
    EchoWriteRequest,
    Header,
    MCUMgrParametersReadRequest,
    OSApplicationInfoReadRequest,
    ResetWriteRequest,
    encode_response,
    error_response,
)

# Zephyr's default CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT.
BUF_COUNT: Final[int] = 4
INFO_ORDER: Final[str] = "snrvbmpio"


class OsGroup:
    """OS group commands; a reset is handed to the board, which reboots once the reply is out."""

    def __init__(self, board: Board, buf_size: int, request_reset: Callable[[], None]) -> None:
        self._board = board
        self._buf_size = buf_size
        self._request_reset = request_reset
        self._info: dict[str, str] = {
            "s": "wedge-virtual",
            "n": board.name,
            "r": __version__,
            "v": "virtual",
            "b": "virtual",
            "m": board.compute.core,
            "p": board.mcu,
            "i": board.name,
            "o": "wedge",
        }

    def echo(self, header: Header, message: bytes) -> bytes:
        return encode_response(header, {"r": EchoWriteRequest.loads(message).d})

    def reset(self, header: Header, message: bytes) -> bytes:
        ResetWriteRequest.loads(message)
        self._request_reset()
        return encode_response(header, {})

    def params(self, header: Header, message: bytes) -> bytes:
        MCUMgrParametersReadRequest.loads(message)
        return encode_response(header, {"buf_size": self._buf_size, "buf_count": BUF_COUNT})

    def info(self, header: Header, message: bytes) -> bytes:
        letters = OSApplicationInfoReadRequest.loads(message).format or "s"
        if "a" in letters:
            letters = INFO_ORDER
        if any(letter not in self._info for letter in letters):
            return error_response(header, OS_MGMT_RET_RC.INVALID_FORMAT)
        return encode_response(header, {"output": " ".join(self._info[letter] for letter in letters)})
