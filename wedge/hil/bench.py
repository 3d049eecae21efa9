"""One board of the bench, opened for a test session: its port, signing key, and power (real or virtual).

A `virtual` board is started here as a `wedge emulate` process trusting a throwaway key; a real board must be
on its port, with its key in the map. Power control is the map's `power` command on a real bench; a virtual
board's power switch is its process (killed by a power-cut fault, started again on the same flash).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any, Final

from wedge.firmware.flash.flasher import FlashOptions
from wedge.firmware.image.keys import generate_keys
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.hil.board_map import BenchBoard
from wedge.hil.errors import HilError

POWER_COMMAND_TIMEOUT_S: Final[float] = 30.0


class BoardHandle:
    """A started board: `port` to open, `signing_key` for images it trusts."""

    def __init__(self, entry: BenchBoard, work: Path) -> None:
        self.entry = entry
        self.work = work
        self.process: EmulatorProcess | None = None
        self.signing_key: Path | None = entry.key_path
        self.port = entry.port
        self.dut_port = entry.dut_port or entry.port

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def virtual(self) -> bool:
        return self.entry.virtual

    @property
    def flash_options(self) -> FlashOptions:
        return FlashOptions(baud=self.entry.baud)

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
        for port in {self.entry.port, self.dut_port}:
            if "://" not in port and not Path(port).exists():
                raise HilError(f"board {self.name}: its port {port} is absent (unplugged, or another name?)")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def control(self, **request: Any) -> dict[str, Any]:
        """A command to the virtual board's control socket (faults, status, reset)."""
        if self.process is None:
            raise HilError(f"board {self.name} is real: it has no control socket")
        return self.process.control(**request)

    @property
    def can_cut_power(self) -> bool:
        return self.process is not None or self.entry.power_command is not None

    def power_cycle(self) -> None:
        """Power the board off and on (a real board's map command; a virtual board's process is restarted)."""
        if self.process is not None:
            if self.process.alive():
                self.process.stop()
            self.process.start()
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
