"""bench.toml: boards with profile and port; mistakes are reported with the table they are in."""

from __future__ import annotations

from pathlib import Path

import pytest

from wedge.firmware.image.keys import generate_keys
from wedge.hil.board_map import REFERENCE_COMMAND_BYTES, load_board_map
from wedge.hil.errors import BoardMapError


def test_a_map_lists_virtual_and_real_boards_with_their_options(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    generate_keys(tmp_path / "keys")
    path.write_text('[boards.ring]\nprofile = "ring-nrf52840"\nport = "virtual"\n\n'
                    '[boards.desk]\nprofile = "ring-nrf5340"\nport = "/dev/ttyACM0"\nble = "wedge-ring"\n'
                    'power = "uhubctl -a cycle -p 2"\nkey = "keys/wedge.pem"\ndut_port = "/dev/ttyACM1"\n')
    board_map = load_board_map(path)
    ring, desk = board_map.boards
    assert ring.virtual and not desk.virtual
    assert desk.ble == "wedge-ring" and desk.power_command == "uhubctl -a cycle -p 2"
    assert desk.key_path == (tmp_path / "keys" / "wedge.pem").resolve()
    assert desk.dut_command_bytes == REFERENCE_COMMAND_BYTES  # real firmware's 80-byte command buffer
    assert board_map.get("desk") is desk
    assert desk.dut_port == "/dev/ttyACM1" and ring.dut_port is None  # None: DUT and SMP share the port


@pytest.mark.parametrize("text, message", [
    ("", "lists no boards"),
    ("[boards.a]\nport = \"virtual\"\n", r"\[boards.a\] needs profile"),
    ("[boards.a]\nprofile = \"ring-nrf52840\"\nport = \"virtual\"\nspeed = 3\n", "unknown key 'speed'"),
    ("[boards.a]\nprofile = \"toaster\"\nport = \"virtual\"\n", r"\[boards.a\].*toaster"),
    ("[boards.a\n", "not valid TOML"),
    ("[boards.a]\nprofile = \"ring-nrf52840\"\nport = \"virtual\"\ndut_port = 3\n", "dut_port must be a string"),
    ("[boards.'../../etc']\nprofile = \"ring-nrf52840\"\nport = \"virtual\"\n", "board name '../../etc'"),
    ("[boards.a]\nprofile = \"ring-nrf52840\"\nport = \"/dev/ttyACM0\"\nkey = \"/nonexistent/wedge.pem\"\n",
     "key /nonexistent/wedge.pem does not exist"),
])
def test_a_bad_map_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(text)
    with pytest.raises(BoardMapError, match=message):
        load_board_map(path)


def test_asking_for_a_board_not_in_the_map_names_the_ones_it_has(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text('[boards.ring]\nprofile = "ring-nrf52840"\nport = "virtual"\n')
    with pytest.raises(BoardMapError, match="'glasses' is not in bench.toml.*ring"):
        load_board_map(path).get("glasses")


def test_a_map_that_is_not_utf8_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_bytes(b'[boards.r\xff]\nprofile = "ring-nrf52840"\nport = "virtual"\n')
    with pytest.raises(BoardMapError, match="not UTF-8 text.*byte 0xff at offset 9"):
        load_board_map(path)


def test_a_labgrid_place_is_a_board_whose_port_comes_from_the_place(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text('coordinator = "lab-server:20408"\n\n[boards.ring-1]\nprofile = "ring-nrf52840"\n'
                    'place = "labgrid:ring-1"\npower = "labgrid-client -p ring-1 power cycle"\n')
    board_map = load_board_map(path)
    (ring,) = board_map.boards
    assert board_map.coordinator == "lab-server:20408"
    assert ring.place == "ring-1" and ring.port is None and not ring.virtual
    assert ring.address == "labgrid:ring-1" and ring.to_dict()["port"] == "labgrid:ring-1"
    assert ring.dut_command_bytes == REFERENCE_COMMAND_BYTES  # a place is real firmware unless the map says


@pytest.mark.parametrize("entry, message", [
    ('place = "ring-1"\n', r'\[boards.a\]: place \'ring-1\': write it as "labgrid:NAME"'),
    ('place = "labgrid:"\n', "write it as"),
    ('place = "labgrid:ring-1"\nport = "/dev/ttyACM0"\n', "a place brings its own serial port and speed: drop port"),
    ('place = "labgrid:ring-1"\nbaud = 9600\n', "drop baud or place"),
    ('place = 3\n', "place must be a string"),
    ('ble = "x"\n', r'\[boards.a\] needs port = "..." \(or place = "labgrid:NAME"\)'),
])
def test_a_bad_place_entry_says_what_is_wrong(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(f'[boards.a]\nprofile = "ring-nrf52840"\n{entry}')
    with pytest.raises(BoardMapError, match=message):
        load_board_map(path)


def test_a_coordinator_that_is_not_a_string_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text('coordinator = 20408\n[boards.a]\nprofile = "ring-nrf52840"\nport = "virtual"\n')
    with pytest.raises(BoardMapError, match="coordinator must be a string"):
        load_board_map(path)
