"""What the long-running commands (bridge, fleet) share: stop on Ctrl-C / SIGTERM or after --duration-s, and
print each status tick as one JSON line on stderr (--status-json)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any


def stop_event(duration_s: float | None) -> asyncio.Event:
    """An event set by SIGINT, SIGTERM, or `duration_s` from now (in the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if duration_s is not None:
        loop.call_later(duration_s, stop.set)
    return stop


def print_status_json(status: Any) -> None:
    """One `{"status": ...}` line on stderr (stdout may carry a sink or the --json summary)."""
    print(json.dumps({"status": status.to_dict()}), file=sys.stderr, flush=True)
