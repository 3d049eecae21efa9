"""Fault soak: many flashes under random faults (noise, a pulled cable, a hang, power cuts, slow flash).

Whatever each flash reports, the board must end every run running a valid model: the one it had, or the new
one. 10 runs by default; `--soak-runs 200` (or WEDGE_SOAK_RUNS=200) for the full soak. Both as wedge's firmware
answers (test boot, self-test, confirm) and as a stock smp_svr does (the model made permanent, no self-test).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.firmware.firmware_models import RING, pack, write_model
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.virtual.faults import FaultSettings
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.hil.soak import flash_supervised, random_fault
from wedge.samples.tiny_tflite import int8_fc_model

OPTIONS = FlashOptions(timeout_s=0.3, reconnect_timeout_s=8.0, boot_timeout_s=30.0, board=RING)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["wedge", "zephyr-stock"])
def test_no_fault_ever_leaves_the_board_without_a_valid_model(tmp_path: Path, keys, soak_runs: int, mode: str) -> None:
    rng = random.Random(20_240_601)
    board = EmulatorProcess(tmp_path / "board", keys.private_path,
                            extra=("--zephyr-stock",) if mode == "zephyr-stock" else ())
    board.folder.mkdir()
    board.start()
    images = [
        pack(write_model(tmp_path, f"m{i}.tflite", int8_fc_model(1200, 16, seed=i)), keys, f"1.{i}.0", name=f"m{i}")
        for i in range(4)
    ]
    flash_image(board.port, images[0], "first.img", OPTIONS)
    current = images[0].manifest.model_version
    log: list[str] = []
    try:
        for run in range(soak_runs):
            image = images[1 + run % 3]
            kind, fault = random_fault(rng)
            board.control(op="faults", **fault)
            result = flash_supervised(board, image, OPTIONS)
            if not board.alive():
                board.start()
            board.control(op="faults", **FaultSettings().to_dict())
            board.control(op="unhang")
            status = board.status()
            log.append(f"run {run} {kind} {fault}: {result} -> {status['state']} {status['version']}")
            assert status["state"] == "running", "\n".join(log)
            assert status["version"] in (current, image.manifest.model_version), "\n".join(log)
            current = status["version"]
        print("\n".join(log))  # shown with -s: what each run did
    finally:
        board.stop()
