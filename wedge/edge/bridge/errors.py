"""The bridge's exception family: bad sink or device options, sinks that cannot open, no Bluetooth adapter,
links that cannot be secured (no bond, a lost bond, a failed pairing).

Derives from WedgeError, so `wedge bridge` reports it as one line and an exit code.
"""

from __future__ import annotations

from wedge.errors import WedgeError


class BridgeError(WedgeError):
    """The bridge cannot start or cannot use what it was given (a sink, a device selector, an adapter)."""


class SinkError(BridgeError):
    """A sink cannot be opened or written (bad spec, disk full, locked database, port in use)."""


class LinkSecurityError(BridgeError):
    """A device's link cannot be secured: it needs pairing, its bond is gone, or pairing failed. Retrying the same
    connection would give the same answer, so a session stops following the device and says how to recover."""


class PairingRequired(LinkSecurityError):
    """The device only serves an encrypted, bonded link and this bridge holds no bond with it."""


class BondLost(LinkSecurityError):
    """This bridge holds a bond the device no longer has (it answered 'PIN or key missing' to encryption)."""


class PairingFailed(LinkSecurityError):
    """Pairing was tried and refused or aborted (a wrong passkey, a number not confirmed, a bond kept by the device)."""


class DeviceNotFound(BridgeError):
    """No device matching a selector advertised within the scan timeout, and none ever had in this run."""
