"""On-device accuracy against the host reference (LiteRT on the same .tflite) and bit-exactness against TFLM.

Each eval sample goes to the board with `db`, runs with `infer 1 0`, and its `m-results` are compared with the
host's outputs: accuracy, RMSE, MAE, L2 relative error, cosine and top-1 agreement, as vendor validators report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pytest

from wedge.hil.dut_client import DutClient
from wedge.hil.eval_data import EvalSet, load_eval
from wedge.hil.metrics import agreement, confusion
from wedge.hil.reference import HostReference, dequantized_outputs

MIN_TOP1_AGREEMENT: Final[float] = 0.98
MIN_COSINE: Final[float] = 0.99


@dataclass(frozen=True)
class DeviceRun:
    eval_set: EvalSet
    device: np.ndarray
    host: np.ndarray
    input_specs: tuple[Any, ...]


@pytest.fixture(scope="session")
def device_run(board: Any, flashed: Any, hil_model: Any, hil_eval: Any, hil_options: Any) -> DeviceRun:
    reference = HostReference(hil_model)
    try:
        eval_set = load_eval(hil_eval, reference.inputs, hil_options.samples)
        host = np.stack([reference.run(feeds) for feeds in eval_set.feeds])
    finally:
        reference.close()
    rows = []
    with DutClient(board.dut_port, baud=board.baud, max_command_bytes=board.entry.dut_command_bytes) as client:
        for index in range(len(eval_set)):
            client.load(eval_set.input_bytes(index, reference.inputs))
            rows.append(client.infer(1, 0).results)
    device = np.asarray(rows, dtype=np.float32)
    if device.shape != host.shape:
        pytest.fail(f"the board answered {device.shape[1]} output values per sample; the model has {host.shape[1]}")
    return DeviceRun(eval_set, device, host, reference.inputs)


def test_device_agrees_with_the_host_reference(device_run: DeviceRun, hil_record: Any) -> None:
    """Device agrees with the host reference (LiteRT on the same .tflite)."""
    labels = device_run.eval_set.labels
    result = agreement(device_run.device, device_run.host, labels)
    hil_record("accuracy", result.to_dict())
    if labels is not None:
        classes = device_run.device.shape[1]
        hil_record("confusion", confusion(device_run.device.argmax(axis=1), labels, classes))
    assert result.top1_agreement >= MIN_TOP1_AGREEMENT, (
        f"top-1 agreement with the host {result.top1_agreement:.3f} < {MIN_TOP1_AGREEMENT}")
    assert result.cosine_similarity >= MIN_COSINE, f"cosine similarity {result.cosine_similarity:.4f} < {MIN_COSINE}"


def test_device_outputs_are_bit_exact_with_tflite_micro_on_the_host(device_run: DeviceRun, board: Any,
                                                                   hil_model: Any, hil_record: Any) -> None:
    """Device outputs are bit-exact with TFLite-Micro on the host."""
    from wedge.runtime.engines import open_engine

    with open_engine(hil_model, "tflm", arena_bytes=board.entry.profile.budgets.arena_bytes) as engine:
        host = np.stack([dequantized_outputs(tuple(engine.outputs), engine.run(feeds))
                         for feeds in device_run.eval_set.feeds])
    exact = int(np.sum(np.all(host == device_run.device, axis=1)))
    hil_record("bit_exact_vs_host_tflm", {"samples": len(host), "exact_samples": exact})
    assert exact == len(host), f"{len(host) - exact} of {len(host)} samples differ from TFLite-Micro on the host"
