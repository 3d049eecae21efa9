"""Every bad profile input is a one-line BoardError that names the file and the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wedge import boards
from wedge.boards import BoardError
from wedge.errors import WedgeError

Mutation = Callable[[dict[str, Any]], None]


def _set(section: str, key: str, value: Any) -> Mutation:
    def mutate(profile: dict[str, Any]) -> None:
        profile[section][key] = value
    return mutate


def _set_top(key: str, value: Any) -> Mutation:
    def mutate(profile: dict[str, Any]) -> None:
        profile[key] = value
    return mutate


def _drop(section: str | None, key: str) -> Mutation:
    def mutate(profile: dict[str, Any]) -> None:
        del (profile if section is None else profile[section])[key]
    return mutate


def _sensor(index: int, key: str, value: Any = None, drop: bool = False) -> Mutation:
    def mutate(profile: dict[str, Any]) -> None:
        if drop:
            del profile["sensors"][index][key]
        else:
            profile["sensors"][index][key] = value
    return mutate


def _images(index: int, key: str, value: Any) -> Mutation:
    def mutate(profile: dict[str, Any]) -> None:
        profile["flashing"]["images"][index][key] = value
    return mutate


# (test id, how to break the valid profile, the key the message must name, words the message must contain)
CASES: list[tuple[str, Mutation, str, str]] = [
    ("unknown top-level key", _set_top("colour", "red"), "colour", "unknown key"),
    ("unknown key in a table suggests the right one", _set("memory", "flash_byte", 1), "memory.flash_byte",
     "did you mean 'memory.flash_bytes'"),
    ("missing top-level key", _drop(None, "mcu"), "mcu", "missing key"),
    ("missing table", _drop(None, "budgets"), "budgets", "missing key"),
    ("missing key in a table", _drop("compute", "clock_hz"), "compute.clock_hz", "missing key"),
    ("table given as a value", _set_top("memory", 5), "memory", "must be a table"),
    ("string where an integer belongs", _set("memory", "ram_bytes", "256 KB"), "memory.ram_bytes",
     "must be an integer"),
    ("float where an integer belongs", _set("memory", "flash_bytes", 1.5e6), "memory.flash_bytes",
     "must be an integer"),
    ("boolean where an integer belongs", _set("flashing", "baud", True), "flashing.baud", "must be an integer"),
    ("string where a number belongs", _set("compute", "cycles_per_mac", "fast"), "compute.cycles_per_mac",
     "must be a number"),
    ("integer where a string belongs", _set_top("title", 42), "title", "must be a non-empty string"),
    ("zero flash", _set("memory", "flash_bytes", 0), "memory.flash_bytes", "positive integer"),
    ("negative RAM", _set("memory", "ram_bytes", -1), "memory.ram_bytes", "positive integer"),
    ("negative PSRAM", _set("memory", "psram_bytes", -1), "memory.psram_bytes", ">= 0"),
    ("zero clock", _set("compute", "clock_hz", 0), "compute.clock_hz", "positive integer"),
    ("zero cycles per MAC", _set("compute", "cycles_per_mac", 0.0), "compute.cycles_per_mac", "positive number"),
    ("infinite cycles per MAC", _set("compute", "cycles_per_mac", float("inf")), "compute.cycles_per_mac",
     "positive number"),
    ("a power figure without its supply voltage", _set("compute", "active_current_ma", 3.3), "compute.supply_v",
     "needs both"),
    ("a supply voltage without a current", _set("compute", "supply_v", 3.0), "compute.active_current_ma",
     "needs both"),
    ("negative active current", _set("compute", "active_current_ma", -3.3), "compute.active_current_ma",
     "positive number"),
    ("zero latency budget", _set("budgets", "latency_ms", 0), "budgets.latency_ms", "positive number"),
    ("text latency budget", _set("budgets", "latency_ms", "fast"), "budgets.latency_ms", "must be a number"),
    ("zero model slot", _set("budgets", "model_slot_bytes", 0), "budgets.model_slot_bytes", "positive integer"),
    ("zero arena", _set("budgets", "arena_bytes", 0), "budgets.arena_bytes", "positive integer"),
    ("zero slot count", _set("flashing", "slot_count", 0), "flashing.slot_count", "positive integer"),
    ("model slot bigger than flash", _set("budgets", "model_slot_bytes", 2_000_000), "budgets.model_slot_bytes",
     "bigger than the flash"),
    ("model slot bigger than an image slot", _set("budgets", "model_slot_bytes", 300_000),
     "budgets.model_slot_bytes", "does not fit one image slot"),
    ("arena bigger than RAM plus PSRAM", _set("budgets", "arena_bytes", 262_145), "budgets.arena_bytes",
     "bigger than RAM + PSRAM"),
    ("one slot per image (no rollback)", _set("flashing", "slot_count", 1), "flashing.slot_count", "must be 2"),
    ("three slots per image", _set("flashing", "slot_count", 3), "flashing.slot_count", "must be 2"),
    ("SMP board without its MCUboot images", _drop("flashing", "images"), "flashing.images", "missing key"),
    ("overlapping image slots", _images(1, "primary_offset", 0x50000), "flashing.images", "overlaps"),
    ("image slot past the end of flash", _images(1, "secondary_offset", 0xF0000),
     "flashing.images[1].secondary_offset", "ends past the flash"),
    ("images in the wrong order", _images(0, "role", "model"), "flashing.images[0].role", "is the application"),
    ("slot size that is not the model's", _set("flashing", "slot_size_bytes", 4096), "flashing.slot_size_bytes",
     "not the model image's slot size"),
    ("a Zephyr board target with spaces", _set_top("zephyr_boards", ["nrf52840 dk"]), "zephyr_boards",
     "not a Zephyr board target"),
    ("unknown board class", _set_top("board_class", "watch"), "board_class", "'watch' is not one of"),
    ("unknown runtime suggests the closest", _set("compute", "runtime", "onnx-runtime"), "compute.runtime",
     "did you mean 'onnxruntime'"),
    ("unknown flashing protocol", _set("flashing", "protocol", "jlink"), "flashing.protocol", "is not one of"),
    ("SMP board without an mcumgr buffer", _set("flashing", "mcumgr_buf_size", 0), "flashing.mcumgr_buf_size",
     "positive integer"),
    ("bad board name characters", _set_top("name", "Test Ring"), "name", "lowercase"),
    ("name not matching the file name", _set_top("name", "other-ring"), "name", "does not match the file name"),
    ("no sensors", _set_top("sensors", []), "sensors", "non-empty array of tables"),
    ("unknown sensor kind", _sensor(0, "kind", "ppgg"), "sensors[0].kind", "did you mean 'ppg'"),
    ("unknown sensor key", _sensor(0, "rate", 50.0), "sensors[0].rate", "unknown key"),
    ("missing sensor key", _sensor(0, "channels", drop=True), "sensors[0].channels", "missing key"),
    ("zero sensor rate", _sensor(0, "rate_hz", 0.0), "sensors[0].rate_hz", "positive number"),
    ("negative sensor window", _sensor(0, "window_s", -4.0), "sensors[0].window_s", "positive number"),
    ("window too short for one sample", _sensor(0, "window_s", 0.001), "sensors[0].window_s", "holds no sample"),
    ("zero channels", _sensor(0, "channels", 0), "sensors[0].channels", "positive integer"),
    ("duplicate sensor name", _sensor(1, "name", "ppg"), "sensors[1].name", "earlier sensor"),
    ("camera without a frame size", _sensor(1, "frame_width_px", drop=True), "sensors[1].frame_width_px",
     "needs its frame size"),
    ("frame size on a non-camera sensor", _sensor(0, "frame_width_px", 96), "sensors[0].frame_width_px",
     "have a frame size"),
    ("unknown BLE service", _set("ble", "services", ["heart_rate", "hr"]), "ble.services", "is not one of"),
    ("empty BLE service list", _set("ble", "services", []), "ble.services", "non-empty list"),
    ("duplicate BLE service", _set("ble", "services", ["battery", "battery"]), "ble.services", "twice"),
    ("ATT MTU below the BLE minimum", _set("ble", "att_mtu", 20), "ble.att_mtu", "23..517"),
    ("ATT MTU above the BLE maximum", _set("ble", "att_mtu", 600), "ble.att_mtu", "23..517"),
    ("connection interval not a multiple of 1.25 ms", _set("ble", "conn_interval_ms", 31.0),
     "ble.conn_interval_ms", "multiple of 1.25"),
    ("connection interval below 7.5 ms", _set("ble", "conn_interval_ms", 5.0), "ble.conn_interval_ms",
     "multiple of 1.25"),
    ("memory bandwidth not positive", _set("memory", "bandwidth_bytes_per_s", 0), "memory.bandwidth_bytes_per_s",
     "positive integer"),
    ("memory bandwidth as text", _set("memory", "bandwidth_bytes_per_s", "fast"), "memory.bandwidth_bytes_per_s",
     "must be an integer"),
    ("security on/off not a boolean", _set("ble", "security", {"required": "yes"}), "ble.security.required",
     "true or false"),
    ("security without required", _set("ble", "security", {"io_capability": "display_only"}),
     "ble.security.required", "missing key"),
    ("unknown IO capability", _set("ble", "security", {"required": True, "io_capability": "display"}),
     "ble.security.io_capability", "did you mean 'display_only'"),
    ("unknown SMP permission", _set("ble", "security", {"required": True, "smp_permission": "authen"}),
     "ble.security.smp_permission", "is not one of"),
    ("authenticated SMP on a device that can only do Just Works",
     _set("ble", "security", {"required": True, "io_capability": "no_input_no_output",
                              "smp_permission": "authenticate"}),
     "ble.security.smp_permission", "never be met"),
    ("unknown security key", _set("ble", "security", {"required": True, "pairing": "just works"}),
     "ble.security.pairing", "unknown key"),
]


@pytest.mark.parametrize(("mutate", "key", "words"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_profile_is_rejected_with_file_and_key(
        write_profile, profile: dict[str, Any], mutate: Mutation, key: str, words: str) -> None:
    mutate(profile)
    path = write_profile(profile, file_name="test-ring")
    with pytest.raises(BoardError) as info:
        boards.load_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert f" {key}: " in message or f"'{key}'" in message
    assert words in message


def test_the_valid_profile_the_bad_cases_start_from_loads(write_profile, profile: dict[str, Any]) -> None:
    board = boards.load_file(write_profile(profile))
    assert board.name == "test-ring"


def test_ble_security_is_on_unless_a_profile_turns_it_off(write_profile, profile: dict[str, Any]) -> None:
    security = boards.load_file(write_profile(profile)).ble.security  # type: ignore[union-attr]
    assert security.required and security.io_capability == "no_input_no_output"
    assert security.pairing_method.startswith("Just Works")
    profile["ble"]["security"] = {"required": True, "io_capability": "display_yes_no", "smp_permission": "authenticate"}
    security = boards.load_file(write_profile(profile)).ble.security  # type: ignore[union-attr]
    assert security.can_authenticate and security.pairing_method.startswith("numeric comparison")
    profile["ble"]["security"] = {"required": False}
    assert not boards.load_file(write_profile(profile)).ble.security.required  # type: ignore[union-attr]


def test_the_ring_profiles_require_security_and_the_glasses_development_profiles_do_not() -> None:
    for board in boards.list_boards():
        assert board.ble is not None
        assert board.ble.security.required == (board.board_class == "ring"), board.name


def test_board_without_a_ble_table_has_ble_none(write_profile, profile: dict[str, Any]) -> None:
    del profile["ble"]
    assert boards.load_file(write_profile(profile)).ble is None


def test_memory_bandwidth_is_optional(write_profile, profile: dict[str, Any]) -> None:
    assert boards.load_file(write_profile(profile)).memory.bandwidth_bytes_per_s is None
    profile["memory"]["bandwidth_bytes_per_s"] = 3_200_000_000
    assert boards.load_file(write_profile(profile)).memory.bandwidth_bytes_per_s == 3_200_000_000


def test_esptool_board_may_report_no_mcumgr_buffer(write_profile, profile: dict[str, Any]) -> None:
    profile["flashing"].update(protocol="esptool", mcumgr_buf_size=0)
    del profile["flashing"]["images"]
    profile["flashing"]["slot_size_bytes"] = 483_328
    assert boards.load_file(write_profile(profile)).flashing.mcumgr_buf_size == 0


def test_psram_counts_towards_the_arena_budget(write_profile, profile: dict[str, Any]) -> None:
    profile["memory"]["psram_bytes"] = 8_388_608
    profile["budgets"]["arena_bytes"] = 1_048_576
    assert boards.load_file(write_profile(profile)).budgets.arena_bytes == 1_048_576


def test_integer_rate_is_accepted_as_a_float(write_profile, profile: dict[str, Any]) -> None:
    profile["sensors"][0]["rate_hz"] = 50
    sensor = boards.load_file(write_profile(profile)).sensors[0]
    assert isinstance(sensor.rate_hz, float) and sensor.window_samples == 200


def test_malformed_toml_names_the_file_and_the_line(write_profile) -> None:
    path = write_profile('name = "test-ring"\n[memory\nflash_bytes = 1\n', file_name="test-ring")
    with pytest.raises(BoardError) as info:
        boards.load_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 2" in message and "\n" not in message


def test_unreadable_profile_is_a_board_error(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="cannot read"):
        boards.load_file(tmp_path / "missing.toml")


def test_unknown_board_lists_the_known_ones_and_suggests_the_closest() -> None:
    with pytest.raises(BoardError) as info:
        boards.load("ring-nrf52480")
    message = str(info.value)
    assert "unknown board 'ring-nrf52480'" in message
    assert "did you mean 'ring-nrf52840'" in message
    for name in ("glasses-esp32s3", "glasses-soc", "ring-nrf52840", "ring-nrf5340"):
        assert name in message
    assert "\n" not in message


def test_unknown_board_without_a_close_match_still_lists_the_known_ones() -> None:
    with pytest.raises(BoardError) as info:
        boards.load("zzz")
    assert "did you mean" not in str(info.value)
    assert "known boards: glasses-esp32s3" in str(info.value)


def test_board_error_is_a_wedge_error_with_exit_code_1() -> None:
    assert issubclass(BoardError, WedgeError)
    assert BoardError("x").exit_code == 1


def test_a_profile_that_is_not_utf8_is_one_error_naming_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "test-ring.toml"
    path.write_bytes(b'name = "test-ring\xff"\n')
    with pytest.raises(boards.BoardError, match=r"test-ring.toml: not UTF-8 text .*byte 0xff at offset 17"):
        boards.load_file(path)
