"""`wedge mcp --workspace DIR`: the Model Context Protocol server for agents, on stdio or streamable HTTP.

A thin click layer over `wedge.mcp`: builds the policy from the options and serves.
"""

from __future__ import annotations

from pathlib import Path

import click

TOKEN_ENV = "WEDGE_MCP_TOKEN"


@click.command()
@click.option("--workspace", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The only folder whose files the tools read and write (symlinks out of it are refused).")
@click.option("--allow-write", is_flag=True, help="Allow tools that write files in the workspace (quantize, "
                                                   "export_tflite, pack_image, run_hil_suite).")
@click.option("--allow-flash", is_flag=True, help="Allow tools that change what a board runs (flash, run_hil_suite).")
@click.option("--http", "http_address", metavar="HOST:PORT",
              help="Serve streamable HTTP on this address (path /mcp) instead of stdio; not loopback needs --token.")
@click.option("--token", envvar=TOKEN_ENV, metavar="TOKEN",
              help=f"Bearer token HTTP clients must send (or ${TOKEN_ENV}).")
@click.option("--stream-db", "stream_dbs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A bridge's SQLite database to offer read-only (resources and stream_query; repeatable).")
@click.option("--bridge", "bridges", multiple=True, metavar="ws://HOST:PORT",
              help="A running bridge's WebSocket sink for stream_tail (…?token=T when it has one; repeatable).")
@click.option("--log", "log_path", metavar="FILE",
              help="Log every tool call to this file in the workspace (JSON lines) instead of stderr.")
def mcp(workspace: Path, allow_write: bool, allow_flash: bool, http_address: str | None, token: str | None,
        stream_dbs: tuple[Path, ...], bridges: tuple[str, ...], log_path: str | None) -> None:
    """Serve wedge's tools to agents over the Model Context Protocol (stdio by default).

    Read-only unless started with --allow-write / --allow-flash; every tool call is logged with its arguments.
    """
    from wedge.mcp import CallLog, Policy, build_server, serve_stdio
    from wedge.mcp.http_transport import HttpAddress, check_exposure, serve_http
    from wedge.mcp.tools.streams import bridge_url

    policy = Policy.create(workspace, allow_write=allow_write, allow_flash=allow_flash, stream_dbs=stream_dbs,
                           bridges=bridges)
    for bridge in bridges:
        bridge_url(bridge)
    address = HttpAddress.parse(http_address) if http_address is not None else None
    if address is not None:
        check_exposure(address, token)
    log = CallLog(policy.readable(log_path, "--log") if log_path is not None else None)
    server = build_server(policy, log)
    try:
        if address is None:
            serve_stdio(server)
        else:
            serve_http(server, address, token)
    finally:
        log.close()
