"""Stage 6: which layers lose the most — per-tensor SQNR of the int8 model against fp32.

Uses onnxruntime's `qdq_loss_debug` on a few eval samples: activations of both models and dequantized weights.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader
from onnxruntime.quantization.qdq_loss_debug import (
    collect_activations,
    create_activation_matching,
    create_weight_matching,
    modify_model_output_intermediate_tensors,
)

from wedge.errors import first_line
from wedge.quantize.calibration import Batch, SampleSet
from wedge.quantize.errors import QuantizeError
from wedge.quantize.evaluate import SQNR_CAP_DB, sqnr_db
from wedge.runtime.quiet import quiet_onnxruntime

# Samples compared tensor by tensor, and how many run at once (every activation of a batch is held).
LAYER_SAMPLES: Final = 32
LAYER_BATCH: Final = 4


@dataclass(frozen=True)
class LayerError:
    """Quantization error through one layer of the fp32 graph.

    `sqnr_db` is the accumulated error at the layer's output (int8 model vs fp32 model), `input_sqnr_db` the
    same at its inputs, so `drop_db` is what this layer itself loses. Ops the quantizer fused (Conv + Relu)
    are one layer here, named "conv + relu". `weight_sqnr_db` is the error of the layer's int8 weights.
    `input_sqnr_db` is SQNR_CAP_DB when the inputs are exact (graph inputs before their quantization).
    """

    node: str
    op_type: str
    tensor: str
    sqnr_db: float
    input_sqnr_db: float
    weight_sqnr_db: float | None

    @property
    def own_sqnr_db(self) -> float:
        """SQNR of the noise this layer adds: its output noise power minus what came in, over the signal.

        Comparable across layers (unlike a difference of dBs), and equal to `sqnr_db` for a layer whose
        inputs are exact. Capped when the layer adds no noise (a Relu can remove some).
        """
        added = 10.0 ** (-self.sqnr_db / 10.0) - 10.0 ** (-self.input_sqnr_db / 10.0)
        if added <= 10.0 ** (-SQNR_CAP_DB / 10.0):
            return SQNR_CAP_DB
        return min(SQNR_CAP_DB, -10.0 * math.log10(added))


class _ListReader(CalibrationDataReader):
    def __init__(self, batches: list[Batch]) -> None:
        self._it: Iterator[Batch] = iter(batches)

    def get_next(self) -> Batch | None:
        return next(self._it, None)


def _accumulate(sums: list[float], ref: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> None:
    for a, b in zip(ref, got, strict=True):
        a64 = np.asarray(a, dtype=np.float64)
        diff = a64 - np.asarray(b, dtype=np.float64)
        sums[0] += float(np.sum(a64 * a64))
        sums[1] += float(np.sum(diff * diff))


def _power_sqnr(ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    a = np.concatenate([np.ravel(x) for x in ref]).astype(np.float64)
    b = np.concatenate([np.ravel(x) for x in got]).astype(np.float64)
    return sqnr_db(float(np.sum(a * a)), float(np.sum((a - b) ** 2)))


def per_layer_errors(
    fp32_path: Path, int8_path: Path, samples: SampleSet, *, batch_size: int, max_samples: int = LAYER_SAMPLES
) -> list[LayerError]:
    """Per-node SQNR of `int8_path` against `fp32_path` on the first `max_samples` samples, in graph order.

    Activations are compared batch by batch and only their power sums kept, so memory stays at one small
    batch of every tensor whatever the sample count.
    """
    fp32_model = onnx.load(str(fp32_path), load_external_data=False)
    power: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="wedge-layers-") as tmp, quiet_onnxruntime():
            fp32_aug = Path(tmp) / "fp32.onnx"
            int8_aug = Path(tmp) / "int8.onnx"
            modify_model_output_intermediate_tensors(str(fp32_path), str(fp32_aug))
            modify_model_output_intermediate_tensors(str(int8_path), str(int8_aug))
            for batch in samples.batches(min(batch_size, LAYER_BATCH), limit=max_samples):
                float_acts = collect_activations(str(fp32_aug), _ListReader([batch]))
                qdq_acts = collect_activations(str(int8_aug), _ListReader([batch]))
                for name, match in create_activation_matching(qdq_acts, float_acts).items():
                    if "float" in match:
                        _accumulate(power.setdefault(name, [0.0, 0.0]), match["float"], match["post_qdq"])
            weights = create_weight_matching(str(fp32_path), str(int8_path))
    except Exception as exc:
        raise QuantizeError(f"per-layer analysis failed: {first_line(exc)}") from None

    weight_sqnr = {name: _power_sqnr([m["float"]], [m["dequantized"]]) for name, m in weights.items()}
    accumulated = {name: sqnr_db(signal, noise) for name, (signal, noise) in power.items()}
    producers = {out: node for node in fp32_model.graph.node for out in node.output}
    op_types = {node.name or node.op_type: node.op_type for node in fp32_model.graph.node}
    upstream: dict[str, tuple[float, tuple[str, ...]]] = {}

    def reach(tensor: str) -> tuple[float, tuple[str, ...]]:
        """SQNR at `tensor`, or at the nearest compared tensors above it, with the nodes fused in between."""
        if tensor in accumulated:
            return accumulated[tensor], ()
        if tensor not in upstream:
            node = producers.get(tensor)
            if node is None:  # a graph input or a weight: exact in both models
                upstream[tensor] = (SQNR_CAP_DB, ())
            else:
                found = [reach(i) for i in node.input if i]
                fused = tuple(n for _, names in found for n in names)
                upstream[tensor] = (min((v for v, _ in found), default=SQNR_CAP_DB),
                                    (*dict.fromkeys(fused), node.name or node.op_type))
        return upstream[tensor]

    layers: list[LayerError] = []
    for node in fp32_model.graph.node:
        for tensor in node.output:
            if tensor not in accumulated:
                continue
            found = [reach(i) for i in node.input if i]
            fused = tuple(dict.fromkeys(n for _, names in found for n in names))
            node_weights = [weight_sqnr[i] for i in node.input if i in weight_sqnr]
            node_weights += [weight_sqnr[w] for name in fused for w in _inputs_of(fp32_model, name)
                             if w in weight_sqnr]
            layers.append(LayerError(
                node=" + ".join((*fused, node.name or tensor)),
                op_type=" + ".join((*(op_types.get(n, "?") for n in fused), node.op_type)),
                tensor=tensor,
                sqnr_db=accumulated[tensor],
                input_sqnr_db=min((v for v, _ in found), default=SQNR_CAP_DB),
                weight_sqnr_db=min(node_weights) if node_weights else None,
            ))
    return layers


def _inputs_of(model: onnx.ModelProto, node_name: str) -> list[str]:
    return [i for n in model.graph.node if (n.name or n.op_type) == node_name for i in n.input]


def worst_layers(layers: list[LayerError], count: int = 5) -> list[LayerError]:
    """The `count` layers that add the most quantization noise themselves."""
    return sorted(layers, key=lambda layer: layer.own_sqnr_db)[:count]
