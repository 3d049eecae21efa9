"""The tests' handle on the device core: a proxy whose method calls run in the sanitized worker process."""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

from tests.conftest import REPO_ROOT

_LENGTH: Final = struct.Struct("<I")


class CoreCrashed(RuntimeError):
    """The worker died: ASan or UBSan found a bad access (its report is in the message), or the C code crashed."""


class CoreError(RuntimeError):
    """The harness itself raised in the worker (a bug in the test glue, not in the C code)."""


class Core:
    """`core.method(args)` runs tests.device_c.host_api.HostApi.method in the worker and returns its result."""

    def __init__(self, module_dir: Path, asan_runtime: Path) -> None:
        self._log = tempfile.NamedTemporaryFile(prefix="wedge-core-", suffix=".log", delete=False)
        env = {**os.environ, "LD_PRELOAD": str(asan_runtime), "PYTHONMALLOC": "malloc",
               "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1",
               "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.device_c.worker", str(module_dir), str(REPO_ROOT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=REPO_ROOT, env=env)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        if self._process.poll() is not None:
            raise CoreCrashed(f"the device core worker is gone (exit {self._process.returncode}):\n{self.log_tail()}")
        data = pickle.dumps((name, args, kwargs))
        try:
            self._process.stdin.write(_LENGTH.pack(len(data)) + data)
            self._process.stdin.flush()
            head = self._process.stdout.read(_LENGTH.size)
        except BrokenPipeError:
            head = b""
        if len(head) < _LENGTH.size:
            self._process.wait(timeout=30)
            raise CoreCrashed(f"{name}{args!r:.200} killed the device core (exit {self._process.returncode}):\n"
                              f"{self.log_tail()}")
        ok, value = pickle.loads(self._process.stdout.read(_LENGTH.unpack(head)[0]))
        if not ok:
            raise CoreError(value)
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._call(name, *args, **kwargs)

    def log_tail(self, lines: int = 60) -> str:
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._log.close()
        os.unlink(self._log.name)
