"""How a wedge tool is registered: its errors become tool errors carrying the CLI's one-line message.

A WedgeError raised by the library (or by the server's policy) is returned as a tool result with `isError` and the
text `error: <message>`, exactly the line `wedge` prints; anything else is the SDK's: a crash logged on stderr.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from wedge.errors import WedgeError

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

READ_ONLY: Final = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
WRITES_FILES: Final = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
CHANGES_DEVICE: Final = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)
READS_DEVICE: Final = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=True)


def error_result(exc: WedgeError) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=f"error: {exc}")], is_error=True)


def wedge_tool(server: MCPServer, annotations: ToolAnnotations, name: str | None = None) -> Callable[[F], F]:
    """Register an async tool whose WedgeErrors become tool errors; its docstring is its description, its name
    `name` or the function's."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except WedgeError as exc:
                return error_result(exc)

        server.add_tool(call, name=name, annotations=annotations, structured_output=True)
        return fn

    return register
