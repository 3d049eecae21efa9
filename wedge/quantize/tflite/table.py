"""Elementwise functions of int8 activations as lookup tables: CAST to int32, index arithmetic, GATHER.

An int8 input takes only 256 values, so any function of it (and of scalar constants) is exact as a lookup: the
table holds what onnxruntime computes for DequantizeLinear -> op -> QuantizeLinear, run by onnxruntime itself.
TFLite-Micro has no int8 EXP, SQRT, POW, ERF or HardSigmoid kernel; it has int8 GATHER. A function of two
activations takes a 256 x 256 table (64 KiB of flash): the int8 DIV kernels of TFLite and TFLite-Micro saturate
when the numerator is within two codes of its zero point, so a division of activations is one of these.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as schema
from onnx import helper, numpy_helper

from wedge.errors import first_line
from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import Node
from wedge.quantize.tflite.layout import Layout
from wedge.quantize.tflite.lowering import Lowering, where
from wedge.quantize.tflite.spec import INT8_MAX, INT8_MIN
from wedge.runtime.types import QuantParams

# ONNX ops that are a function of one activation (other inputs scalar constants) and lower to a table.
TABLE_OPS: Final = frozenset({
    "HardSigmoid", "Exp", "Sqrt", "Erf", "Neg", "Abs", "Reciprocal", "Softplus", "Elu", "Selu", "Celu",
    "Softsign", "Log", "Sin", "Cos", "Gelu", "Mish", "Pow", "Div", "ThresholdedRelu", "Round", "Floor", "Ceil",
    "Sign",
})  # fmt: skip
TABLE_SIZE: Final = INT8_MAX - INT8_MIN + 1


def table_input(ctx: Lowering, node: Node) -> int | None:
    """The position of the only activation input when every other input is a scalar constant, else None."""
    activations = [i for i, name in enumerate(node.inputs) if name and not ctx.tensor(name).constant]
    if len(activations) != 1:
        return None
    constants = [name for i, name in enumerate(node.inputs) if name and i != activations[0]]
    if any(ctx.tensor(name).data is not None and ctx.tensor(name).data.size != 1 for name in constants):
        return None
    return activations[0]


def _run_node(ctx: Lowering, node: Node, feeds: dict[int, np.ndarray]) -> np.ndarray:
    """onnxruntime's float output of `node` with inputs at positions `feeds` replaced by these vectors and every
    other input its (dequantized) constant value."""
    inputs: list[str] = []
    values: list[onnx.ValueInfoProto] = []
    initializers = []
    for index, name in enumerate(node.inputs):
        if index in feeds:
            inputs.append(f"x{index}")
            values.append(helper.make_tensor_value_info(f"x{index}", onnx.TensorProto.FLOAT, [feeds[index].size]))
        elif not name:
            inputs.append("")
        else:
            tensor = ctx.tensor(name)
            value = tensor.real().astype(np.float32) if tensor.quant is not None else np.asarray(tensor.data)
            initializers.append(numpy_helper.from_array(value.reshape(()), f"c{index}"))
            inputs.append(f"c{index}")
    graph = helper.make_graph([helper.make_node(node.op_type, inputs, ["y"], **dict(node.attrs))], "table", values,
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ctx.graph.opset)])
    model.ir_version = 8
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        result = session.run(None, {f"x{i}": v.astype(np.float32) for i, v in feeds.items()})[0]
    except Exception as exc:  # onnxruntime raises its own exception types for invalid nodes
        raise ExportError(f"{where(node)}: cannot tabulate it over the int8 input grid: {first_line(exc)}") from None
    return np.asarray(result, np.float32).reshape(-1)


def _quantized(real: np.ndarray, params: QuantParams) -> np.ndarray:
    """QuantizeLinear: x / scale in float32, rounded half to even, plus the zero point, saturated (onnxruntime
    turns NaN, as of 0 / 0, into the lowest code)."""
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(real / np.float32(params.scales[0])).astype(np.float64) + params.zero_points[0]
    scaled = np.nan_to_num(scaled, nan=float(INT8_MIN), posinf=INT8_MAX, neginf=INT8_MIN)
    return np.clip(scaled, INT8_MIN, INT8_MAX).astype(np.int8)


def table_codes(ctx: Lowering, node: Node, position: int, in_params: QuantParams,
                out_params: QuantParams) -> np.ndarray:
    """The int8 output code for every int8 input code, as onnxruntime's QDQ computes it in float32."""
    real_in = in_params.dequantize(np.arange(INT8_MIN, INT8_MAX + 1))
    return _quantized(_run_node(ctx, node, {position: real_in}), out_params)


def pair_table_codes(ctx: Lowering, node: Node, params: tuple[QuantParams, QuantParams],
                     out_params: QuantParams) -> np.ndarray:
    """The int8 output for every pair of int8 codes of inputs 0 and 1, flattened as a * 256 + b (offset)."""
    codes = np.arange(INT8_MIN, INT8_MAX + 1)
    first, second = np.meshgrid(codes, codes, indexing="ij")
    feeds = {0: params[0].dequantize(first.reshape(-1)), 1: params[1].dequantize(second.reshape(-1))}
    return _quantized(_run_node(ctx, node, feeds), out_params)


def _widened(ctx: Lowering, source: int, label: str) -> int:
    widened = ctx.writer.add_tensor(label, ctx.writer.tensor(source).shape, np.int32)
    ctx.emit("CAST", [source], [widened],
             schema.CastOptionsT(inDataType=schema.TensorType.INT8, outDataType=schema.TensorType.INT32))
    return widened


def lower_table(ctx: Lowering, node: Node) -> None:
    """The node as GATHER(table, int32(x) + 128)."""
    position = table_input(ctx, node)
    if position is None:
        raise ExportError(f"{where(node)}: a table needs one activation input and scalar constants")
    x, out = node.inputs[position], node.outputs[0]
    out_params = ctx.params(out)
    table = table_codes(ctx, node, position, ctx.params(x), out_params)
    source = ctx.activation(x)
    layout = ctx.layout(x)
    widened = _widened(ctx, source, f"{out}/codes")
    index = ctx.writer.add_tensor(f"{out}/index", ctx.writer.tensor(source).shape, np.int32)
    offset = ctx.constant(f"{out}/offset", np.array([-INT8_MIN], np.int32), np.int32)
    ctx.emit("ADD", [widened, offset], [index], schema.AddOptionsT())
    values = ctx.constant(f"{node.name}/table", table, np.int8, out_params)
    result = ctx.define(out, layout)
    ctx.emit("GATHER", [values, index], [result], schema.GatherOptionsT(axis=0, batchDims=0))


def lower_pair_table(ctx: Lowering, node: Node, layout: Layout) -> None:
    """A function of two int8 activations as GATHER(table, (int32(a) + 128) * 256 + int32(b) + 128)."""
    a, b, out = node.inputs[0], node.inputs[1], node.outputs[0]
    out_params = ctx.params(out)
    table = pair_table_codes(ctx, node, (ctx.params(a), ctx.params(b)), out_params)
    first = _widened(ctx, ctx.activation(a, layout), f"{out}/first_codes")
    second = _widened(ctx, ctx.activation(b, layout), f"{out}/second_codes")
    shape = layout.tflite_shape(ctx.tensor(out).shape)
    shifted = ctx.writer.add_tensor(f"{out}/first_index", ctx.writer.tensor(first).shape, np.int32)
    ctx.emit("MUL", [first, ctx.constant(f"{out}/row", np.array([TABLE_SIZE], np.int32), np.int32)], [shifted],
             schema.MulOptionsT())
    summed = ctx.writer.add_tensor(f"{out}/pair_codes", shape, np.int32)
    ctx.emit("ADD", [shifted, second], [summed], schema.AddOptionsT())
    index = ctx.writer.add_tensor(f"{out}/pair_index", shape, np.int32)
    offset = ctx.constant(f"{out}/offset", np.array([-INT8_MIN * (TABLE_SIZE + 1)], np.int32), np.int32)
    ctx.emit("ADD", [summed, offset], [index], schema.AddOptionsT())
    values = ctx.constant(f"{node.name}/table", table, np.int8, out_params)
    result = ctx.define(out, layout)
    ctx.emit("GATHER", [values, index], [result], schema.GatherOptionsT(axis=0, batchDims=0))
