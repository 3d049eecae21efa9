"""A device whose SMP replies are well framed but whose CBOR bodies are not maps, or maps with wrongly typed
fields, at every stage of a flash: one line, a non-zero exit, never a traceback (issue 12, item 5).

A proxy pty sits between `wedge flash` and a virtual board and rewrites the body of one kind of reply.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
import serial

from tests.firmware.firmware_models import pack, run_cli, write_image, write_model
from wedge.firmware.protocol.smp_messages import HEADER_BYTES, parse_header
from wedge.firmware.protocol.smp_serial import Console, Frame, SerialFrameReader, encode_frame
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.samples.tiny_tflite import int8_fc_model

# stage -> (group, command, response op), and a wrongly typed body for it
STAGES: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {
    "echo": ((0, 0, 3), {"r": 5}),
    "params": ((0, 6, 1), {"buf_size": "big", "buf_count": 4}),
    "info": ((0, 7, 1), {"output": 5}),
    "status": ((96, 1, 1), {"state": "running", "boot_count": "many"}),
    "state read": ((1, 0, 1), {"images": [{"slot": "zero", "version": 1, "hash": 3}]}),
    "upload": ((1, 1, 3), {"off": "half"}),
    "state write": ((1, 0, 3), {"images": 7}),
}


class _Proxy:
    """host <-> proxy pty <-> board port; replies of `target` get `body` instead of theirs."""

    def __init__(self, board_port: str, target: tuple[int, int, int], body: object) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self._slave = slave
        self.path = os.ttyname(slave)
        self._board = serial.Serial(board_port, timeout=0)
        self._target, self._body = target, body
        self._reader = SerialFrameReader()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rewrite(self, message: bytes) -> bytes:
        header = parse_header(message)
        wanted = self._target
        if wanted[1] == -1 and header.group_id != wanted[0]:  # (group, -1, -1): every reply of the group
            return message
        if wanted[1] != -1 and (header.group_id, header.command_id, int(header.op)) != wanted:
            return message
        payload = cbor2.dumps(self._body)
        head = bytearray(message[:HEADER_BYTES])
        head[2:4] = len(payload).to_bytes(2, "big")
        return bytes(head) + payload

    def _run(self) -> None:
        while not self._stop:
            readable, _, _ = select.select([self.master, self._board.fileno()], [], [], 0.05)
            if self.master in readable:
                try:
                    self._board.write(os.read(self.master, 65536))
                except OSError:
                    return
            if self._board.fileno() in readable:
                data = self._board.read(65536)
                for event in self._reader.feed(data):
                    if isinstance(event, Frame):
                        os.write(self.master, encode_frame(self._rewrite(event.message)))
                    elif isinstance(event, Console):
                        os.write(self.master, event.text)

    def close(self) -> None:
        if self._stop:
            return
        self._stop = True
        self._thread.join(timeout=5)
        self._board.close()
        os.close(self._slave)
        os.close(self.master)


@pytest.fixture
def image(tmp_path: Path, keys) -> Path:
    return write_image(tmp_path, "fc.img", pack(write_model(tmp_path, "fc.tflite", int8_fc_model(64, 8)), keys,
                                                "1.0.0", name="fc"))


@pytest.fixture
def proxied(board: EmulatorProcess) -> Iterator[Any]:
    proxies: list[_Proxy] = []

    def make(target: tuple[int, int, int], body: object) -> _Proxy:
        proxy = _Proxy(board.port, target, body)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.mark.parametrize("kind", ["not a map", "wrong types"])
def test_every_stage_answers_a_malformed_reply_in_one_line(image: Path, proxied: Any, kind: str) -> None:
    for stage, (target, typed) in STAGES.items():
        body: object = [1, 2, 3] if kind == "not a map" else typed
        proxy = proxied(target, body)
        result = run_cli("flash", str(image), "--port", proxy.path, "--timeout-s", "1", timeout_s=90)
        proxy.close()
        assert result.returncode != 0, (stage, result.stdout)
        assert "Traceback" not in result.stderr, (stage, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], (stage, result.stderr)
        # The reply was read and refused, not waited for: the error says what was wrong with it.
        assert any(word in errors[0] for word in ("malformed", "does not validate", "wrongly typed", "not text",
                                                  "not a positive integer", "bad offset")), (stage, errors[0])


def test_a_device_answering_enotsup_to_everything_but_images_gets_one_line(image: Path, proxied: Any) -> None:
    # The OS group (echo, reset, params, info) and wedge's group all answer rc 8: no way to reset the board.
    os_proxy = proxied((0, -1, -1), {"rc": 8})
    result = run_cli("flash", str(image), "--port", os_proxy.path, "--board", "ring-nrf52840", "--timeout-s", "1",
                     timeout_s=90)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "cannot be reset over SMP" in error, result.stderr
