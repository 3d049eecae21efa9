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
    result = pytester.runpytest_subprocess("--board-map", str(board_map), "--board", "glasses")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*'glasses' is not in bench.toml*"])
