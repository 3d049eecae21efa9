"""Test helpers for firmware: signing keys, images, and the CLI as a user runs it.

Virtual boards are `wedge.firmware.virtual.processes.EmulatorProcess` (a real `wedge emulate` process on a real
pty); the tiny int8 models come from `wedge.samples.tiny_tflite`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from wedge.boards import load as load_board
from wedge.firmware.image.build import build_image
from wedge.firmware.image.keys import KeyPair, generate_keys
from wedge.firmware.image.model_image import ModelImage

RING = "ring-nrf52840"
START_TIMEOUT_S = 60.0



def write_model(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def make_keys(folder: Path) -> KeyPair:
    return generate_keys(folder)


def pack(model: Path, keys: KeyPair, version: str, board: str = RING, *, arena_bytes: int = 4096,
         check_fit: bool = True, name: str | None = None, min_firmware: str | None = None) -> ModelImage:
    return build_image(model, load_board(board), keys.private_path, version, arena_bytes=arena_bytes,
                       check_fit=check_fit, model_name=name, min_firmware=min_firmware).image


def write_image(folder: Path, name: str, image: ModelImage) -> Path:
    path = folder / name
    path.write_bytes(image.data)
    return path


def run_cli(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run `python -m wedge.cli ARGS` as a user would."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "wedge.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO_ROOT, env=env, check=False)


