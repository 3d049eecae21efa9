"""Resources: the board profiles, the reports written in the workspace (quantize and HIL: report.json,
report.html, junit.xml), and the stream databases the server was given (a summary per device)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from wedge.errors import WedgeError
from wedge.mcp.errors import McpError
from wedge.mcp.policy import Policy
from wedge.mcp.progress import run_in_worker
from wedge.mcp.tools import boards, streams

F = TypeVar("F", bound=Callable[..., Any])

REPORT_NAMES: Final[frozenset[str]] = frozenset({"report.json", "report.html", "junit.xml"})
MIME_TYPES: Final[dict[str, str]] = {".json": "application/json", ".html": "text/html", ".xml": "application/xml"}
# The report index stops after this many files: a workspace can hold a lot.
MAX_LISTED_REPORTS: Final[int] = 500


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


def report_files(policy: Policy) -> Iterator[Path]:
    """Report files under the workspace (hidden folders, such as a running quantize's, skipped)."""
    found = 0
    for path in sorted(policy.workspace.rglob("*")):
        relative = path.relative_to(policy.workspace)
        if path.name in REPORT_NAMES and not any(part.startswith(".") for part in relative.parts) and path.is_file():
            yield path
            found += 1
            if found == MAX_LISTED_REPORTS:
                return


def read_report(policy: Policy, path: str) -> str:
    resolved = policy.readable(path, "report")
    if resolved.name not in REPORT_NAMES or not resolved.is_file():
        raise McpError(f"{path} is not a report ({', '.join(sorted(REPORT_NAMES))})")
    return resolved.read_text(encoding="utf-8", errors="replace")


def _given_db(policy: Policy, name: str) -> Path:
    for path in policy.stream_dbs:
        if name in (path.name, str(path)):
            return path
    raise McpError(f"unknown stream database {name}: this server was given "
                   f"{', '.join(p.name for p in policy.stream_dbs) or 'none'} (--stream-db)")


def _resource_errors(fn: F) -> F:
    """A WedgeError becomes a resource error with the CLI's one-line message."""

    @functools.wraps(fn)
    async def read(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except WedgeError as exc:
            raise ResourceError(f"error: {exc}") from None

    return read  # type: ignore[return-value]


def register_resources(server: MCPServer, policy: Policy) -> None:

    @server.resource("wedge://boards", name="boards", mime_type="application/json",
                     description="Every board profile: memory, model slot and arena budgets, runtime.")
    @_resource_errors
    async def board_list() -> str:
        listed = await run_in_worker(lambda: [boards.summary(b) for b in boards.board_profiles.list_boards()])
        return _json([b.model_dump() for b in listed])

    @server.resource("wedge://boards/{name}", name="board profile", mime_type="application/json",
                     description="One board profile in full.")
    @_resource_errors
    async def board(name: str) -> str:
        return _json((await run_in_worker(lambda: boards.profile(boards.load_board(name)))).model_dump())

    @server.resource("wedge://reports", name="reports", mime_type="application/json",
                     description="The reports written in the workspace (quantize report.json; HIL report.json, "
                                 "report.html, junit.xml), by path; read one as wedge://reports/PATH.")
    @_resource_errors
    async def report_index() -> str:
        paths = await run_in_worker(lambda: [policy.relative(p) for p in report_files(policy)])
        return _json([{"path": path, "uri": f"wedge://reports/{path}"} for path in paths])

    @server.resource("wedge://reports/{+path}", name="report", mime_type="text/plain",
                     description="A report file in the workspace (report.json, report.html or junit.xml).")
    @_resource_errors
    async def report(path: str) -> str:
        return await run_in_worker(lambda: read_report(policy, path))

    @server.resource("wedge://streams", name="stream databases", mime_type="application/json",
                     description="The stream databases this server was given (--stream-db), each summed up per "
                                 "device; read one as wedge://streams/NAME.")
    @_resource_errors
    async def stream_index() -> str:
        return _json([{"name": p.name, "uri": f"wedge://streams/{p.name}", "path": str(p)} for p in policy.stream_dbs])

    @server.resource("wedge://streams/{name}", name="stream database", mime_type="application/json",
                     description="One stream database: per device the records, seq range, gaps, span, rate.")
    @_resource_errors
    async def stream(name: str) -> str:
        path = _given_db(policy, name)
        return _json(await run_in_worker(lambda: streams.database_summary(path)))
