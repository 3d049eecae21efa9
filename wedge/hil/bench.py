"""One board of the bench, opened for a test session: its port, signing key, and power (real or virtual).

A `virtual` board is started here as a `wedge emulate` process trusting a throwaway key; a real board must be
on its port, with its key in the map; a labgrid place is taken from its coordinator (wedge.hil.labgrid) and
brings its port and power switch. Power control is the map's `power` command on a real bench (else a place's
power resource); a virtual board's power switch is its process (killed by a power-cut fault, started again).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from wedge.firmware.flash.flasher import FlashOptions
from wedge.firmware.image.keys import generate_keys
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.hil.board_map import BenchBoard
from wedge.hil.errors import HilError

if TYPE_CHECKING:
    from wedge.hil.labgrid import PlaceBoard

POWER_COMMAND_TIMEOUT_S: Final[float] = 30.0


class BoardHandle:
    """A started board: `port` to open, `signing_key` for images it trusts."""

    def __init__(self, entry: BenchBoard, work: Path, *, coordinator: str | None = None) -> None:
        self.entry = entry
        self.work = work
        self.coordinator = coordinator
        self.process: EmulatorProcess | None = None
        self.place: PlaceBoard | None = None
        self.signing_key: Path | None = entry.key_path
        self.port: str = entry.port or ""
        self.dut_port: str = entry.dut_port or self.port

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def virtual(self) -> bool:
        return self.entry.virtual

    @property
    def baud(self) -> int:
        """The map's baud rate; a place's is its NetworkSerialPort's speed."""
        return self.place.baud if self.place is not None else self.entry.baud

    @property
    def flash_options(self) -> FlashOptions:
        return FlashOptions(baud=self.baud)

    def start(self) -> BoardHandle:
        if self.entry.virtual:
            keys = generate_keys(self.work / "keys")
            self.signing_key = keys.private_path
            # A virtual board gets its DUT protocol on a second UART when the map asks for one (any dut_port).
            extra = ("--dut-link", str(self.work / "board" / "dut")) if self.entry.dut_port else ()
            self.process = EmulatorProcess(self.work / "board", keys.private_path, self.entry.profile.name,
                                           extra=extra, error=HilError)
            self.process.start()
            self.port = self.process.port
            self.dut_port = str(self.work / "board" / "dut") if self.entry.dut_port else self.port
            return self
        if self.entry.place is not None:
            from wedge.hil.labgrid import coordinator_address, open_place

            self.place = open_place(coordinator_address(self.coordinator), self.entry.place)
            # A place exports one serial port: SMP and the DUT protocol share it unless the map names a dut_port.
            self.port = self.place.port
            self.dut_port = self.entry.dut_port or self.port
            return self
        for port in {self.port, self.dut_port}:
            if "://" not in port and not Path(port).exists():
                raise HilError(f"board {self.name}: its port {port} is absent (unplugged, or another name?)")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self.place is not None:
            place, self.place = self.place, None
            place.close()

    def control(self, **request: Any) -> dict[str, Any]:
        """A command to the virtual board's control socket (faults, status, reset)."""
        if self.process is None:
            raise HilError(f"board {self.name} is real: it has no control socket")
        return self.process.control(**request)

    @property
    def can_cut_power(self) -> bool:
        return self.process is not None or self.entry.power_command is not None or (
            self.place is not None and self.place.power_driver is not None)

    @property
    def can_switch_power(self) -> bool:
        """Off and on as two steps (a labgrid place's switch); a map command only cycles."""
        return self.entry.power_command is None and self.place is not None and self.place.power_driver is not None

    def power_off(self) -> None:
        self._switch().power_off()

    def power_on(self) -> None:
        self._switch().power_on()

    def _switch(self) -> PlaceBoard:
        if not self.can_switch_power or self.place is None:
            raise HilError(f"board {self.name} has no power switch to turn off and on (only a cycle, or nothing)")
        return self.place

    @property
    def no_power_reason(self) -> str:
        if self.place is not None and self.place.power_absent:
            return self.place.power_absent
        return f"board {self.name} has no power command in the map: no way to cut its power"

    def power_cycle(self) -> None:
        """Power the board off and on (a real board's map command; a virtual board's process is restarted)."""
        if self.process is not None:
            if self.process.alive():
                self.process.stop()
            self.process.start()
            return
        if self.entry.power_command is None and self.place is not None:
            self.place.power_cycle()
            return
        if self.entry.power_command is None:
            raise HilError(f"board {self.name} has no power command in the map")
        try:
            subprocess.run(shlex.split(self.entry.power_command), check=True, timeout=POWER_COMMAND_TIMEOUT_S,
                           capture_output=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise HilError(f"board {self.name}: the power command failed: {exc}") from None

    def wait_power_loss(self, timeout_s: float) -> int:
        """Wait until a virtual board's process died of an armed power cut; its exit code."""
        if self.process is None:
            raise HilError(f"board {self.name} is real: power loss is the power command's job")
        return self.process.wait_exit(timeout_s)
