"""Fault recovery: the power dies in the middle of a flash, comes back, and the board still runs its model.

On a virtual board the power cut is armed through its control socket (the process dies inside a flash write);
on a real board the map's power command is run when half the image is sent. Without either, the test skips.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Final

import pytest

from wedge.errors import WedgeError
from wedge.firmware.flash.flasher import flash_image
from wedge.hil.flashing import running_model

POWER_LOSS_TIMEOUT_S: Final[float] = 60.0
# The flash must give up soon after the power dies: waiting for the port to come back is not the point here.
RECONNECT_TIMEOUT_S: Final[float] = 1.0


class _CutAtHalf:
    """Flash observer that runs the power command once half the image is on its way (real boards)."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self.fired = threading.Event()

    def phase(self, name: str, detail: str) -> None:
        pass

    def progress(self, sent_bytes: int, total_bytes: int) -> None:
        if not self.fired.is_set() and sent_bytes * 2 >= total_bytes:
            self.fired.set()
            self.board.power_cycle()


def test_power_cut_mid_flash_leaves_the_previous_model_running(board: Any, flashed: Any, pack_version: Any,
                                                               hil_record: Any) -> None:
    if not board.can_cut_power:
        pytest.skip(f"board {board.name} has no power command in the map: no way to cut its power")
    update = pack_version("1.0.2")
    before = running_model(board.port, board.flash_options)
    options = replace(board.flash_options, reconnect_timeout_s=RECONNECT_TIMEOUT_S)
    error: str | None = None
    if board.virtual:
        board.control(op="faults", power_cut_after_bytes=update.size_bytes // 2)
        try:
            flash_image(board.port, update, update.manifest.model_name, options)
        except WedgeError as exc:
            error = str(exc)
        exit_code = board.wait_power_loss(POWER_LOSS_TIMEOUT_S)
        board.power_cycle()
    else:
        observer = _CutAtHalf(board)
        try:
            flash_image(board.port, update, update.manifest.model_name, options, observer)
        except WedgeError as exc:
            error = str(exc)
        exit_code = None
    after = running_model(board.port, board.flash_options)
    hil_record("power_cut", {"before": before, "after": after, "flash_error": error, "exit_code": exit_code,
                             "cut_after_bytes": update.size_bytes // 2})
    assert error is not None, "the flash finished although the power was cut"
    assert after == before, f"after the power came back the board runs {after}, not {before}"
