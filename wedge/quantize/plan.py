"""What the quantizer turns to int8: the ONNX op types, and the nodes kept float (`--keep-float`).

The TFLite export quantizes more op types than the ONNX output: a board has no float fallback between int8 ops.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import onnx
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

from wedge.quantize.errors import QuantizeError

# The op set quantize_static calibrates and quantizes by default: what the int8 ONNX output uses.
ONNX_OP_TYPES: Final = tuple(sorted(set(QLinearOpsRegistry) | set(QDQRegistry)))
# Elementwise and reduction ops onnxruntime leaves in float by default, whose int8 form the TFLite export
# lowers (a builtin or an exact 256-entry table). Pow is absent on purpose: quantizing its exponent turns 2
# into 1.9999999, and a negative base to a non-integer power is NaN; its output is quantized by its reader.
TFLITE_EXTRA_OP_TYPES: Final = (
    "Sub", "Div", "HardSigmoid", "HardSwish", "Tanh", "Exp", "Sqrt", "Erf", "ReduceMean", "Neg", "Abs",
    "Reciprocal", "Softplus", "Elu", "Selu", "Celu", "Softsign", "Log", "Sin", "Cos", "Gelu", "Mish",
)  # fmt: skip
TFLITE_OP_TYPES: Final = tuple(sorted(set(ONNX_OP_TYPES) | set(TFLITE_EXTRA_OP_TYPES)))


@dataclass(frozen=True)
class QuantPlan:
    """The op types onnxruntime quantizes and the nodes it leaves float."""

    op_types: tuple[str, ...] = ONNX_OP_TYPES
    float_nodes: tuple[str, ...] = ()
    # Value-moving ops (Transpose, Gather, Reshape) read int8 even where nothing before them is quantized (a
    # model input): the TFLite export needs every tensor int8, the ONNX output need not.
    force_quantize_inputs: bool = False

    def keeping_float(self, nodes: Iterable[str]) -> QuantPlan:
        """This plan with `nodes` also kept float."""
        merged = tuple(dict.fromkeys([*self.float_nodes, *nodes]))
        return QuantPlan(self.op_types, merged, self.force_quantize_inputs)


def plan_for(model: onnx.ModelProto, *, tflite: bool, keep_float: Sequence[str] = ()) -> QuantPlan:
    """The plan for `model`: `keep_float` names nodes or op types (`Conv`, `conv_3`) to leave in float."""
    op_types = TFLITE_OP_TYPES if tflite else ONNX_OP_TYPES
    return QuantPlan(op_types, resolve_float_nodes(model, keep_float), force_quantize_inputs=tflite)


def resolve_float_nodes(model: onnx.ModelProto, keep_float: Sequence[str]) -> tuple[str, ...]:
    """Node names for `--keep-float` items, each a node name or an op type present in the model."""
    by_name = {n.name: n for n in model.graph.node if n.name}
    chosen: list[str] = []
    for item in keep_float:
        if item in by_name:
            chosen.append(item)
            continue
        typed = [n.name for n in model.graph.node if n.op_type == item]
        if not typed:
            raise QuantizeError(f"--keep-float {item!r} is neither a node name nor an op type of the model")
        if any(not name for name in typed):
            raise QuantizeError(f"--keep-float {item}: some {item} nodes have no name, so onnxruntime cannot "
                                "exclude them")
        chosen.extend(typed)
    return tuple(dict.fromkeys(chosen))
