"""BatchNormalization folded into the convolution before it, before quantizing: one int8 op, not two.

onnxruntime's graph optimizer does the same, but preprocessing runs without it when it fails on a model.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def fold_batch_norms(model: onnx.ModelProto) -> int:
    """Fold every inference-mode BatchNormalization whose input is a Conv's only output use into that Conv's
    weights and bias, in place; returns how many were folded."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    folded: list[onnx.NodeProto] = []
    for bn in graph.node:
        if bn.op_type != "BatchNormalization" or len([o for o in bn.output if o]) != 1:
            continue
        conv = producers.get(bn.input[0])
        if (conv is None or conv.op_type != "Conv" or readers.get(bn.input[0]) != 1 or bn.input[0] in outputs
                or conv.input[1] not in initializers or any(i not in initializers for i in bn.input[1:5])
                or (len(conv.input) > 2 and conv.input[2] and conv.input[2] not in initializers)):
            continue
        weights = numpy_helper.to_array(initializers[conv.input[1]]).astype(np.float64)
        if weights.dtype.kind != "f" or weights.shape[0] != numpy_helper.to_array(initializers[bn.input[1]]).size:
            continue
        scale, beta, mean, var = (numpy_helper.to_array(initializers[i]).astype(np.float64).reshape(-1)
                                  for i in bn.input[1:5])
        epsilon = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        multiplier = scale / np.sqrt(var + epsilon)
        has_bias = len(conv.input) > 2 and bool(conv.input[2])
        bias = numpy_helper.to_array(initializers[conv.input[2]]).astype(np.float64) if has_bias \
            else np.zeros(weights.shape[0])
        dtype = numpy_helper.to_array(initializers[conv.input[1]]).dtype
        new_weights = (weights * multiplier.reshape(-1, *([1] * (weights.ndim - 1)))).astype(dtype)
        new_bias = ((bias - mean) * multiplier + beta).astype(dtype)
        weight_name, bias_name = f"{conv.name or conv.output[0]}_bn_weights", f"{conv.name or conv.output[0]}_bn_bias"
        graph.initializer.extend([numpy_helper.from_array(new_weights, weight_name),
                                  numpy_helper.from_array(new_bias, bias_name)])
        del conv.input[1:]
        conv.input.extend([weight_name, bias_name])
        conv.output[0] = bn.output[0]
        folded.append(bn)
    for bn in folded:
        graph.node.remove(bn)
    if folded:
        used = {name for node in graph.node for name in node.input}
        kept = [i for i in graph.initializer if i.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return len(folded)
