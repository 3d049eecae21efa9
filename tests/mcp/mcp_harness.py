"""Shared by the MCP tests: the server as an agent starts it (a `python -m wedge.cli mcp` child, over stdio or
HTTP), reached through the SDK's own client; tool results read back as the agent sees them."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from tests.conftest import REPO_ROOT
from wedge.child_process import ChildProcess

TOOLS = {"list_boards", "board_profile", "inspect_model", "check_fit", "quantize", "export_tflite", "pack_image",
         "device_info", "device_images", "flash", "run_hil_suite", "stream_query", "stream_tail"}


def server_args(workspace: Path, *options: str) -> list[str]:
    return ["-m", "wedge.cli", "mcp", "--workspace", str(workspace), *options]


def _env() -> dict[str, str]:
    # The server must import this checkout (a worktree), whatever is installed.
    return {"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}


@asynccontextmanager
async def stdio_client(workspace: Path, *options: str) -> AsyncIterator[Client]:
    """A client of a server started over stdio, as a desktop agent starts it."""
    params = StdioServerParameters(command=sys.executable, args=server_args(workspace, *options), env=_env(),
                                   cwd=str(REPO_ROOT))
    async with Client(params, read_timeout_seconds=120) as client:
        yield client


class HttpServer(ChildProcess):
    """`wedge mcp --http HOST:0`: `url` is where it listens (announced on stderr)."""

    def __init__(self, workspace: Path, *options: str, host: str = "127.0.0.1", env: dict[str, str] | None = None):
        super().__init__([sys.executable, *server_args(workspace, "--http", f"{host}:0", *options)],
                         workspace.parent / "mcp-http.log", json_stream="stderr", cwd=REPO_ROOT,
                         env={**_env(), **(env or {})})
        url = self.wait_for("mcp", 60)["mcp"]["url"]
        # A server bound to every interface is reached on the loopback.
        self.url = url.replace("0.0.0.0", "127.0.0.1")


@asynccontextmanager
async def http_client(server: HttpServer, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120, read=300))
    async with http, Client(streamable_http_client(server.url, http_client=http), read_timeout_seconds=120) as client:
        yield client


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    (block,) = result.content
    return block.text  # type: ignore[union-attr]

