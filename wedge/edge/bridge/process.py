"""`wedge bridge --status-json` as a child process, for the HIL streaming check and the bridge benchmark (and
`StatusProcess`, any wedge command with `--status-json`, e.g. `wedge fleet`).

Its status lines arrive on stderr (stdout belongs to a `jsonl:-` sink); `wait_status` blocks until one
satisfies a condition, and `latest` is the last one seen. A bridge pairs with a device it has no bond with
(`--pair`); on a Bumble transport its bonds are kept beside its log unless `keystore` says where; a passkey is
typed on its stdin (`type_line`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from wedge.child_process import DEFAULT_TIMEOUT_S, ChildProcess
from wedge.edge.bridge.errors import BridgeError
from wedge.errors import WedgeError

WATCHDOG_S: Final[float] = 1.0
KEYSTORE_SUFFIX: Final[str] = "-bonds.json"


class StatusProcess(ChildProcess):
    """A wedge command run with `--status-json`: one `{"status": ...}` line a second on stderr."""

    def __init__(self, args: Sequence[str], log_path: Path, *, error: type[WedgeError],
                 env: dict[str, str] | None = None, stdout_path: Path | None = None) -> None:
        super().__init__(args, log_path, json_stream="stderr", error=error, env=env, stdout_path=stdout_path)
        self.latest: dict[str, Any] = {}

    def wait_status(self, what: str, predicate: Callable[[dict[str, Any]], bool],
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The first status line for which `predicate` holds; `error` naming `what` if none comes in time."""
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                status = self.next_message(remaining, lambda m: "status" in m, what)["status"]
            except self.error:
                if not self.alive():
                    raise
                break
            self.latest = status
            if predicate(status):
                return status
        raise self.error(f"{self.name} never reached {what} within {timeout_s:.0f} s (last status {self.latest})")


class BridgeProcess(StatusProcess):
    """A bridge following `devices` into `sinks` (sink specs, e.g. `sqlite:PATH`), over `transport` when given."""

    def __init__(self, devices: Sequence[str], sinks: Sequence[str], log_path: Path, *, transport: str | None = None,
                 extra: Sequence[str] = (), error: type[WedgeError] = BridgeError,
                 env: dict[str, str] | None = None, pair: bool = True, keystore: Path | None = None) -> None:
        args = [sys.executable, "-m", "wedge.cli", "bridge", "--status-json", "--watchdog-s", str(WATCHDOG_S)]
        for device in devices:
            args += ["--device", device]
        for sink in sinks:
            args += ["--sink", sink]
        self.keystore: Path | None = None
        if transport is not None:
            # Its own adapter's bonds (two bridges on one air are two adapters); pass `keystore` again to a
            # restarted bridge and it finds its bonds, as a real one does.
            self.keystore = keystore or log_path.with_name(f"{log_path.stem}{KEYSTORE_SUFFIX}")
            args += ["--transport", transport, "--keystore", str(self.keystore)]
        if pair:
            args.append("--pair")
        super().__init__([*args, *extra], log_path, error=error, env=env)
