"""A labgrid lab on loopback for the tests, set up as a lab host is (README "Board farm (labgrid)").

`labgrid-coordinator`, one `labgrid-exporter`, and per board a real virtual board (`wedge emulate`) whose pty
Debian's `ser2net` serves as RFC 2217, exported as a NetworkSerialPort; its power switch is a NetworkPowerPort of
labgrid's `simplerest` model served here: switching the outlet off kills the board's process (a power cut), on
starts it again on the same flash. Places are made with `labgrid-client`, as a lab admin makes them.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Final

from wedge.firmware.image.keys import KeyPair, generate_keys
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.hil.labgrid import Coordinator

SER2NET: Final[str | None] = shutil.which("ser2net") or (
    "/usr/sbin/ser2net" if Path("/usr/sbin/ser2net").is_file() else None)
EXPORTER: Final[str] = "lab-host-1"
START_TIMEOUT_S: Final[float] = 30.0
PROFILE: Final[str] = "ring-nrf52840"


def missing() -> str | None:
    """Why the lab cannot run here, or None."""
    try:
        import labgrid  # noqa: F401
    except ImportError:
        return "labgrid is not installed (python3 -m pip install -e '.[lab]')"
    for tool in ("labgrid-coordinator", "labgrid-exporter", "labgrid-client"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (labgrid's scripts)"
    if SER2NET is None:
        return "ser2net is not installed (Debian: apt-get install ser2net; .ci/run installs it)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_listener(port: int, timeout_s: float) -> None:
    """Until something accepts on 127.0.0.1:port (ser2net says nothing when it is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g} s") from None
            time.sleep(0.05)


class Service:
    """A lab daemon: its output goes to a log, and `wait_for` waits for a line matching a pattern."""

    def __init__(self, name: str, args: Sequence[str], folder: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = folder / f"{name}.log"
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(list(args), cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        assert self.process.stdout is not None
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        with self.log_path.open("a") as log:
            for line in stream:
                log.write(line)
                log.flush()
                self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, pattern: str, timeout_s: float = START_TIMEOUT_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{self.name} did not say {pattern!r}: {self.tail()}") from None
            if line is None:
                raise RuntimeError(f"{self.name} exited ({self.process.wait()}) before {pattern!r}: {self.tail()}")
            found = re.search(pattern, line)
            if found:
                return found

    def tail(self) -> str:
        return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-8:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class PowerSwitch:
    """A network power switch speaking labgrid's `simplerest` model: GET /relay/<outlet>/<0|1>, GET /relay/<outlet>.

    Outlet N powers board N: off kills its process (SIGKILL: nothing saved), on starts it again and answers
    once the board's port is up (a real switch answers at once; the board then boots in its own time).
    """

    def __init__(self, boards: Sequence[EmulatorProcess]) -> None:
        self.boards = list(boards)
        self.switched: list[tuple[int, int]] = []
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) not in (2, 3) or parts[0] != "relay" or not parts[1].isdigit() or (
                        int(parts[1]) >= len(switch.boards)):
                    self.send_error(404)
                    return
                outlet = int(parts[1])
                if len(parts) == 3:
                    switch.set(outlet, parts[2] == "1")
                body = b"1" if switch.boards[outlet].alive() else b"0"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, outlet: int, on: bool) -> None:
        board = self.boards[outlet]
        self.switched.append((outlet, int(on)))
        if on and not board.alive():
            board.start()
        elif not on and board.alive() and board.child is not None:
            board.child.kill()
            board.stop()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/relay/{{index}}/{{value}}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class LabBoard:
    place: str
    process: EmulatorProcess
    serial_port: int


class Lab:
    """The whole lab; `coordinator` is its address, `keys` the key every board trusts."""

    def __init__(self, places: Sequence[str]) -> None:
        # Short: the virtual boards' control sockets live under it (108-byte Unix socket paths).
        self.folder = Path(tempfile.mkdtemp(prefix="wedge-lab-"))
        self.services: list[Service] = []
        self.boards: list[LabBoard] = []
        self.switch: PowerSwitch | None = None
        try:
            self._start(places)
        except BaseException:
            self.close()
            raise

    def _start(self, places: Sequence[str]) -> None:
        self.keys: KeyPair = generate_keys(self.folder / "keys")
        coordinator = self._service("coordinator", ["labgrid-coordinator", "--listen", "127.0.0.1:0"])
        self.coordinator = "127.0.0.1:" + coordinator.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1)
        for index, place in enumerate(places):
            process = EmulatorProcess(self.folder / f"b{index}", self.keys.private_path, PROFILE)
            process.start()
            self.boards.append(LabBoard(place, process, free_port()))
        self.switch = PowerSwitch([b.process for b in self.boards])
        ser2net_config = self.folder / "ser2net.yaml"
        ser2net_config.write_text(self.ser2net_yaml())
        self._service("ser2net", [str(SER2NET), "-n", "-d", "-c", str(ser2net_config)])
        for board in self.boards:
            wait_for_listener(board.serial_port, START_TIMEOUT_S)
        exporter_config = self.folder / "exporter.yaml"
        exporter_config.write_text(self.exporter_yaml())
        exporter = self._service("exporter", ["labgrid-exporter", "-c", self.coordinator, "-n", EXPORTER,
                                              "--hostname", "127.0.0.1", str(exporter_config)])
        exporter.wait_for("connected to coordinator")
        self._wait_for_resources(2 * len(self.boards) + 1)
        for board in self.boards:
            self.client("-p", board.place, "create")
            self.client("-p", board.place, "add-match", f"{EXPORTER}/{board.place}/*")
            self.client("-p", board.place, "set-tags", f"profile={PROFILE}")
        # A place with a power switch and no serial port: not a board wedge can bench.
        self.client("-p", "bare", "create")
        self.client("-p", "bare", "add-match", f"{EXPORTER}/bare/*")

    def ser2net_yaml(self) -> str:
        """ser2net 4's YAML: one connection per board, RFC 2217 on a TCP port, the board's pty behind it."""
        return "".join(
            f"connection: &{board.place}\n"
            f"  accepter: telnet(rfc2217,mode=server),tcp,127.0.0.1,{board.serial_port}\n"
            f"  connector: serialdev(nouucplock=true),{board.process.port},115200n81,local\n"
            for board in self.boards)

    def exporter_yaml(self) -> str:
        """The exporter's resources: a group per board (serial port and power outlet), and `bare` (power only)."""
        assert self.switch is not None
        groups = [f"{board.place}:\n"
                  f"  NetworkSerialPort:\n    host: 127.0.0.1\n    port: {board.serial_port}\n    speed: 115200\n"
                  f"  NetworkPowerPort:\n    model: simplerest\n    host: '{self.switch.url()}'\n    index: {index}\n"
                  for index, board in enumerate(self.boards)]
        groups.append(f"bare:\n  NetworkPowerPort:\n    model: simplerest\n    host: '{self.switch.url()}'\n"
                      f"    index: 0\n")
        return "".join(groups)

    def _service(self, name: str, args: Sequence[str]) -> Service:
        service = Service(name, args, self.folder)
        self.services.append(service)
        return service

    def _wait_for_resources(self, count: int) -> None:
        """Until the coordinator lists the exporter's resources (they arrive after its hello)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            listed = self.client("resources").stdout.split()
            if len(listed) >= count:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the coordinator lists {listed}, not {count} resources")
            time.sleep(0.1)

    def client(self, *args: str, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """labgrid-client against this lab's coordinator, as `user` (LG_USERNAME) when given."""
        env = {**os.environ, "LG_COORDINATOR": self.coordinator}
        if user is not None:
            env["LG_USERNAME"] = user
        result = subprocess.run(["labgrid-client", *args], env=env, capture_output=True, text=True, timeout=60,
                                check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"labgrid-client {' '.join(args)}: {result.stderr.strip()}")
        return result

    def holder(self, place: str) -> str | None:
        with Coordinator(self.coordinator) as session:
            return session.place(place).holder

    def close(self) -> None:
        for service in reversed(self.services):
            service.stop()
        for board in self.boards:
            board.process.stop()
        if self.switch is not None:
            self.switch.close()
        shutil.rmtree(self.folder, ignore_errors=True)

