"""The virtual board's control socket: a Unix socket in its state folder taking one JSON object per line.

Commands: `status`; `faults` (set fault knobs, see FaultSettings); `unhang`; `reset` (the reset button);
`cut` (pull the cable now); `ble-drop` (the radio drops its connections). `control_request` is the client side, for tests and scripts.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any, Final

from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.virtual.board import VirtualBoard
from wedge.firmware.virtual.bootloader import slot_image

# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH_BYTES: Final[int] = 107


def _slots(board: VirtualBoard) -> list[dict[str, Any]]:
    """MCUboot's slots in img_mgmt's numbering (0/1 image 0, the application; 2/3 image 1, the model)."""
    slots = []
    for pair in board.flash.layout.images:
        for index in (0, 1):
            image = slot_image(board.flash, pair, index)
            slots.append(None if image is None else {
                "image": pair.number,
                "slot": index,
                "model": image.label.rsplit(" ", 1)[0],
                "version": str(image.version),
                "hash": image.image_hash.hex(),
            })
    return slots


def board_status(board: VirtualBoard) -> dict[str, Any]:
    status = board.status
    return {
        "board": board.board.name,
        "port": board.uart.path if board.uart is not None else None,
        "booting": board.booting,
        "state": status.state.name.lower(),
        "model": status.model_name,
        "version": status.model_version,
        "hash": status.model_hash.hex() if status.model_hash else None,
        "boot_count": status.boot_count,
        "event": status.event,
        "firmware": None if board.firmware is None else board.firmware.label,
        "dark": board.dark,
        "stock": board.options.stock,
        "slots": _slots(board),
        "faults": board.faults.to_dict(),
    }


def _handle(board: VirtualBoard, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "status":
        return {"ok": True, **board_status(board)}
    if op == "faults":
        changes = {k: v for k, v in request.items() if k != "op"}
        board.configure_faults(board.faults.updated(changes))
        return {"ok": True, "faults": board.faults.to_dict()}
    if op == "unhang":
        board.link_faults.unhang()
        board.configure_faults(board.faults.updated({"hang_after_bytes": None}))
        return {"ok": True}
    if op == "reset":
        board.press_reset()
        return {"ok": True}
    if op == "cut":
        if board.uart is not None:
            board.uart.cut()
        return {"ok": True}
    if op == "ble-drop":
        board.drop_ble()
        return {"ok": True}
    return {"ok": False, "error": f"unknown op {op!r}: status, faults, unhang, reset, cut or ble-drop"}


async def serve_control(board: VirtualBoard, path: Path) -> asyncio.AbstractServer:
    """Listen on `path` until the returned server is closed."""
    if len(str(path).encode()) > MAX_SOCKET_PATH_BYTES:
        raise VirtualBoardError(f"the control socket path {path} is too long for a Unix socket: use a shorter --state")
    if path.exists() or path.is_symlink():
        path.unlink()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    reply = _handle(board, request) if isinstance(request, dict) else {"ok": False, "error": "not an object"}
                except (ValueError, VirtualBoardError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_unix_server(client, path=str(path))


def control_request(path: str | Path, request: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """Send one command to a running virtual board and return its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise VirtualBoardError(f"no virtual board listens on {path}: {exc.strerror or exc}") from exc
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply = json.loads(data or b"{}")
    if not reply.get("ok"):
        raise VirtualBoardError(f"the virtual board refused {request.get('op')!r}: {reply.get('error')}")
    return reply
