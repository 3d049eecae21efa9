"""The streamable HTTP transport: loopback by default; any other address needs a bearer token.

The socket is bound before the announcement, so `--http 127.0.0.1:0` works: the server prints
{"mcp": {"url": ...}} on stderr once it listens.
"""

from __future__ import annotations

import hmac
import json
import socket
import sys
from dataclasses import dataclass
from typing import Final

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from wedge.edge.bridge.sinks.websocket import is_loopback
from wedge.mcp.errors import McpError

MCP_PATH: Final[str] = "/mcp"


@dataclass(frozen=True)
class HttpAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HttpAddress:
        host, sep, port_text = text.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
            raise McpError(f"--http {text}: expected HOST:PORT, e.g. 127.0.0.1:8800")
        return cls(host, int(port_text))

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


class BearerToken:
    """Refuses every HTTP request without `Authorization: Bearer <token>` (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = b'{"error": "a valid bearer token is required"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def check_exposure(address: HttpAddress, token: str | None) -> None:
    if not address.loopback and not token:
        raise McpError(f"--http {address.host}:{address.port} is reachable from other machines: give a token "
                       "(--token or WEDGE_MCP_TOKEN), or bind 127.0.0.1")


def _bind(address: HttpAddress) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise McpError(f"cannot listen on {address.host}:{address.port}: {exc.strerror or exc}") from None
    sock.listen()
    sock.setblocking(False)
    return sock


def serve_http(server: MCPServer, address: HttpAddress, token: str | None) -> None:
    check_exposure(address, token)
    app: ASGIApp = server.streamable_http_app(streamable_http_path=MCP_PATH, host=address.host)
    if token:
        app = BearerToken(app, token)
    sock = _bind(address)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}{MCP_PATH}"
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(json.dumps({"mcp": {"url": url, "token": bool(token)}}), file=sys.stderr, flush=True)
    anyio.run(uvicorn.Server(config).serve, [sock])
