"""Which ops of an int8 QDQ model still compute in float, and what share of the weights they hold.

An op onnxruntime has no int8 form for (LSTM, GRU, ...) stays float silently; the report names it instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx

# Ops that only move or describe tensors: float or not, they hold no compute worth naming.
_NOT_COMPUTE: Final = frozenset({
    "QuantizeLinear", "DequantizeLinear", "Constant", "Shape", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
    "Transpose", "Identity", "Dropout", "Concat", "Slice", "Gather", "Cast", "Split", "Pad", "Expand", "Range",
    "ConstantOfShape", "MaxPool", "Resize", "Relu", "Clip",
})  # fmt: skip
# Constants with at most this many values are parameters of an op (an epsilon, an exponent), not weights.
_SCALAR_MAX: Final = 4


@dataclass(frozen=True)
class FloatOps:
    """The nodes of one op type that compute in float, and their share of the model's weights."""

    op_type: str
    nodes: tuple[str, ...]
    weight_share_pct: float
    kept_on_purpose: bool

    def describe(self) -> str:
        who = "kept float (--keep-float)" if self.kept_on_purpose else "kept float by onnxruntime (no int8 form)"
        return (f"{self.op_type} {who}: {len(self.nodes)} node{'s' if len(self.nodes) != 1 else ''}, "
                f"{self.weight_share_pct:.0f}% of the weights")

    def to_dict(self) -> dict[str, Any]:
        return {"op_type": self.op_type, "nodes": list(self.nodes), "weight_share_pct": round(self.weight_share_pct, 2),
                "kept_on_purpose": self.kept_on_purpose}


def float_ops(qdq_path: Path, kept: Sequence[str] = ()) -> list[FloatOps]:
    """The compute ops of the int8 model at `qdq_path` that read no dequantized tensor or hold float weights."""
    model = onnx.load(str(qdq_path), load_external_data=False)
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    quantized_weights = {n.input[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in initializers}

    def size(name: str) -> int:
        return int(np.prod(initializers[name].dims)) if name in initializers else 0

    total = sum(size(name) for name in initializers if size(name) > _SCALAR_MAX and
                initializers[name].data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT8, onnx.TensorProto.UINT8,
                                                 onnx.TensorProto.FLOAT16))
    found: dict[str, tuple[list[str], int]] = {}
    for node in graph.node:
        if node.op_type in _NOT_COMPUTE:
            continue
        float_weights = [i for i in node.input if i in initializers and i not in quantized_weights
                         and initializers[i].data_type == onnx.TensorProto.FLOAT and size(i) > _SCALAR_MAX]
        activations = [i for i in node.input if i and i not in initializers]
        reads_int8 = any(i in dequantized for i in activations)
        if reads_int8 and not float_weights:
            continue
        names, weights = found.get(node.op_type, ([], 0))
        names.append(node.name or node.output[0])
        found[node.op_type] = (names, weights + sum(size(i) for i in float_weights))
    kept_set = set(kept)
    return [FloatOps(op, tuple(names), 100.0 * weights / total if total else 0.0,
                     all(n in kept_set for n in names))
            for op, (names, weights) in sorted(found.items(), key=lambda item: -item[1][1])]
