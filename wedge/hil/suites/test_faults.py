"""Fault recovery: the power dies in the middle of a flash, comes back, and the board still runs its model.

On a virtual board the power cut is armed through its control socket (the process dies inside a flash write).
On a real board the power goes when half the image is sent: a labgrid place's switch is turned off there and on
once the flash has given up; the map's power command (which only cycles) runs beside the flash. Without any
of these, the test skips.
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


class _PowerAtHalf:
    """Flash observer that takes a real board's power away once half the image is on its way.

    The flash must see the board gone: a power cycle that is over before the flash goes on lets it resume from
    the device's offset and finish. So a switch stays off until `restore`, and a cycle command runs in a thread
    (its off time must exceed RECONNECT_TIMEOUT_S).
    """

    def __init__(self, board: Any) -> None:
        self.board = board
        self.fired = threading.Event()
        self.power_error: str | None = None
        self._cycle: threading.Thread | None = None

    def phase(self, name: str, detail: str) -> None:
        pass

    def progress(self, sent_bytes: int, total_bytes: int) -> None:
        # Only while part of the image is still to go: a cut after the last chunk is not a cut mid-flash.
        if self.fired.is_set() or sent_bytes * 2 < total_bytes or sent_bytes >= total_bytes:
            return
        self.fired.set()
        if self.board.can_switch_power:
            self._power(self.board.power_off)
        else:
            self._cycle = threading.Thread(target=self._power, args=(self.board.power_cycle,), daemon=True)
            self._cycle.start()

    def _power(self, action: Any) -> None:
        try:
            action()
        except WedgeError as exc:
            self.power_error = str(exc)

    def restore(self, timeout_s: float) -> None:
        """Power back on (a switch), or wait for the cycle command to end."""
        if not self.fired.is_set():
            return
        if self._cycle is not None:
            self._cycle.join(timeout_s)
        elif self.power_error is None:
            self._power(self.board.power_on)


def test_power_cut_mid_flash_leaves_the_previous_model_running(board: Any, flashed: Any, pack_version: Any,
                                                               hil_record: Any) -> None:
    """A power cut mid-flash leaves the previous model running."""
    if not board.can_cut_power:
        pytest.skip(board.no_power_reason)
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
        observer = _PowerAtHalf(board)
        try:
            flash_image(board.port, update, update.manifest.model_name, options, observer)
        except WedgeError as exc:
            error = str(exc)
        observer.restore(POWER_LOSS_TIMEOUT_S)
        exit_code = None
        if not observer.fired.is_set() and error is None:
            pytest.skip(f"the {update.size_bytes}-byte image went over in one upload chunk: there is no middle of the "
                        f"upload to cut the power in (bench a larger model for this test)")
        assert observer.fired.is_set(), "the flash never sent half the image: the power was not cut"
        assert observer.power_error is None, f"the power could not be switched: {observer.power_error}"
    after = running_model(board.port, board.flash_options)
    hil_record("power_cut", {"before": before, "after": after, "flash_error": error, "exit_code": exit_code,
                             "cut_after_bytes": update.size_bytes // 2})
    assert error is not None, "the flash finished although the power was cut"
    assert after == before, f"after the power came back the board runs {after}, not {before}"
