"""The ring's Security Manager, as Zephyr's Bluetooth host runs it on a shipping ring.

LE Secure Connections only (CONFIG_BT_SMP_SC_PAIR_ONLY), bonding with the keys kept in the state folder
(CONFIG_BT_SETTINGS: `bonds.json`, the board's identity IRK beside them), a bond never overwritten by a Just Works
re-pairing (Zephyr's update_keys_check without CONFIG_BT_SMP_ALLOW_UNAUTH_OVERWRITE), attribute access checked as
bt_gatt_check_perm does, and a resolvable private address once bonded (CONFIG_BT_PRIVACY). Pairing itself is
Bumble's SMP; the ring's display and button are `RingPanel`, driven by the board's commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bumble import hci, smp
from bumble.att import ErrorCode as AttError
from bumble.device import Connection, Device
from bumble.pairing import PairingConfig, PairingDelegate

from wedge.ble_bonds import BondStore
from wedge.boards import BleSecurity
from wedge.firmware.virtual.ble.gatt_security import Access

BONDS_FILE: Final[str] = "bonds.json"
# A pairing step waits for its user at most as long as SMP lets it (Core Spec Vol 3, Part H, 3.4: 30 s).
SMP_TIMEOUT_S: Final[float] = 30.0
PASSKEY_DIGITS: Final[int] = 6

IO: Final[dict[str, PairingDelegate.IoCapability]] = {
    "no_input_no_output": PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT,
    "display_only": PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY,
    "display_yes_no": PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT,
    "keyboard_only": PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY,
    "keyboard_display": PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT,
}

Event = Callable[[dict[str, Any]], None]

logger = logging.getLogger(__name__)


class RingPanel:
    """The ring's display (events it shows) and its button or keypad (what the board's commands press)."""

    def __init__(self, show: Event) -> None:
        self.show = show
        self._button: asyncio.Future[bool] | None = None
        self._keypad: asyncio.Future[int] | None = None

    async def button(self) -> bool:
        """Wait for the wearer to press yes or no (False after the SMP timeout)."""
        self._button = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(self._button, SMP_TIMEOUT_S)
        except TimeoutError:
            return False
        finally:
            self._button = None

    async def keypad(self) -> int | None:
        self._keypad = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(self._keypad, SMP_TIMEOUT_S)
        except TimeoutError:
            return None
        finally:
            self._keypad = None

    def press(self, yes: bool) -> bool:
        """The button; False when nothing waits for it."""
        if self._button is None or self._button.done():
            return False
        self._button.set_result(yes)
        return True

    def type_passkey(self, passkey: int) -> bool:
        if self._keypad is None or self._keypad.done():
            return False
        self._keypad.set_result(passkey)
        return True


class _RingDelegate(PairingDelegate):
    """One pairing's user side on the ring; notes which method the IO capabilities led to."""

    def __init__(self, security: RingSecurity, connection: Connection) -> None:
        ring = security.settings
        super().__init__(io_capability=IO[ring.io_capability])
        self.security = security
        self.peer = str(connection.peer_address)
        self.method = "just works"

    async def confirm(self, auto: bool = False) -> bool:
        return True  # Just Works: nothing to show, nothing to press

    async def compare_numbers(self, number: int, digits: int) -> bool:
        self.method = "numeric comparison"
        self.security.panel.show({"display": {"peer": self.peer, "compare": f"{number:0{digits}d}",
                                              "to": "press the button if the central shows the same number"}})
        return await self.security.panel.button()

    async def display_number(self, number: int, digits: int) -> None:
        self.method = "passkey entry"
        self.security.panel.show({"display": {"peer": self.peer, "passkey": f"{number:0{digits}d}",
                                              "to": "type this passkey on the central"}})

    async def get_number(self) -> int | None:
        self.method = "passkey entry"
        self.security.panel.show({"display": {"peer": self.peer,
                                              "to": "type the passkey the central shows on the ring's keypad"}})
        return await self.security.panel.keypad()


class _RingSession(smp.Session):
    """Bumble's SMP session with the checks Zephyr's smp_pairing_req makes before answering a pairing request."""

    def on_smp_pairing_request_command(self, command: smp.SMP_Pairing_Request_Command) -> None:
        delegate = self.pairing_config.delegate
        if isinstance(delegate, _RingDelegate):
            if not command.auth_req & smp.AuthReq.SC:
                # CONFIG_BT_SMP_SC_PAIR_ONLY: legacy pairing is refused.
                self.send_pairing_failed(smp.ErrorCode.AUTHENTICATION_REQUIREMENTS)
                return
            self.decide_pairing_method(command.auth_req, command.io_capability, self.io_capability)
            bond = delegate.security.store.bond(str(self.connection.peer_address))
            if bond is not None and self.pairing_method == smp.PairingMethod.JUST_WORKS:
                # update_keys_check: an unauthenticated pairing never replaces an existing bond (anyone could
                # claim the bonded phone's address and take its place).
                self.send_pairing_failed(smp.ErrorCode.AUTHENTICATION_REQUIREMENTS)
                return
        super().on_smp_pairing_request_command(command)


class RingSecurity:
    """Bonds, pairing and access checks for one ring; `attach` it to the Bumble device before power-on.

    state_dir None keeps the bonds in memory (a board without a state folder forgets them when it stops).
    """

    def __init__(self, settings: BleSecurity, state_dir: Path | None, identity_address: str,
                 show: Event | None = None) -> None:
        self.settings = settings
        self.store = BondStore(state_dir / BONDS_FILE if state_dir is not None else None, address=identity_address)
        self.identity = hci.Address(identity_address, hci.Address.RANDOM_DEVICE_ADDRESS)
        self.panel = RingPanel(show or (lambda _event: None))
        self._delegates: dict[Connection, _RingDelegate] = {}

    # -- wiring -------------------------------------------------------------------------------------------

    def attach(self, device: Device) -> None:
        device.keystore = self.store
        device.irk = self.store.identity.irk
        device.pairing_config_factory = self._pairing_config
        device.smp_session_proxy = _RingSession
        device.on("connection", self._on_connection)

    def _pairing_config(self, connection: Connection) -> PairingConfig:
        delegate = _RingDelegate(self, connection)
        self._delegates[connection] = delegate
        return PairingConfig(sc=True, mitm=self.settings.can_authenticate, bonding=True, delegate=delegate,
                             identity_address_type=PairingConfig.AddressType.RANDOM)

    def _on_connection(self, connection: Connection) -> None:
        connection.on("pairing", lambda _keys: self._paired(connection))
        connection.on("pairing_failure", lambda reason: self._failed(connection, reason))
        connection.on("disconnection", lambda _reason: self._delegates.pop(connection, None))

    def _paired(self, connection: Connection) -> None:
        delegate = self._delegates.get(connection)
        bond = self.store.bond(str(connection.peer_address))
        method = delegate.method if delegate is not None else "just works"
        self.panel.show({"paired": {"peer": str(connection.peer_address), "method": method,
                                    "authenticated": bool(bond and bond.authenticated),
                                    "bonds": len(self.store.bonds())}})

    def _failed(self, connection: Connection, reason: int) -> None:
        try:
            name = smp.ErrorCode(reason).name
        except ValueError:
            name = f"0x{reason:02X}"
        self.panel.show({"pairing_failed": {"peer": str(connection.peer_address), "reason": name}})

    # -- what the GATT server asks ------------------------------------------------------------------------

    def access_error(self, connection: Connection, access: Access) -> int | None:
        """bt_gatt_check_perm: Insufficient Authentication without a bond, Insufficient Encryption with one but
        no encryption, Insufficient Authentication when an MITM-protected key is needed and this one is not."""
        if not self.settings.required or access is Access.OPEN:
            return None
        bond = self.store.bond(str(connection.peer_address))
        if not connection.is_encrypted:
            return AttError.INSUFFICIENT_ENCRYPTION if bond is not None else AttError.INSUFFICIENT_AUTHENTICATION
        if access is Access.AUTHENTICATE and not (bond is not None and bond.authenticated):
            return AttError.INSUFFICIENT_AUTHENTICATION
        return None

    # -- privacy ------------------------------------------------------------------------------------------

    @property
    def private(self) -> bool:
        """Whether the ring hides behind resolvable private addresses: once bonded, when security is on."""
        return self.settings.required and bool(self.store.bonds())

    def advertising_address(self) -> hci.Address:
        """A fresh resolvable private address from the ring's IRK once bonded, else its identity address."""
        if self.private:
            return hci.Address.generate_private_address(self.store.identity.irk)
        return self.identity

    def forget_all(self) -> int:
        """Erase every bond (a factory reset of the Bluetooth settings); how many there were."""
        return self.store.forget_all()

    def describe(self) -> dict[str, Any]:
        settings = self.settings
        return {"required": settings.required, "io_capability": settings.io_capability,
                "pairing": settings.pairing_method, "smp_permission": settings.smp_permission,
                "bonds": len(self.store.bonds()), "identity_address": str(self.identity)}
