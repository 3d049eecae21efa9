"""`wedge bridge`: stream wedge boards (or any Heart Rate device) over BLE into SQLite, JSON lines or a live page.

A thin click layer over `wedge.edge.bridge`: builds the selectors, sinks and BLE stack, runs until Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live

from wedge.cli.grammar import one_writer_of_stdout
from wedge.cli.pair import KEYSTORE_HELP, TerminalPrompts, ble_stack
from wedge.cli.stopping import print_status_json, stop_event
from wedge.edge.bridge.daemon import PROFILES, Bridge, BridgeStatus
from wedge.edge.bridge.discovery import DeviceSelector
from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.models import ModelCatalog
from wedge.edge.bridge.session import SessionOptions
from wedge.edge.bridge.sinks import parse_sinks
from wedge.edge.bridge.sinks.base import DEFAULT_SINK
from wedge.edge.bridge.sinks.sqlite import gap_check
from wedge.edge.bridge.sinks.websocket import DEFAULT_KEEPALIVE_S, WebSocketSink
from wedge.edge.bridge.status import device_label, render_status
from wedge.firmware.protocol.ble_model_info import ModelInfo


def _model_of(path: Path) -> ModelInfo:
    """What a file the devices run says of their model id: an image's manifest, or a model file's own labels."""
    import hashlib

    from wedge.firmware.protocol.ble_model_info import model_id_of
    from wedge.runtime.artifacts.labels import ModelLabels, read_model_labels

    if path.suffix.lower() in (".tflite", ".onnx"):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint="--model") from None
        carried = read_model_labels(path) or ModelLabels()
        return ModelInfo(model_id_of(hashlib.sha256(data).digest()), path.stem, "", carried.labels, carried.unit)
    from wedge.firmware.image.model_image import read_image_file

    manifest = read_image_file(path).manifest
    return ModelInfo(model_id_of(manifest.model_sha256), manifest.model_name, manifest.model_version,
                     manifest.labels, manifest.unit)


def _selectors(names: tuple[str, ...], addresses: tuple[str, ...], uuids: tuple[str, ...]) -> list[DeviceSelector]:
    selectors = [DeviceSelector(name=n) for n in names] + [DeviceSelector(address=a) for a in addresses]
    selectors += [DeviceSelector(service_uuid=u) for u in uuids]
    return selectors


async def _run(bridge: Bridge, duration_s: float | None, show_status: bool, status_json: bool) -> BridgeStatus:
    stop = stop_event(duration_s)
    console = Console(stderr=True)
    if status_json:
        return await bridge.run(stop, print_status_json)
    if show_status:
        with Live(console=console, transient=True, auto_refresh=False) as live:
            return await bridge.run(stop, lambda status: live.update(render_status(status), refresh=True))
    return await bridge.run(stop)


def _print_gaps(path: Path, as_json: bool) -> None:
    if not path.is_file():
        raise SinkError(f"{path}: no such database")
    report = gap_check(path)
    if as_json:
        click.echo(json.dumps({"gaps": [g.to_dict() for g in report]}))
        return
    for g in report:
        click.echo(f"{g.device} epoch {g.epoch}: {g.stored} stored of [{g.first_seq}, {g.end_seq}), "
                   f"{g.lost_records} lost (device no longer had them), {g.open_records} missing and not lost")
    if not report:
        click.echo(f"{path}: no records")


@click.command()
@click.option("--device", "names", multiple=True, metavar="NAME", help="Follow every device advertising this name (repeat for several names).")
@click.option("--address", "addresses", multiple=True, metavar="ADDR", help="Follow the device with this Bluetooth address.")
@click.option("--service-uuid", "uuids", multiple=True, metavar="UUID", help="Follow every device advertising this service.")
@click.option("--sink", "sinks", multiple=True, metavar="SPEC",
              help="sqlite:PATH (default sqlite:stream.db), jsonl:- or jsonl:PATH, ws://HOST:PORT (live page at http://HOST:PORT/), "
                   "mqtt[s]://[USER@]HOST:PORT/PREFIX[?qos=2&ca=CA&cert=CERT&key=KEY] (published from the SQLite sink, "
                   "its outbox; password in $WEDGE_MQTT_PASSWORD).")
@click.option("--profile", type=click.Choice(PROFILES), default="wedge", show_default=True,
              help="wedge: the wedge stream service; heart-rate: any standard Heart Rate device.")
@click.option("--transport", metavar="SPEC",
              help="Drive a Bluetooth controller with Bumble: tcp-client:127.0.0.1:PORT (virtual air), usb:0, serial:PORT. "
                   "Default: the OS Bluetooth stack.")
@click.option("--keystore", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH", help=KEYSTORE_HELP)
@click.option("--pair", is_flag=True,
              help="Pair and bond with a device that has no bond here yet (first time); a bond the device lost "
                   "is never replaced silently (`wedge pair NAME` does that).")
@click.option("--ws-token", metavar="TOKEN", help="Token the WebSocket sink requires (mandatory off the loopback).")
@click.option("--ws-keepalive-s", type=click.FloatRange(min=0.1), default=DEFAULT_KEEPALIVE_S, show_default=True,
              help="Close a WebSocket client that leaves a keepalive ping unanswered this long.")
@click.option("--model", "model_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="A signed image (.img) or model (.tflite, .onnx) the devices run: names its model "
                                   "id and labels when a device does not say (repeat for several).")
@click.option("--gaps", "gaps_db", type=click.Path(dir_okay=False, path_type=Path), metavar="DB",
              help="Only print the gap check of an SQLite sink (per device and epoch: stored, lost, open holes).")
@click.option("--duration-s", type=click.FloatRange(min=0), help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--scan-timeout-s", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@click.option("--watchdog-s", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Shortest silence (no notification) after which a link counts as dead.")
@click.option("--status/--no-status", "show_status", default=None, help="Live status line on stderr (default: when a terminal).")
@click.option("--status-json", is_flag=True, help="Print the status as one JSON object per second on stderr.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the exit summary as JSON on stdout (so not with --sink jsonl:-).")
@click.option("-v", "--verbose", is_flag=True, help="Log reconnects, gaps and dropped notifications.")
def bridge(names: tuple[str, ...], addresses: tuple[str, ...], uuids: tuple[str, ...], sinks: tuple[str, ...],
           profile: str, transport: str | None, keystore: Path | None, pair: bool, ws_token: str | None,
           ws_keepalive_s: float, model_files: tuple[Path, ...], gaps_db: Path | None, duration_s: float | None,
           scan_timeout_s: float, watchdog_s: float, show_status: bool | None, status_json: bool, as_json: bool,
           verbose: bool) -> None:
    """Stream BLE devices into sinks, reconnecting and backfilling so nothing is lost or duplicated.

    `--device NAME` follows every device advertising NAME, each under its own device id.
    """
    if gaps_db is not None:
        _print_gaps(gaps_db, as_json)
        return
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bumble").setLevel(logging.ERROR if not verbose else logging.WARNING)
    one_writer_of_stdout(as_json, sinks)
    selectors = _selectors(names, addresses, uuids)
    built_sinks = parse_sinks(sinks or (DEFAULT_SINK,), ws_token=ws_token, ws_keepalive_s=ws_keepalive_s)
    stack = ble_stack(transport, keystore, prompts=TerminalPrompts())
    options = SessionOptions(scan_timeout_s=scan_timeout_s, watchdog_min_s=watchdog_s, pair=pair)
    models = ModelCatalog(_model_of(path) for path in model_files)
    daemon = Bridge(selectors, built_sinks, stack, profile=profile, options=options, models=models)
    for sink in built_sinks:
        if isinstance(sink, WebSocketSink):
            query = "?token=<token>" if sink.token else ""
            click.echo(f"live page: http://{sink.host}:{sink.port}/{query}", err=True)
    show = sys.stderr.isatty() if show_status is None else show_status
    summary = asyncio.run(_run(daemon, duration_s, show and not status_json, status_json))
    if as_json:
        click.echo(json.dumps({"summary": summary.to_dict()}))
        return
    click.echo(f"bridge: {summary.records} records in {summary.uptime_s:.1f} s", err=True)
    for device in summary.devices:
        click.echo(f"  {device_label(device)}: {device['records']} records, lost {device['lost']}, "
                   f"duplicates dropped {device['duplicates']}, reconnects {max(device['connects'] - 1, 0)}, "
                   f"epoch changes {device['epoch_changes']}, malformed {device['malformed']}", err=True)
