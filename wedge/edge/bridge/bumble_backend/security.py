"""Securing a Bumble LE connection from the central's side: re-encrypt with a stored bond, or pair and bond.

A bonded device is encrypted with its stored LTK at once, without pairing again; a device that answers 'PIN or
key missing' has lost its bond, which is never replaced silently (a device that forgot its keys, or one claiming
its address, must be paired again on purpose). Pairing is Bumble's SMP, LE Secure Connections with bonding, the
bridge offering a keyboard and a display: the device's IO capabilities pick Just Works, passkey entry or numeric
comparison, and `PairingPrompts` asks the user what that method needs. Keys stay in the keystore; nothing here
logs or returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bumble import hci
from bumble.core import BaseBumbleError, ProtocolError
from bumble.device import Connection, Device
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.smp import ErrorCode as SmpError

from wedge.ble_bonds import BondStore
from wedge.edge.bridge.errors import BondLost, PairingFailed
from wedge.errors import first_line

JUST_WORKS = "Just Works"
PASSKEY_ENTRY = "passkey entry"
NUMERIC_COMPARISON = "numeric comparison"

# Why a pairing failed, in words, for the reasons a user can act on (Core Spec Vol 3, Part H, 3.5.5).
_FAILURES: dict[int | None, str] = {
    SmpError.PASSKEY_ENTRY_FAILED: "the passkey was not entered",
    SmpError.CONFIRM_VALUE_FAILED: "the passkey or the compared number did not match, or was not confirmed",
    SmpError.AUTHENTICATION_REQUIREMENTS: "the device refused the pairing's security (it may still hold a bond "
                                          "with this adapter, which it will not let an unauthenticated pairing "
                                          "replace: erase the device's bonds, then pair again)",
    SmpError.PAIRING_NOT_SUPPORTED: "the device does not accept pairing now",
    SmpError.REPEATED_ATTEMPTS: "too many attempts: wait, then try again",
}


class PairingPrompts(Protocol):
    """What the user is asked while pairing; `peer` names the device (its name and address)."""

    def say(self, message: str) -> None: ...

    async def passkey(self, peer: str) -> int | None:
        """The 6 digits the device displays, or None to give up."""

    async def confirm_number(self, peer: str, number: int) -> bool:
        """Whether the device displays the same 6 digits."""

    async def show_passkey(self, peer: str, passkey: int) -> None:
        """Show the 6 digits to type on the device's keypad."""


class NoPrompts:
    """Nobody to ask: Just Works pairings go through, methods that need a person fail."""

    def say(self, message: str) -> None:
        return None

    async def passkey(self, peer: str) -> int | None:
        return None

    async def confirm_number(self, peer: str, number: int) -> bool:
        return False

    async def show_passkey(self, peer: str, passkey: int) -> None:
        return None


@dataclass(frozen=True)
class LinkSecurity:
    """How one connection is secured; never the keys."""

    encrypted: bool
    paired_now: bool = False        # a new pairing on this connection (else the stored bond was used, if any)
    method: str | None = None       # the pairing method of the bond
    authenticated: bool = False     # MITM-protected (passkey entry or numeric comparison)
    peer: str = ""                  # the device's identity address

    def to_dict(self) -> dict[str, object]:
        return {"encrypted": self.encrypted, "paired_now": self.paired_now, "method": self.method,
                "authenticated": self.authenticated, "peer": self.peer, "summary": self.describe()}

    def describe(self) -> str:
        if not self.encrypted:
            return "unencrypted"
        how = "paired now" if self.paired_now else "bond"
        protection = "authenticated" if self.authenticated else "not authenticated"
        return f"encrypted ({how}{f', {self.method}' if self.method else ''}, {protection})"

    def method_in_words(self) -> str:
        """The pairing method and what it protects against, in plain words."""
        if self.method == JUST_WORKS:
            return ("Just Works: the device has no display or button to compare a number, so the link is encrypted "
                    "but not protected against a man in the middle during this pairing")
        if self.method in (PASSKEY_ENTRY, NUMERIC_COMPARISON):
            return f"{self.method}: encrypted and authenticated (protected against a man in the middle)"
        return self.describe()


class CentralDelegate(PairingDelegate):
    """The bridge's side of one pairing: a keyboard and a display, answered through `prompts`."""

    def __init__(self, peer: str, prompts: PairingPrompts) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT)
        self.peer = peer
        self.prompts = prompts
        self.method = JUST_WORKS

    async def confirm(self, auto: bool = False) -> bool:
        return True  # Just Works: the device has nothing to show or press

    async def compare_numbers(self, number: int, digits: int) -> bool:
        self.method = NUMERIC_COMPARISON
        return await self.prompts.confirm_number(self.peer, number)

    async def get_number(self) -> int | None:
        self.method = PASSKEY_ENTRY
        return await self.prompts.passkey(self.peer)

    async def display_number(self, number: int, digits: int) -> None:
        self.method = PASSKEY_ENTRY
        await self.prompts.show_passkey(self.peer, number)


def pairing_config(delegate: PairingDelegate) -> PairingConfig:
    """LE Secure Connections with bonding, MITM protection asked for (the device's IO decides if it is had); the
    bridge's identity is its static random address."""
    return PairingConfig(sc=True, mitm=True, bonding=True, delegate=delegate,
                         identity_address_type=PairingConfig.AddressType.RANDOM)


async def secure(device: Device, connection: Connection, bonds: BondStore, delegate: CentralDelegate | None,
                 peer_label: str) -> LinkSecurity:
    """Re-encrypt with the stored bond, or pair when `delegate` is given (None: leave the link as it is).

    The caller's pairing config factory must hand `delegate` to Bumble for this connection.
    """
    bond = bonds.bond(str(connection.peer_address))
    if bond is not None:
        try:
            await device.encrypt(connection)
        except hci.HCI_Error as exc:
            if exc.error_code == hci.HCI_ErrorCode.PIN_OR_KEY_MISSING_ERROR:
                raise BondLost(f"{peer_label} no longer has the bond this bridge holds (it answered 'PIN or key "
                               f"missing' to encryption): pair it again with `wedge pair {_name(peer_label)}`"
                               ) from None
            raise
        return LinkSecurity(True, False, None, bond.authenticated, str(connection.peer_address))
    if delegate is None:
        return LinkSecurity(False, peer=str(connection.peer_address))
    try:
        await device.pair(connection)
    except ProtocolError as exc:
        reason = _FAILURES.get(exc.error_code) if exc.error_namespace == "smp" else None
        raise PairingFailed(f"pairing with {peer_label} failed: {reason or first_line(exc)}") from None
    except BaseBumbleError as exc:
        raise PairingFailed(f"pairing with {peer_label} failed: {first_line(exc)}") from None
    # Bumble now knows the device by the identity address it distributed.
    paired = bonds.bond(str(connection.peer_address))
    return LinkSecurity(True, True, delegate.method, bool(paired and paired.authenticated),
                        str(connection.peer_address))


def _name(peer_label: str) -> str:
    """The name part of `name (address)`, what `wedge pair` takes."""
    return peer_label.split(" (", 1)[0]
