"""The HIL bench's exception family: a bad board map, an unreachable or silent DUT, an eval set that does not fit.

Every class derives from WedgeError, so the CLI reports it as one line with its exit code.
"""

from __future__ import annotations

from wedge.errors import WedgeError


class HilError(WedgeError):
    """Something about the bench (board map, board, model or eval data) that the user can fix."""


class BoardMapError(HilError):
    """bench.toml is missing, malformed, or names an unknown board or profile."""


class DutError(HilError):
    """The DUT does not answer, answers garbage, or reports an error for a command."""


class EvalDataError(HilError):
    """The eval set does not match the model's inputs."""
