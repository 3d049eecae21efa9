"""The root of wedge's exception families.

Every error a user can act on derives from WedgeError; the CLI turns it into one line and an exit code.
"""

from __future__ import annotations


class WedgeError(Exception):
    """An error the user can act on; its message is shown as one line."""

    exit_code: int = 1


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-blank line of an exception's text: library errors are often pages long."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__
