"""The virtual board: flash, bootloader, model runtime and SMP server behind one UART, as a small event-loop process.

Boot = MCUboot (swap, verify) then the runtime's self-test; a test image that fails it makes the board reset,
so MCUboot reverts to the previous model. Later layers (always-on loop, BLE, MLPerf Tiny DUT protocol) hang
off `VirtualBoard.runtime` and the console text the UART carries besides SMP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from wedge.boards import Board
from wedge.firmware.image.keys import public_key_hash
from wedge.firmware.image.model_image import ModelImage
from wedge.firmware.protocol.console import boot_banner, console_line
from wedge.firmware.protocol.smp_messages import OP, GroupId, ImageCommand, OsCommand
from wedge.firmware.protocol.smp_serial import Console, Frame, SerialFrameReader, encode_frame
from wedge.firmware.protocol.wedge_group import WEDGE_GROUP_ID, ModelState, ModelStatus, WedgeCommand
from wedge.firmware.virtual.bootloader import Trust, boot
from wedge.firmware.virtual.dut_server import DutServer
from wedge.firmware.virtual.faults import FaultSettings, LinkFaults
from wedge.firmware.virtual.flash import Flash, FlashFaults, FlashLayout
from wedge.firmware.virtual.img_mgmt import ImageGroup
from wedge.firmware.virtual.os_mgmt import OsGroup
from wedge.firmware.virtual.runtime import ModelRuntime, start_runtime
from wedge.firmware.virtual.smp_server import SmpServer
from wedge.firmware.virtual.state import Remembered, StateFolder
from wedge.firmware.virtual.uart import PtyUart
from wedge.firmware.virtual.wedge_mgmt import WedgeGroup

if TYPE_CHECKING:
    from wedge.firmware.virtual.ble_supervisor import BleSettings, BleSupervisor

# Zephyr's default SMP buffer, for boards whose profile does not speak SMP natively (they flash otherwise on
# real hardware; the virtual board speaks SMP as a Zephyr + MCUboot build of them would).
DEFAULT_BUF_SIZE: Final[int] = 384
# A failing test image resets the board once (revert); a second failure cannot be helped by another reset.
_MAX_BOOTS_PER_RESET: Final[int] = 2


def _label(image: ModelImage) -> str:
    return f"{image.manifest.model_name} {image.manifest.model_version}"


@dataclass(frozen=True)
class BoardOptions:
    """How to run one virtual board."""

    state_dir: Path
    key_path: Path | None = None
    link: Path | None = None
    baud: int | None = None
    faults: FaultSettings = field(default_factory=FaultSettings)
    ble: BleSettings | None = None  # advertise and stream the booted model's inference over (virtual) BLE


class VirtualBoard:
    """One virtual board in the running event loop."""

    def __init__(self, board: Board, options: BoardOptions, on_port: Callable[[str], None]) -> None:
        self.board = board
        self.options = options
        self.state = StateFolder(options.state_dir)
        self._remembered, self.public_key = self.state.provision(board.name, options.key_path)
        self.faults = options.faults
        self.link_faults = LinkFaults(options.faults)
        self.flash_faults = FlashFaults(
            power_cut_after_bytes=options.faults.power_cut_after_bytes,
            op_delay_s=options.faults.slow_flash_ms / 1000,
        )
        self.flash = Flash(self.state.flash_path, FlashLayout.for_board(board), self.flash_faults)
        max_image = min(board.budgets.model_slot_bytes, self.flash.layout.slot_data_bytes)
        self.trust = Trust(public_key=self.public_key, board=board.name, max_image_bytes=max_image)
        self.buf_size = board.flashing.mcumgr_buf_size or DEFAULT_BUF_SIZE
        self.runtime: ModelRuntime | None = None
        self.status = ModelStatus(ModelState.NO_MODEL, self._remembered.boot_count)
        self.booting = True
        self._on_port = on_port
        self._reset_pending = False
        self._reader = SerialFrameReader(max_message_bytes=self.buf_size)
        self.images = ImageGroup(self.flash, max_image, self._running_hash)
        self.server = self._build_server()
        self.uart: PtyUart | None = None
        # MLPerf Tiny DUT commands arrive as console text between the SMP frames.
        self.dut = DutServer(board, lambda: self.runtime, self._send)
        self._tasks: set[asyncio.Task[None]] = set()
        self._ble: BleSupervisor | None = None
        if options.ble is not None:
            from wedge.firmware.virtual.ble_supervisor import BleSupervisor  # Bumble only when BLE is on

            self._ble = BleSupervisor(board, options.ble, options.state_dir)

    # -- wiring -----------------------------------------------------------------------------------------

    def _build_server(self) -> SmpServer:
        server = SmpServer()
        os_group = OsGroup(self.board, self.buf_size, self._request_reset)
        wedge_group = WedgeGroup(self.board, public_key_hash(self.public_key), lambda: self.status)
        for command, op, handler in (
            (OsCommand.ECHO, OP.WRITE, os_group.echo),
            (OsCommand.RESET, OP.WRITE, os_group.reset),
            (OsCommand.MCUMGR_PARAMETERS, OP.READ, os_group.params),
            (OsCommand.OS_APPLICATION_INFO, OP.READ, os_group.info),
        ):
            server.register(GroupId.OS_MANAGEMENT, command, op, handler)
        for command, op, handler in (
            (ImageCommand.STATE, OP.READ, self.images.state_read),
            (ImageCommand.STATE, OP.WRITE, self.images.state_write),
            (ImageCommand.UPLOAD, OP.WRITE, self.images.upload),
            (ImageCommand.ERASE, OP.WRITE, self.images.erase),
        ):
            server.register(GroupId.IMAGE_MANAGEMENT, command, op, handler)
        server.register(WEDGE_GROUP_ID, WedgeCommand.BOARD_INFO, OP.READ, wedge_group.board_info)
        server.register(WEDGE_GROUP_ID, WedgeCommand.MODEL_STATUS, OP.READ, wedge_group.model_status)
        return server

    def _running_hash(self) -> bytes | None:
        return self.runtime.image.image_hash if self.runtime is not None else self.status.model_hash

    # -- life cycle ----------------------------------------------------------------------------------------

    async def start(self) -> str:
        """Open the UART and boot; returns the port path once the board answers."""
        loop = asyncio.get_running_loop()
        self.uart = PtyUart(loop, self._on_rx, self._on_port, self.link_faults,
                            baud=self.options.baud, link=self.options.link)
        path = self.uart.start()
        await self.reboot()
        return path

    async def stop(self) -> None:
        if self._ble is not None:
            await self._ble.before_boot()
        self.dut.close()
        for task in list(self._tasks):
            task.cancel()
        if self.uart is not None:
            self.uart.close()
        if self.runtime is not None:
            self.runtime.close()
        self.flash.close()

    async def reboot(self) -> None:
        """Reset: the UART goes deaf while MCUboot and the self-test run, then the banner says the board is up."""
        self.booting = True
        self.images.forget_upload()
        if self._ble is not None:
            await self._ble.before_boot()  # it streams with the engine the boot is about to close
        await asyncio.to_thread(self._boot_sequence)
        self._reader = SerialFrameReader(max_message_bytes=self.buf_size)
        self.dut.reset()
        self.booting = False
        if self._ble is not None:
            await self._ble.after_boot(self.runtime)
        if self.uart is not None:
            model = f"model {self.status.model_name} {self.status.model_version}" if self.status.model_name else "no model"
            if self.status.event:
                self.uart.send(console_line(f"wedge: {self.status.event}"))
            self.uart.send(boot_banner(self.board.name, f"{model} {self.status.state.name.lower().replace('_', ' ')}"))

    def _remember(self, **changes: object) -> None:
        self._remembered = self.state.update(self._remembered, **changes)

    def _boot_sequence(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
        events: list[str] = []
        crashed = self._remembered.self_test_hash
        if crashed is not None:
            events.append(f"the self-test of image {crashed[:16]} did not finish (the board died during it)")
            self._remember(self_test_hash=None)
        failed_test: ModelImage | None = None
        status = ModelStatus(ModelState.NO_MODEL, self._remembered.boot_count + 1)
        for _ in range(_MAX_BOOTS_PER_RESET):
            result = boot(self.flash, self.trust)
            events.extend(result.events)
            image = result.image
            if image is None:
                status = ModelStatus(ModelState.NO_MODEL, status.boot_count)
                break
            self._remember(self_test_hash=image.image_hash.hex())
            runtime, test = start_runtime(image, self.board.budgets.arena_bytes)
            self._remember(self_test_hash=None)
            status = ModelStatus(
                ModelState.RUNNING if test.passed else ModelState.FAILED, status.boot_count,
                model_name=image.manifest.model_name, model_version=image.manifest.model_version,
                model_hash=image.image_hash, arena_used_bytes=image.manifest.arena_bytes,
                self_test_us=test.duration_us,
            )
            if test.passed:
                self.runtime = runtime
                if result.testing:
                    events.append(f"booted {_label(image)} for test: it reverts at the next reset unless confirmed")
                break
            if not result.testing:
                events.append(f"{_label(image)} {test.reason}")
                break
            # The application does not confirm a model that failed its self-test and resets: MCUboot reverts.
            failed_test = image
            events.append(f"{_label(image)} {test.reason}")
        if failed_test is not None:
            back_to = f"{status.model_name} {status.model_version}" if status.model_name else "no model"
            events.append(f"rolled back from {_label(failed_test)} to {back_to}")
        event = "; ".join(events) or None
        self.status = replace(status, event=event)
        self._remember(boot_count=status.boot_count, event=event)

    # -- UART traffic ----------------------------------------------------------------------------------------

    def _on_rx(self, data: bytes) -> None:
        if self.booting or self._reset_pending:
            return  # nobody listens on the UART while the board boots
        for event in self._reader.feed(data):
            if isinstance(event, Frame):
                reply = self.server.handle(event.message)
                if reply is not None and self.uart is not None:
                    self.uart.send(encode_frame(reply))
                if self._reset_pending:
                    self._spawn(self._reset_after_reply())
                    return
            elif isinstance(event, Console):
                self.dut.feed(event.text)

    def _send(self, data: bytes) -> None:
        if self.uart is not None and not self.booting:
            self.uart.send(data)

    def _request_reset(self) -> None:
        self._reset_pending = True

    async def _reset_after_reply(self) -> None:
        if self.uart is not None:
            await self.uart.drain()
        self._reset_pending = False
        await self.reboot()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- faults and control ------------------------------------------------------------------------------------

    def configure_faults(self, settings: FaultSettings) -> None:
        previous = self.faults
        self.faults = settings
        self.link_faults.configure(settings)
        self.flash_faults.op_delay_s = settings.slow_flash_ms / 1000
        if settings.power_cut_after_bytes != previous.power_cut_after_bytes:
            self.flash_faults.arm_power_cut(settings.power_cut_after_bytes)

    def press_reset(self) -> None:
        """The reset button: reboot now, whatever the UART is doing."""
        self._spawn(self.reboot())

    def remembered(self) -> Remembered:
        return self._remembered
