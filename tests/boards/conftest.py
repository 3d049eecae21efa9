"""Fixtures for board-profile tests: a valid profile as data, and a writer that turns it into a TOML file.

Tests start from the valid profile and break one thing, so each test shows exactly which input is bad.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ProfileWriter = Callable[..., Path]


def valid_profile(name: str = "test-ring") -> dict[str, Any]:
    """A small but complete profile that passes validation."""
    return {
        "name": name,
        "title": "Test ring",
        "board_class": "ring",
        "mcu": "nRF52840",
        "memory": {"flash_bytes": 1_048_576, "ram_bytes": 262_144, "psram_bytes": 0},
        "compute": {"core": "Cortex-M4F", "clock_hz": 64_000_000, "cycles_per_mac": 2.5, "runtime": "tflm"},
        "budgets": {"model_slot_bytes": 262_144, "arena_bytes": 131_072},
        "sensors": [
            {"name": "ppg", "kind": "ppg", "rate_hz": 50.0, "window_s": 4.0, "channels": 1},
            {"name": "cam", "kind": "camera", "rate_hz": 5.0, "window_s": 0.2, "channels": 3,
             "frame_width_px": 96, "frame_height_px": 96},
        ],
        "zephyr_boards": ["nrf52840dk/nrf52840"],
        "flashing": {"protocol": "smp-serial", "slot_count": 2, "mcumgr_buf_size": 384, "baud": 115_200,
                     "images": [
                         {"role": "application", "primary_offset": 0xC000, "secondary_offset": 0x40000,
                          "slot_size_bytes": 0x34000},
                         {"role": "model", "primary_offset": 0x74000, "secondary_offset": 0xB6000,
                          "slot_size_bytes": 0x42000},
                     ]},
        "ble": {"name_prefix": "wedge-test", "services": ["heart_rate", "battery"], "att_mtu": 247,
                "conn_interval_ms": 30.0},
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(data: dict[str, Any]) -> str:
    """Enough of a TOML writer for profiles: scalars, lists, tables and arrays of tables."""
    lines: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(f"\n[{key}]")
            tables.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                tables.append(f"\n[[{key}]]")
                tables.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines + tables) + "\n"


@pytest.fixture
def profile() -> dict[str, Any]:
    """A fresh valid profile to break."""
    return copy.deepcopy(valid_profile())


@pytest.fixture
def write_profile(tmp_path: Path) -> ProfileWriter:
    """Write a profile dict (or raw text) as <folder>/<file_name>.toml; the folder defaults to tmp_path/boards."""

    def write(data: dict[str, Any] | str, file_name: str | None = None, folder: Path | None = None) -> Path:
        target = folder or tmp_path / "boards"
        target.mkdir(parents=True, exist_ok=True)
        stem = file_name or (data["name"] if isinstance(data, dict) else "broken")
        path = target / f"{stem}.toml"
        path.write_text(data if isinstance(data, str) else to_toml(data), encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def no_user_boards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the built-in profiles unless they set WEDGE_BOARDS_PATH themselves."""
    monkeypatch.delenv("WEDGE_BOARDS_PATH", raising=False)
