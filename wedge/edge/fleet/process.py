"""`wedge fleet --status-json` as a child process, for the fleet tests and the fleet benchmark."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from wedge.edge.bridge.process import StatusProcess
from wedge.edge.fleet.errors import FleetError


class FleetProcess(StatusProcess):
    """A fleet subscriber on `source` (an mqtt:// URL) writing into `sinks` (sink specs, e.g. `sqlite:PATH`)."""

    def __init__(self, source: str, sinks: Sequence[str], log_path: Path, *, extra: Sequence[str] = (),
                 env: dict[str, str] | None = None, stdout_path: Path | None = None) -> None:
        args = [sys.executable, "-m", "wedge.cli", "fleet", "--source", source, "--status-json"]
        for sink in sinks:
            args += ["--sink", sink]
        super().__init__([*args, *extra], log_path, error=FleetError, env=env, stdout_path=stdout_path)
