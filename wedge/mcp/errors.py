"""The MCP server's error family: a refused permission, a path outside the workspace, a bad server option.

Each is a WedgeError, so the CLI prints it as one line and a tool returns its text as the tool error.
"""

from __future__ import annotations

from wedge.errors import WedgeError


class McpError(WedgeError):
    """Something the MCP server itself refuses or cannot do."""


class PermissionRefused(McpError):
    """A tool that writes files or changes a device was called on a server not started to allow it."""


class OutsideWorkspace(McpError):
    """A path names a file outside the server's workspace (after resolving symlinks)."""


class ConfirmationMismatch(McpError):
    """A guarded action was confirmed with the wrong value (e.g. not the image's SHA-256)."""
