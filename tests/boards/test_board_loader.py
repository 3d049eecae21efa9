"""Loading the built-in profiles, user profiles from WEDGE_BOARDS_PATH, and the latency estimate."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from wedge import boards
from wedge.boards import Board, BoardError

BUILTIN_NAMES = ["glasses-esp32s3", "glasses-soc", "ring-nrf52840", "ring-nrf5340"]


def test_list_boards_returns_the_four_builtins_sorted_by_name() -> None:
    assert [b.name for b in boards.list_boards()] == BUILTIN_NAMES


def test_every_builtin_comes_from_the_packaged_profiles_folder() -> None:
    for board in boards.list_boards():
        assert Path(board.source).parent == boards.BUILTIN_DIR
        assert boards.origin(board) == "built-in"


def test_ring_ppg_window_is_the_200_by_1_shape_the_ring_sample_model_consumes() -> None:
    for name in ("ring-nrf52840", "ring-nrf5340"):
        ppg = next(s for s in boards.load(name).sensors if s.kind == "ppg")
        assert (ppg.rate_hz, ppg.window_s, ppg.channels) == (50.0, 4.0, 1)
        assert ppg.window_samples == 200
        assert ppg.window_shape == (200, 1)


def test_nrf52840_profile_carries_its_datasheet_memory_and_clock() -> None:
    board = boards.load("ring-nrf52840")
    assert board.memory.flash_bytes == 1024 * 1024
    assert board.memory.ram_bytes == 256 * 1024
    assert board.compute.clock_hz == 64_000_000
    assert board.compute.runtime == "tflm"
    assert board.flashing.protocol == "smp-serial" and board.flashing.slot_count == 2
    assert board.ble is not None and "heart_rate" in board.ble.services


def test_esp32s3_camera_window_is_one_96x96_rgb_frame() -> None:
    camera = next(s for s in boards.load("glasses-esp32s3").sensors if s.kind == "camera")
    assert camera.window_shape == (1, 96, 96, 3)


def test_every_builtin_fits_its_budgets_inside_its_memory() -> None:
    for board in boards.list_boards():
        assert board.budgets.model_slot_bytes <= board.flashing.slot_size_bytes <= board.memory.flash_bytes
        assert board.budgets.arena_bytes <= board.memory.ram_bytes + board.memory.psram_bytes


def test_board_is_frozen() -> None:
    board = boards.load("ring-nrf52840")
    with pytest.raises(dataclasses.FrozenInstanceError):
        board.name = "other"  # type: ignore[misc]


def test_latency_estimate_is_macs_times_cycles_per_mac_over_clock() -> None:
    board = boards.load("ring-nrf52840")
    macs = 1_000_000
    expected = macs * board.compute.cycles_per_mac / board.compute.clock_hz
    assert board.estimate_latency_s(macs) == pytest.approx(expected)
    assert board.estimate_latency_s(2 * macs) == pytest.approx(2 * expected)
    assert board.estimate_latency_s(0) == 0.0


def test_faster_core_gives_a_shorter_latency_estimate_for_the_same_model() -> None:
    macs = 7_489_664  # MLPerf Tiny VWW int8
    m4 = boards.load("ring-nrf52840").estimate_latency_s(macs)
    m33 = boards.load("ring-nrf5340").estimate_latency_s(macs)
    a55 = boards.load("glasses-soc").estimate_latency_s(macs)
    assert a55 < m33 < m4


def test_nrf52840_power_figure_gives_the_energy_of_an_inference() -> None:
    ring = boards.load("ring-nrf52840")
    # I_CPU0 = 3.3 mA at 3 V (nRF52840 Product Specification): 9.9 mW, so 1 ms of inference is 9.9 uJ.
    assert ring.compute.active_power_mw == pytest.approx(9.9)
    assert ring.estimate_energy_j(0.001) == pytest.approx(9.9e-6)
    assert ring.budgets.latency_ms == 40.0 and ring.to_dict()["compute"]["active_power_mw"] == pytest.approx(9.9)
    # A board without a cited figure gives no energy rather than a guess.
    assert boards.load("ring-nrf5340").estimate_energy_j(0.001) is None


def test_latency_estimate_rejects_negative_macs() -> None:
    with pytest.raises(ValueError, match="macs"):
        boards.load("ring-nrf52840").estimate_latency_s(-1)


def test_to_dict_is_json_ready_with_exact_bytes_and_window_sizes() -> None:
    board = boards.load("glasses-esp32s3")
    data = json.loads(json.dumps(board.to_dict()))
    assert data["name"] == "glasses-esp32s3"
    assert data["memory"] == {"flash_bytes": 16_777_216, "ram_bytes": 524_288, "psram_bytes": 8_388_608}
    mic = next(s for s in data["sensors"] if s["kind"] == "audio")
    assert mic["window_samples"] == 16_000
    assert data["ble"]["services"] == list(board.ble.services)  # type: ignore[union-attr]
    assert data["source"] == board.source


def test_user_profile_from_env_folder_is_listed_and_loadable(
        write_profile, profile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_profile(profile)
    monkeypatch.setenv("WEDGE_BOARDS_PATH", str(path.parent))
    assert [b.name for b in boards.list_boards()] == sorted([*BUILTIN_NAMES, "test-ring"])
    board = boards.load("test-ring")
    assert board.source == str(path)
    assert boards.origin(board) == "user"


def test_user_profile_with_a_builtin_name_overrides_the_builtin(
        write_profile, profile, monkeypatch: pytest.MonkeyPatch) -> None:
    profile["name"] = "ring-nrf52840"
    profile["budgets"]["arena_bytes"] = 65_536
    path = write_profile(profile)
    monkeypatch.setenv("WEDGE_BOARDS_PATH", str(path.parent))
    board = boards.load("ring-nrf52840")
    assert board.budgets.arena_bytes == 65_536
    assert board.source == str(path)
    assert boards.origin(board) == "user (overrides built-in)"
    assert [b.name for b in boards.list_boards()].count("ring-nrf52840") == 1


def test_earlier_folder_in_the_env_path_wins(
        write_profile, profile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write_profile(profile, folder=tmp_path / "first")
    profile["title"] = "from the second folder"
    write_profile(profile, folder=tmp_path / "second")
    monkeypatch.setenv("WEDGE_BOARDS_PATH", os.pathsep.join([str(first.parent), str(tmp_path / "second")]))
    assert boards.load("test-ring").source == str(first)


def test_env_path_naming_a_missing_folder_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("WEDGE_BOARDS_PATH", str(missing))
    with pytest.raises(BoardError, match="WEDGE_BOARDS_PATH") as info:
        boards.list_boards()
    assert str(missing) in str(info.value)


def test_a_broken_user_profile_does_not_stop_loading_another_board(
        write_profile, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_profile("this is = = not toml", file_name="broken")
    monkeypatch.setenv("WEDGE_BOARDS_PATH", str(path.parent))
    assert boards.load("ring-nrf52840").name == "ring-nrf52840"
    with pytest.raises(BoardError, match="broken.toml"):
        boards.list_boards()


def test_load_file_reads_a_profile_by_path(write_profile, profile) -> None:
    board = boards.load_file(write_profile(profile))
    assert isinstance(board, Board)
    assert [s.name for s in board.sensors] == ["ppg", "cam"]
