"""The virtual board: flash, bootloader, application firmware, model runtime and SMP server, as a small event-loop
process.

Boot = MCUboot (multi-image: image 0 the application, image 1 the model; swap, verify) then, if the application
is valid, its self-test of the model; a test model that fails it makes the application reset, so MCUboot
reverts image 1. Later layers (always-on loop, BLE, MLPerf Tiny DUT protocol) hang off `VirtualBoard.runtime`.
In stock mode the SMP server is configured as Zephyr's smp_svr sample ships: no wedge group, no MCUmgr params,
no OS info, no bootloader info.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

from wedge.boards import Board
from wedge.firmware.errors import SigningKeyError, VirtualBoardError
from wedge.firmware.image.firmware_image import FirmwareDescriptor, FirmwareImage, build_firmware_image
from wedge.firmware.image.keys import load_signing_key, public_key_hash
from wedge.firmware.image.model_image import ModelImage, read_any_image_file, require_trusted
from wedge.firmware.protocol.console import boot_banner, console_line
from wedge.firmware.protocol.smp_messages import OP, GroupId, ImageCommand, OsCommand
from wedge.firmware.protocol.smp_serial import Console, Frame, SerialFrameReader, encode_frame
from wedge.firmware.protocol.wedge_group import WEDGE_GROUP_ID, ModelState, ModelStatus, WedgeCommand
from wedge.firmware.virtual.bootloader import Trust, boot, slot_image
from wedge.firmware.virtual.dut_server import DutServer
from wedge.firmware.virtual.faults import FaultSettings, LinkFaults
from wedge.firmware.virtual.flash import Flash, FlashFaults, FlashLayout, power_off
from wedge.firmware.virtual.img_mgmt import ImageGroup, ImageGroupOptions
from wedge.firmware.virtual.lock import StateLock
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
# The version of the application a fresh board is provisioned with when it signs its own (a private --key).
FACTORY_FIRMWARE_VERSION: Final[str] = "1.0.0"
RESET_DELAY_S: Final[float] = 0.25  # Zephyr's default CONFIG_MCUMGR_GRP_OS_RESET_MS
REVERT_NOTE: Final[str] = "which reverts at the next reset unless confirmed"

# The board's console, one line an event (boot, reset); `wedge emulate` prints the `wedge.firmware.virtual` family.
logger = logging.getLogger(__name__)


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
    stock: bool = False             # mcumgr as smp_svr ships: no wedge group, no params, no OS/bootloader info
    wedge_group_id: int = WEDGE_GROUP_ID
    dut_link: Path | None = None    # the MLPerf Tiny DUT protocol on its own pty (symlinked here)
    firmware_path: Path | None = None  # the application image a fresh board is provisioned with


class VirtualBoard:
    """One virtual board in the running event loop."""

    def __init__(self, board: Board, options: BoardOptions, on_port: Callable[[str], None]) -> None:
        self.board = board
        self.options = options
        self.state = StateFolder(options.state_dir)
        self.lock = StateLock(options.state_dir)
        self.lock.acquire()
        try:
            self._setup(board, options, on_port)
        except BaseException:
            self.lock.release()
            raise

    def _setup(self, board: Board, options: BoardOptions, on_port: Callable[[str], None]) -> None:
        self._remembered, self.public_key = self.state.provision(board.name, options.key_path)
        self.faults = options.faults
        self.link_faults = LinkFaults(options.faults)
        self.flash_faults = FlashFaults(
            power_cut_after_bytes=options.faults.power_cut_after_bytes,
            op_delay_s=options.faults.slow_flash_ms / 1000,
        )
        self.flash = Flash(self.state.flash_path, FlashLayout.for_board(board), self.flash_faults,
                           on_power_cut=self._power_lost)
        self.trust = Trust(public_key=self.public_key, board=board.name,
                           model_budget_bytes=board.budgets.model_slot_bytes)
        self._provision_firmware()
        self.buf_size = board.flashing.mcumgr_buf_size or DEFAULT_BUF_SIZE
        self.runtime: ModelRuntime | None = None
        self.firmware: FirmwareImage | None = None
        self.status = ModelStatus(ModelState.NO_MODEL, self._remembered.boot_count)
        self.booting = True
        self.dark = False  # no bootable application: MCUboot has nothing to start, the UART stays silent
        self._on_port = on_port
        self._reset_pending = False
        self._reader = SerialFrameReader(max_message_bytes=self.buf_size)
        self.images = ImageGroup(self.flash, ImageGroupOptions(allow_confirm_non_active_any=not options.stock),
                                 on_confirmed=self._confirmed)
        self.server = self._build_server()
        self.uart: PtyUart | None = None
        self.dut_uart: PtyUart | None = None
        # MLPerf Tiny DUT commands: on their own UART with --dut-link, else as console text between the SMP
        # frames (wedge's application reads the shell UART that mcumgr shares; stock smp_svr drops non-SMP text).
        self.dut = DutServer(board, lambda: self.runtime, self._send_dut)
        self._tasks: set[asyncio.Task[None]] = set()
        self._ble: BleSupervisor | None = None
        if options.ble is not None:
            from wedge.firmware.virtual.ble_supervisor import BleSupervisor  # Bumble only when BLE is on

            self._ble = BleSupervisor(board, options.ble, options.state_dir, smp_handler=self.handle_smp)

    # -- wiring -----------------------------------------------------------------------------------------

    def _provision_firmware(self) -> None:
        """A fresh board's image 0: the given application image, or wedge's own signed with a private --key."""
        pair = self.flash.layout.image(0)
        if slot_image(self.flash, pair, 0) is not None:
            return
        options = self.options
        if options.firmware_path is not None:
            image = read_any_image_file(options.firmware_path)
            if not isinstance(image, FirmwareImage):
                raise VirtualBoardError(f"{options.firmware_path} is a model image, not an application firmware "
                                        "(`wedge pack --firmware` builds one)")
            require_trusted(image, options.firmware_path.name, self.public_key)
        else:
            if options.key_path is None:
                raise VirtualBoardError("a new virtual board needs its application firmware: pass --firmware FW.img")
            try:
                load_signing_key(options.key_path)
            except SigningKeyError:
                raise VirtualBoardError(
                    "a new virtual board needs its application (image 0) signed by the key it trusts: pass "
                    "--firmware FW.img (`wedge pack --firmware`), or the private --key to sign wedge's own") from None
            image = build_firmware_image(self.board, options.key_path, FACTORY_FIRMWARE_VERSION)
        if image.size_bytes > pair.data_bytes:
            raise VirtualBoardError(f"the application image is {image.size_bytes:,} bytes; image 0's slot holds "
                                    f"{pair.data_bytes:,}")
        # As a factory programmer writes it: the image alone, no trailer (MCUboot boots it as confirmed).
        self.flash.erase(pair.primary.offset, pair.primary.size_bytes)
        self.flash.write(pair.primary.offset, image.data)

    def _power_lost(self) -> NoReturn:
        """A dead board's USB port disappears with it: drop the port links so no host opens a recycled pty."""
        for link in (self.options.link, self.options.dut_link):
            if link is not None and link.is_symlink():
                link.unlink()
        power_off()

    def _confirmed(self, image: int) -> None:
        """The running test image was confirmed: it no longer reverts, and the boot event says so."""
        if self.status.event and image == self.board.flashing.model_image:
            event = self.status.event.replace(REVERT_NOTE, "then confirmed")
            self.status = replace(self.status, event=event)
            self._remember(event=event)

    @property
    def descriptor(self) -> FirmwareDescriptor | None:
        return None if self.firmware is None else self.firmware.descriptor

    def _build_server(self) -> SmpServer:
        server = SmpServer()
        os_group = OsGroup(self.board, self.buf_size, self._request_reset,
                           node_name=self.options.ble.name or self.board.ble.name_prefix
                           if self.options.ble is not None and self.board.ble is not None else "unknown")
        # os_mgmt_echo is registered for read and write.
        handlers = [(OsCommand.ECHO, OP.WRITE, os_group.echo), (OsCommand.ECHO, OP.READ, os_group.echo),
                    (OsCommand.RESET, OP.WRITE, os_group.reset)]
        if not self.options.stock:
            handlers += [(OsCommand.MCUMGR_PARAMETERS, OP.READ, os_group.params),
                         (OsCommand.OS_APPLICATION_INFO, OP.READ, os_group.info),
                         (OsCommand.BOOTLOADER_INFO, OP.READ, os_group.bootloader_info)]
        for command, op, handler in handlers:
            server.register(GroupId.OS_MANAGEMENT, command, op, handler)
        for command, op, handler in (
            (ImageCommand.STATE, OP.READ, self.images.state_read),
            (ImageCommand.STATE, OP.WRITE, self.images.state_write),
            (ImageCommand.UPLOAD, OP.WRITE, self.images.upload),
            (ImageCommand.ERASE, OP.WRITE, self.images.erase),
        ):
            server.register(GroupId.IMAGE_MANAGEMENT, command, op, handler)
        if not self.options.stock:
            wedge_group = WedgeGroup(self.board, public_key_hash(self.public_key), lambda: self.status,
                                     lambda: self.descriptor)
            group = self.options.wedge_group_id
            server.register(group, WedgeCommand.BOARD_INFO, OP.READ, wedge_group.board_info)
            server.register(group, WedgeCommand.MODEL_STATUS, OP.READ, wedge_group.model_status)
        return server

    def handle_smp(self, message: bytes) -> bytes | None:
        """One SMP request from any transport (the UART, or the BLE SMP service); None while nothing listens."""
        if self.booting or self._reset_pending or self.dark:
            return None
        reply = self.server.handle(message)
        if self._reset_pending:
            self._spawn(self._reset_after_reply())
        return reply

    # -- life cycle ----------------------------------------------------------------------------------------

    async def start(self) -> str:
        """Open the UART and boot; returns the port path once the board answers."""
        loop = asyncio.get_running_loop()
        self.uart = PtyUart(loop, self._on_rx, self._on_port, self.link_faults,
                            baud=self.options.baud, link=self.options.link)
        path = self.uart.start()
        if self.options.dut_link is not None:
            self.dut_uart = PtyUart(loop, self._on_dut_rx, lambda _path: None, LinkFaults(FaultSettings()),
                                    baud=self.options.baud, link=self.options.dut_link)
            self.dut_uart.start()
        await self.reboot()
        return path

    async def stop(self) -> None:
        if self._ble is not None:
            await self._ble.before_boot()
        self.dut.close()
        for task in list(self._tasks):
            task.cancel()
        for uart in (self.uart, self.dut_uart):
            if uart is not None:
                uart.close()
        if self.runtime is not None:
            self.runtime.close()
        self.flash.close()
        self.lock.release()

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
        if self._ble is not None and not self.dark:
            await self._ble.after_boot(self.runtime)
        if self.uart is not None and not self.dark:
            model = f"model {self.status.model_name} {self.status.model_version}" if self.status.model_name else "no model"
            self.uart.send(boot_banner())
            if self.status.event:
                self.uart.send(console_line(f"wedge: {self.status.event}"))
            self.uart.send(console_line(f"wedge: {self.board.name} {self.firmware.label if self.firmware else ''}: "
                                        f"{model} {self.status.state.name.lower().replace('_', ' ')}"))
        if not self.dark:
            self.dut.boot()
        logger.info("%s", self.boot_line())

    def boot_line(self) -> str:
        """What the board's console says after a boot, in one line."""
        if self.dark:
            return f"boot {self.status.boot_count}: MCUboot found no application to start; the UART stays silent"
        status = self.status
        model = f"{status.model_name} {status.model_version}" if status.model_name else "no model"
        state = status.state.name.lower().replace("_", " ")
        firmware = self.firmware.label if self.firmware else "no application"
        line = f"boot {status.boot_count}: {firmware}, {model} ({state})" if status.model_name else \
            f"boot {status.boot_count}: {firmware}, {model}"
        return line + (f"; {status.event}" if status.event else "")

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
        self.firmware = None
        self.dark = False
        for _ in range(_MAX_BOOTS_PER_RESET):
            result = boot(self.flash, self.trust)
            events.extend(result.events)
            self.firmware = result.firmware
            if result.firmware is None:
                self.dark = True  # MCUboot found no application to start
                status = ModelStatus(ModelState.NO_MODEL, status.boot_count)
                break
            descriptor = result.firmware.descriptor
            image = result.model
            if image is None:
                status = ModelStatus(ModelState.NO_MODEL, status.boot_count)
                break
            self._remember(self_test_hash=image.image_hash.hex())
            runtime, test = start_runtime(image, descriptor.arena_bytes, frozenset(descriptor.ops))
            self._remember(self_test_hash=None)
            status = ModelStatus(
                ModelState.RUNNING if test.passed else ModelState.FAILED, status.boot_count,
                model_name=image.manifest.model_name, model_version=image.manifest.model_version,
                model_hash=image.image_hash, arena_used_bytes=image.manifest.arena_bytes,
                self_test_us=test.duration_us,
            )
            testing = result.testing.get(image.image_number, False)
            if test.passed:
                self.runtime = runtime
                if testing:
                    events.append(f"booted {_label(image)} for test, {REVERT_NOTE}")
                break
            if not testing:
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
        if self.booting or self._reset_pending or self.dark:
            return  # nobody listens on the UART while the board boots
        for event in self._reader.feed(data):
            if isinstance(event, Frame):
                reply = self.handle_smp(event.message)
                if reply is not None and self.uart is not None:
                    self.uart.send(encode_frame(reply))
                if self._reset_pending:
                    return
            elif isinstance(event, Console) and self._dut_on_smp_uart:
                self.dut.feed(event.text)

    @property
    def _dut_on_smp_uart(self) -> bool:
        return self.options.dut_link is None and not self.options.stock

    def _on_dut_rx(self, data: bytes) -> None:
        if not (self.booting or self._reset_pending or self.dark):
            self.dut.feed(data)

    def _send_dut(self, data: bytes) -> None:
        uart = self.dut_uart if self.options.dut_link is not None else self.uart
        if uart is not None and not self.booting and (self.options.dut_link is not None or self._dut_on_smp_uart):
            uart.send(data)

    def _request_reset(self) -> None:
        logger.info("reset requested over SMP")
        self._reset_pending = True

    async def _reset_after_reply(self) -> None:
        if self.uart is not None:
            await self.uart.drain()
        # os_mgmt_reset reboots from a timer (CONFIG_MCUMGR_GRP_OS_RESET_MS), so the reply leaves on any transport.
        await asyncio.sleep(RESET_DELAY_S)
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

    def drop_ble(self) -> None:
        """The radio drops every connection (a fault knob: what a central sees when the link is lost)."""
        if self._ble is not None:
            self._spawn(self._ble.disconnect_all())

    def press_reset(self) -> None:
        """The reset button: reboot now, whatever the UART is doing."""
        logger.info("reset button pressed")
        self._spawn(self.reboot())

    def remembered(self) -> Remembered:
        return self._remembered
