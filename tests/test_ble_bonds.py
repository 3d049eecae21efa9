"""The bond store: one keystore file only its owner can read, the owner's identity kept, bad files refused."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from bumble.keys import PairingKeys

from wedge.ble_bonds import BondStore, BondStoreError

PEER = "C4:11:22:33:44:55"


def keys(ltk: str, authenticated: bool = False) -> PairingKeys:
    return PairingKeys(ltk=PairingKeys.Key(bytes.fromhex(ltk), authenticated),
                       irk=PairingKeys.Key(bytes.fromhex("aa" * 16), authenticated))


def test_the_file_is_owner_only_and_keeps_the_identity_and_the_bonds(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bonds.json"
    store = BondStore(path)
    asyncio.run(store.update(PEER, keys("11" * 16)))
    store.label(PEER, "wedge-ring")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = BondStore(path)
    assert again.identity == store.identity  # the same address and IRK every run
    assert [b.to_dict() for b in again.bonds()] == [
        {"address": PEER, "name": "wedge-ring", "authenticated": False, "resolvable": True}]
    assert again.find("wedge-ring") == again.find(PEER.lower()) == again.bonds()
    # A new pairing replaces the keys whole, the label stays; forgetting removes them from the file.
    asyncio.run(again.update(PEER, PairingKeys(ltk=PairingKeys.Key(bytes.fromhex("22" * 16), True))))
    third = BondStore(path)
    bond = third.bond(PEER)
    assert bond is not None and bond.authenticated and not bond.resolvable and bond.name == "wedge-ring"
    assert third.forget(PEER) and BondStore(path).bonds() == []


def test_a_fixed_identity_address_wins_over_the_stored_one(tmp_path: Path) -> None:
    path = tmp_path / "bonds.json"
    first = BondStore(path)
    fixed = BondStore(path, address="D2:36:F2:41:7A:52")
    assert fixed.identity.address == "D2:36:F2:41:7A:52" and fixed.identity.irk == first.identity.irk


def test_in_memory_nothing_is_written(tmp_path: Path) -> None:
    store = BondStore()
    asyncio.run(store.update(PEER, keys("11" * 16)))
    assert store.bond(PEER) is not None and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("content", "mode", "words"), [
    ('{"format": "wedge-bonds/1", "identity": {"address": "C4:00:00:00:00:01", "irk": "00"}, "bonds": {}}', 0o600,
     "not a wedge keystore"),
    ("not json", 0o600, "not a keystore"),
    ('{"format": "other"}', 0o600, "not a wedge keystore"),
    ("{}", 0o644, "open to other users (mode 0644)"),
])
def test_a_bad_or_exposed_keystore_is_refused_with_one_line(tmp_path: Path, content: str, mode: int,
                                                             words: str) -> None:
    path = tmp_path / "bonds.json"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(BondStoreError) as error:
        BondStore(path)
    assert words in str(error.value) and "\n" not in str(error.value) and str(path) in str(error.value)
