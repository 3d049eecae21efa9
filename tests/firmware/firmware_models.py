"""Test helpers for firmware: tiny int8 .tflite models built here, signing keys, images, and virtual boards.

`VirtualBoardProcess` runs `python -m wedge.edge.cli emulate` as a real process on a real pty and reads its
port from the JSON line it prints; tests stop, restart and fault it like a person would.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from wedge.boards import load as load_board
from wedge.errors import WedgeError
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.image.build import build_image
from wedge.firmware.image.keys import KeyPair, generate_keys
from wedge.firmware.image.model_image import ModelImage
from wedge.firmware.virtual.control import control_request

REPO = Path(__file__).resolve().parents[2]
SHARED_MODELS = REPO.parent / "shared" / "models"
RING = "ring-nrf52840"
START_TIMEOUT_S = 60.0


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / name
    if not path.is_file():
        pytest.skip(f"shared model {name} is absent ({SHARED_MODELS})")
    return path


def _quant(scale: float, zero_point: int) -> schema.QuantizationParametersT:
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [scale], [zero_point]
    return q


def _tensor(name: str, shape: list[int], kind: int, buffer: int, quant: schema.QuantizationParametersT) -> schema.TensorT:
    t = schema.TensorT()
    t.name, t.shape, t.type, t.buffer, t.quantization = name.encode(), shape, kind, buffer, quant
    return t


def _finish(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def int8_fc_model(features: int = 4, units: int = 2, seed: int = 0) -> bytes:
    """An int8 FULLY_CONNECTED .tflite (x [1, features] -> y [1, units]) that TFLite-Micro runs; seed varies weights."""
    rng = np.random.default_rng(seed)
    model = schema.ModelT()
    model.version = 3
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = opcode.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    opcode.version = 4
    model.operatorCodes = [opcode]
    buffers = [schema.BufferT() for _ in range(5)]
    weights = rng.integers(-127, 128, size=(units, features), dtype=np.int8)
    buffers[2].data = np.frombuffer(weights.tobytes(), dtype=np.uint8)
    buffers[3].data = np.frombuffer(np.zeros(units, dtype=np.int32).tobytes(), dtype=np.uint8)
    model.buffers = buffers
    t = schema.TensorType
    subgraph = schema.SubGraphT()
    subgraph.tensors = [
        _tensor("x", [1, features], t.INT8, 1, _quant(0.05, 0)),
        _tensor("w", [units, features], t.INT8, 2, _quant(0.01, 0)),
        _tensor("b", [units], t.INT32, 3, _quant(0.0005, 0)),
        _tensor("y", [1, units], t.INT8, 4, _quant(0.1, -5)),
    ]
    subgraph.inputs, subgraph.outputs = [0], [3]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    subgraph.operators = [op]
    model.subgraphs = [subgraph]
    return _finish(model)


def int8_add_model(elements: int) -> bytes:
    """An int8 ADD of an input with itself over `elements` values: a tiny file that needs a large TFLM arena."""
    model = schema.ModelT()
    model.version = 3
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = opcode.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    opcode.version = 2
    model.operatorCodes = [opcode]
    model.buffers = [schema.BufferT() for _ in range(3)]
    t = schema.TensorType
    subgraph = schema.SubGraphT()
    subgraph.tensors = [
        _tensor("x", [1, elements], t.INT8, 1, _quant(0.05, 0)),
        _tensor("y", [1, elements], t.INT8, 2, _quant(0.1, 0)),
    ]
    subgraph.inputs, subgraph.outputs = [0], [1]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 0], [1]
    op.builtinOptionsType = schema.BuiltinOptions.AddOptions
    op.builtinOptions = schema.AddOptionsT()
    subgraph.operators = [op]
    model.subgraphs = [subgraph]
    return _finish(model)


def write_model(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def make_keys(folder: Path) -> KeyPair:
    return generate_keys(folder)


def pack(model: Path, keys: KeyPair, version: str, board: str = RING, *, arena_bytes: int = 4096,
         check_fit: bool = True, name: str | None = None) -> ModelImage:
    return build_image(model, load_board(board), keys.private_path, version, arena_bytes=arena_bytes,
                       check_fit=check_fit, model_name=name).image


def write_image(folder: Path, name: str, image: ModelImage) -> Path:
    path = folder / name
    path.write_bytes(image.data)
    return path


@dataclass
class Announcement:
    port: str
    link: str | None
    control: str
    model: str | None
    event: str | None


class VirtualBoardProcess:
    """One `wedge emulate` process; restartable on the same state folder and link."""

    def __init__(self, folder: Path, key: Path | None, board: str = RING, *, extra: tuple[str, ...] = ()) -> None:
        self.folder = folder
        self.board = board
        self.state = folder / "state"
        self.link = folder / "tty"
        self.key = key
        self.extra = extra
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_path = folder / "emulator.err"

    def start(self, *extra: str) -> Announcement:
        command = [sys.executable, "-m", "wedge.edge.cli", "emulate", "--board", self.board, "--state",
                   str(self.state), "--link", str(self.link), "--json", *self.extra, *extra]
        if self.key is not None:
            command += ["--key", str(self.key)]
        self._lines = queue.Queue()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.stderr_path.open("ab"),
                                        text=True, cwd=REPO)
        threading.Thread(target=self._pump, args=(self.process, self._lines), daemon=True).start()
        return self.next_announcement()

    @staticmethod
    def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    def next_announcement(self, timeout_s: float = START_TIMEOUT_S) -> Announcement:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"the virtual board printed no port within {timeout_s} s: {self.stderr()}") from None
        if line is None:
            raise AssertionError(f"the virtual board exited: {self.stderr()}")
        data = json.loads(line)
        return Announcement(data["port"], data["link"], data["control"], data["model"], data["event"])

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-2000:] if self.stderr_path.exists() else ""

    @property
    def port(self) -> str:
        return str(self.link)

    def control(self, **request: Any) -> dict[str, Any]:
        return control_request(self.state / "control.sock", request)

    def status(self) -> dict[str, Any]:
        return self.control(op="status")

    def wait_exit(self, timeout_s: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def run_cli(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run `python -m wedge.edge.cli ARGS` as a user would."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "wedge.edge.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO, env=env, check=False)


FAULT_KINDS = ("clean", "corrupt", "drop", "cut", "hang", "power", "slow")


def random_fault(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One random fault for a soak run: its kind and the control-socket settings."""
    kind = rng.choice(FAULT_KINDS)
    return kind, {
        "clean": {},
        "corrupt": {"corrupt_rate": rng.uniform(2e-5, 1.5e-4), "seed": rng.randrange(1 << 30)},
        "drop": {"drop_rate": rng.uniform(2e-5, 1.5e-4), "seed": rng.randrange(1 << 30)},
        "cut": {"cut_after_bytes": rng.randrange(200, 40_000), "cut_down_s": rng.uniform(0.05, 0.5)},
        "hang": {"hang_after_bytes": rng.randrange(200, 40_000)},
        # Upload writes and erases ~40 KB and a boot's swap moves ~60 KB more: cuts land in either.
        "power": {"power_cut_after_bytes": rng.randrange(1, 120_000)},
        "slow": {"slow_flash_ms": rng.uniform(1, 20)},
    }[kind]


def flash_supervised(board: VirtualBoardProcess, image: ModelImage, options: FlashOptions) -> str:
    """Flash in a thread, restarting the board each time a power cut ends its process; the outcome or the error."""
    outcome: dict[str, str] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["result"] = flash_image(board.port, image, "soak.img", options).outcome
        except WedgeError as exc:
            outcome["result"] = f"error: {exc}"
        finally:
            done.set()

    worker = threading.Thread(target=work)
    worker.start()
    # The flash runs in a thread; this one restarts the board each time a power cut ends its process.
    while True:
        process = board.process
        assert process is not None
        finished = _wait_either(process, done)
        if finished:
            break
        board.start()
    worker.join()
    return outcome["result"]


def _wait_either(process: Any, done: threading.Event) -> bool:
    """Block until the flash is done (True) or the board process exits (False)."""
    either = threading.Event()

    def watch_process() -> None:
        process.wait()
        either.set()

    def watch_flash() -> None:
        done.wait()
        either.set()

    threading.Thread(target=watch_process, daemon=True).start()
    threading.Thread(target=watch_flash, daemon=True).start()
    either.wait()
    return done.is_set()
