"""Shared by the BLE security tests: ring profiles with other IO capabilities, and a raw Bumble central on the air."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bleak import BleakScanner
from bumble.core import UUID
from bumble.device import Connection, Peer

from wedge.boards import BUILTIN_DIR
from wedge.edge.bridge.bumble_backend import BleakScannerBumble, BumbleAdapter
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.samples import sample_path

MODEL = sample_path("ppg_quality")


def ring_profile(folder: Path, name: str, *, io_capability: str, smp_permission: str = "encrypt") -> str:
    """A copy of the ring-nrf52840 profile named `name` in `folder` (put the folder in WEDGE_BOARDS_PATH), with
    another IO capability: a ring with a display, or with a display and a button."""
    text = (BUILTIN_DIR / "ring-nrf52840.toml").read_text()
    text = text.replace('name = "ring-nrf52840"', f'name = "{name}"')
    text = re.sub(r'io_capability = "\w+"', f'io_capability = "{io_capability}"', text)
    text = re.sub(r'smp_permission = "\w+"', f'smp_permission = "{smp_permission}"', text)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(text)
    return name


def start_ring(air: AirProcess, state: Path, name: str, board: str = "ring-nrf52840",
               rate_hz: float = 20.0) -> BleBoardProcess:
    """A virtual ring in its own process, its device id, records and bonds in `state`."""
    return BleBoardProcess(board, MODEL, air.spec, state.parent, name=name,
                           extra_args=["--rate-hz", str(rate_hz), "--state-dir", str(state)])


@asynccontextmanager
async def raw_link(adapter: BumbleAdapter, address: str) -> AsyncIterator[tuple[Connection, Peer]]:
    """An LE connection with nothing done on it (not encrypted, not paired), its GATT database discovered."""
    connection = await adapter.connect(address, 10.0)
    peer = Peer(connection)
    try:
        await peer.discover_all()
        yield connection, peer
    finally:
        await connection.disconnect()


def attribute(peer: Peer, uuid: str) -> Any:
    """The characteristic proxy with this UUID."""
    found = peer.get_characteristics_by_uuid(UUID(uuid))
    assert found, f"no characteristic {uuid}"
    return found[0]


async def advertised_address(adapter: BumbleAdapter, name: str) -> str:
    """The address the device named `name` advertises from, as this adapter sees it."""
    found = await BleakScanner.find_device_by_name(name, timeout=20, backend=BleakScannerBumble,
                                                   bumble={"adapter": adapter})
    assert found is not None, f"{name} is not advertising"
    return str(found.details.address)


def key_material(keystore: Path) -> set[str]:
    """Every key a keystore file holds, in lowercase hex: its owner's IRK, and each peer's LTK and IRK."""
    data = json.loads(keystore.read_text())
    keys = {data["identity"]["irk"]}
    for bond in data["bonds"].values():
        keys |= {value["value"] for value in bond["keys"].values() if isinstance(value, dict)}
    return {key.lower() for key in keys}
