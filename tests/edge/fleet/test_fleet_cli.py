"""`wedge fleet` from the command line: bad sources and sinks, refused credentials and failed TLS handshakes are
one error line; a run stores what a bridge published and prints a summary."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.edge.conftest import USERS
from tests.edge.mqtt_certs import Certificates
from tests.edge.mqtt_helpers import mqtt_sink, records
from wedge.cli import main
from wedge.edge.bridge.sinks.sqlite import stored_records
from wedge.edge.fleet.broker import LocalBroker
from wedge.edge.fleet.process import FleetProcess


def fleet(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["fleet", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--source", "mqtt://127.0.0.1/fleet/+"], "has a wildcard (+ or #)"),
    (["--source", "mqtt://127.0.0.1/#"], "has a wildcard (+ or #)"),
    (["--source", "http://127.0.0.1/fleet"], "expected mqtt://HOST[:PORT]/PREFIX"),
    (["--source", "mqtt://127.0.0.1/fleet", "--sink", "mqtt://127.0.0.1/other"], "it subscribes to --source"),
    (["--source", "mqtt://127.0.0.1/fleet", "--sink", "postgres:x"], "unknown sink"),
])
def test_bad_sources_and_sinks_are_one_error_line(args: list[str], message: str) -> None:
    code, output = fleet(*args)
    assert code == 1 and message in output and "Traceback" not in output and output.count("\n") == 1


def test_refused_credentials_and_an_untrusted_broker_certificate_are_one_error_line(
        secured: LocalBroker, certificates: Certificates, tmp_path: Path) -> None:
    (user, _password), = USERS.items()
    code, output = fleet("--source", f"mqtt://{user}:bad@127.0.0.1:{secured.port}/fleet",
                         "--sink", f"sqlite:{tmp_path}/a.db")
    assert code == 1 and "refused the credentials" in output and "Traceback" not in output
    code, output = fleet("--source", f"mqtts://{user}:x@127.0.0.1:{secured.tls_port}/fleet?ca={certificates.other_ca}",
                         "--sink", f"sqlite:{tmp_path}/b.db")
    assert code == 1 and "TLS handshake failed" in output and "Traceback" not in output


def test_a_fleet_process_stores_what_a_bridge_published_and_stops_cleanly(broker: LocalBroker, tmp_path: Path) -> None:
    url = broker.url("fleet")
    fleet_db = tmp_path / "fleet.db"
    out = tmp_path / "fleet.out"
    process = FleetProcess(url, [f"sqlite:{fleet_db}"], tmp_path / "fleet.log", extra=["--json"], stdout_path=out)
    try:
        process.wait_status("connected", lambda s: s["connected"])

        async def publish() -> None:
            sink = mqtt_sink(url, tmp_path / "bridge.db")
            await sink.open()
            await sink.write(records(range(120)))
            sink.note_devices([{"key": records(range(1))[0].device, "state": "streaming", "name": "ring-a"}])
            await sink.close()

        asyncio.run(publish())
        process.wait_status("120 records", lambda s: s["records"] == 120 and s["sinks"][0]["written"] == 120)
    finally:
        assert process.terminate() == 0
    # --json prints the exit summary on stdout, alone (the status lines are on stderr).
    summary = json.loads(out.read_text())["summary"]
    assert summary["records"] == 120 and summary["devices"][0]["name"] == "ring-a"
    assert [r.seq for r in stored_records(fleet_db)] == list(range(120))


def test_a_fleet_killed_before_its_database_took_the_records_gets_them_again(mosquitto: LocalBroker,
                                                                             tmp_path: Path) -> None:
    # mosquitto only: amqtt 0.12 does not send a resumed session the messages it had in flight, unacknowledged.
    url = mosquitto.url("fleet-kill")
    fleet_db = tmp_path / "fleet.db"
    first = FleetProcess(url, [f"sqlite:{fleet_db}"], tmp_path / "first.log")
    blocker = None
    try:
        first.wait_status("connected", lambda s: s["connected"])
        # Another process holds the database: the fleet receives every record but cannot commit one.
        blocker = sqlite3.connect(fleet_db, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")

        async def publish() -> None:
            sink = mqtt_sink(url, tmp_path / "bridge.db")
            await sink.open()
            await sink.write(records(range(300)))
            await sink.close()

        asyncio.run(publish())
        first.wait_status("300 records received, none written",
                          lambda s: s["records"] == 300 and s["sinks"][0]["errors"] >= 1)
    finally:
        first.kill()  # SIGKILL: whatever the broker counts as delivered and unacknowledged is the fleet's loss
        if blocker is not None:
            blocker.rollback()
            blocker.close()
    assert stored_records(fleet_db) == []
    # Acknowledged only once stored: the broker sends the 300 again to the same session.
    second = FleetProcess(url, [f"sqlite:{fleet_db}"], tmp_path / "second.log")
    try:
        second.wait_status("300 records written", lambda s: s["sinks"][0]["written"] == 300)
    finally:
        assert second.terminate() == 0
    assert [r.seq for r in stored_records(fleet_db)] == list(range(300))
