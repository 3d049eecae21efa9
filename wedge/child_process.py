"""A wedge process run as a child (a virtual board, the virtual air, the bridge) that speaks JSON lines.

One home for starting it, waiting for a JSON line with a timeout, talking to it on stdin, and stopping it
politely (SIGTERM, then SIGKILL); on failure the error names the process and the tail of its log.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final, Literal

from wedge.errors import WedgeError

DEFAULT_TIMEOUT_S: Final[float] = 60.0
DEFAULT_STOP_TIMEOUT_S: Final[float] = 20.0
_RECENT_LINES: Final[int] = 5
_EOF: Final = None


class ChildError(WedgeError):
    """A child process exited, or said nothing it was waited for in time."""



def stop_process(process: subprocess.Popen[Any], timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if `process` does not exit within timeout_s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            kill_process(process)


def kill_process(process: subprocess.Popen[Any]) -> None:
    """SIGKILL, and reap it."""
    if process.poll() is None:
        process.kill()
        process.wait()

class ChildProcess:
    """A child whose JSON lines arrive on `json_stream` (stdout or stderr); stderr always ends up in `log_path`.

    When the JSON lines come on stderr they are copied to the log as they arrive, so the log is the whole stderr.
    `error` is the exception raised on a timeout or an early exit (each area passes its own), with the last
    lines of the JSON stream and of the log.
    """

    def __init__(self, args: Sequence[str], log_path: Path, *, json_stream: Literal["stdout", "stderr"] = "stdout",
                 error: type[WedgeError] = ChildError, cwd: Path | None = None,
                 env: dict[str, str] | None = None, stdout_path: Path | None = None) -> None:
        self.args = list(args)
        self.log_path = log_path
        self.error = error
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._recent: collections.deque[str] = collections.deque(maxlen=_RECENT_LINES)
        self._copy_to_log = json_stream == "stderr"
        self._log_lock = threading.Lock()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[str] = log_path.open("a")
        child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        pipe_stdout = json_stream == "stdout"
        # With the JSON lines on stderr, stdout (a command's --json result, a jsonl:- sink) goes to `stdout_path`.
        self._stdout: IO[str] | None = None if pipe_stdout or stdout_path is None else stdout_path.open("w")
        self.process: subprocess.Popen[str] = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, text=True, cwd=cwd, env=child_env,
            stdout=subprocess.PIPE if pipe_stdout else (self._stdout or subprocess.DEVNULL),
            stderr=self._log if pipe_stdout else subprocess.PIPE,
        )
        stream = self.process.stdout if pipe_stdout else self.process.stderr
        assert stream is not None
        self._pump_thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._pump_thread.start()

    @property
    def name(self) -> str:
        """The command, short enough for an error message."""
        return " ".join(Path(a).name if i == 0 else a for i, a in enumerate(self.args[:4]))

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            if self._copy_to_log:
                with self._log_lock:
                    if not self._log.closed:
                        self._log.write(line)
            self._lines.put(line)
        self._lines.put(_EOF)

    def next_message(self, timeout_s: float = DEFAULT_TIMEOUT_S,
                     accept: Callable[[dict[str, Any]], bool] = lambda _: True, what: str = "a JSON line") -> dict[str, Any]:
        """The next JSON object line that `accept` takes; other lines are skipped. `error` on timeout or exit."""
        while True:
            try:
                line = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                raise self.error(f"{self.name} said no {what} within {timeout_s:g} s; {self._said()}") from None
            if line is _EOF:
                self._lines.put(_EOF)  # later waits fail at once too
                raise self.error(f"{self.name} exited (code {self.process.wait()}) before {what}; {self._said()}")
            self._recent.append(line.strip())
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and accept(message):
                return message

    def wait_for(self, key: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The next JSON line holding `key`."""
        return self.next_message(timeout_s, lambda message: key in message, repr(key))

    def send(self, message: dict[str, Any]) -> None:
        """One JSON line on the child's stdin."""
        self.type_line(json.dumps(message))

    def type_line(self, text: str) -> None:
        """One line of text on the child's stdin (what a person types at its prompt)."""
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def _said(self) -> str:
        recent = "" if self._copy_to_log else f"last lines: {list(self._recent)}, "
        return f"{recent}log: {self.log_tail()}"

    def log_tail(self, lines: int = 8) -> str:
        with self._log_lock:
            if not self._log.closed:
                self._log.flush()
        if not self.log_path.exists():
            return "(no output)"
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        return " | ".join(tail) if tail else "(no output)"

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_exit(self, timeout_s: float) -> int:
        """The exit code, once the process ended and all it printed is read (and in the log)."""
        code = self.process.wait(timeout=timeout_s)
        self._pump_thread.join(timeout_s)
        with self._log_lock:
            if not self._log.closed:
                self._log.flush()
        return code

    def terminate(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> int:
        """SIGTERM (a clean shutdown), then SIGKILL if it does not exit in time; returns the exit code."""
        stop_process(self.process, timeout_s)
        self._close_log()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: the process dies without saving anything (a crash, a battery pulled)."""
        kill_process(self.process)
        self._close_log()

    def _close_log(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        with self._log_lock:
            self._log.close()
        if self._stdout is not None:
            self._stdout.close()
