"""The fleet's exception family: a subscriber that cannot use its broker or its sinks, a broker that cannot start.

Derives from WedgeError, so `wedge fleet` reports it as one line and an exit code.
"""

from __future__ import annotations

from wedge.errors import WedgeError


class FleetError(WedgeError):
    """The fleet subscriber (or a local broker) cannot start or cannot use what it was given."""
