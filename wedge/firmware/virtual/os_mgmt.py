"""The SMP OS group of the virtual board: echo, reset, MCUmgr parameters, OS/application info and bootloader
info, as Zephyr answers them.

Followed: zephyrproject-rtos/zephyr subsys/mgmt/mcumgr/grp/os_mgmt/src/os_mgmt.c (os_mgmt_echo registered for
read and write; os_mgmt_info's format letters and strings: `s` and `o` "Zephyr", `n` the Bluetooth name,
`i` CONFIG_BOARD, `b` only with CONFIG_MCUMGR_GRP_OS_INFO_BUILD_DATE_TIME, an unknown letter INVALID_FORMAT;
os_mgmt_bootloader_info: "MCUboot", and its `mode` for the query "mode"). Params, info and bootloader info
are optional Kconfig features (all default n); the stock mode of the board leaves them out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from smp.os_management import OS_MGMT_RET_RC, BootloaderInformationReadRequest, MCUbootMode

from wedge.boards import Board
from wedge.firmware.protocol.smp_messages import (
    MGMT_ERR,
    EchoWriteRequest,
    MCUMgrParametersReadRequest,
    OSApplicationInfoReadRequest,
    RawHeader,
    ResetWriteRequest,
    encode_response,
    error_response,
)

# Zephyr's default CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT.
BUF_COUNT: Final[int] = 4
# The Zephyr release the virtual board stands for (KERNEL_VERSION_STRING).
ZEPHYR_VERSION: Final[str] = "4.4.0"
# 'a' means all of these (OS_MGMT_INFO_FORMAT_ALL without the build date, which is off by default).
INFO_ORDER: Final[str] = "snrvmpio"


@dataclass(frozen=True)
class OsFeatures:
    """Which optional OS group commands the firmware was built with."""

    params: bool = True
    info: bool = True
    bootloader_info: bool = True


def _processor(core: str) -> str:
    # PROCESSOR_NAME as Zephyr's os_mgmt_processor.h spells it: "cortex-m4" for a Cortex-M4F.
    name = core.lower().replace(" ", "-")
    return name[:-1] if name.startswith("cortex-m") and name.endswith("f") else name


class OsGroup:
    """OS group commands; a reset is handed to the board, which reboots once the reply is out."""

    def __init__(self, board: Board, buf_size: int, request_reset: Callable[[], None], node_name: str) -> None:
        self._board = board
        self._buf_size = buf_size
        self._request_reset = request_reset
        core = board.compute.core.lower()
        self._info: dict[str, str] = {
            "s": "Zephyr",
            "n": node_name,
            "r": "unknown",  # BUILD_VERSION is the git describe of the build tree; a virtual build has none
            "v": ZEPHYR_VERSION,
            "m": "arm" if core.startswith("cortex") else core.split()[0],
            "p": _processor(board.compute.core),
            "i": board.zephyr_boards[0].split("/")[0] if board.zephyr_boards else board.name,
            "o": "Zephyr",
        }

    def echo(self, header: RawHeader, message: bytes) -> bytes:
        return encode_response(header, {"r": EchoWriteRequest.loads(message).d})

    def reset(self, header: RawHeader, message: bytes) -> bytes:
        ResetWriteRequest.loads(message)
        self._request_reset()
        return encode_response(header, {})

    def params(self, header: RawHeader, message: bytes) -> bytes:
        MCUMgrParametersReadRequest.loads(message)
        return encode_response(header, {"buf_size": self._buf_size, "buf_count": BUF_COUNT})

    def info(self, header: RawHeader, message: bytes) -> bytes:
        letters = OSApplicationInfoReadRequest.loads(message).format or "s"
        if "a" in letters:
            letters = INFO_ORDER
        if any(letter not in self._info for letter in letters):
            return error_response(header, OS_MGMT_RET_RC.INVALID_FORMAT, legacy_rc=MGMT_ERR.EINVAL)
        chosen = [letter for letter in INFO_ORDER if letter in letters]
        return encode_response(header, {"output": " ".join(self._info[letter] for letter in chosen)})

    def bootloader_info(self, header: RawHeader, message: bytes) -> bytes:
        query = BootloaderInformationReadRequest.loads(message).query
        if query is None:
            return encode_response(header, {"bootloader": "MCUboot"})
        if query == "mode":
            # The virtual MCUboot swaps with a scratch sector (CONFIG_BOOT_SWAP_USING_SCRATCH).
            return encode_response(header, {"mode": int(MCUbootMode.SWAP_USING_SCRATCH)})
        return error_response(header, OS_MGMT_RET_RC.QUERY_YIELDS_NO_ANSWER, legacy_rc=MGMT_ERR.EUNKNOWN)
