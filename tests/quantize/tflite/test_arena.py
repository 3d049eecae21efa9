"""The TFLite-Micro arena: smallest size by bisection in child processes, the recorded allocation, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from tests.quantize.tflite.tflite_models import hybrid_model
from wedge.quantize.tflite.arena import ARENA_STEP_BYTES, TflmRefusedError, measure_arena, runs_in_arena, smallest_arena
from wedge.quantize.tflite.convert import lower_graph
from wedge.quantize.tflite.graph import read_qdq
from wedge.quantize.tflite.writer import TfliteWriter
from wedge.runtime.types import QuantParams


@pytest.fixture(scope="module")
def digits_tflite(digits_qdq: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("arena") / "digits.tflite"
    path.write_bytes(lower_graph(read_qdq(digits_qdq[0])).data)
    return path


def test_measured_arena_is_the_smallest_that_runs(digits_tflite: Path) -> None:
    measured = measure_arena(digits_tflite)
    assert measured.arena_bytes % ARENA_STEP_BYTES == 0
    assert runs_in_arena(digits_tflite, measured.arena_bytes)
    assert not runs_in_arena(digits_tflite, measured.arena_bytes - ARENA_STEP_BYTES)
    # The recorded allocation comes from TFLM's print_allocations on the child's C-level stderr.
    assert measured.recorded_bytes == measured.recorded_head_bytes + measured.recorded_tail_bytes > 0
    assert "NodeAndRegistration struct" in measured.recorded_by_kind
    assert measured.probes >= 3


@pytest.mark.parametrize(("needed", "recorded"), [(6096, 6096), (22048, 17360), (4640, 3984), (5000, 9000),
                                                  (1024, 700), (1040, 1040)])
def test_bisection_finds_the_threshold_from_the_recorded_guess(needed: int, recorded: int) -> None:
    probed: list[int] = []

    def runs(size: int) -> bool:
        probed.append(size)
        return size >= needed

    found = smallest_arena(runs, guess_bytes=recorded, known_good_bytes=1 << 20)
    assert found == -(-needed // ARENA_STEP_BYTES) * ARENA_STEP_BYTES
    assert found in probed and found - ARENA_STEP_BYTES in probed + [1024 - ARENA_STEP_BYTES]
    # An exact recording settles in two probes; a far one still in a logarithmic number.
    assert len(probed) == 2 if needed == recorded else len(probed) <= 20


def test_an_arena_small_enough_to_crash_tflm_is_only_a_failed_probe(digits_tflite: Path) -> None:
    assert not runs_in_arena(digits_tflite, 64)


def test_a_hybrid_model_is_refused_with_the_reason() -> None:
    with pytest.raises(TflmRefusedError, match="hybrid model \\(FULLY_CONNECTED takes float activations with int8"):
        measure_arena(hybrid_model(), source="hybrid.tflite")


def test_a_model_tflm_fails_to_prepare_at_any_size_is_refused_with_tflms_words(tmp_path: Path) -> None:
    writer = TfliteWriter()
    grid = QuantParams((0.1,), (0,))
    x = writer.add_tensor("x", [1, 4], np.int8, grid)
    y = writer.add_tensor("y", [1, 4], np.int8, grid)  # SOFTMAX must output on (1/256, -128)
    writer.add_op("SOFTMAX", [x], [y], schema.SoftmaxOptionsT(beta=1.0))
    writer.inputs, writer.outputs = [x], [y]
    path = tmp_path / "bad_softmax.tflite"
    path.write_bytes(writer.to_bytes("t"))
    with pytest.raises(TflmRefusedError, match="refuses bad_softmax.tflite: .*zero_point.*SOFTMAX"):
        measure_arena(path)
