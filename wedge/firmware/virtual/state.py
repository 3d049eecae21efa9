"""The virtual board's state folder: its flash file, its provisioned signing key and what it remembers across resets.

`board.json` plays the part of a real board's settings storage and retained RAM: the key MCUboot trusts, the
boot count, the last boot event (why it rolled back), and a marker that a self-test was running.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wedge.firmware.errors import SigningKeyError, VirtualBoardError
from wedge.firmware.image.keys import load_public_key, public_key_hash, public_key_pem

STATE_FILE: Final[str] = "board.json"
FLASH_FILE: Final[str] = "flash.bin"
CONTROL_SOCKET: Final[str] = "control.sock"


@dataclass(frozen=True)
class Remembered:
    """What survives a reset or a restart of the emulator."""

    board: str
    public_key_pem: str
    boot_count: int = 0
    event: str | None = None
    self_test_hash: str | None = None


class StateFolder:
    """One board's folder: flash file, control socket and board.json."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VirtualBoardError(f"cannot create the state folder {folder}: {exc.strerror or exc}") from exc

    @property
    def flash_path(self) -> Path:
        return self.folder / FLASH_FILE

    @property
    def control_path(self) -> Path:
        return self.folder / CONTROL_SOCKET

    def load(self) -> Remembered | None:
        path = self.folder / STATE_FILE
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
            return Remembered(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise VirtualBoardError(f"{path} is damaged ({exc}); remove the state folder to start afresh") from exc

    def save(self, state: Remembered) -> None:
        """Replace board.json atomically: a power cut must leave the old or the new one, never half of one."""
        fd, tmp = tempfile.mkstemp(prefix=".board.", dir=self.folder)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(state), handle, indent=2)
        os.replace(tmp, self.folder / STATE_FILE)

    def provision(self, board: str, key_path: Path | None) -> tuple[Remembered, Ed25519PublicKey]:
        """The remembered state and trusted key, provisioning the key on first use.

        A board's bootloader key is fixed once provisioned: a different --key is refused, not swapped in.
        """
        remembered = self.load()
        given = load_public_key(key_path) if key_path is not None else None
        if remembered is None:
            if given is None:
                raise VirtualBoardError(
                    "a new virtual board needs the public key its bootloader will trust: pass --key "
                    "(for example keys/wedge.pub from `wedge keys generate`)"
                )
            remembered = Remembered(board=board, public_key_pem=public_key_pem(given).decode())
            self.save(remembered)
            return remembered, given
        if remembered.board != board:
            raise VirtualBoardError(
                f"the state folder {self.folder} belongs to a {remembered.board} board, not {board}"
            )
        try:
            stored = serialization.load_pem_public_key(remembered.public_key_pem.encode())
        except ValueError as exc:
            raise VirtualBoardError(f"the key stored in {self.folder / STATE_FILE} is damaged") from exc
        if not isinstance(stored, Ed25519PublicKey):
            raise SigningKeyError(f"the key stored in {self.folder / STATE_FILE} is not ed25519")
        if given is not None and public_key_hash(given) != public_key_hash(stored):
            raise VirtualBoardError(
                f"this board was provisioned with key {public_key_hash(stored).hex()[:16]}, not "
                f"{public_key_hash(given).hex()[:16]}: use a new --state folder for another key"
            )
        return remembered, stored

    def update(self, state: Remembered, **changes: object) -> Remembered:
        new = replace(state, **changes)  # type: ignore[arg-type]
        self.save(new)
        return new
