"""Every tool call, logged with its arguments and its outcome: one JSON line each, on stderr or in a log file.

Never on stdout: in stdio mode stdout carries the protocol. It is an MCP server middleware, so calls to unknown
tools and calls with bad arguments are logged as well.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Final

from mcp.server.context import CallNext, ServerRequestContext

from wedge.mcp.errors import McpError

# Methods worth a line: what an agent did, and what it read. Listing and handshakes are not logged.
LOGGED_METHODS: Final[frozenset[str]] = frozenset({"tools/call", "resources/read", "prompts/get"})


class CallLog:
    """Writes the lines; `path` None means stderr."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = path.open("a", encoding="utf-8")
            except OSError as exc:
                raise McpError(f"cannot write the call log {path}: {exc.strerror or exc}") from None

    def write(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps({"time": round(time.time(), 3), **entry}, default=str, separators=(",", ":"))
        with self._lock:
            stream = self._file or sys.stderr
            stream.write(line + "\n")
            stream.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        if ctx.method not in LOGGED_METHODS or ctx.request_id is None:
            return await call_next(ctx)
        params = dict(ctx.params or {})
        params.pop("_meta", None)
        entry: dict[str, Any] = {"method": ctx.method, "id": ctx.request_id}
        if ctx.method == "tools/call":
            entry |= {"tool": params.get("name"), "arguments": params.get("arguments") or {}}
        else:
            entry |= params
        self.write({**entry, "event": "call"})
        started = time.monotonic()
        outcome: dict[str, Any] = {"outcome": "cancelled"}
        try:
            result = await call_next(ctx)
            outcome = _outcome(result)
            return result
        except Exception as exc:
            outcome = {"outcome": "error", "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
            raise
        finally:
            self.write({**entry, "event": "done", **outcome, "elapsed_s": round(time.monotonic() - started, 3)})


def _outcome(result: Any) -> dict[str, Any]:
    data = result.model_dump(by_alias=True) if hasattr(result, "model_dump") else result
    if isinstance(data, dict) and data.get("isError"):
        texts = [block.get("text", "") for block in data.get("content") or [] if isinstance(block, dict)]
        return {"outcome": "error", "error": " ".join(texts)[:500]}
    return {"outcome": "ok"}
