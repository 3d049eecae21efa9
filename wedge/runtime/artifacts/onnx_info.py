"""Reads a .onnx file into ModelInfo: interface (with QDQ quantization), op histogram, params, MACs.

Shapes come from onnx shape inference; weights in external data files are counted, never loaded.
"""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import Final

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from wedge.errors import first_line
from wedge.runtime.artifacts.macs import onnx_node_macs
from wedge.runtime.artifacts.model_info import ModelInfo, histogram
from wedge.runtime.types import ArtifactError, Dim, QuantParams, TensorSpec

_DEFAULT_DOMAINS: Final = ("", "ai.onnx")
_QUANTIZED_OPS: Final = frozenset(
    {
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
        "ConvInteger", "MatMulInteger",
    }
)  # fmt: skip
_FLOAT_TYPES: Final = frozenset(
    {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
)
_SMALL_INT_TYPES: Final = frozenset(
    {
        onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16,
        onnx.TensorProto.INT4, onnx.TensorProto.UINT4,
    }
)  # fmt: skip
_NIBBLE_TYPES: Final = frozenset({onnx.TensorProto.INT4, onnx.TensorProto.UINT4})


def _load(data: bytes, source: str) -> onnx.ModelProto:
    try:
        model = onnx.load_model_from_string(data)
    except DecodeError as exc:
        raise ArtifactError(
            f"{source} is not an ONNX model (the protobuf does not parse: truncated or corrupt)"
        ) from exc
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        raise ArtifactError(f"{source} is not an ONNX model (it has no graph)")
    return model


def _infer_shapes(model: onnx.ModelProto, notes: list[str]) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    # Inference raises its own error types for ops it does not know; the model is still inspectable.
    except Exception as exc:
        notes.append(f"shape inference failed ({first_line(exc)}); MACs may be incomplete")
        return model


def _dims(type_proto: onnx.TypeProto) -> tuple[Dim, ...] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    dims: list[Dim] = []
    for dim in type_proto.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def _numpy_dtype(elem_type: int) -> np.dtype:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return np.dtype(np.object_)


class _Graph:
    """Constants, producers, consumers and inferred shapes of one graph, looked up by tensor name."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.constants: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in _DEFAULT_DOMAINS and node.output:
                for attribute in node.attribute:
                    if attribute.name == "value" and attribute.HasField("t"):
                        self.constants[node.output[0]] = attribute.t
        self.producer: dict[str, onnx.NodeProto] = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in graph.node:
            for position, name in enumerate(node.input):
                self.consumers.setdefault(name, []).append((node, position))
        self.shapes: dict[str, tuple[Dim, ...]] = {}
        for value in [*graph.input, *graph.value_info, *graph.output]:
            dims = _dims(value.type)
            if dims is not None:
                self.shapes[value.name] = dims
        for name, tensor in self.constants.items():
            self.shapes[name] = tuple(int(d) for d in tensor.dims)

    def array(self, name: str) -> np.ndarray | None:
        tensor = self.constants.get(name)
        if tensor is None or tensor.data_location == onnx.TensorProto.EXTERNAL:
            return None
        return numpy_helper.to_array(tensor)


def _qdq_quant(graph: _Graph, node: onnx.NodeProto) -> QuantParams | None:
    """Scale and zero point of a QuantizeLinear / DequantizeLinear node, when they are constants."""
    scale = graph.array(node.input[1]) if len(node.input) > 1 else None
    if scale is None:
        return None
    zero = graph.array(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    scales = tuple(float(s) for s in np.ravel(scale))
    zero_points = tuple(int(z) for z in np.ravel(zero)) if zero is not None else (0,) * len(scales)
    axis = 0
    if len(scales) > 1:
        axis = next((int(onnx.helper.get_attribute_value(a)) for a in node.attribute if a.name == "axis"), 1)
    return QuantParams(scales=scales, zero_points=zero_points, axis=axis)


def _input_quant(graph: _Graph, name: str) -> QuantParams | None:
    for node, position in graph.consumers.get(name, []):
        if node.op_type == "QuantizeLinear" and position == 0:
            return _qdq_quant(graph, node)
    return None


def _output_quant(graph: _Graph, name: str) -> QuantParams | None:
    node = graph.producer.get(name)
    if node is not None and node.op_type == "DequantizeLinear":
        return _qdq_quant(graph, node)
    return None


def _value_spec(value: onnx.ValueInfoProto, quant: QuantParams | None) -> TensorSpec:
    dims = _dims(value.type) or ()
    elem_type = value.type.tensor_type.elem_type if value.type.HasField("tensor_type") else 0
    return TensorSpec(name=value.name, shape=dims, dtype=_numpy_dtype(elem_type), quant=quant)


def _is_param(graph: _Graph, name: str, tensor: onnx.TensorProto) -> bool:
    """Weights and biases, not shape constants (int64) nor quantization scales and zero points."""
    uses = graph.consumers.get(name, [])
    if any(node.op_type in ("QuantizeLinear", "DequantizeLinear") and position > 0 for node, position in uses):
        return False
    if tensor.data_type in _FLOAT_TYPES or tensor.data_type in _SMALL_INT_TYPES:
        return True
    # int32 is a bias only where it is dequantized (QDQ bias); elsewhere it is a shape or an index.
    return tensor.data_type == onnx.TensorProto.INT32 and any(
        node.op_type == "DequantizeLinear" and position == 0 for node, position in uses
    )


def _tensor_bytes(tensor: onnx.TensorProto) -> int:
    count = prod(tensor.dims)
    if tensor.data_type in _NIBBLE_TYPES:
        return (count + 1) // 2
    return count * _numpy_dtype(tensor.data_type).itemsize


_TYPED_FIELDS: Final = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def _check_sizes(constants: dict[str, onnx.TensorProto], file_bytes: int) -> None:
    """Refuse a constant whose declared shape does not match the data the file holds for it.

    A file of a few bytes can declare a 2^40-element tensor; believing the shape would report terabytes of
    weights (and allocate them further on).
    """
    for name, tensor in constants.items():
        if any(d < 0 for d in tensor.dims):
            raise ArtifactError(f"initializer {name!r} has a negative dimension {list(tensor.dims)}")
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            continue
        declared = prod(tensor.dims)
        if tensor.HasField("raw_data"):
            expected = _tensor_bytes(tensor)
            held = len(tensor.raw_data)
            if held != expected:
                raise ArtifactError(f"initializer {name!r} declares {declared:,} elements ({expected:,} bytes) but the "
                                    f"file holds {held:,} bytes for it (corrupt or truncated model)")
            continue
        held = max(len(getattr(tensor, field)) for field in _TYPED_FIELDS)
        if held and held not in (declared, 2 * declared) and not (tensor.data_type in _NIBBLE_TYPES
                                                                 and held == (declared + 1) // 2):
            raise ArtifactError(f"initializer {name!r} declares {declared:,} elements but the file holds {held:,}")
        if not held and declared and declared > file_bytes:
            raise ArtifactError(f"initializer {name!r} declares {declared:,} elements but holds no data")


def _op_names(graph: onnx.GraphProto) -> list[str]:
    """Op names of a graph and of the subgraphs its control-flow nodes carry."""
    names: list[str] = []
    for node in graph.node:
        names.append(node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}")
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                names.extend(_op_names(attribute.g))
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    names.extend(_op_names(subgraph))
    return names


def _macs(graph: onnx.GraphProto, lookup: _Graph, notes: list[str]) -> int:
    symbolic: set[str] = set()

    def shape_of(name: str) -> tuple[int, ...] | None:
        dims = lookup.shapes.get(name)
        if dims is None or any(d is None for d in dims):
            return None
        symbolic.update(d for d in dims if isinstance(d, str))
        # A symbolic dim (usually the batch) is counted as 1: MACs are per sample.
        return tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)

    total = 0
    unknown: list[str] = []
    for node in graph.node:
        macs = onnx_node_macs(node, shape_of)
        if macs is None:
            unknown.append(node.name or node.op_type)
        else:
            total += macs
    if symbolic:
        notes.append(f"MACs count dynamic dims as 1: {', '.join(sorted(symbolic))}")
    if unknown:
        notes.append(f"MACs exclude {len(unknown)} node(s) whose shapes are unknown: {', '.join(unknown[:5])}")
    return total


def onnx_info(path: Path, data: bytes) -> ModelInfo:
    """ModelInfo of the ONNX model whose bytes are `data`, read from `path`."""
    notes: list[str] = []
    model = _infer_shapes(_load(data, path.name), notes)
    graph = model.graph
    lookup = _Graph(graph)
    _check_sizes(lookup.constants, len(data))
    params = [(name, t) for name, t in lookup.constants.items() if _is_param(lookup, name, t)]
    if any(t.data_location == onnx.TensorProto.EXTERNAL for _, t in params):
        notes.append("weights are stored in external data files beside the model")
    feed_names = [value for value in graph.input if value.name not in lookup.constants]
    opset = next((int(o.version) for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), None)
    return ModelInfo(
        path=str(path),
        format="onnx",
        size_bytes=len(data),
        inputs=tuple(_value_spec(v, _input_quant(lookup, v.name)) for v in feed_names),
        outputs=tuple(_value_spec(v, _output_quant(lookup, v.name)) for v in graph.output),
        op_histogram=histogram(_op_names(graph)),
        param_count=sum(prod(t.dims) for _, t in params),
        macs=_macs(graph, lookup, notes),
        weight_bytes=sum(_tensor_bytes(t) for _, t in params),
        opset=opset,
        quantized=any(node.op_type in _QUANTIZED_OPS for node in graph.node),
        notes=tuple(notes),
    )
