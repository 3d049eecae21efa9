"""Board profiles: TOML data for each supported board, validated into frozen dataclasses.

Built-in profiles live in `profiles/`; folders named by WEDGE_BOARDS_PATH add or override them.
"""

from __future__ import annotations

from wedge.boards.errors import BoardError
from wedge.boards.loader import (
    BOARDS_PATH_ENV,
    BUILTIN_DIR,
    DEFAULT_BOARD,
    DEFAULT_LM_BOARD,
    discover,
    list_boards,
    load,
    load_file,
    origin,
)
from wedge.boards.profile import Ble, BleSecurity, Board, Budgets, Compute, Flashing, Memory, Sensor

__all__ = [
    "BOARDS_PATH_ENV",
    "BUILTIN_DIR",
    "DEFAULT_BOARD",
    "DEFAULT_LM_BOARD",
    "Ble",
    "BleSecurity",
    "Board",
    "BoardError",
    "Budgets",
    "Compute",
    "Flashing",
    "Memory",
    "Sensor",
    "discover",
    "list_boards",
    "load",
    "load_file",
    "origin",
]
