"""An MQTT broker addressed by URL (`mqtt://[user[:password]@]HOST[:PORT]/PREFIX[?qos=2&ca=...]`, `mqtts://...`),
the topics under its prefix, the aiomqtt client that connects to it, and what a failed connection means.

The bridge's MQTT sink publishes there and `wedge fleet` subscribes there; both read the address here.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from wedge.edge.bridge.errors import SinkError

SCHEMES: Final[dict[str, int]] = {"mqtt": 1883, "mqtts": 8883}
# The password of a URL that names a user and no password (a URL is visible to every user of the machine in ps).
PASSWORD_ENV: Final[str] = "WEDGE_MQTT_PASSWORD"
OPTIONS: Final[tuple[str, ...]] = ("qos", "ca", "cert", "key", "client_id")
# A topic level's characters that would change its meaning (a level separator, wildcards) or its escape.
_ESCAPED: Final[str] = "%/+#\0"
KEEPALIVE_S: Final[int] = 15
# paho's own log says what the sink and the fleet already report, as one line each: only its criticals pass.
_PAHO_LOG: Final[logging.Logger] = logging.getLogger(f"{__name__}.paho")
_PAHO_LOG.setLevel(logging.CRITICAL)
CONNECT_TIMEOUT_S: Final[float] = 10.0

Failure = Literal["credentials", "tls", "unreachable", "refused"]


class BrokerError(SinkError):
    """The MQTT broker cannot be used: a bad address, refused credentials, a failed TLS handshake."""


def topic_level(text: str) -> str:
    """`text` as one topic level: the characters with a meaning in topics are %-escaped (a device key is usually
    16 hex digits; a Heart Rate device's serial number may be anything)."""
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in text)


@dataclass(frozen=True)
class MqttAddress:
    """Where a broker is, how to log in to it, and the topic prefix under which devices publish."""

    host: str
    port: int
    prefix: str
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    qos: int = 1
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str | None = None

    @property
    def url(self) -> str:
        """The address as given, without its password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}/{self.prefix}"

    @property
    def destination(self) -> str:
        """What an outbox remembers acknowledgements under: the broker and the prefix."""
        return f"{self.host}:{self.port}/{self.prefix}"

    def topic(self, device: str, leaf: str) -> str:
        return f"{self.prefix}/{topic_level(device)}/{leaf}"

    def filter(self, leaf: str) -> str:
        """The subscription for `leaf` of every device under the prefix."""
        return f"{self.prefix}/+/{leaf}"

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context (the system's CAs unless `ca` names a file; a client certificate when `cert` does);
        BrokerError when a file cannot be read."""
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            if self.cert_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"{self.url}: cannot load the TLS files: {exc}") from exc
        return context

    def client(self, identifier: str, *, will: aiomqtt.Will | None = None, clean_session: bool = True,
               tls_context: ssl.SSLContext | None = None, timeout_s: float = CONNECT_TIMEOUT_S,
               max_inflight: int | None = None) -> aiomqtt.Client:
        """An aiomqtt client for this broker (connects when entered)."""
        return aiomqtt.Client(self.host, self.port, username=self.username, password=self.password,
                              identifier=identifier, will=will, clean_session=clean_session,
                              tls_context=tls_context if tls_context is not None else self.tls_context(),
                              timeout=timeout_s, keepalive=KEEPALIVE_S, max_inflight_messages=max_inflight,
                              logger=_PAHO_LOG)


def _file(value: str, what: str, spec: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise BrokerError(f"{spec}: {what} {value}: no such file")
    return path


def _prefix(path: str, spec: str) -> str:
    prefix = unquote(path).strip("/")
    if not prefix:
        raise BrokerError(f"{spec}: give a topic prefix after the broker, e.g. mqtt://HOST:1883/wedge")
    if "+" in prefix or "#" in prefix:
        raise BrokerError(f"{spec}: the topic prefix {prefix!r} has a wildcard (+ or #): devices publish under "
                          "one concrete prefix")
    if prefix.startswith("$") or "\0" in prefix or "//" in prefix:
        raise BrokerError(f"{spec}: {prefix!r} is not a topic prefix (no leading $, empty level or NUL)")
    return prefix


def parse_mqtt_url(spec: str) -> MqttAddress:
    """A broker from `mqtt://` / `mqtts://` URL; BrokerError naming what is wrong with it."""
    parts = urlsplit(spec)
    if "#" in spec:  # a URL would take it for a fragment and drop it: it can only mean the wildcard
        _prefix(parts.path + "#", spec)
    if parts.scheme not in SCHEMES:
        raise BrokerError(f"{spec}: expected mqtt://HOST[:PORT]/PREFIX or mqtts://HOST[:PORT]/PREFIX")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise BrokerError(f"{spec}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise BrokerError(f"{spec}: no broker host")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise BrokerError(f"{spec}: unknown option {unknown[0]!r} (known: {', '.join(OPTIONS)})")
    qos = options.get("qos", "1")
    if qos not in ("1", "2"):
        raise BrokerError(f"{spec}: qos must be 1 or 2 (a record counts as published when the broker acknowledges "
                          f"it), got {qos!r}")
    tls = parts.scheme == "mqtts"
    if not tls and any(k in options for k in ("ca", "cert", "key")):
        raise BrokerError(f"{spec}: ca, cert and key are TLS options: use mqtts://")
    if "key" in options and "cert" not in options:
        raise BrokerError(f"{spec}: a client key needs its certificate (cert=...)")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username and password is None:
        password = os.environ.get(PASSWORD_ENV)
    return MqttAddress(
        host=parts.hostname, port=port, prefix=_prefix(parts.path, spec), tls=tls, username=username,
        password=password, qos=int(qos),
        ca_file=_file(options["ca"], "CA file", spec) if "ca" in options else None,
        cert_file=_file(options["cert"], "certificate", spec) if "cert" in options else None,
        key_file=_file(options["key"], "key", spec) if "key" in options else None,
        client_id=options.get("client_id") or None,
    )


def classify(exc: BaseException) -> tuple[Failure, str]:
    """What a failed connection means: refused credentials and a failed TLS handshake will not fix themselves;
    an unreachable broker may come back. With a one-line reason."""
    if isinstance(exc, MqttConnectError):
        code = getattr(exc.rc, "value", exc.rc)
        # MQTT 3.1.1 CONNACK 4 and 5, and their MQTT 5 reason codes 134 and 135 (paho reports the latter).
        if code in (4, 5, 134, 135):
            return "credentials", f"the broker refused the credentials ({exc})"
        return "refused", f"the broker refused the connection ({exc})"
    # aiomqtt reports a failed connect as MqttError(str(cause)) from None (the cause is still its context), and a
    # dropped connection as MqttError from what ended it.
    cause = (exc.__cause__ or exc.__context__ or exc) if isinstance(exc, aiomqtt.MqttError) else exc
    if isinstance(cause, aiomqtt.MqttCodeError) and not isinstance(cause, MqttConnectError):
        return "unreachable", f"lost the connection to the broker ({cause})"
    if isinstance(cause, ssl.SSLError):
        return "tls", f"TLS handshake failed: {getattr(cause, 'reason', None) or cause}"
    if isinstance(cause, socket.gaierror):
        return "unreachable", f"cannot resolve the broker's host ({cause.strerror})"
    if isinstance(cause, OSError) and cause.strerror:
        return "unreachable", f"cannot reach the broker ({cause.strerror})"
    return "unreachable", f"no answer from the broker ({exc})"


__all__ = ["BrokerError", "MqttAddress", "classify", "parse_mqtt_url", "topic_level"]
