"""The firmware exception family: bad images and keys, unreachable or unfit devices, refused or rolled-back flashes.

Every class derives from WedgeError, so the CLI reports it as one line with its exit code.
"""

from __future__ import annotations

from wedge.errors import WedgeError


class FirmwareError(WedgeError):
    """Something about an image, a signing key, a device or a virtual board that the user can fix."""


class ImageError(FirmwareError):
    """An image cannot be built, read or trusted: malformed, tampered, wrongly signed, or unfit for a board."""


class SigningKeyError(FirmwareError):
    """A signing key file is missing, unreadable, or not an ed25519 key."""


class DeviceError(FirmwareError):
    """A port is missing or busy, or the device on it does not speak SMP or stopped answering."""


class FlashError(FirmwareError):
    """The device refused an image or an upload step failed; the board keeps its previous model."""


class RollbackError(FlashError):
    """The new image booted but was not confirmed: the board rolled back to its previous model."""

    exit_code = 3


class VirtualBoardError(FirmwareError):
    """A virtual board cannot start: unknown board, unusable state folder, or a key that does not match."""
