"""wedge's bleak backend on Bumble: the same bleak code talks to virtual boards and to HCI dongles Bumble drives.

Usage: `adapter = BumbleAdapter("tcp-client:127.0.0.1:PORT")`, then bleak's `BleakScanner(backend=BleakScannerBumble,
bumble={"adapter": adapter})` and `BleakClient(device, backend=BleakClientBumble, bumble={"adapter": adapter})`.
"""

from wedge.edge.bridge.bumble_backend.adapter import BumbleAdapter
from wedge.edge.bridge.bumble_backend.client import BleakClientBumble
from wedge.edge.bridge.bumble_backend.scanner import BleakScannerBumble, BumbleArgs, BumbleDetails

__all__ = ["BleakClientBumble", "BleakScannerBumble", "BumbleAdapter", "BumbleArgs", "BumbleDetails"]
