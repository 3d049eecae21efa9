"""`wedge mcp` over stdio, read-only, as a desktop agent runs it: the tools are listed, check_fit answers for the
bundled samples with the CLI's numbers, and what the server does not allow is refused with one line, logged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio

from tests.mcp.mcp_harness import TOOLS, error_text, stdio_client, structured
from wedge.boards import load as load_board
from wedge.samples import SAMPLES, sample_path


def test_an_agent_lists_the_tools_and_checks_the_samples_fit_a_ring(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    ring = load_board("ring-nrf52840")

    async def agent() -> None:
        async with stdio_client(workspace) as client:
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == TOOLS
            by_name = {tool.name: tool for tool in listed.tools}
            assert by_name["check_fit"].output_schema is not None
            assert by_name["flash"].annotations is not None and by_name["flash"].annotations.destructive_hint
            for name in SAMPLES:
                fit = structured(await client.call_tool("check_fit", {"board": ring.name, "sample": name}))
                assert fit["model_bytes"] == sample_path(name).stat().st_size
                assert fit["slot_bytes"] == ring.budgets.model_slot_bytes
                assert fit["fits"] is (fit["model_bytes"] <= ring.budgets.model_slot_bytes)
                assert fit["latency_s"] > 0 and fit["macs"] > 0
                # A float ONNX on a TFLite-Micro ring: the same note as `wedge inspect --board`.
                assert any("needs an int8 .tflite" in note for note in fit["notes"])
            unknown = error_text(await client.call_tool("check_fit", {"board": "ring-nrf52841", "sample": "digits"}))
            assert unknown.startswith("error: unknown board 'ring-nrf52841' (did you mean 'ring-nrf52840'?)")
            boards = structured(await client.call_tool("list_boards", {}))["boards"]
            assert ring.name in {board["name"] for board in boards}
            resource = await client.read_resource(f"wedge://boards/{ring.name}")
            profile = json.loads(resource.contents[0].text)["profile"]
            assert profile["budgets"]["arena_bytes"] == ring.budgets.arena_bytes

    anyio.run(agent)


def test_writes_flashing_and_paths_outside_the_workspace_are_refused_and_every_call_is_logged(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "secret.onnx"
    outside.write_bytes(sample_path("digits").read_bytes())
    os.symlink(outside, workspace / "link.onnx")

    async def agent() -> None:
        async with stdio_client(workspace, "--log", "calls.jsonl") as client:
            refused = error_text(await client.call_tool("quantize", {"sample": "digits", "out": "q"}))
            assert refused == ("error: quantize writes files: this server is read-only (start it with "
                               "--allow-write)")
            refused = error_text(await client.call_tool(
                "flash", {"image": "m.img", "port": "/dev/null", "confirm_sha256": "00"}))
            assert refused.startswith("error: flash changes what a board runs") and "--allow-flash" in refused
            refused = error_text(await client.call_tool(
                "run_hil_suite", {"model": "m.tflite", "board_map": "bench.toml"}))
            assert "--allow-flash" in refused
            for path in (str(outside), "../secret.onnx", "link.onnx"):
                refused = error_text(await client.call_tool("inspect_model", {"model": path}))
                assert "is outside the workspace" in refused and "\n" not in refused
            both = error_text(await client.call_tool("inspect_model", {}))
            assert both.startswith("error: give either model")

    anyio.run(agent)
    assert not (workspace / "q").exists()
    lines = [json.loads(line) for line in (workspace / "calls.jsonl").read_text().splitlines()]
    done = [line for line in lines if line["event"] == "done"]
    assert [line["tool"] for line in done] == ["quantize", "flash", "run_hil_suite", "inspect_model",
                                               "inspect_model", "inspect_model", "inspect_model"]
    assert done[0]["arguments"] == {"sample": "digits", "out": "q"} and done[0]["outcome"] == "error"
    assert done[3]["arguments"] == {"model": str(outside)} and "outside the workspace" in done[3]["error"]
