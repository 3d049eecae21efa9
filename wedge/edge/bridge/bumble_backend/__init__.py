"""wedge's bleak backend on Bumble: the same bleak code talks to virtual boards and to HCI dongles Bumble drives.

Usage: `adapter = BumbleAdapter("tcp-client:127.0.0.1:PORT", keystore=path)`, then bleak's
`BleakScanner(backend=BleakScannerBumble, bumble={"adapter": adapter})` and
`BleakClient(device, backend=BleakClientBumble, bumble={"adapter": adapter}, pair=True)`.
"""

from wedge.edge.bridge.bumble_backend.adapter import BumbleAdapter, default_keystore_path
from wedge.edge.bridge.bumble_backend.client import BleakClientBumble
from wedge.edge.bridge.bumble_backend.scanner import BleakScannerBumble, BumbleArgs, BumbleDetails
from wedge.edge.bridge.bumble_backend.security import LinkSecurity, NoPrompts, PairingPrompts

__all__ = ["BleakClientBumble", "BleakScannerBumble", "BumbleAdapter", "BumbleArgs", "BumbleDetails", "LinkSecurity",
           "NoPrompts", "PairingPrompts", "default_keystore_path"]
