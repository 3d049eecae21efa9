"""A real MQTT broker on the loopback, for the tests, the benchmarks and trying the fleet on a laptop: Debian's
mosquitto when it is installed, else amqtt (pure Python, from PyPI) as the fallback.

mosquitto gets a generated configuration: persistence (so a stopped and restarted broker keeps its subscribers'
sessions and queues, as a fleet's broker must), optional users (a password file in mosquitto's PBKDF2-SHA512
format) and an optional TLS listener. amqtt keeps its sessions in memory (for clients that give a user name: `url`
names one) and serves plain TCP only.
`python -m wedge.edge.fleet.broker --amqtt --port N` is the amqtt child process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal

from wedge.child_process import kill_process, stop_process
from wedge.edge.fleet.errors import FleetError

MOSQUITTO: Final[str] = "/usr/sbin/mosquitto"
START_TIMEOUT_S: Final[float] = 20.0
STOP_TIMEOUT_S: Final[float] = 10.0
# mosquitto's default is 1000 queued messages per offline persistent client; a fleet subscriber away for a
# while (or a broker restart) needs more.
MAX_QUEUED_MESSAGES: Final[int] = 1_000_000
# mosquitto_passwd's defaults for its `$7$` (PBKDF2-SHA512) entries.
_PBKDF2_ITERATIONS: Final[int] = 101
_SALT_BYTES: Final[int] = 12

AMQTT_USER: Final[str] = "wedge"

BrokerKind = Literal["mosquitto", "amqtt"]


def mosquitto_path() -> str | None:
    """The mosquitto binary, if installed (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return MOSQUITTO if os.access(MOSQUITTO, os.X_OK) else None


def amqtt_available() -> bool:
    try:
        import amqtt.broker  # noqa: F401
    except ImportError:
        return False
    return True


def available_kind() -> BrokerKind | None:
    if mosquitto_path() is not None:
        return "mosquitto"
    return "amqtt" if amqtt_available() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One password file line as mosquitto_passwd writes it: `user:$7$iterations$salt$hash` (PBKDF2-SHA512)."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    return f"{user}:$7${_PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener's files: the broker's certificate and key, and the CA its clients' certificates chain to."""

    certfile: Path
    keyfile: Path
    cafile: Path
    require_certificate: bool = False


class LocalBroker:
    """One broker on 127.0.0.1 in `folder` (config, persistence, log); start, stop (clean), kill, start again."""

    def __init__(self, folder: Path, *, kind: BrokerKind | None = None, port: int | None = None,
                 users: Mapping[str, str] | None = None, tls: TlsListener | None = None) -> None:
        chosen = kind or available_kind()
        if chosen is None:
            raise FleetError("no MQTT broker: install mosquitto (Debian) or amqtt (pip install amqtt)")
        if chosen == "amqtt" and (users or tls):
            raise FleetError("the amqtt fallback broker serves anonymous plain TCP only: users and TLS need mosquitto")
        self.kind: BrokerKind = chosen
        self.folder = folder
        self.port = port or free_port()
        self.tls = tls
        self.tls_port = free_port() if tls else None
        self.users = dict(users or {})
        self.log_path = folder / f"{self.kind}.log"
        self.process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def url(self, prefix: str, *, tls: bool = False) -> str:
        if tls:
            assert self.tls_port is not None, "this broker has no TLS listener"
            return f"mqtts://127.0.0.1:{self.tls_port}/{prefix}"
        # amqtt keeps no session for an anonymous client: it takes any user name, and keeps that client's session.
        user = f"{AMQTT_USER}@" if self.kind == "amqtt" else ""
        return f"mqtt://{user}127.0.0.1:{self.port}/{prefix}"

    def _mosquitto_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if self.users else 'true'}",
            "persistence true", f"persistence_location {self.folder}/", "autosave_interval 30",
            f"max_queued_messages {MAX_QUEUED_MESSAGES}", "max_inflight_messages 100",
            "log_dest stderr", "log_type error", "log_type warning", "log_type notice", "log_type information",
            # $SYS/broker/bytes/received and friends every second (what the fleet benchmark reads the wire from).
            "sys_interval 1",
            # Run as whoever started it (as root mosquitto would switch to a `mosquitto` user that cannot write here).
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if self.users:
            passwords = self.folder / "passwords"
            passwords.write_text("".join(password_line(u, p) + "\n" for u, p in self.users.items()))
            passwords.chmod(0o600)
            lines.append(f"password_file {passwords}")
        if self.tls is not None:
            lines += [f"listener {self.tls_port} 127.0.0.1", f"certfile {self.tls.certfile}",
                      f"keyfile {self.tls.keyfile}", f"cafile {self.tls.cafile}",
                      f"require_certificate {'true' if self.tls.require_certificate else 'false'}"]
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _command(self) -> list[str]:
        if self.kind == "mosquitto":
            binary = mosquitto_path()
            if binary is None:
                raise FleetError("mosquitto is not installed")
            return [binary, "-c", str(self._mosquitto_config())]
        return [sys.executable, "-m", "wedge.edge.fleet.broker", "--amqtt", "--port", str(self.port)]

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the broker (again) and wait until it says it is running; FleetError if it exits or stays silent."""
        if self.process is not None and self.process.poll() is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a")
        self.process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        said = threading.Event()
        running: list[bool] = []
        threading.Thread(target=self._pump, args=(self.process, self._log, said, running), daemon=True).start()
        if not said.wait(timeout_s) or not running:
            self.kill()
            raise FleetError(f"{self.kind} did not start on port {self.port} within {timeout_s:g} s: {self.log_tail()}")

    @staticmethod
    def _pump(process: subprocess.Popen[str], log: IO[str], said: threading.Event, running: list[bool]) -> None:
        """Copy the broker's output to its log; `said` once it is running (`running` holds True) or has exited."""
        assert process.stdout is not None
        for line in process.stdout:
            if not log.closed:
                log.write(line)
                log.flush()
            # mosquitto: "mosquitto version 2.0.11 running"; the amqtt child: {"broker": "running"}.
            if not running and (line.rstrip().endswith(" running") or '"running"' in line):
                running.append(True)
                said.set()
        said.set()

    def log_tail(self, lines: int = 6) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]) or "(no output)"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM: mosquitto saves its persistent sessions and queued messages, then exits."""
        if self.process is not None:
            stop_process(self.process, timeout_s)
        self._close_log()

    def kill(self) -> None:
        if self.process is not None:
            kill_process(self.process)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


async def _serve_amqtt(port: int) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}", "max_connections": 1000}},
        # Anonymous clients' sessions are dropped when they disconnect: ask for a user name (any) instead.
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
    }
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps({"broker": "running", "port": port}), flush=True)
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description="the amqtt fallback broker on 127.0.0.1")
    parser.add_argument("--amqtt", action="store_true", required=True)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_serve_amqtt(parser.parse_args().port))


if __name__ == "__main__":
    main()
