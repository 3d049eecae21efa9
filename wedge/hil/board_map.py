"""The board map (`bench.toml`): which boards a bench has and how to reach each one.

    [boards.ring-1]
    profile = "ring-nrf52840"      # a board profile (wedge boards)
    port = "virtual"               # a serial path, a pyserial URL, or "virtual" (the bench starts one)
    # place = "labgrid:ring-1"     # instead of port: a labgrid place (its serial port, baud rate and power switch)
    dut_port = "/dev/ttyACM1"      # optional: the MLPerf Tiny DUT protocol on its own UART (default: `port`)
    ble = "wedge-ring-1"           # optional BLE name or address
    power = "uhubctl -a cycle -p 2"  # optional command that power-cycles the board
    key = "keys/wedge.pem"         # private key the board's bootloader trusts (virtual boards get a throwaway one)

A top-level `coordinator = "HOST:PORT"` names the labgrid coordinator of the map's places.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from wedge.boards import Board, BoardError
from wedge.boards import load as load_profile
from wedge.firmware.protocol.dut import REFERENCE_COMMAND_BYTES
from wedge.hil.errors import BoardMapError
from wedge.hil.labgrid import PLACE_SCHEME, LabgridError, place_name

VIRTUAL: Final[str] = "virtual"
# A virtual board holds any command length; a bigger `db` line means fewer round trips per sample.
VIRTUAL_COMMAND_BYTES: Final[int] = 4096
_NAME_PATTERN: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
_KEYS: Final[frozenset[str]] = frozenset({"profile", "port", "dut_port", "ble", "power", "key", "baud",
                                          "dut_command_bytes", "place"})


@dataclass(frozen=True)
class BenchBoard:
    """One board of the map."""

    name: str
    profile: Board
    port: str | None
    ble: str | None
    power_command: str | None
    key_path: Path | None
    baud: int
    dut_command_bytes: int
    place: str | None = None  # a labgrid place: port, baud and power come from its resources
    dut_port: str | None = None  # None: the DUT protocol shares `port` with SMP (firmware that implements it)

    @property
    def virtual(self) -> bool:
        return self.port == VIRTUAL

    @property
    def address(self) -> str:
        """Where the board is: its port, or its labgrid place."""
        return self.port if self.port is not None else f"{PLACE_SCHEME}{self.place}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "profile": self.profile.name, "port": self.address, "ble": self.ble,
                "power_command": self.power_command, "key": None if self.key_path is None else str(self.key_path),
                "baud": self.baud, "dut_command_bytes": self.dut_command_bytes, "place": self.place,
                "dut_port": self.dut_port}


@dataclass(frozen=True)
class BoardMap:
    path: Path
    boards: tuple[BenchBoard, ...]
    coordinator: str | None = None  # of the labgrid places

    def get(self, name: str) -> BenchBoard:
        for board in self.boards:
            if board.name == name:
                return board
        known = ", ".join(b.name for b in self.boards)
        raise BoardMapError(f"board {name!r} is not in {self.path.name} (it has: {known})")


def _entry(name: str, raw: Any, base: Path) -> BenchBoard:
    where = f"[boards.{name}]"
    if not _NAME_PATTERN.fullmatch(name):
        # The name becomes a folder of the report and a pytest option: no path separators, no dot-dot.
        raise BoardMapError(f"board name {name!r}: a board name is letters, digits, '.', '_' and '-' (not starting with '.'), "
                            f"at most 64 characters")
    if not isinstance(raw, dict):
        raise BoardMapError(f"{where} must be a table")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise BoardMapError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    place = _place(where, raw)
    for key in ("profile",) if place else ("profile", "port"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise BoardMapError(f"{where} needs {key} = \"...\"" + ("" if key == "profile" else
                                " (or place = \"labgrid:NAME\")"))
    try:
        profile = load_profile(raw["profile"])
    except BoardError as exc:
        raise BoardMapError(f"{where}: {exc}") from None
    for key in ("ble", "power", "key", "dut_port"):
        if key in raw and not isinstance(raw[key], str):
            raise BoardMapError(f"{where}: {key} must be a string")
    for key in ("baud", "dut_command_bytes"):
        if key in raw and (not isinstance(raw[key], int) or raw[key] <= 0):
            raise BoardMapError(f"{where}: {key} must be a positive integer")
    virtual = raw.get("port") == VIRTUAL
    key_path = None if "key" not in raw else (base / raw["key"]).resolve()
    if key_path is not None and not key_path.is_file():
        raise BoardMapError(f"{where}: key {raw['key']} does not exist ({key_path})")
    return BenchBoard(
        name=name, profile=profile, port=raw.get("port"), ble=raw.get("ble"), power_command=raw.get("power"),
        key_path=key_path, baud=raw.get("baud", 115_200),
        dut_command_bytes=raw.get("dut_command_bytes", VIRTUAL_COMMAND_BYTES if virtual else REFERENCE_COMMAND_BYTES),
        place=place,
        dut_port=raw.get("dut_port"),
    )


def _place(where: str, raw: dict[str, Any]) -> str | None:
    """The labgrid place of an entry, which replaces its port and baud rate (the place's resources say them)."""
    if "place" not in raw:
        return None
    if not isinstance(raw["place"], str):
        raise BoardMapError(f"{where}: place must be a string such as \"labgrid:NAME\"")
    for key in ("port", "baud"):
        if key in raw:
            raise BoardMapError(f"{where}: a place brings its own serial port and speed: drop {key} or place")
    try:
        return place_name(raw["place"])
    except LabgridError as exc:
        raise BoardMapError(f"{where}: {exc}") from None


def load_board_map(path: str | Path) -> BoardMap:
    """Read and validate a bench.toml; BoardMapError says what is wrong and where."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BoardMapError(f"board map not found: {path}") from None
    except OSError as exc:
        raise BoardMapError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BoardMapError(f"{path.name} is not UTF-8 text (TOML files are UTF-8): byte "
                            f"0x{exc.object[exc.start]:02x} at offset {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BoardMapError(f"{path.name} is not valid TOML: {' '.join(str(exc).split())}") from None
    boards = data.get("boards")
    if not isinstance(boards, dict) or not boards:
        raise BoardMapError(f"{path.name} lists no boards: add a [boards.NAME] table with profile and port")
    coordinator = data.get("coordinator")
    if coordinator is not None and (not isinstance(coordinator, str) or not coordinator):
        raise BoardMapError(f"{path.name}: coordinator must be a string such as \"lab-server:20408\"")
    return BoardMap(path, tuple(_entry(name, raw, path.parent) for name, raw in boards.items()), coordinator)


def virtual_map_text(names_profiles: list[tuple[str, str]]) -> str:
    """A bench.toml of virtual boards (what `wedge demo` and the tests write)."""
    return "".join(f'[boards.{name}]\nprofile = "{profile}"\nport = "{VIRTUAL}"\n\n' for name, profile in names_profiles)
