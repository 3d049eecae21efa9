"""What each layer of the int8 model costs on a board: MACs, weight bytes (flash) and activation bytes (RAM).

Read from the int8 QDQ graph, as ST's `analyze` tabulates a network: weights at the width they are stored in
(int8, int32 biases, float32 where a node stayed float), the layer's output at the width it is kept in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import prod
from pathlib import Path
from typing import Any, Final

import onnx

from wedge.runtime.artifacts.macs import onnx_node_macs

# Nodes that only carry quantization or constants: not layers.
_NOT_LAYERS: Final = frozenset({"QuantizeLinear", "DequantizeLinear", "Constant"})
# Activations TFLite and CMSIS-NN fuse into the op before them: one layer, one output buffer.
_FUSED_ACTIVATIONS: Final = frozenset({"Relu", "Clip", "Relu6"})
# A one-value constant is an op's parameter (a clip bound, an epsilon, an exponent), not a weight.
_SCALAR_MAX: Final = 1
_FLOAT_BYTES: Final = 4


@dataclass(frozen=True)
class LayerCost:
    """One layer of the int8 model: `node` names its fp32 nodes ("conv + relu" when fused), as the per-layer
    SQNR does; `int8` is False for a layer that computes in float."""

    node: str
    op_type: str
    output_shape: tuple[int, ...]
    macs: int
    weight_bytes: int
    activation_bytes: int
    int8: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "output_shape": list(self.output_shape)}


def layer_costs(int8_path: Path) -> list[LayerCost]:
    """The layers of the int8 QDQ model at `int8_path`, in graph order."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(int8_path), load_external_data=False))
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    shapes: dict[str, tuple[int, ...]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape"):
            # A symbolic dim is the batch: a board runs one sample at a time.
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                                       for d in tensor_type.shape.dim)

    def weight(name: str) -> onnx.TensorProto | None:
        if name in initializers:
            return initializers[name]
        source = producers.get(name)
        if source is not None and source.op_type == "DequantizeLinear" and source.input[0] in initializers:
            return initializers[source.input[0]]
        return None

    def quantized(tensor: str) -> bool:
        return any(reader.op_type == "QuantizeLinear" for reader in consumers.get(tensor, []))

    layers: list[LayerCost] = []
    for node in graph.node:
        if node.op_type in _NOT_LAYERS or not node.output:
            continue
        out = node.output[0]
        weights = [w for w in (weight(i) for i in node.input if i) if w is not None and prod(w.dims) > _SCALAR_MAX]
        stored = sum(_tensor_bytes(w) for w in weights)
        elements = prod(shapes.get(out, ()))
        is_int8 = quantized(out) or any(w.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8) for w in weights)
        cost = LayerCost(
            node=node.name or out,
            op_type=node.op_type,
            output_shape=shapes.get(out, ()),
            macs=onnx_node_macs(node, shapes.get) or 0,
            weight_bytes=stored,
            activation_bytes=elements * (1 if quantized(out) else _FLOAT_BYTES),
            int8=is_int8,
        )
        previous = layers[-1] if layers else None
        source = producers.get(node.input[0]) if node.input else None
        if (node.op_type in _FUSED_ACTIVATIONS and previous is not None and source is not None
                and (source.name or source.output[0]) == previous.node.split(" + ")[-1]
                and len(consumers.get(node.input[0], [])) == 1):
            layers[-1] = LayerCost(
                node=f"{previous.node} + {cost.node}", op_type=f"{previous.op_type} + {cost.op_type}",
                output_shape=cost.output_shape, macs=previous.macs + cost.macs,
                weight_bytes=previous.weight_bytes + cost.weight_bytes, activation_bytes=cost.activation_bytes,
                int8=previous.int8 or cost.int8)
            continue
        layers.append(cost)
    return layers


def _tensor_bytes(tensor: onnx.TensorProto) -> int:
    itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return prod(tensor.dims) * itemsize
