"""The flash fault soak: random faults (noise, drops, cut cables, hangs, power cuts, slow flash) one per flash,
with the board restarted after every power cut, as a person at the bench would.
"""

from __future__ import annotations

import random
import subprocess
import threading
from typing import Any

from wedge.errors import WedgeError
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.image.model_image import ModelImage
from wedge.firmware.virtual.processes import EmulatorProcess

FAULT_KINDS = ("clean", "corrupt", "drop", "cut", "hang", "power", "slow")


def random_fault(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One random fault for a soak run: its kind and the control-socket settings."""
    kind = rng.choice(FAULT_KINDS)
    return kind, {
        "clean": {},
        "corrupt": {"corrupt_rate": rng.uniform(2e-5, 1.5e-4), "seed": rng.randrange(1 << 30)},
        "drop": {"drop_rate": rng.uniform(2e-5, 1.5e-4), "seed": rng.randrange(1 << 30)},
        "cut": {"cut_after_bytes": rng.randrange(200, 40_000), "cut_down_s": rng.uniform(0.05, 0.5)},
        "hang": {"hang_after_bytes": rng.randrange(200, 40_000)},
        # Upload writes and erases ~40 KB and a boot's swap moves ~60 KB more: cuts land in either.
        "power": {"power_cut_after_bytes": rng.randrange(1, 120_000)},
        "slow": {"slow_flash_ms": rng.uniform(1, 20)},
    }[kind]


def flash_supervised(board: EmulatorProcess, image: ModelImage, options: FlashOptions) -> str:
    """Flash in a thread, restarting the board each time a power cut ends its process; the outcome or the error."""
    outcome: dict[str, str] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["result"] = flash_image(board.port, image, "soak.img", options).outcome
        except WedgeError as exc:
            outcome["result"] = f"error: {exc}"
        finally:
            done.set()

    worker = threading.Thread(target=work)
    worker.start()
    # The flash runs in a thread; this one restarts the board each time a power cut ends its process.
    while not _wait_either(board.running_process(), done):
        board.start()
    worker.join()
    return outcome["result"]


def _wait_either(process: subprocess.Popen[str], done: threading.Event) -> bool:
    """Block until the flash is done (True) or the board process exits (False)."""
    either = threading.Event()

    def watch_process() -> None:
        process.wait()
        either.set()

    def watch_flash() -> None:
        done.wait()
        either.set()

    threading.Thread(target=watch_process, daemon=True).start()
    threading.Thread(target=watch_flash, daemon=True).start()
    either.wait()
    return done.is_set()
