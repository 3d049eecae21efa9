"""The bridge over an encrypted, bonded link: `wedge bridge --pair` pairs once and streams with nothing lost, a
restarted ring (a new private address) is found and re-encrypted with the bond, a ring that lost its bond gives
one line saying how to recover (and `wedge pair` does), keys stay in the 0600 keystore and out of logs and sinks.
Rings, the bridge and `wedge pair` run in their own processes on the virtual air."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

from tests.edge.bridge.bridge_harness import assert_whole, start_board
from tests.firmware.firmware_models import run_cli
from tests.firmware.virtual.ble.security_harness import key_material
from wedge.edge.bridge.process import BridgeProcess
from wedge.edge.bridge.sinks.sqlite import stored_records
from wedge.firmware.virtual.processes import AirProcess

NAME = "bond-ring"


def device(status: dict[str, Any]) -> dict[str, Any]:
    return (status.get("devices") or [{}])[0]


def streaming(status: dict[str, Any], epoch: int, records: int) -> bool:
    d = device(status)
    return d.get("state") == "streaming" and d.get("epoch") == epoch and d.get("records", 0) >= records \
        and d.get("gaps_open") == 0


def is_resolvable_private(address: str) -> bool:
    """The two top bits of a resolvable private address are 01 (Core Spec Vol 6, Part B, 1.3.2.2)."""
    return int(address.split(":")[0], 16) >> 6 == 0b01




def test_a_paired_bridge_streams_with_nothing_lost_and_follows_a_restarted_ring_by_its_bond(
        air: AirProcess, tmp_path: Path) -> None:
    state = tmp_path / "ring"
    ring = start_board(air, state, NAME)
    identity = ring.info["identity_address"]
    key = ring.info["device_id"]
    db, jsonl = tmp_path / "stream.db", tmp_path / "stream.jsonl"
    bridge = BridgeProcess([NAME], [f"sqlite:{db}", f"jsonl:{jsonl}"], tmp_path / "bridge.log", transport=air.spec,
                           extra=["-v"])
    rings = [ring]
    try:
        first = bridge.wait_status("streaming after pairing", lambda s: streaming(s, ring.info["epoch"], 60))
        assert device(first)["pairings"] == 1
        assert device(first)["security"] == "encrypted (paired now, Just Works, not authenticated)"
        # The ring restarts: it is bonded now, so it comes back under a new resolvable private address.
        assert ring.terminate() == 0
        ring = start_board(air, state, NAME)
        rings.append(ring)
        assert ring.info["address"] != identity and is_resolvable_private(ring.info["address"])
        assert ring.info["identity_address"] == identity
        status = bridge.wait_status("the restarted ring", lambda s: streaming(s, ring.info["epoch"], 120))
        assert bridge.terminate(30) == 0
    finally:
        bridge.terminate()
        for each in rings:
            each.terminate()
    d = device(status)
    # Resolved with the ring's IRK: the same device, re-encrypted with the bond, never paired again.
    assert d["address"] == identity and d["pairings"] == 1 and d["connects"] >= 2
    assert d["security"] == "encrypted (bond, not authenticated)"
    assert d["lost"] == 0 and d["duplicates"] == 0 and d["epoch_changes"] == 1
    for epoch in (rings[0].info["epoch"], rings[1].info["epoch"]):
        assert_whole([r.seq for r in stored_records(db, key) if r.epoch == epoch])
    # The bond is in a keystore only its owner may read, and no key is in a log or a sink.
    keystore = bridge.keystore
    assert keystore is not None and stat.S_IMODE(keystore.stat().st_mode) == 0o600
    secrets = key_material(keystore) | key_material(state / "bonds.json")
    rows = " ".join(" ".join(map(str, row)) for row in sqlite3.connect(db).execute("SELECT * FROM records"))
    for text in ((tmp_path / "bridge.log").read_text(), jsonl.read_text(), rows, db.read_bytes().hex(),
                 (tmp_path / f"{NAME}.log").read_text()):
        assert not [secret for secret in secrets if secret in text.lower()]


def test_a_ring_that_lost_its_bond_gives_one_clear_error_and_wedge_pair_recovers(air: AirProcess,
                                                                               tmp_path: Path) -> None:
    state = tmp_path / "ring"
    keystore = tmp_path / "bonds.json"
    ring = start_board(air, state, NAME)
    db = tmp_path / "stream.db"

    def bridge(log: str, *, pair: bool = False) -> BridgeProcess:
        return BridgeProcess([NAME], [f"sqlite:{db}"], tmp_path / log, transport=air.spec, keystore=keystore,
                             pair=pair)

    def ends_with_one_error(process: BridgeProcess) -> str:
        # Not a reconnect loop: the bridge stops with one line, whatever its backoff would have been.
        assert process.wait_exit(30) == 1
        lines = [line for line in process.log_path.read_text().splitlines() if not line.startswith("{")]  # not status
        errors = [line for line in lines if "error" in line.lower()]
        assert len(errors) == 1 and errors[0].startswith("error: "), errors
        return errors[0]

    try:
        # No bond, no --pair: the ring refuses the stream and the bridge says how to pair.
        refused = ends_with_one_error(bridge("unpaired.log"))
        assert "has no bond with it" in refused and f"wedge pair {NAME}" in refused and "--pair" in refused
        first = bridge("first.log", pair=True)
        first.wait_status("streaming", lambda s: streaming(s, ring.info["epoch"], 20))
        assert first.terminate(30) == 0
        # The ring's Bluetooth settings are erased (its bonds.json; its hardware id stays): it forgot the bridge.
        assert ring.terminate() == 0
        (state / "bonds.json").unlink()
        ring = start_board(air, state, NAME)
        lost = ends_with_one_error(bridge("lost.log", pair=True))
        assert "no longer has the bond this bridge holds" in lost and f"`wedge pair {NAME}`" in lost
        # The way out the message names: pairing again replaces the stale bond; the bridge streams again.
        paired = run_cli("pair", NAME, "--transport", air.spec, "--keystore", str(keystore), "--json")
        assert paired.returncode == 0, paired.stderr
        assert json.loads(paired.stdout)["paired"]["address"] == ring.info["identity_address"]
        again = bridge("again.log")
        again.wait_status("streaming with the new bond", lambda s: streaming(s, ring.info["epoch"], 20))
        assert device(again.latest)["pairings"] == 0
        assert again.terminate(30) == 0
        # `wedge unpair` forgets the bond here only; the ring keeps its own, and says so (Insufficient Encryption).
        unpaired = run_cli("unpair", NAME, "--transport", air.spec, "--keystore", str(keystore))
        assert unpaired.returncode == 0 and "forgot the bond" in unpaired.stdout
        assert json.loads(keystore.read_text())["bonds"] == {}
        stale = ends_with_one_error(bridge("stale.log"))
        assert "holds a bond with this adapter that the bridge does not" in stale
    finally:
        ring.terminate()
