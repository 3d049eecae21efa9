"""Real MQTT brokers for the MQTT sink and fleet tests: mosquitto (Debian) when installed, else amqtt (PyPI).

`broker` runs a test on each (skipping the one that is absent); `mosquitto` is mosquitto only, for what the
fallback does not do (users, TLS, sessions that survive a restart).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge.mqtt_certs import Certificates, make_certificates
from wedge.edge.fleet.broker import LocalBroker, TlsListener, amqtt_available, available_kind, mosquitto_path

USERS = {"ring-bridge": "s3cret pass"}


def need_broker(kind: str | None = None) -> str:
    if kind == "mosquitto" and mosquitto_path() is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
    if kind == "amqtt" and not amqtt_available():
        pytest.skip("amqtt is not installed (pip install amqtt; the fallback broker)")
    found = kind or available_kind()
    if found is None:
        pytest.skip("no MQTT broker: neither mosquitto nor amqtt is installed")
    return found


@pytest.fixture(params=["mosquitto", "amqtt"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalBroker]:
    """Each broker in turn: mosquitto, and amqtt (what a user without mosquitto gets)."""
    started = LocalBroker(tmp_path / "broker", kind=need_broker(request.param))  # type: ignore[arg-type]
    started.start()
    yield started
    started.kill()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[LocalBroker]:
    need_broker("mosquitto")
    started = LocalBroker(tmp_path / "mosquitto", kind="mosquitto")
    started.start()
    yield started
    started.kill()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def secured(tmp_path: Path, certificates: Certificates) -> Iterator[LocalBroker]:
    """mosquitto with a password file and a TLS listener that asks for a client certificate of the test CA."""
    need_broker("mosquitto")
    tls = TlsListener(certificates.server_cert, certificates.server_key, certificates.ca, require_certificate=True)
    started = LocalBroker(tmp_path / "secured", kind="mosquitto", users=USERS, tls=tls)
    started.start()
    yield started
    started.kill()
