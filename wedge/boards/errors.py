"""The board-profile exception family.

A BoardError message is one line naming the profile file and the key that is wrong.
"""

from __future__ import annotations

from wedge.errors import WedgeError


class BoardError(WedgeError):
    """A board profile is unknown, unreadable, or fails validation."""
