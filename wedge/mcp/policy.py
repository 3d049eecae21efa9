"""What the server lets an agent do: files only inside the workspace, writes and device changes only when allowed.

Every path a tool is given goes through `Policy.readable` / `Policy.writable`: relative paths are taken from the
workspace, symlinks are resolved, and anything that lands outside the workspace is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from wedge.mcp.errors import McpError, OutsideWorkspace, PermissionRefused

WRITE_FLAG: Final[str] = "--allow-write"
FLASH_FLAG: Final[str] = "--allow-flash"


@dataclass(frozen=True)
class Policy:
    """The server's permissions. `workspace` is resolved at construction; `stream_dbs` are extra read-only files
    the operator handed the server (`--stream-db`), readable wherever they are."""

    workspace: Path
    allow_write: bool = False
    allow_flash: bool = False
    stream_dbs: tuple[Path, ...] = ()
    bridges: tuple[str, ...] = ()

    @classmethod
    def create(cls, workspace: Path, *, allow_write: bool = False, allow_flash: bool = False,
               stream_dbs: tuple[Path, ...] = (), bridges: tuple[str, ...] = ()) -> Policy:
        root = workspace.expanduser().resolve()
        if not root.is_dir():
            raise McpError(f"the workspace {workspace} is not a folder")
        return cls(root, allow_write, allow_flash, tuple(p.expanduser().resolve() for p in stream_dbs), bridges)

    # -- paths -----------------------------------------------------------------------------------------------

    def _inside(self, text: str, what: str) -> Path:
        if not text or "\x00" in text:
            raise OutsideWorkspace(f"{what}: give a path inside the workspace {self.workspace}")
        candidate = Path(os.path.expanduser(text)) if text.startswith("~") else Path(text)
        if not candidate.is_absolute():
            candidate = self.workspace / candidate
        # resolve() follows every symlink that exists along the path, so a link inside the workspace that
        # points outside it is caught here too.
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.workspace):
            raise OutsideWorkspace(f"{what} {text} is outside the workspace {self.workspace}")
        return resolved

    def readable(self, text: str, what: str = "path") -> Path:
        """The resolved path of a file or folder to read; a folder's contents must stay inside the workspace too."""
        path = self._inside(text, what)
        if path.is_dir():
            for entry in path.rglob("*"):
                if not entry.resolve().is_relative_to(self.workspace):
                    raise OutsideWorkspace(f"{what} {text} links to {entry.resolve()}, outside the workspace")
        return path

    def writable(self, text: str, tool: str, what: str = "output") -> Path:
        """The resolved path a tool may write, when the server allows writes."""
        self.require_write(tool)
        return self._inside(text, what)

    def stream_db(self, text: str) -> Path:
        """A stream database: one the server was given (by path or file name), or a file inside the workspace."""
        for given in self.stream_dbs:
            if text in (str(given), given.name):
                return given
        return self.readable(text, "stream database")

    def relative(self, path: Path) -> str:
        """How a path inside the workspace is shown to the agent: relative to the workspace."""
        try:
            return str(path.resolve().relative_to(self.workspace))
        except ValueError:
            return str(path)

    # -- permissions -----------------------------------------------------------------------------------------

    def require_write(self, tool: str) -> None:
        if not self.allow_write:
            raise PermissionRefused(f"{tool} writes files: this server is read-only (start it with {WRITE_FLAG})")

    def require_flash(self, tool: str) -> None:
        if not self.allow_flash:
            raise PermissionRefused(f"{tool} changes what a board runs: this server does not flash "
                                    f"(start it with {FLASH_FLAG})")
