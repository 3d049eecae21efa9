"""The pytest plugin as a user meets it (pytester): options and fixtures from the `pytest11` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hil.conftest import write_map

pytest_plugins = ["pytester"]

USER_TESTS = '''
def test_the_board_answers_name(board, dut, hil_record):
    device, vendor = dut.name()
    hil_record("vendor", vendor)
    assert device == "dut" and board.virtual

def test_the_flashed_model_is_reported(flashed, dut):
    assert dut.profile().model == flashed.model
'''


def test_without_a_board_map_the_fixtures_skip_with_a_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*no --board-map given*"])


def test_user_tests_get_a_virtual_board_its_dut_and_a_flashed_model(pytester: pytest.Pytester, fc_model: Path,
                                                                    tmp_path: Path) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    board_map = write_map(tmp_path, {"ring": ("ring-nrf52840", "virtual")})
    record = tmp_path / "results.json"
    result = pytester.runpytest_subprocess("--board-map", str(board_map), "--model", str(fc_model),
                                           "--hil-json", str(record), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    tests = json.loads(record.read_text())["tests"]
    assert tests[0]["properties"] == {"vendor": "wedge virtual ring-nrf52840"}


def test_a_board_not_in_the_map_errors_its_tests_with_the_reason(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_user=USER_TESTS.split("def test_the_flashed")[0])
    board_map = write_map(tmp_path, {"ring": ("ring-nrf52840", "virtual")})
    result = pytester.runpytest_subprocess("--board-map", str(board_map), "--bench-board", "glasses")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*'glasses' is not in bench.toml*"])


RECORDED_TESTS = '''
import pytest
from wedge.hil.errors import HilError

def test_records_a_figure(hil_record):
    hil_record("latency", {"median_us": 2965.9, "per_repeat_us": [2965.9, 2966.0]})

def test_a_board_problem():
    raise HilError("board ring: /dev/ttyACM0 is busy")

def test_an_assertion():
    assert 0.5 >= 0.98, "top-1 agreement 0.500 < 0.98"

def test_a_bug_in_the_test():
    {}[3]

def test_documented():
    """Device agrees with the host reference."""

@pytest.mark.parametrize("rate", ["25hz"])
def test_streams_at(rate):
    pass
'''


def test_results_have_readable_titles_plain_messages_and_json_properties(pytester: pytest.Pytester,
                                                                        tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    pytester.makepyfile(test_user=RECORDED_TESTS)
    record, junit = tmp_path / "results.json", tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess("--hil-json", str(record), "--junitxml", str(junit), "-p",
                                           "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=3)
    tests = {t["name"]: t for t in json.loads(record.read_text())["tests"]}
    assert tests["test_records_a_figure"]["title"] == "Records a figure"
    assert tests["test_documented"]["title"] == "Device agrees with the host reference"
    assert tests["test_streams_at[25hz]"]["title"] == "Streams at (25hz)"
    # The message alone, as the CLI prints it: no "wedge.hil.errors.HilError: " in front.
    assert tests["test_a_board_problem"]["message"] == "board ring: /dev/ttyACM0 is busy"
    assert tests["test_an_assertion"]["message"] == "top-1 agreement 0.500 < 0.98"
    assert tests["test_a_bug_in_the_test"]["message"] == "KeyError: 3"  # a bug keeps its type: "3" says nothing
    assert tests["test_records_a_figure"]["properties"]["latency"]["per_repeat_us"] == [2965.9, 2966.0]
    (value,) = [p.get("value") for p in ET.parse(junit).getroot().iter("property")]
    assert json.loads(value) == {"median_us": 2965.9, "per_repeat_us": [2965.9, 2966.0]}
