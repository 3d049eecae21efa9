"""Writes a trained numpy network as an ONNX graph (opset 13) with onnx.helper.

One node (or two) per layer, weights as float32 initializers, a symbolic batch dimension "N".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from wedge.samples.train import Conv, Dense, Flatten, GlobalAvgPool, Layer, MaxPool, Params, ReLU

OPSET: Final = 13
# Pinned rather than onnx.IR_VERSION, so the bytes do not change with the installed onnx and older
# runtimes (onnxruntime < 1.14, converters) still load the models.
IR_VERSION: Final = 8
PRODUCER_NAME: Final = "wedge.samples"
BATCH_DIM: Final = "N"


def _initializer(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)


def _layer_nodes(
    index: int, layer: Layer, params: Params, source: str
) -> tuple[list[onnx.NodeProto], list[TensorProto], str]:
    """The nodes and initializers computing `layer` from tensor `source`, and the name of its output."""
    # Exact types: a subclass may compute something else, and must not pass for its parent silently.
    prefix = f"{index}_{type(layer).__name__.lower()}"
    out = f"{prefix}_out"
    if type(layer) is Conv:
        inits = [_initializer(f"{prefix}.weight", params["weight"]), _initializer(f"{prefix}.bias", params["bias"])]
        node = helper.make_node(
            "Conv",
            [source, f"{prefix}.weight", f"{prefix}.bias"],
            [out],
            name=prefix,
            kernel_shape=list(layer.kernel),
            pads=[layer.padding] * (2 * layer.rank),
            strides=[1] * layer.rank,
        )
        return [node], inits, out
    if type(layer) is Dense:
        inits = [_initializer(f"{prefix}.weight", params["weight"]), _initializer(f"{prefix}.bias", params["bias"])]
        node = helper.make_node(
            "Gemm", [source, f"{prefix}.weight", f"{prefix}.bias"], [out], name=prefix, transB=1
        )
        return [node], inits, out
    if type(layer) is MaxPool:
        node = helper.make_node(
            "MaxPool", [source], [out], name=prefix, kernel_shape=list(layer.size), strides=list(layer.size)
        )
        return [node], [], out
    if type(layer) is ReLU:
        return [helper.make_node("Relu", [source], [out], name=prefix)], [], out
    if type(layer) is GlobalAvgPool:
        return [helper.make_node("GlobalAveragePool", [source], [out], name=prefix)], [], out
    if type(layer) is Flatten:
        return [helper.make_node("Flatten", [source], [out], name=prefix, axis=1)], [], out
    raise TypeError(f"no ONNX lowering for layer {layer!r}")


def to_onnx(
    network: Sequence[Layer],
    params: Sequence[Params],
    *,
    graph_name: str,
    input_name: str,
    input_shape: tuple[int, ...],
    output_name: str,
    output_size: int,
    doc: str,
    metadata: Mapping[str, str],
) -> onnx.ModelProto:
    """An opset-13 ONNX model computing `network`; `input_shape` excludes the batch dimension."""
    nodes: list[onnx.NodeProto] = []
    initializers: list[TensorProto] = []
    source = input_name
    for index, (layer, layer_params) in enumerate(zip(network, params, strict=True)):
        layer_nodes, layer_inits, source = _layer_nodes(index, layer, layer_params, source)
        nodes += layer_nodes
        initializers += layer_inits
    # The last layer writes straight into the graph output, so the output keeps its public name.
    nodes[-1].output[0] = output_name
    graph = helper.make_graph(
        nodes,
        graph_name,
        inputs=[helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [BATCH_DIM, *input_shape])],
        outputs=[helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [BATCH_DIM, output_size])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER_NAME,
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, dict(metadata))
    onnx.checker.check_model(model, full_check=True)
    return model
