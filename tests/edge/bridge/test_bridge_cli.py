"""`wedge bridge` from the command line: bad input gives one-line errors; a restarted bridge resumes from SQLite
and SIGTERM flushes every sink before a clean exit."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from wedge.child_process import ChildProcess
from wedge.cli import main
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.samples import sample_path


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "x", "--sink", "mqtt://broker"], "topic prefix"),
    (["--device", "x", "--sink", "kafka://broker"], "unknown sink"),
    (["--device", "x", "--sink", "ws://0.0.0.0:8765"], "token"),
    (["--sink", "jsonl:-"], "no device to follow"),
    (["--device", "x", "--transport", "tcp-client:127.0.0.1:1", "--sink", "jsonl:-"], "no Bluetooth adapter"),
])
def test_bad_options_and_a_missing_adapter_end_with_one_error_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["bridge", "--no-status", *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_pairing_commands_refuse_bad_input_with_one_line(tmp_path: Path) -> None:
    keystore = tmp_path / "bonds.json"
    runner = CliRunner()
    unknown = runner.invoke(main, ["unpair", "nobody", "--transport", "tcp-client:127.0.0.1:1", "--keystore",
                                   str(keystore)])
    assert unknown.exit_code == 1 and "no bond with 'nobody'" in unknown.output and "(bonds: none)" in unknown.output
    keystore.chmod(0o644)
    exposed = runner.invoke(main, ["bridge", "--device", "x", "--transport", "tcp-client:127.0.0.1:1", "--keystore",
                                   str(keystore), "--sink", "jsonl:-"])
    assert exposed.exit_code == 1 and "open to other users" in exposed.output and "Traceback" not in exposed.output
    stray = runner.invoke(main, ["pair", "x", "--keystore", str(keystore)])
    assert stray.exit_code == 2 and "--keystore goes with --transport" in stray.output
    absent = runner.invoke(main, ["pair", "x", "--transport", "tcp-client:127.0.0.1:1", "--keystore",
                                  str(tmp_path / "other.json")])
    assert absent.exit_code == 1 and "no Bluetooth adapter" in absent.output and "Traceback" not in absent.output


def test_a_device_that_never_advertises_is_named_and_the_bridge_exits_after_its_scan_timeout(
        air: AirProcess) -> None:
    result = subprocess.run([sys.executable, "-m", "wedge.cli", "bridge", "--device", "nobody-here", "--transport",
                             air.spec, "--sink", "jsonl:-", "--scan-timeout-s", "1.5", "--no-status"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: no device matching nobody-here advertised within 1.5 s")
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr


def bridge_process(air: AirProcess, db: Path, log: Path, *extra: str) -> ChildProcess:
    return ChildProcess([sys.executable, "-m", "wedge.cli", "bridge", "--device", "cli-ring", "--transport", air.spec,
                         "--keystore", str(db.with_name("bonds.json")), "--sink", f"sqlite:{db}", "--sink", "jsonl:-",
                         "--watchdog-s", "1", "--no-status", *extra], log)


def stored(db: Path) -> list[int]:
    return [seq for (seq,) in sqlite3.connect(db).execute("SELECT seq FROM records ORDER BY seq")]


def seqs_until(bridge: ChildProcess, at_least: int, covering: range = range(0)) -> list[int]:
    """The sequence numbers the bridge prints on its jsonl:- sink, until one reaches at_least and every number
    in `covering` came."""
    seen = [bridge.wait_for("seq")["seq"]]
    while seen[-1] < at_least or not set(covering) <= set(seen):
        seen.append(bridge.wait_for("seq")["seq"])
    return seen


def test_a_restarted_bridge_resumes_after_the_last_stored_record_and_sigterm_flushes(air: AirProcess,
                                                                                    tmp_path: Path) -> None:
    board = BleBoardProcess("ring-nrf52840", sample_path("ppg_quality"), air.spec, tmp_path, name="cli-ring",
                         extra_args=["--rate-hz", "50", "--state-dir", str(tmp_path / "state")])
    db = tmp_path / "stream.db"
    try:
        first = bridge_process(air, db, tmp_path / "bridge1.log", "--pair")
        seqs_until(first, 60)
        assert first.terminate() == 0
        after_first = stored(db)
        # Records held behind a gap still being backfilled are written at SIGTERM: the gap is the next run's.
        unbroken = next(i for i, seq in enumerate([*after_first, -1]) if seq != i) - 1
        assert "records" in first.log_tail()  # the exit summary

        # The board keeps measuring while no bridge runs: the next one fetches those records from its buffer,
        # over the link the first run's bond encrypts (no --pair: it would fail without the bond).
        second = bridge_process(air, db, tmp_path / "bridge2.log")
        resumed = seqs_until(second, after_first[-1] + 100, covering=range(unbroken + 1, after_first[-1] + 100))
        assert second.terminate() == 0
        assert min(resumed) == unbroken + 1
    finally:
        board.terminate()
    rows = stored(db)
    # The first run's hole is filled; numbers above the covered range may await the next run the same way.
    assert set(range(after_first[-1] + 100)) <= set(rows)
