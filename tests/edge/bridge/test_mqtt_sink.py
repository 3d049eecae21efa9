"""The MQTT sink against a real broker: batches of records with the other sinks' fields, a retained status with a
last will, store and forward (an unreachable broker buffers, a restart resumes from the first unacknowledged
record), and errors for refused credentials and failed TLS handshakes."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from tests.edge.conftest import USERS
from tests.edge.mqtt_certs import Certificates
from tests.edge.mqtt_helpers import DEVICE, Listener, mqtt_sink, records
from wedge.edge.bridge.sinks.base import parse_sinks
from wedge.edge.bridge.sinks.mqtt_address import PASSWORD_ENV, BrokerError
from wedge.edge.bridge.sinks.sqlite import SCHEMA_VERSION, SqliteSink, stored_records
from wedge.edge.bridge.stream_record import LostRange
from wedge.edge.fleet.broker import LocalBroker, free_port


def test_an_mqtt_sink_takes_the_sqlite_sink_of_its_command_line_as_its_outbox(tmp_path: Path) -> None:
    sinks = parse_sinks(["jsonl:-", "mqtt://127.0.0.1:1883/fleet", f"sqlite:{tmp_path}/a.db"])
    assert [type(s).__name__ for s in sinks] == ["MqttSink", "JsonLinesSink"]
    assert sinks[0].store.path == tmp_path / "a.db"  # type: ignore[attr-defined]
    (alone,) = parse_sinks(["mqtt://127.0.0.1/fleet"])
    assert alone.store.path == Path("stream.db")  # type: ignore[attr-defined]
    with pytest.raises(BrokerError, match="wildcard"):
        parse_sinks(["mqtt://127.0.0.1/fleet/#"])


def test_records_go_out_in_batches_with_the_jsonl_fields_and_a_retained_status(broker: LocalBroker,
                                                                                   tmp_path: Path) -> None:
    async def scenario() -> None:
        url = broker.url("site-1/rings")
        sink = mqtt_sink(url, tmp_path / "stream.db")
        written = records(range(0, 1200))
        async with Listener(url) as listener:
            await sink.open()
            for start in range(0, 1200, 300):
                await sink.write(written[start:start + 300])
            await sink.note_lost([LostRange(DEVICE, 2, 10, 20, 5)])
            sink.note_devices([{"key": DEVICE, "state": "streaming", "name": "ring-a", "battery_percent": 87,
                                "epoch": 3, "rssi": -60}])
            await listener.wait_for(lambda x: len(x.records()) == 1200 and x.on("status") and x.on("lost"))
            await sink.close()
            await listener.wait_for(lambda x: len(x.on("status")) == 2)  # online, then offline
        assert [m.topic for m in listener.on("records")][0] == f"site-1/rings/{DEVICE}/records"
        assert 1 < len(listener.on("records")) <= 1200 // 100  # batches, not one message per record
        # What the JSON lines sink writes, field for field (read back from the outbox, the name kept).
        assert listener.records() == [r.to_dict() for r in written]
        assert len(stored_records(tmp_path / "stream.db")) == 1200
        assert listener.on("lost")[0].payload == {"lost": [LostRange(DEVICE, 2, 10, 20, 5).to_dict()]}
        online, offline = (m.payload for m in listener.on("status"))
        assert (online["state"], online["battery_percent"], online["model_id"], online["epoch"]) == \
            ("online", 87, "abcd1234", 3)
        assert (offline["state"], offline["link"]) == ("offline", "bridge stopped")  # a clean stop says so
        # A subscriber that comes later gets the retained status.
        async with Listener(url, client_id="late") as late:
            await late.wait_for(lambda x: x.on("status"))
        assert late.on("status")[0].retain and late.on("status")[0].payload["state"] == "offline"

    asyncio.run(scenario())


def test_an_unreachable_broker_is_buffered_for_and_caught_up_with(mosquitto: LocalBroker, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        url = mosquitto.url("fleet")
        async with Listener(url, client_id="fleet-db", clean_session=False):
            pass  # a persistent session: mosquitto keeps its subscription and queue across the restart below
        mosquitto.stop()
        sink = mqtt_sink(url, tmp_path / "stream.db")
        caplog.set_level(logging.WARNING)
        await sink.open()  # no error: the bridge must keep storing
        await sink.write(records(range(0, 400)))
        assert "cannot reach the broker" in caplog.text and "buffering" in caplog.text
        state = sink.state()
        assert state["broker"] == "buffering" and state["buffering"] == 400 and state["published"] == 0
        mosquitto.start()
        async with Listener(url, client_id="fleet-db", clean_session=False) as listener:
            await listener.wait_for(lambda x: len(x.records()) >= 400)
            await sink.write(records(range(400, 500)))
            await listener.wait_for(lambda x: len(set(x.keys())) == 500)
        assert "the broker is back" in caplog.text
        assert sink.state()["broker"] == "connected" and sink.state()["buffering"] == 0
        await sink.close()
        assert sorted(set(listener.keys())) == [(DEVICE, 3, s) for s in range(500)]

    asyncio.run(scenario())


def test_a_restarted_sink_publishes_exactly_what_was_not_acknowledged(broker: LocalBroker,
                                                                           tmp_path: Path) -> None:
    async def scenario() -> None:
        db = tmp_path / "stream.db"
        url = broker.url("fleet")
        dead_url = f"mqtt://127.0.0.1:{free_port()}/fleet"  # the same outbox, a broker that is not there
        async with Listener(url) as listener:
            first = mqtt_sink(url, db)
            await first.open()
            await first.write(records(range(0, 300)))
            await listener.wait_for(lambda x: len(x.records()) == 300)
            await first.close()
            # Stored by a bridge without the MQTT sink (or one killed before publishing): in the outbox, not acked.
            offline = SqliteSink(db)
            await offline.open()
            await offline.write(records(range(300, 450)) + records(range(0, 50), epoch=4))
            await offline.close()
            second = mqtt_sink(url, db)
            await second.open()
            await listener.wait_for(lambda x: len(x.records()) == 300 + 150 + 50)
            await second.close()
            third = mqtt_sink(url, db)
            await third.open()
            await third.close()
            assert third.totals.records == 0  # everything acknowledged: nothing to publish again
        assert sorted(listener.keys()) == sorted([(DEVICE, 3, s) for s in range(450)] +
                                                 [(DEVICE, 4, s) for s in range(50)])
        # Another destination has acknowledged nothing: it would get everything.
        other = mqtt_sink(dead_url, db)
        await other.open()
        assert other.buffered == 500
        await other.close()

    asyncio.run(scenario())


def test_the_outbox_is_a_table_of_its_own_and_leaves_the_records_table_alone(broker: LocalBroker,
                                                                                  tmp_path: Path) -> None:
    async def scenario() -> None:
        db = tmp_path / "stream.db"
        plain = SqliteSink(db)
        await plain.open()
        await plain.close()
        with sqlite3.connect(db) as before:
            layout = before.execute("SELECT sql FROM sqlite_master WHERE name IN ('records', 'lost')").fetchall()
        sink = mqtt_sink(broker.url("fleet"), db)
        await sink.open()
        await sink.write(records(range(10)))
        await sink.close()
        with sqlite3.connect(db) as after:
            assert after.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert after.execute("SELECT sql FROM sqlite_master WHERE name IN ('records', 'lost')").fetchall() == layout
            tables = {name for (name,) in after.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            acked = after.execute("SELECT device, epoch, first_seq, end_seq FROM mqtt_acked").fetchall()
        assert {"mqtt_acked", "mqtt_acked_lost"} <= tables
        assert acked == [(DEVICE, 3, 0, 10)]

    asyncio.run(scenario())


def test_refused_credentials_are_an_error_and_the_right_ones_connect(secured: LocalBroker, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        (user, password), = USERS.items()
        wrong = mqtt_sink(f"mqtt://{user}:nope@127.0.0.1:{secured.port}/fleet", tmp_path / "a.db")
        with pytest.raises(BrokerError, match="refused the credentials"):
            await wrong.open()
        anonymous = mqtt_sink(secured.url("fleet"), tmp_path / "b.db")
        with pytest.raises(BrokerError, match="refused the credentials"):
            await anonymous.open()
        monkeypatch.setenv(PASSWORD_ENV, password)  # a user in the URL, the password out of the process list
        url = f"mqtt://{user}@127.0.0.1:{secured.port}/fleet"
        right = mqtt_sink(url, tmp_path / "c.db")
        async with Listener(url) as listener:
            await right.open()
            await right.write(records(range(5)))
            await listener.wait_for(lambda x: len(x.records()) == 5)
        await right.close()

    asyncio.run(scenario())


def test_tls_with_a_client_certificate_connects_and_a_wrong_ca_fails_the_handshake(
        secured: LocalBroker, certificates: Certificates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        (user, password), = USERS.items()
        monkeypatch.setenv(PASSWORD_ENV, password)
        base = f"mqtts://{user}@127.0.0.1:{secured.tls_port}/fleet"
        url = f"{base}?ca={certificates.ca}&cert={certificates.client_cert}&key={certificates.client_key}"
        good = mqtt_sink(url, tmp_path / "a.db")
        async with Listener(url) as listener:
            await good.open()
            await good.write(records(range(5)))
            await listener.wait_for(lambda x: len(x.records()) == 5)
        await good.close()
        untrusted = mqtt_sink(f"{base}?ca={certificates.other_ca}&cert={certificates.client_cert}"
                              f"&key={certificates.client_key}", tmp_path / "b.db")
        with pytest.raises(BrokerError, match="TLS handshake failed: CERTIFICATE_VERIFY_FAILED"):
            await untrusted.open()
        with pytest.raises(BrokerError, match="no such file"):
            mqtt_sink(f"{base}?ca={tmp_path}/missing.pem", tmp_path / "c.db")

    asyncio.run(scenario())
