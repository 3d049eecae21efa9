"""Tools over what the ring streamed: `stream_query` reads a SQLite store (through the SQLite sink's own reader,
`wedge.edge.bridge.sinks.sqlite`), `stream_tail` listens to a running bridge's WebSocket sink.

Times are the host's receive times. Labels are the argmax of a classifier's outputs, named from `labels` or from
the manifest of the model's signed image.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from wedge.edge.bridge.errors import BridgeError
from wedge.edge.bridge.sinks.sqlite import query_records
from wedge.edge.bridge.sinks.websocket import STREAM_PATH, parse_ws_address
from wedge.edge.bridge.stream_record import StreamRecord
from wedge.mcp.errors import McpError
from wedge.mcp.policy import Policy
from wedge.mcp.progress import run_in_worker
from wedge.mcp.stream_summary import summarize
from wedge.mcp.tools.base import READ_ONLY, READS_DEVICE, wedge_tool
from wedge.mcp.tools.firmware import read_image

# A query without `last_n` reads at most this many of the newest rows (the summary says when it was cut).
MAX_QUERY_ROWS: Final[int] = 200_000
MAX_TAIL_S: Final[float] = 60.0
CONNECT_TIMEOUT_S: Final[float] = 5.0


class StreamQueryResult(BaseModel):
    """A summary per device (records, seq range and gaps, span and rate, output statistics, label counts), and the
    newest `max_records` records of the selection."""

    database: str
    selected: int
    truncated: bool
    devices: list[dict[str, Any]]
    records: list[dict[str, Any]]


class StreamTailResult(BaseModel):
    """What a running bridge sent during the tail (its recent history first), with the same summary."""

    bridge: str
    devices: list[dict[str, Any]]
    records: list[dict[str, Any]]


def _us(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise McpError(f"give {moment.isoformat()} with its time zone (e.g. 2025-01-31T12:00:00Z)")
    return int(moment.timestamp() * 1_000_000)


def labels_for(policy: Policy, labels: list[str] | None, image: str | None) -> tuple[str, ...]:
    if labels:
        return tuple(labels)
    if image is not None:
        return read_image(policy.readable(image, "image")).manifest.labels
    return ()


def query(path: Path, device: str | None, since_us: int | None, until_us: int | None,
          last_n: int | None) -> tuple[list[StreamRecord], bool]:
    limit = last_n if last_n is not None else MAX_QUERY_ROWS
    records = query_records(path, device=device, since_us=since_us, until_us=until_us, last=limit)
    return records, last_n is None and len(records) == MAX_QUERY_ROWS


def database_summary(path: Path) -> dict[str, Any]:
    """Every device of a stream database summed up (the `wedge://streams` resources)."""
    records, truncated = query(path, None, None, None, None)
    return {"database": str(path), "records": len(records), "truncated": truncated, "devices": summarize(records)}


def bridge_url(spec: str) -> tuple[str, str]:
    """(the /stream URL, the spec without its token) from `ws://HOST:PORT[?token=T]`."""
    try:
        host, port = parse_ws_address(spec)
    except BridgeError:
        raise McpError(f"bridge {spec}: expected the bridge's WebSocket sink, ws://HOST:PORT[?token=T]") from None
    token = parse_qs(urlsplit(spec).query).get("token", [""])[0]
    shown = f"ws://{host}:{port}"
    return f"{shown}{STREAM_PATH}" + (f"?{urlencode({'token': token})}" if token else ""), shown


def _record(data: dict[str, Any]) -> StreamRecord:
    scores = data.get("scores")
    return StreamRecord(data["device"], data.get("epoch", 0), data["seq"], data["t_device_us"], data["received_us"],
                        data["kind"], data.get("model_id"), tuple(data["outputs"]), {}, name=data.get("name"),
                        label=data.get("label"), score=data.get("score"),
                        scores=None if scores is None else tuple(scores))


async def tail(url: str, shown: str, device: str | None, duration_s: float, max_records: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    try:
        async with connect(url, open_timeout=CONNECT_TIMEOUT_S, max_size=None) as socket:
            with anyio.move_on_after(duration_s):
                async for message in socket:
                    batch = json.loads(message).get("records", [])  # `models` and `lost` messages: not records
                    records.extend(r for r in batch if device is None or r.get("device") == device)
                    if len(records) >= max_records:
                        break
    except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
        raise BridgeError(f"cannot listen to the bridge at {shown}: {exc}") from None
    return records[-max_records:]


def register(server: MCPServer, policy: Policy) -> None:

    @wedge_tool(server, READ_ONLY)
    async def stream_query(database: str, device: str | None = None, since: datetime | None = None,
                           until: datetime | None = None, within_last_s: Annotated[float, Field(gt=0)] | None = None,
                           last_n: Annotated[int, Field(ge=1)] | None = None, labels: list[str] | None = None,
                           image: str | None = None,
                           max_records: Annotated[int, Field(ge=0, le=10_000)] = 100) -> StreamQueryResult:
        """Records a device streamed into a SQLite store (`wedge bridge --sink sqlite:...`): select by device,
        receive-time range (`since` / `until`, ISO 8601 with a time zone, or `within_last_s` seconds before now)
        and/or the newest `last_n`; get per device the count, seq range and missing seqs, time span and rate,
        statistics of each output, and label counts (argmax, named from `labels` or the manifest of `image`, the
        model's signed image). Returns the newest `max_records` records of the selection too. `database` is a
        workspace path or a database the server was given with --stream-db."""
        path = policy.stream_db(database)
        if within_last_s is not None:
            if since is not None:
                raise McpError("give since or within_last_s, not both")
            since_us: int | None = int((time.time() - within_last_s) * 1_000_000)
        else:
            since_us = _us(since)
        until_us = _us(until)
        names = await run_in_worker(lambda: labels_for(policy, labels, image))
        records, truncated = await run_in_worker(lambda: query(path, device, since_us, until_us, last_n))
        newest = sorted(records, key=lambda r: r.received_us)[-max_records:] if max_records else []
        return StreamQueryResult(database=database, selected=len(records), truncated=truncated,
                                 devices=summarize(records, names), records=[r.to_dict() for r in newest])

    @wedge_tool(server, READS_DEVICE)
    async def stream_tail(bridge: str | None = None, device: str | None = None,
                          duration_s: Annotated[float, Field(gt=0, le=MAX_TAIL_S)] = 5.0,
                          max_records: Annotated[int, Field(ge=1, le=10_000)] = 200,
                          labels: list[str] | None = None) -> StreamTailResult:
        """The live tail of a running bridge: listens to its WebSocket sink (`wedge bridge --sink ws://...`) for
        `duration_s` seconds or until `max_records` arrived, its recent history first; records of `device` only
        when given, with the same per-device summary as stream_query. `bridge` is one of the bridges the server
        was started with (--bridge ws://HOST:PORT), the first by default."""
        if not policy.bridges:
            raise McpError("this server was started without a bridge to listen to (--bridge ws://HOST:PORT)")
        # A bridge is named by its spec as given, or by its address without the token.
        given = {name: spec for spec in policy.bridges for name in (spec, bridge_url(spec)[1])}
        spec = given.get(bridge if bridge is not None else policy.bridges[0])
        if spec is None:
            shown = ", ".join(bridge_url(spec)[1] for spec in policy.bridges)
            raise McpError(f"unknown bridge {bridge}: this server listens to {shown}")
        url, shown = bridge_url(spec)
        records = await tail(url, shown, device, duration_s, max_records)
        return StreamTailResult(bridge=shown, devices=summarize([_record(r) for r in records], tuple(labels or ())),
                                records=records)
