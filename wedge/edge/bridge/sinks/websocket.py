"""The WebSocket sink: pushes each batch of records to every connected client, and serves the live page.

Binds the loopback by default; on any other address a token is required (`?token=` on the page and stream).
GET / is the page, /stream the WebSocket; a new client first gets the recent history of every device.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections import deque
from collections.abc import Sequence
from http import HTTPStatus
from importlib import resources
from typing import Final
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.stream_record import StreamRecord

HISTORY_RECORDS: Final[int] = 600
STREAM_PATH: Final[str] = "/stream"


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


class WebSocketSink:
    durable = False

    def __init__(self, host: str, port: int, *, token: str | None = None) -> None:
        if not is_loopback(host) and not token:
            raise SinkError(f"the WebSocket sink on {host} is reachable from other machines: "
                            f"give a token (--ws-token) or bind 127.0.0.1")
        self.host = host
        self.port = port
        self.token = token
        self.name = f"ws://{host}:{port}"
        self._server: Server | None = None
        self._clients: set[ServerConnection] = set()
        self._history: deque[str] = deque(maxlen=HISTORY_RECORDS)
        self._page = live_page()

    @property
    def bound_port(self) -> int:
        """The port actually bound (differs from `port` when it was 0)."""
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

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
            return None
        if path in ("/", "/index.html"):
            headers = Headers([("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(self._page))),
                               ("Cache-Control", "no-store")])
            return Response(HTTPStatus.OK, "OK", headers, self._page)
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")

    async def _handler(self, connection: ServerConnection) -> None:
        self._clients.add(connection)
        try:
            if self._history:
                await connection.send('{"records":[' + ",".join(self._history) + "]}")
            async for _ in connection:
                pass  # the page sends nothing; reading keeps the connection's close handshake working
        finally:
            self._clients.discard(connection)

    async def open(self) -> None:
        try:
            self._server = await serve(self._handler, self.host, self.port, process_request=self._process_request,
                                       compression=None)
        except OSError as exc:
            raise SinkError(f"the WebSocket sink cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc

    async def write(self, batch: Sequence[StreamRecord]) -> None:
        encoded = [r.to_json() for r in batch]
        self._history.extend(encoded)
        if self._clients:
            broadcast(self._clients, '{"records":[' + ",".join(encoded) + "]}")

    async def resume_after(self, device: str) -> int | None:
        return None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


__all__ = ["WebSocketSink", "is_loopback", "parse_ws_address"]
