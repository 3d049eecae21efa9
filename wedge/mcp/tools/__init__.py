"""The server's tools, one module per library area; each module is the only place that calls its area.

`register_tools` adds them all to a server under one policy.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from wedge.mcp.policy import Policy
from wedge.mcp.tools import boards, firmware, hil, models, quantize, streams


def register_tools(server: MCPServer, policy: Policy) -> None:
    for area in (boards, models, quantize, firmware, hil, streams):
        area.register(server, policy)


__all__ = ["register_tools"]
