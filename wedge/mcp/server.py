"""The wedge MCP server: the tools, resources and prompts under one policy, every call logged, on stdio or HTTP.

`build_server` makes the server object; `serve_stdio` and `wedge.mcp.http_transport.serve_http` run it.
"""

from __future__ import annotations

import anyio
from mcp.server.mcpserver import MCPServer

from wedge import __version__
from wedge.mcp.calllog import CallLog
from wedge.mcp.policy import Policy
from wedge.mcp.prompts import register_prompts
from wedge.mcp.resources import register_resources
from wedge.mcp.tools import register_tools

INSTRUCTIONS = (
    "wedge gets models onto health rings and smart glasses: inspect and check a model against a board profile, "
    "quantize it to int8 (and TFLite for TFLite-Micro), sign it into an MCUboot image, flash it over SMP, bench "
    "it, and query what the device streamed. Files are paths inside the server's workspace. Tools that write "
    "files or change a device are refused unless the server was started to allow them; flash asks for the "
    "image's SHA-256 as confirmation."
)


def build_server(policy: Policy, log: CallLog) -> MCPServer:
    server: MCPServer = MCPServer("wedge", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING",
                                  middleware=[log])
    register_tools(server, policy)
    register_resources(server, policy)
    register_prompts(server, policy)
    return server


def serve_stdio(server: MCPServer) -> None:
    """Serve one client on stdin/stdout (the SDK points fd 1 at stderr meanwhile, so stray output misses the wire)."""
    anyio.run(server.run_stdio_async)
