"""Broker URLs: defaults, users and passwords (in the URL or the environment), TLS options, topic levels; and a
record's JSON read back the way the fleet reads it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.edge.mqtt_helpers import records
from wedge.edge.bridge.sinks.mqtt_address import PASSWORD_ENV, BrokerError, parse_mqtt_url, topic_level
from wedge.edge.bridge.stream_record import LostRange, StreamRecord


def test_defaults_users_and_the_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = parse_mqtt_url("mqtt://broker.local/site-1/rings/")
    assert (plain.host, plain.port, plain.prefix, plain.tls, plain.qos) == ("broker.local", 1883, "site-1/rings",
                                                                            False, 1)
    assert parse_mqtt_url("mqtts://broker/x").port == 8883 and parse_mqtt_url("mqtts://broker/x").tls
    given_in_url = parse_mqtt_url("mqtt://ring%40lab:p%2Fss@broker:1884/x?qos=2")
    assert (given_in_url.username, given_in_url.password, given_in_url.qos) == ("ring@lab", "p/ss", 2)
    assert "p/ss" not in given_in_url.url and "p/ss" not in repr(given_in_url)
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert parse_mqtt_url("mqtt://ring@broker/x").password == "from-env"
    assert parse_mqtt_url("mqtt://broker/x").password is None  # no user, no password


@pytest.mark.parametrize(("url", "message"), [
    ("mqtt://broker/a/+", "wildcard"), ("mqtt://broker/#", "wildcard"), ("mqtt://broker/$SYS/x", "not a topic"),
    ("mqtt://broker/a//b", "not a topic"), ("mqtt:///x", "no broker host"), ("mqtts://broker/x?key=k.pem", "needs"),
    ("mqtts://broker/x?ca=/nonexistent/ca.pem", "no such file"), ("tcp://broker/x", "expected mqtt://"),
])
def test_bad_urls_name_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(BrokerError, match=message):
        parse_mqtt_url(url)


@given(st.text(max_size=30))
def test_a_topic_level_has_no_separator_or_wildcard_and_tells_devices_apart(device: str) -> None:
    level = topic_level(device)
    assert not set(level) & set("/+#\0")
    assert topic_level(device + "x") != level and (device == "" or topic_level(device[:-1]) != level)
    assert topic_level("00c0ffee00000001") == "00c0ffee00000001"  # a device id is used as it is


def test_a_record_and_a_lost_range_read_back_from_their_json() -> None:
    for record in records(range(3)):
        assert StreamRecord.from_dict(record.to_dict()) == record
    lost = LostRange("ring", 2, 10, 20, 99)
    assert LostRange.from_dict(lost.to_dict()) == lost
    with pytest.raises(ValueError):
        StreamRecord.from_dict({**records(range(1))[0].to_dict(), "seq": "7"})
    with pytest.raises(ValueError):
        StreamRecord.from_dict({"device": "ring"})
