"""Runs a virtual board's BLE peripheral after every boot, and stops it around every reboot.

With a model booted the peripheral streams its always-on inference (and serves SMP when the profile lists the
`smp` service); without one a board with the SMP service still advertises it, so a sealed ring can get its
first model over the air. A reboot swaps the engine, so the peripheral restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wedge.boards import Board
from wedge.firmware.protocol.ble_model_info import ModelInfo
from wedge.firmware.virtual.always_on import model_id_for
from wedge.firmware.virtual.ble.device import BleDeviceOptions, run_ble_device
from wedge.firmware.virtual.ble.link_model import LinkModel
from wedge.firmware.virtual.runtime import ModelRuntime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BleSettings:
    """Where and as what the board advertises: a Bumble transport (the virtual air) and a name."""

    transport_spec: str
    name: str | None = None
    rate_hz: float | None = None
    conn_interval_ms: float | None = None   # default: the board profile's
    packets_per_event: int | None = None    # default: the link model's

    def link(self, board: Board) -> LinkModel:
        base = LinkModel.for_board(board, packets_per_event=self.packets_per_event)
        return LinkModel(self.conn_interval_ms or base.conn_interval_ms, base.packets_per_event, base.att_mtu)


class BleSupervisor:
    """Starts the peripheral after each successful boot and stops it before the next one."""

    def __init__(self, board: Board, settings: BleSettings, state_dir: Path,
                 smp_handler: Callable[[bytes], bytes | None] | None = None) -> None:
        self._board = board
        self._settings = settings
        self._state_dir = state_dir / "ble"
        self._smp_handler = smp_handler
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._smp_only: Any = None
        self._device: Any = None

    async def after_boot(self, runtime: ModelRuntime | None) -> None:
        """Advertise and stream with the booted model; without one, only the SMP service (if the profile has it)."""
        if runtime is None:
            await self._start_smp_only()
            return
        self._stop = asyncio.Event()
        manifest = runtime.image.manifest
        model_id = model_id_for(runtime.image.parts.body)
        # What the manifest of the booted image says, served to the phone on the model info characteristic.
        info = ModelInfo(model_id, manifest.model_name, manifest.model_version, manifest.labels, manifest.unit)
        options = BleDeviceOptions(name=self._settings.name, rate_hz=self._settings.rate_hz,
                                   state_dir=self._state_dir, smp_handler=self._smp_handler,
                                   link=self._settings.link(self._board), on_event=_log_event)
        self._task = asyncio.create_task(run_ble_device(
            self._board, runtime.engine, transport_spec=self._settings.transport_spec,
            model_id=model_id, options=options, stop=self._stop, on_ready=self._ready, model_info=info))
        self._task.add_done_callback(_log_failure)

    def _ready(self, device: Any, info: Any) -> None:
        self._device = device
        logger.info("BLE: advertising as %s (%s), streaming records of epoch %d from seq %d", info.name, info.address,
                    info.epoch, info.next_seq)

    async def disconnect_all(self) -> int:
        """Drop every BLE connection from the board's side (a radio reset); how many there were."""
        if self._device is not None:
            return int(await self._device.disconnect_all())
        if self._smp_only is not None:
            return await self._smp_only.disconnect_all()
        return 0

    async def _start_smp_only(self) -> None:
        ble = self._board.ble
        if ble is None or "smp" not in ble.services or self._smp_handler is None:
            return  # nothing to offer on the air without a model
        from wedge.firmware.virtual.ble.device import static_address
        from wedge.firmware.virtual.ble.ring_buffer import device_id_in
        from wedge.firmware.virtual.ble.security import RingSecurity
        from wedge.firmware.virtual.ble.smp_service import SmpPeripheral

        name = self._settings.name or ble.name_prefix
        try:
            # The same identity and bonds as when a model streams: a central bonded over SMP stays bonded.
            security = RingSecurity(ble.security, self._state_dir, static_address(device_id_in(self._state_dir)),
                                    _log_event)
            peripheral = SmpPeripheral(name, self._settings.transport_spec, self._smp_handler,
                                       self._settings.link(self._board), security)
            await peripheral.start()
        except Exception as exc:  # the board goes on without its radio, as firmware would log and carry on
            logger.error("BLE SMP peripheral did not start: %s", exc)
            return
        self._smp_only = peripheral
        logger.info("BLE: advertising as %s with the SMP service only (no model to stream)", name)

    async def before_boot(self) -> None:
        """Stop streaming: the engine it uses is about to be closed."""
        if self._smp_only is not None:
            await self._smp_only.close()
            self._smp_only = None
        self._device = None
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        try:
            await self._task
        except Exception:  # already logged by the done callback; a reboot must go on regardless
            pass
        self._task = None
        self._stop = None


def _log_event(event: dict[str, Any]) -> None:
    """Pairings and what the display shows go to the board's log (the emulator's stdout is its port line)."""
    logger.warning("BLE: %s", event)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("BLE peripheral stopped: %s", task.exception())
