"""The virtual ring's Security Manager as a Zephyr ring's: the ATT errors an unencrypted central gets, bonds in the
state folder, Just Works re-pairing over a bond and legacy pairing refused, passkey entry and numeric comparison
on rings with a display (and a button), SMP writes that need an authenticated bond. Rings run in their own
processes on the virtual air; the centrals are Bumble hosts (wedge's backend) in the test process."""

from __future__ import annotations

import asyncio
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bumble.att import ATT_Error
from bumble.att import ErrorCode as AttError
from bumble.pairing import PairingConfig, PairingDelegate

from tests.firmware.virtual.ble.security_harness import (
    advertised_address,
    attribute,
    key_material,
    raw_link,
    ring_profile,
    start_ring,
)
from wedge.boards import BOARDS_PATH_ENV
from wedge.child_process import ChildProcess
from wedge.edge.bridge.bumble_backend import BumbleAdapter
from wedge.edge.bridge.errors import PairingFailed
from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.protocol.ble_control import start_command
from wedge.firmware.protocol.smp_ble import SMP_CHARACTERISTIC_UUID
from wedge.firmware.virtual.processes import AirProcess, EmulatorProcess


@pytest.fixture(scope="module")
def air(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirProcess]:
    process = AirProcess(tmp_path_factory.mktemp("air"))
    yield process
    process.terminate()


async def refused(operation) -> int:  # noqa: ANN001 (an awaitable ATT operation)
    with pytest.raises(ATT_Error) as error:
        await operation
    return int(error.value.error_code)


def test_an_unencrypted_central_gets_the_att_errors_zephyr_gives_and_a_bond_opens_the_stream(
        air: AirProcess, tmp_path: Path) -> None:
    ring = start_ring(air, tmp_path / "state", "sec-att")
    address = ring.info["address"]
    assert ring.info["security"]["required"] and ring.info["security"]["bonds"] == 0
    assert address == ring.info["identity_address"]  # unbonded: its identity address, nothing to hide yet

    async def scenario() -> None:
        first = BumbleAdapter(air.spec, keystore=tmp_path / "bridge-a.json")
        second = BumbleAdapter(air.spec)
        try:
            async with raw_link(first, address) as (_connection, peer):
                # No bond: Insufficient Authentication (pair first), on reads, writes and subscriptions alike.
                assert await refused(peer.read_value(attribute(peer, ids.WEDGE_STATUS))) == \
                    AttError.INSUFFICIENT_AUTHENTICATION
                assert await refused(peer.subscribe(attribute(peer, ids.WEDGE_RECORDS))) == \
                    AttError.INSUFFICIENT_AUTHENTICATION
                assert await refused(peer.write_value(attribute(peer, ids.WEDGE_CONTROL_POINT), start_command(),
                                                      with_response=True)) == AttError.INSUFFICIENT_AUTHENTICATION
                assert await refused(peer.subscribe(attribute(peer, ids.HEART_RATE_MEASUREMENT))) == \
                    AttError.INSUFFICIENT_AUTHENTICATION
                assert await refused(peer.read_value(attribute(peer, ids.SERIAL_NUMBER))) == \
                    AttError.INSUFFICIENT_AUTHENTICATION
                # What a ring shows anyone, as Zephyr's BAS and DIS ship: the battery and the model.
                assert (await peer.read_value(attribute(peer, ids.BATTERY_LEVEL)))[0] == 100
                assert await peer.read_value(attribute(peer, ids.MODEL_NUMBER)) == b"ring-nrf52840"
            # Pairing (LE Secure Connections, Just Works: the ring has no display) opens the stream.
            async with raw_link(first, address) as (connection, peer):
                security = await first.secure(connection, pair=True, name="sec-att")
                assert security.paired_now and security.method == "Just Works" and not security.authenticated
                assert len(await peer.read_value(attribute(peer, ids.WEDGE_STATUS))) > 0
            event = await asyncio.to_thread(ring.wait_event, "paired")
            assert event["method"] == "just works" and event["authenticated"] is False
            # A bonded central that does not encrypt: Insufficient Encryption (encrypt with the bond you have).
            async with raw_link(first, address) as (_connection, peer):
                assert await refused(peer.read_value(attribute(peer, ids.WEDGE_STATUS))) == \
                    AttError.INSUFFICIENT_ENCRYPTION
            # A second central, never bonded, still cannot read the stream (it sees the ring's private address).
            private = await advertised_address(second, "sec-att")
            assert private != address
            async with raw_link(second, private) as (_connection, peer):
                assert await refused(peer.subscribe(attribute(peer, ids.WEDGE_RECORDS))) == \
                    AttError.INSUFFICIENT_AUTHENTICATION
        finally:
            await first.close()
            await second.close()

    try:
        asyncio.run(scenario())
        assert ring.command({"cmd": "status"})["status"]["security"]["bonds"] == 1
    finally:
        ring.terminate()
    # Both sides keep their keys in files only their owner can read.
    for keystore in (tmp_path / "state" / "bonds.json", tmp_path / "bridge-a.json"):
        assert stat.S_IMODE(keystore.stat().st_mode) == 0o600, keystore


def test_the_ring_refuses_a_just_works_pairing_over_its_bond_and_legacy_pairing(air: AirProcess,
                                                                                 tmp_path: Path) -> None:
    ring = start_ring(air, tmp_path / "state", "sec-repair")

    async def pair(adapter: BumbleAdapter) -> None:
        # Found by name, as `wedge pair` finds it: once bonded the ring advertises private addresses.
        connection = await adapter.connect(await advertised_address(adapter, "sec-repair"), 10.0)
        try:
            await adapter.secure(connection, pair=True, name="sec-repair")
        finally:
            await connection.disconnect()

    async def scenario() -> None:
        adapter = BumbleAdapter(air.spec)
        try:
            await pair(adapter)
            # The bridge forgets the bond (`wedge unpair`), the ring keeps it: an unauthenticated pairing must
            # not replace it (anyone can claim the bridge's address), so Zephyr's ring refuses it.
            await adapter.forget(adapter.bonds.bonds()[0].address)
            with pytest.raises(PairingFailed, match="erase the device's bonds"):
                await pair(adapter)
            failed = await asyncio.to_thread(ring.wait_event, "pairing_failed")
            assert failed["reason"] == "AUTHENTICATION_REQUIREMENTS"
            # Erasing the ring's bonds (its settings reset) lets the same bridge pair again.
            assert (await asyncio.to_thread(ring.command, {"cmd": "unpair"}))["unpaired"] == 1
            await pair(adapter)
            # LE Secure Connections only (CONFIG_BT_SMP_SC_PAIR_ONLY): a legacy pairing request is refused.
            legacy = BumbleAdapter(air.spec)
            device = await legacy.device()
            device.pairing_config_factory = lambda _c: PairingConfig(sc=False, mitm=False, bonding=True,
                                                                     delegate=PairingDelegate())
            connection = await legacy.connect(await advertised_address(legacy, "sec-repair"), 10.0)
            with pytest.raises(Exception, match="AUTHENTICATION_REQUIREMENTS"):
                await device.pair(connection)
            await connection.disconnect()
            await legacy.close()
        finally:
            await adapter.close()

    try:
        asyncio.run(scenario())
    finally:
        ring.terminate()


def _pair_process(air: AirProcess, name: str, keystore: Path, log: Path) -> ChildProcess:
    return ChildProcess([sys.executable, "-m", "wedge.cli", "pair", name, "--transport", air.spec,
                         "--keystore", str(keystore), "--json"], log)


@pytest.fixture
def boards_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A WEDGE_BOARDS_PATH folder for ring profiles with other IO capabilities (the children inherit it)."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    monkeypatch.setenv(BOARDS_PATH_ENV, str(folder))
    return folder


def test_a_ring_with_a_display_pairs_by_passkey_entry_and_a_wrong_passkey_fails(
        air: AirProcess, tmp_path: Path, boards_path: Path) -> None:
    board = ring_profile(boards_path, "ring-with-display", io_capability="display_only")
    ring = start_ring(air, tmp_path / "state", "sec-passkey", board=board)
    try:
        # A wrong passkey first: the pairing fails with one line, and nothing is bonded.
        wrong = _pair_process(air, "sec-passkey", tmp_path / "bonds.json", tmp_path / "pair-wrong.log")
        shown = ring.wait_event("display")
        assert len(shown["passkey"]) == 6 and shown["to"] == "type this passkey on the central"
        wrong.type_line(f"{(int(shown['passkey']) + 1) % 1_000_000:06d}")
        assert wrong.wait_exit(30) == 1
        assert "pairing with sec-passkey" in wrong.log_tail() and "did not match" in wrong.log_tail()
        # The passkey the ring displays, typed at `wedge pair`: an authenticated bond.
        right = _pair_process(air, "sec-passkey", tmp_path / "bonds.json", tmp_path / "pair.log")
        shown = ring.wait_event("display")
        right.type_line(shown["passkey"])
        result = right.wait_for("paired")["paired"]
        assert right.wait_exit(30) == 0
        assert result["method"] == "passkey entry" and result["authenticated"] is True
        assert ring.wait_event("paired")["authenticated"] is True
    finally:
        ring.terminate()
    assert "passkey entry. Type the 6 digits it displays" in (tmp_path / "pair.log").read_text()


def test_a_ring_with_a_display_and_a_button_pairs_by_numeric_comparison(air: AirProcess, tmp_path: Path,
                                                                        boards_path: Path) -> None:
    board = ring_profile(boards_path, "ring-with-button", io_capability="display_yes_no")
    ring = start_ring(air, tmp_path / "state", "sec-compare", board=board)
    try:
        pairing = _pair_process(air, "sec-compare", tmp_path / "bonds.json", tmp_path / "pair.log")
        shown = ring.wait_event("display")
        assert len(shown["compare"]) == 6
        # The wearer presses the ring's button, the user confirms at the terminal: both saw the same number.
        assert ring.command({"cmd": "button", "yes": True}) == {"button": True}
        pairing.type_line("y")
        result = pairing.wait_for("paired")["paired"]
        assert pairing.wait_exit(30) == 0
    finally:
        ring.terminate()
    assert result["method"] == "numeric comparison" and result["authenticated"] is True
    assert f"Does it show {shown['compare']}?" in (tmp_path / "pair.log").read_text()


def test_smp_writes_need_an_authenticated_bond_when_the_profile_says_authenticate(
        air: AirProcess, tmp_path: Path, keys, boards_path: Path) -> None:
    board = ring_profile(boards_path, "ring-smp-authen", io_capability="display_only", smp_permission="authenticate")
    emulator = EmulatorProcess(tmp_path / "board", keys.private_path, board,
                               extra=("--ble", air.spec, "--ble-name", "sec-smp"))
    emulator.start()
    try:
        async def scenario() -> None:
            # A central with no display or keyboard can only pair Just Works: encrypted, not authenticated.
            adapter = BumbleAdapter(air.spec)
            device = await adapter.device()
            device.pairing_config_factory = lambda _c: PairingConfig(
                sc=True, mitm=False, bonding=True,
                delegate=PairingDelegate(io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT),
                identity_address_type=PairingConfig.AddressType.RANDOM)
            found = await advertised_address(adapter, "sec-smp")
            try:
                async with raw_link(adapter, found) as (connection, peer):
                    assert await refused(peer.subscribe(attribute(peer, SMP_CHARACTERISTIC_UUID))) == \
                        AttError.INSUFFICIENT_AUTHENTICATION
                    await device.pair(connection)
                    assert connection.is_encrypted
                    # CONFIG_MCUMGR_TRANSPORT_BT_PERM_RW_AUTHEN: a Just Works key is not enough.
                    assert await refused(peer.subscribe(attribute(peer, SMP_CHARACTERISTIC_UUID))) == \
                        AttError.INSUFFICIENT_AUTHENTICATION
            finally:
                await adapter.close()

        asyncio.run(scenario())
    finally:
        emulator.stop()


def test_keys_never_reach_the_ring_log(air: AirProcess, tmp_path: Path) -> None:
    ring = start_ring(air, tmp_path / "state", "sec-log")

    async def scenario() -> None:
        adapter = BumbleAdapter(air.spec, keystore=tmp_path / "bridge.json")
        try:
            connection = await adapter.connect(ring.info["address"], 10.0)
            await adapter.secure(connection, pair=True, name="sec-log")
            await connection.disconnect()
        finally:
            await adapter.close()

    try:
        asyncio.run(scenario())
        ring.wait_event("paired")
    finally:
        ring.terminate()
    secrets = key_material(tmp_path / "state" / "bonds.json") | key_material(tmp_path / "bridge.json")
    assert secrets
    log = (tmp_path / "sec-log.log").read_text().lower()
    assert not [key for key in secrets if key in log]
