"""`wedge boards` and `wedge boards show`: tables for people, JSON with exact bytes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import REPO_ROOT
from wedge.boards import BUILTIN_DIR
from wedge.cli import main

BUILTIN_NAMES = ["glasses-esp32s3", "glasses-soc", "ring-nrf52840", "ring-nrf5340"]


@pytest.fixture(autouse=True)
def no_user_boards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEDGE_BOARDS_PATH", raising=False)


def _user_profile(folder: Path, name: str) -> Path:
    """A user profile: the nRF52840 ring renamed, with a smaller arena so an override is visible."""
    text = (BUILTIN_DIR / "ring-nrf52840.toml").read_text(encoding="utf-8")
    text = text.replace('name = "ring-nrf52840"', f'name = "{name}"')
    text = text.replace("arena_bytes = 131_072", "arena_bytes = 65_536")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_boards_lists_every_builtin_with_human_sizes() -> None:
    result = CliRunner().invoke(main, ["boards"])
    assert result.exit_code == 0, result.output
    for name in BUILTIN_NAMES:
        assert name in result.stdout
    assert "Cortex-M4F" in result.stdout and "64 MHz" in result.stdout
    assert "256.0 KiB" in result.stdout  # nRF52840 RAM and model slot, not 262144
    assert "built-in" in result.stdout


def test_boards_json_lists_all_profiles_with_exact_bytes() -> None:
    result = CliRunner().invoke(main, ["boards", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [board["name"] for board in data] == BUILTIN_NAMES
    ring = next(board for board in data if board["name"] == "ring-nrf52840")
    assert ring["memory"]["flash_bytes"] == 1_048_576
    assert ring["budgets"]["arena_bytes"] == 131_072
    assert ring["origin"] == "built-in"


def test_show_prints_one_profile_in_full() -> None:
    result = CliRunner().invoke(main, ["boards", "show", "ring-nrf52840"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Health ring, Nordic nRF52840" in out
    assert "ppg" in out and "200 x 1" in out  # the PPG window the ring sample model consumes
    assert "accelerometer" in out and "temperature" in out
    assert "smp-serial" in out and "image 1 (model)" in out and "2 x 264.0 KiB at 0x74000 / 0xb6000" in out
    assert "nrf52840dk/nrf52840" in out
    assert "heart_rate" in out and "247" in out


def test_show_json_gives_exact_bytes_and_sensor_windows() -> None:
    result = CliRunner().invoke(main, ["boards", "show", "glasses-esp32s3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["memory"]["psram_bytes"] == 8_388_608
    camera = next(s for s in data["sensors"] if s["kind"] == "camera")
    assert camera["window_shape"] == [1, 96, 96, 3]
    assert data["flashing"]["protocol"] == "esptool"


def test_show_unknown_board_exits_1_with_a_one_line_error() -> None:
    result = CliRunner().invoke(main, ["boards", "show", "ring-nrf52480"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: unknown board 'ring-nrf52480'")
    assert "did you mean 'ring-nrf52840'" in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_unknown_board_from_a_real_process_has_no_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("WEDGE_BOARDS_PATH", None)
    proc = subprocess.run([sys.executable, "-m", "wedge.cli", "boards", "show", "nope"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: unknown board 'nope'")
    assert "Traceback" not in proc.stderr


def test_user_profile_appears_in_the_list_with_its_source(tmp_path: Path) -> None:
    path = _user_profile(tmp_path / "my-boards", "my-ring")
    result = CliRunner().invoke(main, ["boards"], env={"WEDGE_BOARDS_PATH": str(path.parent)})
    assert result.exit_code == 0, result.output
    assert "my-ring" in result.stdout
    assert str(path) in result.stdout


def test_user_override_of_a_builtin_is_shown_and_used(tmp_path: Path) -> None:
    path = _user_profile(tmp_path / "my-boards", "ring-nrf52840")
    env = {"WEDGE_BOARDS_PATH": str(path.parent)}
    listing = CliRunner().invoke(main, ["boards", "--json"], env=env)
    ring = next(b for b in json.loads(listing.stdout) if b["name"] == "ring-nrf52840")
    assert ring["origin"] == "user (overrides built-in)"
    assert ring["source"] == str(path)
    shown = CliRunner().invoke(main, ["boards", "show", "ring-nrf52840"], env=env)
    assert "overrides built-in" in shown.stdout
    assert "64.0 KiB" in shown.stdout  # the overridden arena


def test_broken_user_profile_fails_the_listing_with_file_and_key(tmp_path: Path) -> None:
    path = _user_profile(tmp_path / "my-boards", "my-ring")
    path.write_text(path.read_text(encoding="utf-8").replace("ram_bytes = 262_144", "ram_bytes = 0"),
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["boards"], env={"WEDGE_BOARDS_PATH": str(path.parent)})
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {path}: memory.ram_bytes: must be a positive integer, got 0"
