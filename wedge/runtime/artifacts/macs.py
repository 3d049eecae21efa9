"""Multiply-accumulate counts of the compute-heavy operators, from tensor shapes alone.

A MAC is one multiply plus one add; the ONNX and TFLite rules agree, so a converted model counts the same.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod

import onnx
from ai_edge_litert import schema_py_generated as schema

from wedge.runtime.artifacts.tflite_flatbuffer import int_list, tensor_shape

Shape = tuple[int, ...]

# A convolution's weight tensor holds, in every dimension but its output-channel one, exactly the
# inputs one output element reads (input channels per group x kernel window): MACs per output element.


def _tflite_tensor_shape(subgraph: schema.SubGraphT, index: int) -> Shape:
    # Dynamic dims are stored as -1 in the signature but 1 in `shape`; clamp anyway for odd files.
    return tuple(max(d, 1) for d in tensor_shape(subgraph.tensors[index]))


def tflite_op_macs(name: str, op: schema.OperatorT, subgraph: schema.SubGraphT) -> int:
    """MACs of one TFLite operator; 0 for ops that are not multiply-accumulate heavy."""
    inputs, outputs = int_list(op.inputs), int_list(op.outputs)
    if not outputs:
        return 0

    def shape(index: int) -> Shape:
        return _tflite_tensor_shape(subgraph, index)

    out = shape(outputs[0])
    if name == "CONV_2D" and len(inputs) >= 2:
        return prod(out) * prod(shape(inputs[1])[1:])  # filter [Cout, KH, KW, Cin]
    if name == "DEPTHWISE_CONV_2D" and len(inputs) >= 2:
        filt = shape(inputs[1])  # filter [1, KH, KW, Cin x multiplier]
        return prod(out) * prod(filt[1:3])
    if name == "FULLY_CONNECTED" and len(inputs) >= 2:
        return prod(out) * shape(inputs[1])[-1]  # weights [units, K]
    if name == "TRANSPOSE_CONV" and len(inputs) >= 3:
        filt = shape(inputs[1])  # inputs: output_shape, filter [Cout, KH, KW, Cin], input
        return prod(shape(inputs[2])) * prod(filt[:3])
    if name == "BATCH_MATMUL" and len(inputs) >= 2:
        lhs = shape(inputs[0])
        adj_x = bool(getattr(op.builtinOptions, "adjX", False))
        if not lhs:
            return 0
        reduced = lhs[-2] if adj_x and len(lhs) >= 2 else lhs[-1]
        return prod(out) * reduced
    return 0


ShapeOf = Callable[[str], Shape | None]


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return int(onnx.helper.get_attribute_value(attribute))
    return default


def onnx_node_macs(node: onnx.NodeProto, shape_of: ShapeOf) -> int | None:
    """MACs of one ONNX node, 0 for ops that are not MAC heavy, None when a needed shape is unknown."""
    if node.domain not in ("", "ai.onnx"):
        return 0
    op = node.op_type
    # Which inputs hold the data, the weights; the QLinear forms interleave scales and zero points.
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        weight_input = 3 if op == "QLinearConv" else 1
        out, weight = shape_of(node.output[0]), _input_shape(node, weight_input, shape_of)
        if out is None or weight is None:
            return None
        return prod(out) * prod(weight[1:])  # weight [Cout, Cin/group, k...]
    if op == "ConvTranspose":
        data, weight = _input_shape(node, 0, shape_of), _input_shape(node, 1, shape_of)
        if data is None or weight is None:
            return None
        return prod(data) * prod(weight[1:])  # weight [Cin, Cout/group, k...]
    if op == "Gemm":
        out, lhs = shape_of(node.output[0]), _input_shape(node, 0, shape_of)
        if out is None or lhs is None or len(lhs) != 2:
            return None
        reduced = lhs[0] if _attr(node, "transA", 0) else lhs[1]
        return prod(out) * reduced
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        out, lhs = shape_of(node.output[0]), _input_shape(node, 0, shape_of)
        if out is None or lhs is None or not lhs:
            return None
        return prod(out) * lhs[-1]
    return 0


def _input_shape(node: onnx.NodeProto, index: int, shape_of: ShapeOf) -> Shape | None:
    if index >= len(node.input) or not node.input[index]:
        return None
    return shape_of(node.input[index])

