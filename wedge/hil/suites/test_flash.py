"""Flash and verify: the model reaches the board, boots and is confirmed; an unconfirmed update rolls back."""

from __future__ import annotations

from typing import Any

from wedge.hil.flashing import check_rollback


def test_model_is_flashed_booted_and_confirmed(flashed: Any, hil_record: Any) -> None:
    """Model is flashed, booted and confirmed."""
    hil_record("flash", flashed.to_dict())
    assert flashed.outcome in ("confirmed", "already running"), flashed.outcome


def test_the_dut_reports_the_flashed_model(flashed: Any, dut: Any, hil_record: Any) -> None:
    """The DUT names the flashed model (MLPerf Tiny `profile%`)."""
    profile = dut.profile()
    hil_record("dut_profile", {"name": profile.name, "vendor": profile.vendor, "firmware": profile.firmware,
                               "model": profile.model, "timer": profile.timer})
    assert profile.model == flashed.model  # m-model-[...]: the runner's test-table key, the manifest's name


def test_an_unconfirmed_update_rolls_back_at_the_next_reset(board: Any, flashed: Any, pack_version: Any,
                                                            hil_record: Any) -> None:
    """An unconfirmed update rolls back at the next reset."""
    update = pack_version("1.0.1")
    check = check_rollback(board.port, update, board.flash_options)
    hil_record("rollback", check.to_dict())
    assert check.during_test == f"{flashed.model} 1.0.1", f"the test image did not boot: {check.during_test}"
    assert check.rolled_back, f"after the reset the board runs {check.after_reset}, not {check.before}"
