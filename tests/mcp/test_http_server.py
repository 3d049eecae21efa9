"""`wedge mcp --http`: loopback without a token, any other address only with one; a quantize sends progress
notifications and lands its files (and its int8 ONNX exports to TFLite again), a cancelled one leaves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2

from tests.conftest import REPO_ROOT
from tests.mcp.mcp_harness import HttpServer, error_text, http_client, server_args, structured


def test_a_quantize_over_http_reports_progress_and_a_cancelled_one_leaves_no_file(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    server = HttpServer(workspace, "--allow-write")
    progress: list[tuple[float, float | None, str | None]] = []
    first_tick = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def cancel_on_first(value: float, total: float | None, message: str | None) -> None:
        first_tick.set()

    async def agent() -> None:
        async with http_client(server) as client:
            result = structured(await client.call_tool(
                "quantize", {"sample": "ppg_quality", "out": "q", "format": "tflite", "methods": ["minmax"]},
                progress_callback=on_progress))
            assert result["files"] == ["q/ppg_quality.int8.onnx", "q/ppg_quality.int8.tflite", "q/report.json"]
            assert result["report"]["chosen_method"] == "minmax" and result["report"]["tflite"]["arena"]
            assert not result["budget_exceeded"]
            exported = structured(await client.call_tool(
                "export_tflite", {"model": "q/ppg_quality.int8.onnx", "out": "q/again.tflite"}))
            assert exported["files"] == ["q/again.tflite"]
            assert exported["export"]["arena"]["arena_bytes"] == result["report"]["tflite"]["arena"]["arena_bytes"]

            scope = anyio.CancelScope()

            async def cancelled_run() -> None:
                with scope:
                    await client.call_tool("quantize", {"sample": "digits", "out": "cancelled"},
                                           progress_callback=cancel_on_first)

            async with anyio.create_task_group() as group:
                group.start_soon(cancelled_run)
                await first_tick.wait()
                scope.cancel()
            # Jobs run one at a time: this one starts once the cancelled one has unwound.
            structured(await client.call_tool(
                "quantize", {"sample": "digits", "out": "after", "methods": ["minmax"], "calib_samples": 16,
                             "eval_samples": 16}))

    try:
        anyio.run(agent)
    finally:
        server.terminate()
    stages = [message for _, _, message in progress]
    assert stages[0] == "preparing model" and any(s.startswith("exporting TFLite") for s in stages)
    values = [value for value, _, _ in progress]
    assert values == sorted(values) and len(values) >= 5
    assert (workspace / "q" / "ppg_quality.int8.tflite").stat().st_size > 0
    # The cancelled run stopped at a progress tick; its hidden work folder was removed, no model moved in.
    assert first_tick.is_set()
    assert list((workspace / "cancelled").iterdir()) == []
    assert (workspace / "after" / "report.json").is_file()
    calls = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    ends = {call["arguments"]["out"]: call["outcome"] for call in calls
            if call.get("event") == "done" and call["tool"] == "quantize"}
    assert ends == {"q": "ok", "cancelled": "cancelled", "after": "ok"}


def test_http_on_another_address_needs_a_token_and_then_refuses_requests_without_it(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    refused = subprocess.run([sys.executable, *server_args(workspace, "--http", "0.0.0.0:0")], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=60, check=False,
                             env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert refused.returncode == 1
    expected = ("error: --http 0.0.0.0:0 is reachable from other machines: give a token (--token or "
                "WEDGE_MCP_TOKEN), or bind 127.0.0.1")
    assert refused.stderr.strip().splitlines() == [expected]

    server = HttpServer(workspace, host="0.0.0.0", env={"WEDGE_MCP_TOKEN": "s3cret-token"})

    async def agent() -> None:
        async with httpx2.AsyncClient() as http:
            answer = await http.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert answer.status_code == 401
        async with http_client(server, token="s3cret-token") as client:
            assert "check_fit" in {tool.name for tool in (await client.list_tools()).tools}
            refused = error_text(await client.call_tool("pack_image", {
                "model": "m.tflite", "board": "ring-nrf52840", "key": "k.pem", "version": "1.0.0", "out": "m.img"}))
            assert "--allow-write" in refused

    try:
        anyio.run(agent)
    finally:
        server.terminate()
