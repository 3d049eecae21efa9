"""`wedge fleet`: subscribe to the prefix bridges publish under (MQTT) and store every device's records in one
SQLite database (or JSON lines, or the live page). A thin click layer over `wedge.edge.fleet`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import click

from wedge.cli.grammar import one_writer_of_stdout
from wedge.cli.stopping import print_status_json, stop_event
from wedge.edge.bridge.sinks import parse_sinks
from wedge.edge.bridge.sinks.mqtt_address import parse_mqtt_url
from wedge.edge.bridge.sinks.websocket import DEFAULT_KEEPALIVE_S, WebSocketSink
from wedge.edge.fleet.errors import FleetError
from wedge.edge.fleet.subscriber import FleetStatus, FleetSubscriber

DEFAULT_FLEET_SINK = "sqlite:fleet.db"


async def _run(subscriber: FleetSubscriber, duration_s: float | None, status_json: bool) -> FleetStatus:
    stop = stop_event(duration_s)
    if status_json:
        return await subscriber.run(stop, print_status_json)
    return await subscriber.run(stop)


@click.command()
@click.option("--source", required=True, metavar="URL",
              help="mqtt[s]://[USER@]HOST:PORT/PREFIX[?qos=2&ca=CA&cert=CERT&key=KEY&client_id=ID]: the broker and "
                   "the prefix the bridges publish under (password in $WEDGE_MQTT_PASSWORD).")
@click.option("--sink", "sinks", multiple=True, metavar="SPEC",
              help=f"sqlite:PATH (default {DEFAULT_FLEET_SINK}), jsonl:- or jsonl:PATH, ws://HOST:PORT (live page).")
@click.option("--ws-token", metavar="TOKEN", help="Token the WebSocket sink requires (mandatory off the loopback).")
@click.option("--duration-s", type=click.FloatRange(min=0), help="Stop after this many seconds (default: until Ctrl-C).")
@click.option("--status-json", is_flag=True, help="Print the status as one JSON object per second on stderr.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the exit summary as JSON on stdout (so not with --sink jsonl:-).")
@click.option("-v", "--verbose", is_flag=True, help="Log reconnects and malformed messages.")
def fleet(source: str, sinks: tuple[str, ...], ws_token: str | None, duration_s: float | None, status_json: bool,
          as_json: bool, verbose: bool) -> None:
    """Store the records every bridge publishes under a prefix, de-duplicated by (device, epoch, seq).

    The session is persistent (the same client id for the same prefix and sinks): while this command is not
    running, the broker keeps what the bridges publish for it.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    one_writer_of_stdout(as_json, sinks)
    address = parse_mqtt_url(source)
    if any(spec.startswith(("mqtt://", "mqtts://")) for spec in sinks):
        raise FleetError("wedge fleet writes to sqlite:, jsonl: or ws:// sinks; it subscribes to --source")
    built = parse_sinks(sinks or (DEFAULT_FLEET_SINK,), ws_token=ws_token, ws_keepalive_s=DEFAULT_KEEPALIVE_S)
    subscriber = FleetSubscriber(address, built)
    for sink in built:
        if isinstance(sink, WebSocketSink):
            query = "?token=<token>" if sink.token else ""
            click.echo(f"live page: http://{sink.host}:{sink.port}/{query}", err=True)
    summary = asyncio.run(_run(subscriber, duration_s, status_json))
    if as_json:
        click.echo(json.dumps({"summary": summary.to_dict()}))
        return
    click.echo(f"fleet: {summary.records} records from {len(summary.devices)} devices in {summary.uptime_s:.1f} s, "
               f"{summary.duplicates} duplicates dropped, {summary.malformed} malformed", err=True)
    for device in summary.devices:
        click.echo(f"  {device['name'] or '-'} {device['key']}: {device['records']} records, lost {device['lost']}, "
                   f"{device['state'] or 'no status'}", err=True)
