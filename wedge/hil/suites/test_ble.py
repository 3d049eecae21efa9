"""BLE streaming: the board's results reach SQLite through `wedge bridge` at the expected rate, with their
latency, and without loss across a forced disconnect (virtual boards; a real one streams without the cut).

A virtual board streams from its BLE process (same profile and model as the flashed one, on a Bumble air).
"""

from __future__ import annotations

from typing import Any, Final

from wedge.hil.streaming import stream_check

STREAM_S: Final[float] = 4.0
RATE_HZ: Final[float] = 25.0


def test_streaming_is_lossless_across_a_forced_disconnect(board: Any, ble: str, hil_model: Any,
                                                          hil_record: Any) -> None:
    """BLE streaming loses no record across a forced disconnect."""
    check = stream_check(board.entry.profile.name, hil_model, ble, board.work / "ble", seconds=STREAM_S,
                         rate_hz=RATE_HZ, virtual=board.virtual)
    hil_record("ble_stream", check.to_dict())
    assert check.received_records > 0
    assert check.lost_records == 0, f"{check.lost_records} records lost across {check.forced_disconnects} disconnect(s)"
    if board.virtual:
        assert check.reconnects >= 1, "the bridge did not reconnect after the forced disconnect"
