"""The bridge's exception family: bad sink or device options, sinks that cannot open, no Bluetooth adapter.

Derives from WedgeError, so `wedge bridge` reports it as one line and an exit code.
"""

from __future__ import annotations

from wedge.errors import WedgeError


class BridgeError(WedgeError):
    """The bridge cannot start or cannot use what it was given (a sink, a device selector, an adapter)."""


class SinkError(BridgeError):
    """A sink cannot be opened or written (bad spec, disk full, locked database, port in use)."""


class DeviceNotFound(BridgeError):
    """No device matching a selector advertised within the scan timeout, and none ever had in this run."""
