"""The WebSocket sink: pushes each batch of records to every connected client, and serves the live page.

Binds the loopback by default; on any other address a token is required (`?token=` on the page and stream).
GET / is the page, /stream the WebSocket; a new client first gets the models known and the recent history of
every device. Messages are JSON objects: `{"models": [...]}` (what each model id names, before its first
record), `{"records": [...]}` (the SQLite sink's column names), `{"lost": [...]}` and, once a second,
`{"status": {"devices": [...]}}` (per device link state, battery, RSSI, heart rate, reconnects, link events).

Each client has its own bounded backlog, sent by its own task at the pace its socket takes: a client more than
`client_backlog_bytes` behind is dropped (one log line), one that stops answering keepalive pings is closed
(one log line), and a client that vanishes mid-message costs nothing but its own connection. So memory stays
bounded whatever the clients do, and the other sinks never wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from wedge.edge.bridge.coverage import Coverage
from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.stream_record import LostRange, StreamRecord, model_dict
from wedge.errors import first_line
from wedge.firmware.protocol.ble_control import EpochSpan
from wedge.firmware.protocol.ble_model_info import ModelInfo

# What a page opened late still gets: 10 minutes at the virtual ring's 2 records/s.
HISTORY_RECORDS: Final[int] = 1200
STREAM_PATH: Final[str] = "/stream"
# A client this far behind (queued messages not yet handed to its socket) is dropped rather than buffered.
CLIENT_BACKLOG_BYTES: Final[int] = 1 << 20
MAX_CLIENTS: Final[int] = 32
# A ping unanswered this long (after as long without one) closes the client: a stuck one, or a dead peer.
DEFAULT_KEEPALIVE_S: Final[float] = 20.0
# How long a closing client gets to answer the close frame before its TCP connection is aborted.
CLOSE_TIMEOUT_S: Final[float] = 2.0
# The page sends nothing: a client's messages are read and discarded, and may not be large.
MAX_INCOMING_BYTES: Final[int] = 4096
# The socket's user-space write buffer high-water mark: above it a send waits, so the backlog stays queued here.
WRITE_LIMIT_BYTES: Final[int] = 1 << 16

logger = logging.getLogger(__name__)


class _OneLine(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The websockets library's own log, without tracebacks: an abrupt close is news, not a bug report."""

    def log(self, level: int, msg: object, *args: object, exc_info: object = None, **kwargs: object) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        if exc_info:
            error = sys.exc_info()[1] if exc_info is True else exc_info
            if isinstance(error, tuple):
                error = error[1]
            if isinstance(error, BaseException):
                text = f"{text}: {type(error).__name__}: {first_line(error)}"
        self.logger.log(level, text)


def parse_ws_address(spec: str) -> tuple[str, int]:
    """(host, port) from `ws://HOST:PORT`; SinkError when either is missing or bad."""
    parts = urlsplit(spec)
    if parts.scheme != "ws" or not parts.hostname:
        raise SinkError(f"bad WebSocket sink {spec!r}: expected ws://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise SinkError(f"bad WebSocket sink {spec!r}: give a port, e.g. ws://127.0.0.1:8765")
    return parts.hostname, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def live_page() -> bytes:
    return resources.files("wedge.edge.bridge.sinks").joinpath("live_page.html").read_bytes()


@dataclass
class _Client:
    connection: ServerConnection
    peer: str
    queue: deque[str] = field(default_factory=deque)
    queued_bytes: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False
    sender: asyncio.Task[None] | None = None

    def push(self, message: str) -> None:
        self.queue.append(message)
        self.queued_bytes += len(message)
        self.wake.set()


@dataclass
class WebSocketStats:
    clients: int = 0
    dropped_slow: int = 0
    closed_keepalive: int = 0


class WebSocketSink:
    durable = False

    def __init__(self, host: str, port: int, *, token: str | None = None,
                 keepalive_s: float = DEFAULT_KEEPALIVE_S, client_backlog_bytes: int = CLIENT_BACKLOG_BYTES,
                 max_clients: int = MAX_CLIENTS) -> None:
        if not is_loopback(host) and not token:
            raise SinkError(f"the WebSocket sink on {host} is reachable from other machines: "
                            f"give a token (--ws-token) or bind 127.0.0.1")
        if keepalive_s <= 0:
            raise SinkError(f"the WebSocket keepalive must be > 0 s, got {keepalive_s}")
        self.host = host
        self.port = port
        self.token = token
        self.keepalive_s = keepalive_s
        self.client_backlog_bytes = client_backlog_bytes
        self.max_clients = max_clients
        self.name = f"ws://{host}:{port}"
        self.stats = WebSocketStats()
        self._server: Server | None = None
        self._clients: dict[ServerConnection, _Client] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._history: deque[str] = deque(maxlen=HISTORY_RECORDS)
        self._models: dict[int, ModelInfo] = {}
        self._status: str | None = None  # the bridge's latest status message
        self._page = live_page()

    @property
    def bound_port(self) -> int:
        """The port actually bound (differs from `port` when it was 0)."""
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def clients(self) -> int:
        return len(self._clients)

    def _authorized(self, path: str) -> bool:
        if not self.token:
            return True
        given = parse_qs(urlsplit(path).query).get("token", [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if not self._authorized(request.path):
            return connection.respond(HTTPStatus.FORBIDDEN, "a valid ?token= is required\n")
        if path == STREAM_PATH:
            if len(self._clients) >= self.max_clients:
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                                          f"{self.max_clients} clients are streaming already\n")
            return None
        if path in ("/", "/index.html"):
            headers = Headers([("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(self._page))),
                               ("Cache-Control", "no-store")])
            return Response(HTTPStatus.OK, "OK", headers, self._page)
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")

    async def _handler(self, connection: ServerConnection) -> None:
        address = connection.remote_address
        peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        client = _Client(connection, peer)
        self._clients[connection] = client
        self.stats.clients += 1
        if self._models:
            client.push(self._models_message(self._models.values()))
        if self._history:
            client.push('{"records":[' + ",".join(self._history) + "]}")
        if self._status is not None:
            client.push(self._status)
        sender = client.sender = asyncio.create_task(self._send_loop(client), name=f"ws client {peer}")
        try:
            async for _ in connection:
                pass  # the page sends nothing; reading keeps pings, pongs and the close handshake working
        except ConnectionClosed:
            pass
        finally:
            self._clients.pop(connection, None)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            self._note_close(client)

    def _note_close(self, client: _Client) -> None:
        sent = client.connection.protocol.close_sent
        if not client.dropped and sent is not None and sent.code == CloseCode.INTERNAL_ERROR \
                and "keepalive" in sent.reason:
            self.stats.closed_keepalive += 1
            logger.warning("%s: closed client %s: no answer to a keepalive ping within %g s", self.name,
                           client.peer, self.keepalive_s)

    async def _send_loop(self, client: _Client) -> None:
        try:
            while True:
                await client.wake.wait()
                client.wake.clear()
                while client.queue:
                    message = client.queue.popleft()
                    client.queued_bytes -= len(message)
                    # Waits while the socket's buffer is above WRITE_LIMIT_BYTES: the backlog stays in the queue.
                    await client.connection.send(message)
        except ConnectionClosed:
            return

    def _drop(self, client: _Client, needed: int) -> None:
        client.dropped = True
        self.stats.dropped_slow += 1
        behind = client.queued_bytes + needed
        client.queue.clear()
        client.queued_bytes = 0
        logger.warning("%s: dropped client %s: %d KiB behind the stream (it reads too slowly)", self.name,
                       client.peer, behind // 1024)
        if client.sender is not None:
            client.sender.cancel()  # a send blocked on the full socket would hold the close frame back
        self._closing.add(asyncio.create_task(self._close(client)))

    async def _close(self, client: _Client) -> None:
        """Close handshake if the client takes it within CLOSE_TIMEOUT_S, else cut the TCP connection."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await client.connection.close(CloseCode.TRY_AGAIN_LATER, "too slow for the stream")
        except (TimeoutError, ConnectionClosed, OSError):
            client.connection.transport.abort()
        finally:
            self._closing.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _broadcast(self, message: str) -> None:
        for client in list(self._clients.values()):
            if client.dropped:
                continue
            # One message is never "behind": only a client that has not taken the previous ones yet is.
            if client.queue and client.queued_bytes + len(message) > self.client_backlog_bytes:
                self._drop(client, len(message))
            else:
                client.push(message)

    async def open(self) -> None:
        try:
            self._server = await serve(
                self._handler, self.host, self.port, process_request=self._process_request, compression=None,
                ping_interval=self.keepalive_s, ping_timeout=self.keepalive_s, close_timeout=CLOSE_TIMEOUT_S,
                max_size=MAX_INCOMING_BYTES, write_limit=WRITE_LIMIT_BYTES,
                logger=_OneLine(logging.getLogger(f"{__name__}.server")),
            )
        except OSError as exc:
            raise SinkError(f"the WebSocket sink cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc

    @staticmethod
    def _models_message(models: Iterable[ModelInfo]) -> str:
        return json.dumps({"models": [model_dict(m) for m in models]}, separators=(",", ":"), ensure_ascii=False)

    async def write(self, batch: Sequence[StreamRecord]) -> None:
        new = {r.model.model_id: r.model for r in batch
               if r.model is not None and self._models.get(r.model.model_id) != r.model}
        if new:
            self._models.update(new)
            if self._clients:
                self._broadcast(self._models_message(new.values()))
        encoded = [r.to_json() for r in batch]
        self._history.extend(encoded)
        if self._clients:
            self._broadcast('{"records":[' + ",".join(encoded) + "]}")

    def note_devices(self, devices: Sequence[dict[str, Any]]) -> None:
        """The devices' state (link, battery, RSSI, heart rate, reconnects, link events) for the page."""
        self._status = json.dumps({"status": {"devices": list(devices)}}, separators=(",", ":"), default=str)
        if self._clients:
            self._broadcast(self._status)

    async def note_lost(self, ranges: Sequence[LostRange]) -> None:
        if self._clients:
            self._broadcast('{"lost":[' + ",".join(r.to_json() for r in ranges) + "]}")

    async def coverage(self, device: str, windows: Sequence[EpochSpan]) -> Coverage:
        return Coverage()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


__all__ = ["WebSocketSink", "is_loopback", "parse_ws_address"]
