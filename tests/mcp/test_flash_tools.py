"""pack_image, device_info and flash against a virtual ring (a real `wedge emulate` process on a pty): refused on a
server without --allow-flash, refused with the wrong SHA-256, and done with the right one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.mcp.mcp_harness import error_text, stdio_client, structured
from wedge.firmware.image.keys import generate_keys
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.samples.tiny_tflite import int8_fc_model


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "tiny.tflite").write_bytes(int8_fc_model(features=64, units=8))
    generate_keys(folder / "keys")
    return folder


@pytest.fixture
def ring(tmp_path: Path, workspace: Path) -> Iterator[EmulatorProcess]:
    # The private key: a fresh virtual board signs its own application (image 0) with it.
    board = EmulatorProcess(tmp_path / "board", workspace / "keys" / "wedge.pem")
    board.start()
    yield board
    board.stop()


def test_flash_is_refused_without_allow_flash_and_with_the_wrong_hash_then_done(workspace: Path,
                                                                                 ring: EmulatorProcess) -> None:
    pack = {"model": "tiny.tflite", "board": "ring-nrf52840", "key": "keys/wedge.pem", "version": "1.0.0",
            "out": "images/tiny.img", "arena_bytes": 4096, "labels": [f"unit {i}" for i in range(8)]}
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def agent() -> None:
        async with stdio_client(workspace, "--allow-write") as client:
            image = structured(await client.call_tool("pack_image", pack))
            sha256 = image["image"]["image_hash"]
            assert image["files"] == ["images/tiny.img"] and image["check"]["signature_ok"]
            info = structured(await client.call_tool("device_info", {"port": ring.port}))
            assert info["identity"]["board"] == "ring-nrf52840"
            assert info["identity"]["key_hash"] == image["image"]["key_hash"]
            refused = error_text(await client.call_tool(
                "flash", {"image": "images/tiny.img", "port": ring.port, "confirm_sha256": sha256}))
            assert "--allow-flash" in refused
            slots = structured(await client.call_tool("device_images", {"port": ring.port}))["slots"]
            assert sha256 not in {slot["hash"] for slot in slots}

        async with stdio_client(workspace, "--allow-flash") as client:
            wrong = error_text(await client.call_tool(
                "flash", {"image": "images/tiny.img", "port": ring.port, "confirm_sha256": "ab" * 32}))
            assert wrong == (f"error: confirm_sha256 does not match tiny.img: its SHA-256 is {sha256} "
                             "(pack_image and device_images report it)")
            done = structured(await client.call_tool(
                "flash", {"image": "images/tiny.img", "port": ring.port, "confirm_sha256": sha256.upper()},
                progress_callback=on_progress))
            assert done["flash"]["outcome"] == "confirmed" and done["flash"]["image_hash"] == sha256
            slots = structured(await client.call_tool("device_images", {"port": ring.port}))["slots"]
        active = next(slot for slot in slots if slot["active"] and slot["image"] == 1)  # image 1: the model
        assert active["hash"] == sha256 and active["confirmed"]
        phases = [message.split(":")[0] for message in progress]
        assert phases[0] == "connect" and "upload" in phases and phases[-1] == "done"

    anyio.run(agent)
