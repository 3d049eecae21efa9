"""`wedge bridge --sink mqtt://...` from the command line: a broker it cannot use is one error line before any
device is touched; one it cannot reach is no error (the bridge stores and says it is buffering)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.edge.conftest import USERS
from tests.edge.mqtt_certs import Certificates
from wedge.cli import main
from wedge.edge.fleet.broker import LocalBroker, free_port

NO_ADAPTER = "tcp-client:127.0.0.1:1"  # a Bumble transport nobody listens on: the bridge stops at the adapter


def bridge(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["bridge", "--no-status", "--device", "x", "--transport", NO_ADAPTER, *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(("url", "message"), [
    ("mqtt://127.0.0.1/fleet/+/rings", "has a wildcard (+ or #)"),
    ("mqtt://127.0.0.1/fleet/#", "has a wildcard (+ or #)"),
    ("mqtt://127.0.0.1:1883", "give a topic prefix"),
    ("mqtt://127.0.0.1/fleet?qos=0", "qos must be 1 or 2"),
    ("mqtt://127.0.0.1/fleet?ca=ca.pem", "TLS options: use mqtts://"),
    ("mqtt://127.0.0.1/fleet?retain=1", "unknown option 'retain'"),
])
def test_a_bad_broker_url_is_one_error_line(url: str, message: str, tmp_path: pytest.TempPathFactory) -> None:
    code, output = bridge("--sink", url, "--sink", f"sqlite:{tmp_path}/s.db")
    assert code == 1 and message in output and "Traceback" not in output
    assert output.count("\n") == 1


def test_wrong_credentials_and_a_failed_tls_handshake_stop_the_bridge_with_one_line(
        secured: LocalBroker, certificates: Certificates, tmp_path: pytest.TempPathFactory) -> None:
    (user, _password), = USERS.items()
    code, output = bridge("--sink", f"mqtt://{user}:wrong@127.0.0.1:{secured.port}/fleet",
                          "--sink", f"sqlite:{tmp_path}/a.db")
    assert code == 1 and "error: mqtt://ring-bridge@127.0.0.1" in output and "refused the credentials" in output
    assert "wrong" not in output  # the password is never echoed
    code, output = bridge("--sink", f"mqtts://{user}:x@127.0.0.1:{secured.tls_port}/fleet?ca={certificates.other_ca}",
                          "--sink", f"sqlite:{tmp_path}/b.db")
    assert code == 1 and "TLS handshake failed" in output and "Traceback" not in output


def test_an_unreachable_broker_is_a_warning_that_the_bridge_buffers(tmp_path: pytest.TempPathFactory,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    code, output = bridge("--sink", f"mqtt://127.0.0.1:{free_port()}/fleet", "--sink", f"sqlite:{tmp_path}/a.db")
    # (the warning is a log line: on stderr in a terminal, in caplog here)
    assert "cannot reach the broker" in caplog.text and "storing locally" in caplog.text
    assert "buffering" in caplog.text
    assert code == 1 and "no Bluetooth adapter" in output  # then the bridge went on, as far as this machine allows
