"""Attributes whose access is checked as Zephyr's bt_gatt_check_perm checks it, before Bumble serves them.

Bumble's own permission flags answer Insufficient Encryption to every unencrypted access and treat any encrypted
LE link as authenticated; Zephyr (and Core Spec 5.4 Vol 3 Part C 10.3.1) answers Insufficient Authentication when
no bond exists (pair first), Insufficient Encryption when one does (encrypt with it), and Insufficient
Authentication on an encrypted link whose key is not MITM-protected. An `AccessGuard` (the ring's Security Manager)
says which; these attributes ask it first, then keep Bumble's flags for everything else.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Protocol

from bumble import gatt
from bumble.att import ATT_Error, Attribute, Bearer, is_enhanced_bearer
from bumble.core import UUID
from bumble.device import Connection

Permissions = Attribute.Permissions


class Access(enum.Enum):
    """What an access needs, as Zephyr's permission classes: BT_GATT_PERM_READ, _READ_ENCRYPT, _READ_AUTHEN."""

    OPEN = "open"
    ENCRYPT = "encrypt"
    AUTHENTICATE = "authenticate"

    def read_flags(self) -> Permissions:
        return {Access.OPEN: Permissions.READABLE,
                Access.ENCRYPT: Permissions.READABLE | Permissions.READ_REQUIRES_ENCRYPTION,
                Access.AUTHENTICATE: Permissions.READABLE | Permissions.READ_REQUIRES_ENCRYPTION
                | Permissions.READ_REQUIRES_AUTHENTICATION}[self]

    def write_flags(self) -> Permissions:
        return {Access.OPEN: Permissions.WRITEABLE,
                Access.ENCRYPT: Permissions.WRITEABLE | Permissions.WRITE_REQUIRES_ENCRYPTION,
                Access.AUTHENTICATE: Permissions.WRITEABLE | Permissions.WRITE_REQUIRES_ENCRYPTION
                | Permissions.WRITE_REQUIRES_AUTHENTICATION}[self]


class AccessGuard(Protocol):
    def access_error(self, connection: Connection, access: Access) -> int | None:
        """The ATT error code this access gets on this connection, or None when it may go on."""


class OpenAccess:
    """A board with security off: every access goes on (Zephyr's plain BT_GATT_PERM_READ / _WRITE)."""

    def access_error(self, connection: Connection, access: Access) -> int | None:
        return None


def _connection(bearer: Bearer) -> Connection:
    return bearer.connection if is_enhanced_bearer(bearer) else bearer  # type: ignore[return-value]


def _check(guard: AccessGuard, bearer: Bearer, access: Access | None, handle: int) -> None:
    if access is None:
        return
    code = guard.access_error(_connection(bearer), access)
    if code is not None:
        raise ATT_Error(error_code=code, att_handle=handle)


class _Guarded:
    """Reads and writes the guard checks first; `access(write)` says what each needs (None: not offered)."""

    guard: AccessGuard
    handle: int

    def access(self, write: bool) -> Access | None:
        raise NotImplementedError

    async def read_value(self, bearer: Bearer) -> bytes:
        _check(self.guard, bearer, self.access(False), self.handle)
        return await super().read_value(bearer)  # type: ignore[misc]

    async def write_value(self, bearer: Bearer, value: bytes) -> None:
        _check(self.guard, bearer, self.access(True), self.handle)
        await super().write_value(bearer, value)  # type: ignore[misc]


class GuardedCharacteristic(_Guarded, gatt.Characteristic[Any]):
    """A characteristic whose reads and writes the guard checks first (None: that access is not offered)."""

    def __init__(self, uuid: str, properties: gatt.Characteristic.Properties, value: Any, guard: AccessGuard, *,
                 read: Access | None = None, write: Access | None = None) -> None:
        permissions = Permissions(0)
        if read is not None:
            permissions |= read.read_flags()
        if write is not None:
            permissions |= write.write_flags()
        super().__init__(UUID(uuid), properties, permissions, value)
        self.guard, self.read_access, self.write_access = guard, read, write

    def access(self, write: bool) -> Access | None:
        return self.write_access if write else self.read_access


class GuardedDescriptor(_Guarded, gatt.Descriptor):
    """A descriptor (here: a CCCD) the guard checks first, for reads and writes alike (BT_GATT_CCC(cb, perm))."""

    def __init__(self, uuid: UUID, value: Any, guard: AccessGuard, access: Access) -> None:
        super().__init__(uuid, access.read_flags() | access.write_flags(), value)
        self.guard, self.needs = guard, access

    def access(self, write: bool) -> Access | None:
        return self.needs


CccdValue = Callable[[gatt.Characteristic[Any]], Any]


def add_guarded_cccd(characteristic: gatt.Characteristic[Any], guard: AccessGuard, access: Access,
                     cccd_value: CccdValue) -> None:
    """Give a notifying characteristic its Client Characteristic Configuration descriptor with `access`: the
    server then uses it instead of adding an open one. `cccd_value` is the GATT server's own CCCD value (its
    `make_descriptor_value`), so subscriptions work as they always do."""
    characteristic.descriptors = [*characteristic.descriptors, GuardedDescriptor(
        gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR, cccd_value(characteristic), guard, access)]
