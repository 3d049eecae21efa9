"""Virtual boards and the virtual air as child processes, for the bench, benchmarks and integration tests.

`EmulatorProcess` is `wedge emulate` (a board on a pty, the same process a user runs by hand, so it is addressed
like a real board by its port); `AirProcess` and `BleBoardProcess` are the virtual BLE air and one board's BLE
peripheral. All are `ChildProcess`es: JSON lines on stdout, commands on stdin, SIGTERM then SIGKILL to stop.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wedge.boards import DEFAULT_BOARD
from wedge.child_process import DEFAULT_STOP_TIMEOUT_S, DEFAULT_TIMEOUT_S, ChildProcess
from wedge.errors import WedgeError
from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.virtual.control import control_request


@dataclass(frozen=True)
class Announcement:
    """What `wedge emulate --json` prints when its port is up (and again after each reboot)."""

    port: str
    link: str | None
    control: str
    model: str | None
    event: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Announcement:
        return cls(data["port"], data.get("link"), data["control"], data.get("model"), data.get("event"))


class EmulatorProcess:
    """One `wedge emulate` on a state folder (`folder/state`) with a stable link (`folder/tty`); restartable."""

    def __init__(self, folder: Path, key: Path | None, board: str = DEFAULT_BOARD, *, extra: Sequence[str] = (),
                 error: type[WedgeError] = VirtualBoardError) -> None:
        self.folder = folder
        self.board = board
        self.state = folder / "state"
        self.link = folder / "tty"
        self.key = key
        self.extra = tuple(extra)
        self.error = error
        self.log_path = folder / "emulator.err"
        self.child: ChildProcess | None = None

    @property
    def port(self) -> str:
        return str(self.link)

    @property
    def control_path(self) -> Path:
        return self.state / "control.sock"

    def start(self, *extra: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Announcement:
        """Start the board (again, on the same state) and wait for its port; `error` if it exits or stays silent."""
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "wedge.cli", "emulate", "--board", self.board, "--state", str(self.state),
                "--link", str(self.link), "--json", *self.extra, *extra]
        if self.key is not None:
            args += ["--key", str(self.key)]
        self.child = ChildProcess(args, self.log_path, error=self.error)
        return self.next_announcement(timeout_s)

    def next_announcement(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> Announcement:
        return Announcement.from_dict(self._running().wait_for("port", timeout_s))

    def log_tail(self) -> str:
        return self.child.log_tail() if self.child is not None else "(not started)"

    def control(self, **request: Any) -> dict[str, Any]:
        return control_request(self.control_path, request)

    def status(self) -> dict[str, Any]:
        return self.control(op="status")

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def running_process(self) -> subprocess.Popen[str]:
        """The OS process of the current run (to wait on its exit beside other events)."""
        return self._running().process

    def wait_exit(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
        return self._running().wait_exit(timeout_s)

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        if self.child is not None:
            self.child.terminate(timeout_s)
        self.child = None

    def _running(self) -> ChildProcess:
        if self.child is None:
            raise self.error(f"the virtual {self.board} in {self.folder} is not started")
        return self.child


class AirProcess(ChildProcess):
    """`python -m wedge.firmware.virtual.ble.air`: the transport spec for boards and the bridge is `spec`."""

    def __init__(self, log_dir: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__([sys.executable, "-m", "wedge.firmware.virtual.ble.air"], log_dir / "air.log",
                         error=VirtualBoardError)
        self.spec: str = self.wait_for("air", timeout_s)["air"]


class BleBoardProcess(ChildProcess):
    """`python -m wedge.firmware.virtual.ble`: one board's BLE peripheral; `info` is what it announced."""

    def __init__(self, board: str, model: Path, transport_spec: str, log_dir: Path, *, name: str,
                 extra_args: Sequence[str] = (), timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        args = [sys.executable, "-m", "wedge.firmware.virtual.ble", "--board", board, "--model", str(model),
                "--transport", transport_spec, "--name", name, *extra_args]
        super().__init__(args, log_dir / f"{name}.log", error=VirtualBoardError)
        self.board_name = name
        self.events: list[dict[str, Any]] = []  # what its display showed and its pairings, oldest first
        self.info: dict[str, Any] = self.next_message(timeout_s, self._answer_or_keep("ready"), "'ready'")["ready"]

    def _answer_or_keep(self, key: str | None = None) -> Callable[[dict[str, Any]], bool]:
        def accept(message: dict[str, Any]) -> bool:
            if "event" in message:
                self.events.append(message["event"])
                return False
            return key in message if key is not None else "ready" not in message
        return accept

    def command(self, message: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send one command and return its answer (see `wedge.firmware.virtual.ble.__main__.COMMANDS`)."""
        self.send(message)
        return self.next_message(timeout_s, self._answer_or_keep(), f"an answer to {message}")

    def wait_event(self, kind: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The first event of `kind` (`paired`, `pairing_failed`, `display`) not taken yet."""
        deadline = time.monotonic() + timeout_s
        while True:
            for index, event in enumerate(self.events):
                if kind in event:
                    return self.events.pop(index)[kind]
            message = self.next_message(max(0.0, deadline - time.monotonic()), lambda m: "event" in m,
                                        f"a {kind!r} event")
            self.events.append(message["event"])
