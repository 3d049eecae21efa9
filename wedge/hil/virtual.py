"""Virtual boards for the bench: a `wedge emulate` process per board, its port read from the JSON it prints.

The process is the same one a user runs by hand, so the bench addresses it exactly like a real board (a port
path); the control socket in its state folder stands in for a lab's power switch and cable faults.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Final

from wedge.firmware.virtual.control import control_request
from wedge.hil.errors import HilError

START_TIMEOUT_S: Final[float] = 60.0
STOP_TIMEOUT_S: Final[float] = 20.0


class VirtualBoardProcess:
    """One `python -m wedge.edge.cli emulate` process on a state folder; `port` is its stable link."""

    def __init__(self, profile: str, folder: Path, public_key: Path) -> None:
        self.profile = profile
        self.folder = folder
        self.state = folder / "state"
        self.link = folder / "tty"
        self.public_key = public_key
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_path = folder / "emulator.err"

    @property
    def port(self) -> str:
        return str(self.link)

    @property
    def control_path(self) -> Path:
        return self.state / "control.sock"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> dict[str, Any]:
        """Start the board and wait for its port; HilError if it exits or stays silent."""
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "wedge.edge.cli", "emulate", "--board", self.profile, "--state",
                   str(self.state), "--link", str(self.link), "--key", str(self.public_key), "--json"]
        self._lines = queue.Queue()
        with self.stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
        threading.Thread(target=self._pump, args=(self.process, self._lines), daemon=True).start()
        return self.next_announcement(timeout_s)

    @staticmethod
    def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    def next_announcement(self, timeout_s: float = START_TIMEOUT_S) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise HilError(f"the virtual {self.profile} printed no port within {timeout_s:.0f} s: {self.stderr()}") from None
        if line is None:
            raise HilError(f"the virtual {self.profile} exited: {self.stderr()}")
        announcement: dict[str, Any] = json.loads(line)
        return announcement

    def stderr(self) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return text.strip().splitlines()[-1] if text.strip() else "(no output)"

    def control(self, **request: Any) -> dict[str, Any]:
        return control_request(self.control_path, request)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_exit(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
