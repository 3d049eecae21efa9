"""Measures the TFLite-Micro arena a .tflite needs: the smallest that allocates and runs, by bisection.

Each probe runs in its own Python process (`python -c PROBE MODEL BYTES`): TFLM raises on an arena that
is too small but can crash the process on a tiny one, and prints its recorded allocation on the C-level
stderr, which only a parent process can capture.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from wedge.quantize.tflite.errors import ExportError
from wedge.runtime.artifacts.tflite_flatbuffer import int_list, op_name, read_tflite, type_name
from wedge.runtime.artifacts.tflm_ops import tflm_unsupported
from wedge.runtime.engines.tflm_engine import MIN_ARENA_BYTES
from wedge.runtime.types import ArtifactError

# TFLM aligns every arena allocation to 16 bytes, and so do boards that place the arena.
ARENA_STEP_BYTES: Final = 16
MAX_ARENA_BYTES: Final = 64 * 1024 * 1024
FIRST_PROBE_BYTES: Final = 1024 * 1024
PROBE_TIMEOUT_S: Final = 120.0
_TOTAL_LINE: Final = re.compile(r"Arena allocation total (\d+) bytes")
_PART_LINE: Final = re.compile(r"Arena allocation (head|tail) (\d+) bytes")
_KIND_LINE: Final = re.compile(r"'([^']+)' used (\d+) bytes")
# Ops whose weights input may be int8 while activations are float: the "hybrid" kernels TFLM lacks.
_WEIGHTED_OPS: Final = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV",
                                  "BATCH_MATMUL", "UNIDIRECTIONAL_SEQUENCE_LSTM", "SVDF", "EMBEDDING_LOOKUP"})


class TflmRefusedError(ExportError):
    """TFLite-Micro will not run the model at any arena size."""


@dataclass(frozen=True)
class ArenaMeasurement:
    """The arena a model needs in TFLite-Micro, measured on this host's (64-bit) TFLM build."""

    arena_bytes: int
    recorded_bytes: int
    recorded_head_bytes: int
    recorded_tail_bytes: int
    recorded_by_kind: dict[str, int] = field(default_factory=dict)
    probes: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"arena_bytes": self.arena_bytes, "recorded_bytes": self.recorded_bytes,
                "recorded_head_bytes": self.recorded_head_bytes, "recorded_tail_bytes": self.recorded_tail_bytes,
                "recorded_by_kind": dict(self.recorded_by_kind), "probes": self.probes,
                "elapsed_s": round(self.elapsed_s, 3), "step_bytes": ARENA_STEP_BYTES,
                "host_note": "64-bit host build: 32-bit MCUs need slightly less (smaller pointers)"}


# One probe: allocate, invoke once on zeros, print {"ok": ...}. It imports only tflite-micro and numpy,
# so a probe costs one interpreter start, not wedge's imports.
_PROBE_SCRIPT: Final = """
import json, sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
path, arena = sys.argv[1], int(sys.argv[2])
try:
    interpreter = runtime.Interpreter.from_bytes(open(path, "rb").read(), arena_size=arena)
    index = 0
    while True:
        try:
            details = interpreter.get_input_details(index)
        except IndexError:
            break
        interpreter.set_input(np.zeros(details["shape"], details["dtype"]), index)
        index += 1
    interpreter.invoke()
    if "--record" in sys.argv:
        interpreter.print_allocations()
except (RuntimeError, ValueError) as exc:
    print(json.dumps({"ok": False, "error": (str(exc).strip().splitlines() or [""])[0]}))
else:
    print(json.dumps({"ok": True}))
"""


@dataclass(frozen=True)
class _Probe:
    ok: bool
    crashed: bool
    message: str
    stderr: str


def static_refusal(data: bytes, source: str) -> str | None:
    """Why TFLM cannot run a model, read from the file alone (unsupported ops, hybrid ops), or None."""
    try:
        model = read_tflite(data, source)
    except ArtifactError as exc:
        return str(exc)
    names = [op_name(model, int(op.opcodeIndex)) for sg in model.subgraphs for op in sg.operators or ()]
    unsupported = tflm_unsupported(names)
    if unsupported:
        return f"it has no kernel for {', '.join(unsupported)}"
    for subgraph in model.subgraphs:
        for op in subgraph.operators or ():
            name = op_name(model, int(op.opcodeIndex))
            inputs = [i for i in int_list(op.inputs) if i >= 0]
            if name not in _WEIGHTED_OPS or len(inputs) < 2:
                continue
            activation, weights = (type_name(subgraph.tensors[i].type) for i in inputs[:2])
            if activation == "FLOAT32" and weights in ("INT8", "INT4", "UINT8"):
                return (f"it is a hybrid model ({name} takes float activations with {weights.lower()} weights); "
                        "TFLite-Micro runs fully int8 or fully float models only")
    return None


def _probe(path: Path, arena_bytes: int, *, record: bool = False) -> _Probe:
    command = [sys.executable, "-c", _PROBE_SCRIPT, str(path), str(arena_bytes)]
    if record:
        command.append("--record")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return _Probe(False, True, f"timed out after {PROBE_TIMEOUT_S:g} s", "")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return _Probe(False, True, f"probe exited with status {proc.returncode}", proc.stderr)
    result = json.loads(lines[-1])
    return _Probe(bool(result["ok"]), False, str(result.get("error", "")), proc.stderr)


def smallest_arena(runs: Callable[[int], bool], *, guess_bytes: int, known_good_bytes: int,
                   floor_bytes: int = MIN_ARENA_BYTES) -> int:
    """The smallest multiple of ARENA_STEP_BYTES in [floor, known good] at which `runs` holds (monotone).

    Starts at `guess_bytes`, TFLM's recorded allocation, which is usually exact (then two probes settle
    it), gallops away from it in growing steps until the answer is bracketed, then bisects.
    """
    step = ARENA_STEP_BYTES
    good, bad = known_good_bytes, floor_bytes - step
    guess = min(max(_align(guess_bytes), floor_bytes), known_good_bytes)
    if runs(guess):
        good = guess
        while good - step > bad:
            candidate = max(good - step, floor_bytes)
            if not runs(candidate):
                bad = candidate
                break
            good, step = candidate, step * 4
    else:
        bad = guess
        while (candidate := _align(bad + step)) < good:
            if runs(candidate):
                good = candidate
                break
            bad, step = candidate, step * 4
    while good - bad > ARENA_STEP_BYTES:
        middle = _align((good + bad) // 2)
        if middle >= good:
            middle -= ARENA_STEP_BYTES
        if runs(middle):
            good = middle
        else:
            bad = middle
    return good


def runs_in_arena(path: Path, arena_bytes: int) -> bool:
    """Whether TFLM allocates and runs the model at `path` in `arena_bytes`, probed in a child process
    (so an arena small enough to crash the interpreter is a False here, not a crash of the caller)."""
    return _probe(path, arena_bytes).ok


def _recorded(stderr: str) -> tuple[int, int, int, dict[str, int]]:
    total = _TOTAL_LINE.search(stderr)
    parts = {kind: int(size) for kind, size in _PART_LINE.findall(stderr)}
    kinds = {kind: int(size) for kind, size in _KIND_LINE.findall(stderr)}
    return int(total.group(1)) if total else 0, parts.get("head", 0), parts.get("tail", 0), kinds


def _reason(probe: _Probe) -> str:
    # TFLM's own words, minus the generic allocation lines every failure prints.
    lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
    lines = [line for line in lines if "RecordingMicroAllocator" not in line
             and not line.startswith(("Failed to allocate", "Failed starting model"))]
    return "; ".join(lines[:2]) or probe.message or "allocation failed at every arena size"


def _align(value: int) -> int:
    return -(-value // ARENA_STEP_BYTES) * ARENA_STEP_BYTES


@contextmanager
def _model_file(model: Path | bytes) -> Iterator[Path]:
    if isinstance(model, Path):
        yield model
        return
    with tempfile.TemporaryDirectory(prefix="wedge-arena-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        yield path


def check_tflm_loads(data: bytes, source: str) -> None:
    """One probe with the largest arena: TflmRefusedError with TFLM's own words when its kernels refuse the
    model in Prepare (a rank TFLM lacks, a type a kernel lacks). Seconds, so the export's check runs it."""
    refusal = static_refusal(data, source)
    if refusal:
        raise TflmRefusedError(f"TFLite-Micro refuses {source}: {refusal}")
    with _model_file(data) as path:
        probe = _probe(path, MAX_ARENA_BYTES)
    if not probe.ok:
        raise TflmRefusedError(f"TFLite-Micro refuses {source}: {_reason(probe)}")


def measure_arena(model: Path | bytes, *, source: str | None = None) -> ArenaMeasurement:
    """The smallest TFLM arena (to ARENA_STEP_BYTES) in which `model` allocates and runs, and the
    allocation TFLM records; TflmRefusedError when TFLM will not run it at any size."""
    started = time.perf_counter()
    data = model.read_bytes() if isinstance(model, Path) else model
    label = source or (model.name if isinstance(model, Path) else "the model")
    refusal = static_refusal(data, label)
    if refusal:
        raise TflmRefusedError(f"TFLite-Micro refuses {label}: {refusal}")
    probes = 0
    with _model_file(model) as path:
        arena = max(FIRST_PROBE_BYTES, _align(4 * len(data)))
        while True:
            first = _probe(path, arena, record=True)
            probes += 1
            if first.ok:
                break
            if first.crashed:
                raise TflmRefusedError(f"TFLite-Micro crashed loading {label} with a {arena}-byte arena "
                                       f"({first.message})")
            if arena >= MAX_ARENA_BYTES:
                raise TflmRefusedError(f"TFLite-Micro refuses {label}: {_reason(first)}")
            arena = min(arena * 4, MAX_ARENA_BYTES)
        total, head, tail, kinds = _recorded(first.stderr)

        def runs(size: int) -> bool:
            nonlocal probes
            probes += 1
            return _probe(path, size).ok

        good = smallest_arena(runs, guess_bytes=total, known_good_bytes=arena)
    return ArenaMeasurement(arena_bytes=good, recorded_bytes=total, recorded_head_bytes=head,
                            recorded_tail_bytes=tail, recorded_by_kind=kinds, probes=probes,
                            elapsed_s=time.perf_counter() - started)
