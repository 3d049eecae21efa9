"""`wedge mcp`: a Model Context Protocol server that gives agents wedge's library calls as tools.

Read-only unless started with --allow-write / --allow-flash; files only inside the workspace; every call logged.
"""

from wedge.mcp.calllog import CallLog
from wedge.mcp.policy import Policy
from wedge.mcp.server import build_server, serve_stdio

__all__ = ["CallLog", "Policy", "build_server", "serve_stdio"]
