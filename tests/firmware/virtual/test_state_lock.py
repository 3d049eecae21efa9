"""One virtual board per state folder: a second `wedge emulate` on it is refused, naming the holder (issue 12, 3);
a board that dies mid-flash is reported as such, not as a missing port a minute later (issue 12, 9 and 10)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.firmware.firmware_models import RING, pack, run_cli, write_model
from wedge.firmware.errors import DeviceError
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.samples.tiny_tflite import int8_fc_model


def test_a_second_emulator_on_the_same_state_is_refused_with_the_holder(tmp_path: Path, keys,
                                                                        board: EmulatorProcess) -> None:
    second = run_cli("emulate", "--board", RING, "--state", str(board.state), "--key", str(keys.private_path))
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert "is in use by process" in second.stderr and "wedge.cli emulate" in second.stderr


def test_a_power_cut_in_the_swap_is_reported_as_a_dead_board_promptly(tmp_path: Path, keys,
                                                                       board: EmulatorProcess) -> None:
    image = pack(write_model(tmp_path, "fc.tflite", int8_fc_model(3000, 16)), keys, "1.0.0", name="fc")
    # Upload writes about the image's size; the swap at the next boot writes more: cut in the swap.
    board.control(op="faults", power_cut_after_bytes=int(image.size_bytes * 1.6))
    started = time.monotonic()
    with pytest.raises(DeviceError, match="died"):
        flash_image(board.port, image, "fc.img", FlashOptions(timeout_s=1.0, reconnect_timeout_s=60.0))
    assert time.monotonic() - started < 30
    board.wait_exit()
