"""Runs a virtual board's BLE peripheral while a model is booted, and stops it around every reboot.

The peripheral streams the booted model's always-on inference; a reboot swaps the engine, so it restarts.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from wedge.boards import Board
from wedge.firmware.virtual.always_on import model_id_for
from wedge.firmware.virtual.ble.device import BleDeviceOptions, run_ble_device
from wedge.firmware.virtual.runtime import ModelRuntime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BleSettings:
    """Where and as what the board advertises: a Bumble transport (the virtual air) and a name."""

    transport_spec: str
    name: str | None = None
    rate_hz: float | None = None


class BleSupervisor:
    """Starts the peripheral after each successful boot and stops it before the next one."""

    def __init__(self, board: Board, settings: BleSettings, state_dir: Path) -> None:
        self._board = board
        self._settings = settings
        self._state_dir = state_dir / "ble"
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def after_boot(self, runtime: ModelRuntime | None) -> None:
        """Advertise and stream with the booted model; without a model the board stays silent on the air."""
        if runtime is None:
            return
        self._stop = asyncio.Event()
        options = BleDeviceOptions(name=self._settings.name, rate_hz=self._settings.rate_hz,
                                   state_dir=self._state_dir)
        self._task = asyncio.create_task(run_ble_device(
            self._board, runtime.engine, transport_spec=self._settings.transport_spec,
            model_id=model_id_for(runtime.image.parts.body), options=options, stop=self._stop))
        self._task.add_done_callback(_log_failure)

    async def before_boot(self) -> None:
        """Stop streaming: the engine it uses is about to be closed."""
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        try:
            await self._task
        except Exception:  # already logged by the done callback; a reboot must go on regardless
            pass
        self._task = None
        self._stop = None


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("BLE peripheral stopped: %s", task.exception())
