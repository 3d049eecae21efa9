"""Put 4-bit blocks computed in numpy (AWQ, GPTQ) into a Llama ONNX graph: each projection's MatMul becomes an
onnxruntime MatMulNBits node reading the packed codes, scales and zero points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import onnx
from onnx import helper, numpy_helper

from wedge.quantize.lm.blockquant import BlockQuantized, pack
from wedge.quantize.lm.llama_onnx import linear_node_name, linear_weight_name

MS_DOMAIN: Final = "com.microsoft"


def replace_with_nbits(model: onnx.ModelProto, quantized: Mapping[str, BlockQuantized], accuracy_level: int) -> None:
    """Swap the MatMul of every projection in `quantized` (by wedge tensor name) for MatMulNBits, in place."""
    by_node = {linear_node_name(tensor): tensor for tensor in quantized}
    graph = model.graph
    dropped = {linear_weight_name(tensor) for tensor in quantized}
    kept = [t for t in graph.initializer if t.name not in dropped]
    if len(kept) != len(graph.initializer) - len(dropped):
        raise ValueError("the graph lacks the weight of a quantized projection")
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = []
    for node in graph.node:
        tensor = by_node.get(node.name)
        if tensor is None:
            nodes.append(node)
            continue
        blocks = quantized[tensor]
        packed, scales, zero_points = pack(blocks)
        base = linear_weight_name(tensor)
        graph.initializer.extend([numpy_helper.from_array(packed, f"{base}_Q4"),
                                  numpy_helper.from_array(scales, f"{base}_scales"),
                                  numpy_helper.from_array(zero_points, f"{base}_zero_points")])
        nodes.append(helper.make_node(
            "MatMulNBits", [node.input[0], f"{base}_Q4", f"{base}_scales", f"{base}_zero_points"],
            list(node.output), name=f"{node.name}_Q4", domain=MS_DOMAIN, K=blocks.in_features,
            N=blocks.codes.shape[0], bits=4, block_size=blocks.block_size, accuracy_level=accuracy_level))
    missing = sorted(set(by_node) - {node.name for node in graph.node})
    if missing:
        raise ValueError(f"the graph has no node {missing[0]}")
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(op.domain == MS_DOMAIN for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
