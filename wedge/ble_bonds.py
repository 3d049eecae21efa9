"""Bluetooth LE bonds in one JSON file readable by its owner only: Bumble's KeyStore for a device's own identity
(its address and IRK) and the keys of every peer it bonded with, for the ring's state folder and the bridge's adapter.

A leaf like `wedge.ble_spec`: it imports nothing of wedge but the error root and the atomic file writer, so the
virtual ring and the bridge share it. The file is written whole, atomically, created with mode 0600 in a 0700 folder; a file others can read
is refused (as ssh refuses such a key) rather than used. Key material never leaves it: `Bond` says who and how,
not what the keys are.
"""

from __future__ import annotations

import json
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bumble.keys import KeyStore, PairingKeys

from wedge.errors import WedgeError
from wedge.files import write_atomic

FORMAT: Final[str] = "wedge-bonds/1"
FILE_MODE: Final[int] = 0o600
FOLDER_MODE: Final[int] = 0o700
IRK_BYTES: Final[int] = 16
_ADDRESS_BYTES: Final[int] = 6


class BondStoreError(WedgeError):
    """A keystore file cannot be read, is not one, or is readable by other users."""


@dataclass(frozen=True)
class Identity:
    """A device's own identity: the address it distributes when bonding, and the IRK its private addresses
    are made from."""

    address: str
    irk: bytes


@dataclass(frozen=True)
class Bond:
    """One peer this device is bonded with; no key material."""

    address: str
    name: str | None
    authenticated: bool     # the LTK came from an MITM-protected pairing (passkey or numeric comparison)
    resolvable: bool        # the peer gave its IRK: its private addresses resolve to `address`

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "name": self.name, "authenticated": self.authenticated,
                "resolvable": self.resolvable}


def _random_static_address() -> str:
    raw = bytearray(secrets.token_bytes(_ADDRESS_BYTES))
    raw[0] |= 0xC0  # a static random address has its two top bits set (Core Spec Vol 6, Part B, 1.3.2.1)
    return ":".join(f"{b:02X}" for b in raw)


class BondStore(KeyStore):
    """Bumble's KeyStore over one file (`path`), or in memory only (`path` None: nothing survives the process).

    `address` fixes the identity address (a ring's comes from its hardware id); without it the stored one is
    kept, or a random static address is made the first time.
    """

    def __init__(self, path: Path | None = None, *, address: str | None = None) -> None:
        self.path = path
        self._peers: dict[str, dict[str, Any]] = {}
        stored: dict[str, Any] | None = self._load() if path is not None else None
        if stored is not None:
            self._peers = stored["bonds"]
            identity = stored["identity"]
            self.identity = Identity(address or identity["address"], bytes.fromhex(identity["irk"]))
        else:
            self.identity = Identity(address or _random_static_address(), secrets.token_bytes(IRK_BYTES))
        if path is not None and (stored is None or self.identity.address != stored["identity"]["address"]):
            self._save()

    # -- Bumble's KeyStore --------------------------------------------------------------------------------

    async def get(self, name: str) -> PairingKeys | None:
        entry = self._peers.get(name)
        return None if entry is None else PairingKeys.from_dict(entry["keys"])

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        return [(address, PairingKeys.from_dict(entry["keys"])) for address, entry in self._peers.items()]

    async def update(self, name: str, keys: PairingKeys) -> None:
        # A new pairing replaces the old keys whole (a stale IRK or LTK must not survive it); the label stays.
        label = self._peers.get(name, {}).get("name")
        self._peers[name] = {"name": label, "keys": keys.to_dict()}
        self._save()

    async def delete(self, name: str) -> None:
        self.forget(name)

    async def delete_all(self) -> None:
        self.forget_all()

    # -- what wedge adds -----------------------------------------------------------------------------------

    def bond(self, address: str) -> Bond | None:
        entry = self._peers.get(address)
        return None if entry is None else _bond(address, entry)

    def bonds(self) -> list[Bond]:
        return [_bond(address, entry) for address, entry in sorted(self._peers.items())]

    def find(self, name_or_address: str) -> list[Bond]:
        """The bonds whose peer has this name, or this address (any case)."""
        wanted = name_or_address.upper()
        return [b for b in self.bonds() if b.address.upper() == wanted or b.name == name_or_address]

    def label(self, address: str, name: str | None) -> None:
        """Remember the peer's advertised name beside its keys (for `wedge unpair NAME`)."""
        entry = self._peers.get(address)
        if entry is not None and name and entry.get("name") != name:
            entry["name"] = name
            self._save()

    def forget(self, address: str) -> bool:
        if self._peers.pop(address, None) is None:
            return False
        self._save()
        return True

    def forget_all(self) -> int:
        count = len(self._peers)
        self._peers.clear()
        self._save()
        return count

    # -- the file ------------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any] | None:
        assert self.path is not None
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BondStoreError(f"{self.path}: cannot read the keystore: {exc.strerror}") from None
        if mode & 0o077:
            raise BondStoreError(f"{self.path}: the keystore is open to other users (mode {stat.S_IMODE(mode):04o}); "
                                 f"its keys may be exposed: remove them from the devices, or `chmod 600` it if "
                                 f"nobody else could read it")
        try:
            data = json.loads(self.path.read_text())
        except OSError as exc:
            raise BondStoreError(f"{self.path}: cannot read the keystore: {exc.strerror}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BondStoreError(f"{self.path}: not a keystore (not JSON: {exc})") from None
        try:
            if data["format"] != FORMAT:
                raise ValueError(f"format {data['format']!r}, expected {FORMAT!r}")
            identity = data["identity"]
            if len(bytes.fromhex(identity["irk"])) != IRK_BYTES or not isinstance(identity["address"], str):
                raise ValueError("a bad identity")
            bonds = data["bonds"]
            for entry in bonds.values():
                PairingKeys.from_dict(entry["keys"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BondStoreError(f"{self.path}: not a wedge keystore ({exc})") from None
        return {"identity": identity, "bonds": dict(bonds)}

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"format": FORMAT, "identity": {"address": self.identity.address, "irk": self.identity.irk.hex()},
                "bonds": self._peers}
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            write_atomic(self.path, text.encode(), FILE_MODE)
        except OSError as exc:
            raise BondStoreError(f"{self.path}: cannot write the keystore: {exc.strerror}") from None


def _bond(address: str, entry: dict[str, Any]) -> Bond:
    keys = PairingKeys.from_dict(entry["keys"])
    ltk = keys.ltk or keys.ltk_central or keys.ltk_peripheral
    return Bond(address, entry.get("name"), bool(ltk is not None and ltk.authenticated), keys.irk is not None)
