"""The virtual air and BLE boards as child processes, for benches, bench scripts and integration tests.

Each child prints JSON lines; `wait_for` blocks until a line with a given key arrives (or the timeout
passes, naming the output seen so far), and `command` sends a board a fault or status command on stdin.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from wedge.firmware.errors import VirtualBoardError

DEFAULT_START_TIMEOUT_S: Final[float] = 60.0


@dataclass
class ChildProcess:
    """A child speaking JSON lines on stdout; stderr goes to a log file so a pipe never fills up."""

    args: list[str]
    log_path: Path
    process: subprocess.Popen[str] = field(init=False)
    _lines: queue.Queue[str] = field(default_factory=queue.Queue, init=False)
    _seen: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._log = self.log_path.open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                        text=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put("")

    def wait_for(self, key: str, timeout_s: float = DEFAULT_START_TIMEOUT_S) -> dict[str, Any]:
        """The next JSON line holding `key`; VirtualBoardError with the output tail when none comes in time."""
        while True:
            try:
                line = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                raise VirtualBoardError(f"no {key!r} from {' '.join(self.args[:4])} within {timeout_s:g} s; "
                                        f"stdout: {self._seen[-5:]}, log: {self.log_tail()}") from None
            if line == "":
                raise VirtualBoardError(f"{' '.join(self.args[:4])} exited ({self.process.wait()}) before {key!r}; "
                                        f"log: {self.log_tail()}")
            self._seen.append(line.strip())
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and key in message:
                return message

    def log_tail(self, lines: int = 8) -> str:
        if not self._log.closed:
            self._log.flush()
        return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def terminate(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (a clean shutdown), then SIGKILL if it does not exit in time; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: the process dies without saving anything (a crash, a battery pulled)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


class AirProcess(ChildProcess):
    """`python -m wedge.firmware.virtual.ble.air`: the transport spec for boards and the bridge is `spec`."""

    def __init__(self, log_dir: Path, timeout_s: float = DEFAULT_START_TIMEOUT_S) -> None:
        super().__init__([sys.executable, "-m", "wedge.firmware.virtual.ble.air"], log_dir / "air.log")
        self.spec: str = self.wait_for("air", timeout_s)["air"]


class BoardProcess(ChildProcess):
    """`python -m wedge.firmware.virtual.ble`: one board's BLE peripheral; `info` is what it announced."""

    def __init__(self, board: str, model: Path, transport_spec: str, log_dir: Path, *, name: str,
                 extra_args: Sequence[str] = (), timeout_s: float = DEFAULT_START_TIMEOUT_S) -> None:
        args = [sys.executable, "-m", "wedge.firmware.virtual.ble", "--board", board, "--model", str(model),
                "--transport", transport_spec, "--name", name, *extra_args]
        super().__init__(args, log_dir / f"{name}.log")
        self.name = name
        self.info: dict[str, Any] = self.wait_for("ready", timeout_s)["ready"]

    def command(self, message: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send one command and return its answer (see `wedge.firmware.virtual.ble.__main__.COMMANDS`)."""
        self.send(message)
        while True:
            answer = self.wait_for_any(timeout_s)
            if "ready" not in answer:
                return answer

    def wait_for_any(self, timeout_s: float) -> dict[str, Any]:
        while True:
            try:
                line = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                raise VirtualBoardError(f"board {self.name} did not answer within {timeout_s:g} s") from None
            if line == "":
                raise VirtualBoardError(f"board {self.name} exited; log: {self.log_tail()}")
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                return message
