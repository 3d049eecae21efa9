"""Reads an int8 QDQ ONNX model into a small typed graph: int8 tensors with their quantization, and ops.

QuantizeLinear/DequantizeLinear pairs disappear into tensor parameters; what remains is the compute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
from onnx import numpy_helper

from wedge.errors import first_line
from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.spec import float_path_params
from wedge.runtime.types import QuantParams

_QDQ_OPS: Final = frozenset({"QuantizeLinear", "DequantizeLinear"})
# Shape arithmetic a dynamic-batch export leaves behind; folded to constants once the batch is 1.
FOLDABLE_OPS: Final = frozenset({
    "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Reshape", "Mul", "Add", "Sub",
    "Div", "Identity", "ConstantOfShape", "Range", "ReduceProd", "Expand", "Constant",
})  # fmt: skip


@dataclass(frozen=True, eq=False)
class Tensor:
    """A tensor in ONNX layout with the batch fixed to 1: an int8 activation, or a constant with `data`."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    quant: QuantParams | None = None
    data: np.ndarray | None = None

    @property
    def constant(self) -> bool:
        return self.data is not None

    def real(self) -> np.ndarray:
        """A constant's real values: dequantized when it has int8 parameters, else as stored (float64)."""
        assert self.data is not None, f"{self.name} is not a constant"
        if self.quant is None:
            return np.asarray(self.data, np.float64)
        return np.asarray(self.quant.dequantize(self.data), np.float64)


@dataclass(frozen=True)
class Node:
    """One compute op; inputs and outputs name Tensors ("" for an omitted optional input)."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    keep_float: bool = False  # kept float (--keep-float): runs as float32 ops between DEQUANTIZE and QUANTIZE

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass(frozen=True)
class GraphIO:
    """A model input or output: its ONNX name and the int8 tensor that carries it."""

    name: str
    tensor: str
    onnx_dtype: np.dtype


@dataclass(frozen=True)
class QdqGraph:
    """The compute of an int8 QDQ model, topologically ordered."""

    name: str
    tensors: Mapping[str, Tensor]
    nodes: tuple[Node, ...]
    inputs: tuple[GraphIO, ...]
    outputs: tuple[GraphIO, ...]
    opset: int = 13  # of the default ONNX domain: ops re-run by onnxruntime (tables) need it

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def producer(self, tensor: str) -> Node | None:
        return next((n for n in self.nodes if tensor in n.outputs), None)


def _where(node: onnx.NodeProto) -> str:
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


def _fix_batch(model: onnx.ModelProto) -> None:
    """The board runs one sample at a time: a symbolic batch becomes 1; any other dynamic dim is an error."""
    initializers = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        if not value.type.tensor_type.HasField("shape"):
            raise ExportError(f"input {value.name!r} has no shape: re-run wedge quantize with --input-shape")
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if axis == 0:
                dim.Clear()
                dim.dim_value = 1
                continue
            raise ExportError(f"input {value.name!r} has a dynamic dimension at axis {axis}: TFLite-Micro needs "
                              "fixed shapes; re-run wedge quantize with --input-shape")
    # Inner shapes carry the old symbolic batch; inference recomputes them from the fixed inputs.
    del model.graph.value_info[:]
    for value in model.graph.output:
        for dim in value.type.tensor_type.shape.dim:
            dim.Clear()


def _constant_value(node: onnx.NodeProto) -> np.ndarray:
    attribute = node.attribute[0]
    if attribute.name == "value":
        return numpy_helper.to_array(attribute.t)
    return np.asarray(onnx.helper.get_attribute_value(attribute))


def _fold_constants(model: onnx.ModelProto, constants: dict[str, np.ndarray],
                    shapes: dict[str, tuple[int, ...]]) -> list[onnx.NodeProto]:
    """Evaluate shape arithmetic on constants; returns the nodes that remain."""
    from onnx.reference import ReferenceEvaluator

    opset = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    remaining: list[onnx.NodeProto] = []
    for node in model.graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type == "Constant":
            constants[node.output[0]] = _constant_value(node)
            continue
        if node.op_type == "Shape" and node.input[0] in shapes and node.input[0] not in constants:
            shape = np.asarray(shapes[node.input[0]], dtype=np.int64)
            start = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "start"), 0)
            end = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "end"), None)
            constants[node.output[0]] = shape[start:end]
            continue
        if node.op_type in FOLDABLE_OPS and inputs and all(i in constants for i in inputs) \
                and all(constants[i].dtype != np.float32 or constants[i].size <= 64 for i in inputs):
            graph = onnx.helper.make_graph(
                [node], "fold",
                [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(constants[i].dtype),
                                                    constants[i].shape) for i in inputs],
                [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output])
            try:
                results = ReferenceEvaluator(onnx.helper.make_model(graph, opset_imports=opset)).run(
                    None, {i: constants[i] for i in inputs})
            except Exception as exc:  # the reference evaluator raises whatever the op's code does
                raise ExportError(f"cannot fold the constant {_where(node)}: {first_line(exc)}") from None
            constants.update({o: np.asarray(r) for o, r in zip(node.output, results, strict=True)})
            continue
        remaining.append(node)
    return remaining


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError, but malformed graphs raise others
        raise ExportError(f"shape inference failed on the int8 model: {first_line(exc)}") from None
    shapes: dict[str, tuple[int, ...]] = {}
    graph = inferred.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        dims = tensor_type.shape.dim
        if all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    for init in graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    return shapes


class _Reader:
    """One pass over the ONNX graph that pairs Q/DQ nodes with the tensors they quantize."""

    def __init__(self, model: onnx.ModelProto, label: str, float_nodes: frozenset[str] = frozenset()) -> None:
        self.label = label
        self.float_nodes = float_nodes
        self.graph = model.graph
        self.opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.constants: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.shapes = _shapes(model)
        self.nodes = _fold_constants(model, self.constants, self.shapes)
        while len(self.nodes) < len(model.graph.node):
            # Shapes behind folded shape arithmetic are known only once it is constant: infer again.
            known = {i.name for i in model.graph.initializer}
            model.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), k)
                                           for k, v in self.constants.items() if k not in known)
            del model.graph.node[:]
            model.graph.node.extend(self.nodes)
            self.shapes = _shapes(model)
            self.nodes = _fold_constants(model, self.constants, self.shapes)
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.tensors: dict[str, Tensor] = {}
        self.alias: dict[str, str] = {}  # a DQ output or a Q'd float output -> the int8 tensor's name

    def shape(self, name: str, node: onnx.NodeProto) -> tuple[int, ...]:
        if name in self.constants:
            return tuple(self.constants[name].shape)
        shape = self.shapes.get(name)
        if shape is None:
            raise ExportError(f"{_where(node)}: tensor {name!r} has a dynamic or unknown shape; TFLite-Micro needs "
                              "fixed shapes (re-run wedge quantize with --input-shape)")
        return shape

    def qparams(self, node: onnx.NodeProto) -> tuple[QuantParams, np.dtype]:
        """Scale and zero point of a Q/DQ node; uint8 is moved to int8 (the same grid, shifted by 128)."""
        scale_name = node.input[1]
        zero_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if scale_name not in self.constants or (zero_name and zero_name not in self.constants):
            raise ExportError(f"{_where(node)}: its scale or zero point is computed at run time; only constant "
                              "quantization parameters can be exported")
        scales = np.atleast_1d(self.constants[scale_name]).astype(np.float64)
        zero = self.constants[zero_name] if zero_name else np.zeros((), self._implied_type(node))
        dtype = np.dtype(zero.dtype)
        zero_points = np.broadcast_to(np.atleast_1d(zero).astype(np.int64), scales.shape)
        if dtype == np.uint8:
            zero_points = zero_points - 128
        elif dtype not in (np.int8, np.int32):
            raise ExportError(f"{_where(node)} quantizes to {dtype}; TFLite int8 export needs int8 "
                              "(re-run wedge quantize, which writes int8)")
        axis = next((int(onnx.helper.get_attribute_value(a)) for a in node.attribute if a.name == "axis"), 1)
        if scales.size == 1:
            return QuantParams((float(scales[0]),), (int(zero_points[0]),), 0), dtype
        return QuantParams(tuple(float(s) for s in scales), tuple(int(z) for z in zero_points), axis), dtype

    def _implied_type(self, node: onnx.NodeProto) -> np.dtype:
        """The integer type of a Q/DQ without a zero point: DQ's input type, or uint8 for Q (ONNX defaults)."""
        if node.op_type == "DequantizeLinear":
            source = node.input[0]
            if source in self.constants:
                return np.dtype(self.constants[source].dtype)
            producer = self.producer.get(source)
            if producer is not None and producer.op_type == "QuantizeLinear":
                return self.qparams(producer)[1]
        return np.dtype(np.uint8)

    def read(self) -> QdqGraph:
        for node in self.nodes:
            if node.op_type == "DequantizeLinear" and node.input[0] in self.constants:
                self._constant_dq(node)
        for node in self.nodes:
            if node.op_type == "QuantizeLinear":
                self._quantize(node)
        for node in self.nodes:
            if node.op_type == "DequantizeLinear" and node.input[0] not in self.constants:
                source = node.input[0]
                if source not in self.tensors:
                    raise ExportError(f"{_where(node)} dequantizes {source!r}, which no QuantizeLinear makes; "
                                      "this QDQ pattern is not one wedge can export")
                params, _ = self.qparams(node)
                if not _same(params, self.tensors[source].quant):
                    raise ExportError(f"{_where(node)} dequantizes {source!r} with other parameters than it was "
                                      "quantized with; this QDQ pattern is not one wedge can export")
                self.alias[node.output[0]] = source
        inputs = self._inputs()
        compute: list[Node] = []
        for node in self.nodes:
            if node.op_type not in _QDQ_OPS:
                compute.append(self._compute(node))
            elif self._is_requantization(node):
                source = self._resolve(node.input[0])
                compute.append(Node(node.name or f"requantize_{node.output[0]}", "QuantizeLinear", (source,),
                                    (node.output[0],)))
        outputs = self._outputs()
        return QdqGraph(self.graph.name or self.label, dict(self.tensors), tuple(compute), inputs, outputs,
                        self.opset)

    def _constant_dq(self, node: onnx.NodeProto) -> None:
        params, dtype = self.qparams(node)
        data = self.constants[node.input[0]].astype(np.int64)
        if dtype == np.uint8:
            data = data - 128
        target = np.int32 if dtype == np.int32 else np.int8
        self.tensors[node.output[0]] = Tensor(node.output[0], tuple(data.shape), np.dtype(target), params,
                                              data.astype(target))

    def _quantize(self, node: onnx.NodeProto) -> None:
        params, dtype = self.qparams(node)
        if params.per_axis:
            raise ExportError(f"{_where(node)} quantizes an activation per channel; TFLite int8 activations "
                              "have one scale and zero point")
        if dtype == np.int32:
            raise ExportError(f"{_where(node)} quantizes an activation to int32; TFLite int8 export needs int8")
        name = node.output[0]
        source = node.input[0]
        self.tensors[name] = Tensor(name, self.shape(source, node), np.dtype(np.int8), params)
        if self._is_requantization(node):
            return  # Q(DQ(x)) onto another grid: a node of its own
        if source in self.alias:
            # Writers may give each reader its own Q/DQ pair; on one grid they are the same tensor.
            if not _same(params, self.tensors[self.alias[source]].quant):
                raise ExportError(f"{_where(node)}: {source!r} is quantized twice on different grids; this QDQ "
                                  "pattern is not one wedge can export")
            self.alias[name] = self.alias[source]
            return
        self.alias[source] = name

    def _is_requantization(self, node: onnx.NodeProto) -> bool:
        producer = self.producer.get(node.input[0])
        return (node.op_type == "QuantizeLinear" and producer is not None
                and producer.op_type == "DequantizeLinear" and producer.input[0] not in self.constants)

    def _inputs(self) -> tuple[GraphIO, ...]:
        initializers = set(self.constants)
        result: list[GraphIO] = []
        for value in self.graph.input:
            if value.name in initializers:
                continue
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
            users = self.consumers.get(value.name, [])
            if not users:
                continue
            other = next((u for u in users if u.op_type != "QuantizeLinear"), None)
            if other is not None:
                raise ExportError(f"input {value.name!r} feeds {_where(other)} in float, without a QuantizeLinear; "
                                  "quantize the float model with wedge quantize --format tflite, which quantizes "
                                  "every op's inputs, or keep that node float (--keep-float)")
            result.append(GraphIO(value.name, self.alias[value.name], dtype))
        if not result:
            raise ExportError(f"{self.label} has no quantized input: is it an int8 QDQ model from wedge quantize?")
        return tuple(result)

    def _resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def _compute(self, node: onnx.NodeProto) -> Node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.domain not in ("", "ai.onnx"):
            raise ExportError(f"{_where(node)} is a '{node.domain}' op, which has no TFLite builtin; "
                              "quantize the model without contrib-op fusion")
        inputs: list[str] = []
        for name in node.input:
            if not name:
                inputs.append("")
                continue
            resolved = self._resolve(name)
            if resolved not in self.tensors:
                if name in self.constants and node.name in self.float_nodes:
                    value = self.constants[name]  # a float island's weights stay float
                    self.tensors[name] = Tensor(name, tuple(value.shape), value.dtype, None, value)
                elif name in self.constants:
                    value = self.constants[name]
                    self.tensors[name] = Tensor(name, tuple(value.shape), value.dtype, None, value)
                else:
                    raise ExportError(f"{_where(node)} reads {name!r}, a float tensor with no quantization "
                                      "parameters; this QDQ pattern is not one wedge can export")
            inputs.append(resolved)
        outputs: list[str] = []
        graph_outputs = {o.name for o in self.graph.output}
        for name in node.output:
            resolved = self._resolve(name)
            if not name or (resolved == name and name not in self.consumers and name not in graph_outputs):
                outputs.append("")  # an optional output nobody reads (Dropout's mask)
                continue
            if resolved == name and node.name in self.float_nodes:
                # A float island's output that stays float (read by another float node, or a model output).
                self.tensors[name] = Tensor(name, self.shape(name, node), np.dtype(np.float32))
            elif resolved == name:
                # No QuantizeLinear follows: an op ORT left in float between quantized ones.
                known = [self.tensors[i].quant for i in inputs if i and self.tensors[i].quant is not None
                         and not self.tensors[i].constant]
                params = float_path_params(node.op_type, known)
                if params is None:
                    raise ExportError(f"{_where(node)} makes {name!r} in float with no QuantizeLinear after it, and "
                                      "its int8 parameters cannot be inferred; this QDQ pattern is not one wedge "
                                      "can export")
                self.tensors[name] = Tensor(name, self.shape(name, node), np.dtype(np.int8), params)
            outputs.append(resolved)
        return Node(node.name or f"{node.op_type}_{outputs[0]}", node.op_type, tuple(inputs), tuple(outputs), attrs,
                    keep_float=node.name in self.float_nodes)

    def _outputs(self) -> tuple[GraphIO, ...]:
        result: list[GraphIO] = []
        for value in self.graph.output:
            tensor = self._resolve(value.name)
            if tensor in self.tensors and self.tensors[tensor].quant is None and not self.tensors[tensor].constant:
                raise ExportError(f"output {value.name!r} comes from a node kept float; TFLite export needs int8 "
                                  "model outputs: keep an earlier node float instead, or use --format onnx")
            if tensor not in self.tensors or self.tensors[tensor].constant:
                raise ExportError(f"output {value.name!r} is not an int8 tensor of the graph; this QDQ pattern is "
                                  "not one wedge can export")
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
            result.append(GraphIO(value.name, tensor, dtype))
        return tuple(result)


def _same(a: QuantParams | None, b: QuantParams | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.zero_points == b.zero_points and np.allclose(a.scales, b.scales, rtol=1e-6, atol=0)


def read_qdq(path: Path, float_nodes: Iterable[str] = ()) -> QdqGraph:
    """The int8 QDQ model at `path` as a QdqGraph; `float_nodes` are the nodes quantize left float on purpose
    (--keep-float). Anything it cannot pair up is an ExportError."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError, but truncated files raise others
        raise ExportError(f"cannot read {path.name} as ONNX: {first_line(exc)}") from None
    if not any(n.op_type in _QDQ_OPS for n in model.graph.node):
        raise ExportError(f"{path.name} has no QuantizeLinear/DequantizeLinear: export the int8 QDQ model "
                          "that wedge quantize writes, not the float one")
    _fix_batch(model)
    return _Reader(model, path.name, frozenset(float_nodes)).read()
