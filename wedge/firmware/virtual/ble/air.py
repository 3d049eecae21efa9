"""The virtual air: one Bumble controller per HCI client on a shared link, served over TCP on the loopback.

Virtual boards and the bridge each open `tcp-client:127.0.0.1:PORT` as their HCI transport. A client that goes
away loses its radio: its peers see a supervision timeout, as they would when a real device dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from dataclasses import dataclass, field
from typing import Final

from bumble import hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import StreamPacketSource

from wedge.firmware.errors import VirtualBoardError

LOOPBACK: Final[str] = "127.0.0.1"
# LE Data Length Extension (Core Spec 4.2+): 251-byte link-layer payloads, so a 247-byte ATT MTU needs one
# packet. Bumble's controller defaults to the 27 bytes of BLE 4.0.
LE_DATA_LENGTH_BYTES: Final[int] = 251
SUPERVISION_TIMEOUT: Final[int] = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR

logger = logging.getLogger(__name__)


class _SocketSink:
    """Controller → host bytes, written to the client's socket."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def on_packet(self, packet: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(packet)


class _ControllerProtocol(asyncio.Protocol):
    """One HCI client: its bytes are parsed into packets for its own controller."""

    def __init__(self, air: VirtualAir) -> None:
        self._air = air
        self._source = StreamPacketSource()
        self._controller: Controller | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._controller = self._air.attach(self._source, _SocketSink(transport))

    def data_received(self, data: bytes) -> None:
        self._source.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._controller is not None:
            self._air.detach(self._controller)
            self._controller = None


@dataclass
class VirtualAir:
    """A LocalLink whose controllers come and go with their TCP clients."""

    link: LocalLink = field(default_factory=LocalLink)
    _count: int = 0
    _server: asyncio.Server | None = None

    def attach(self, source: StreamPacketSource, sink: _SocketSink) -> Controller:
        self._count += 1
        controller = Controller(f"air-{self._count}", host_source=source, host_sink=sink, link=self.link)
        controller.le_acl_data_packet_length = LE_DATA_LENGTH_BYTES
        return controller

    def detach(self, controller: Controller) -> None:
        """The client is gone: its advertising stops and every peer sees its connection time out."""
        controller.le_legacy_advertiser.stop()
        for advertising_set in list(controller.advertising_sets.values()):
            advertising_set.stop()
        for connection in list(controller.le_connections.values()):
            with contextlib.suppress(Exception):
                connection.send_ll_control_pdu(ll.TerminateInd(SUPERVISION_TIMEOUT))
        controller.le_connections.clear()
        controller.host = None
        if controller in self.link.controllers:
            self.link.remove_controller(controller)

    @property
    def controllers(self) -> int:
        return len(self.link.controllers)

    async def serve(self, port: int = 0, host: str = LOOPBACK) -> int:
        """Listen for HCI clients; returns the bound port (pass 0 for any free one)."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _ControllerProtocol(self), host, port)
        except OSError as exc:
            raise VirtualBoardError(f"the virtual air cannot listen on {host}:{port}: {exc.strerror}") from exc
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def transport_spec(port: int, host: str = LOOPBACK) -> str:
    """The Bumble transport spec a board or the bridge opens to reach the air on `port`."""
    return f"tcp-client:{host}:{port}"


async def serve_forever(port: int) -> None:
    air = VirtualAir()
    bound = await air.serve(port)
    print(json.dumps({"air": transport_spec(bound), "port": bound}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await air.close()


def main(argv: list[str] | None = None) -> None:
    """`python -m wedge.firmware.virtual.ble.air [--port N]`: serve the virtual air until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m wedge.firmware.virtual.ble.air", description=main.__doc__)
    parser.add_argument("--tcp-port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free one)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve_forever(args.tcp_port))
    except VirtualBoardError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
