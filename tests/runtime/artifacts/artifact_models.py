"""Hand-built models whose parameter and MAC counts are worked out by hand in the docstrings.

Imported by name from the artifact tests; the shared MLPerf Tiny models are located here too.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as schema
from onnx import TensorProto, helper


def _weights(name: str, shape: list[int], dtype: type = np.float32) -> TensorProto:
    values = np.arange(int(np.prod(shape)), dtype=np.float64) % 7 - 3
    return onnx.numpy_helper.from_array(values.reshape(shape).astype(dtype), name)


def _model(graph: onnx.GraphProto, opset: int) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# x [1,3,8,8] -> Conv 3x3 (4 filters, bias, pad 1)  : 4*8*8 outputs x 3*3*3 = 6912 MACs, 108 + 4 params
#             -> depthwise Conv 3x3 (group 4)        : 4*8*8 outputs x 1*3*3 = 2304 MACs, 36 params
#             -> ConvTranspose 2x2 stride 2 (4 -> 2) : 4*8*8 inputs x 2*2*2  = 2048 MACs, 32 params
#             -> Reshape [1, 512] (int64 shape constant, not a parameter)
#             -> Gemm transB (10 x 512, bias)        : 10 outputs x 512      = 5120 MACs, 5120 + 10 params
CONV_MODEL_MACS = 6912 + 2304 + 2048 + 5120
CONV_MODEL_PARAMS = 108 + 4 + 36 + 32 + 5120 + 10


def onnx_conv_model() -> bytes:
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("ConvTranspose", ["c2", "w3"], ["c3"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["c3", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w4", "b4"], ["y"], transB=1),
    ]
    initializers = [
        _weights("w1", [4, 3, 3, 3]),
        _weights("b1", [4]),
        _weights("w2", [4, 1, 3, 3]),
        _weights("w3", [4, 2, 2, 2]),
        onnx.numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape"),
        _weights("w4", [10, 512]),
        _weights("b4", [10]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        initializers,
    )
    return _model(graph, 13)


# x [batch,8,16] -> 1-D Conv k3 (6 filters, pad 1) : 6*16 outputs x 8*3 = 2304 MACs, 144 params
#                -> MatMul [16,5]                   : 6*5 outputs x 16  = 480 MACs, 80 params
#   c, Transpose(c) -> batched MatMul [6,16]x[16,6] : 6*6 outputs x 16  = 576 MACs
# MACs are per sample: the symbolic batch counts as 1.
SEQUENCE_MODEL_MACS = 2304 + 480 + 576
SEQUENCE_MODEL_PARAMS = 144 + 80


def onnx_sequence_model() -> bytes:
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], kernel_shape=[3], pads=[1, 1]),
        helper.make_node("MatMul", ["c", "w2"], ["y"]),
        helper.make_node("Transpose", ["c"], ["ct"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["c", "ct"], ["gram"]),
    ]
    graph = helper.make_graph(
        nodes,
        "sequence",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8, 16])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 6, 5]),
            helper.make_tensor_value_info("gram", TensorProto.FLOAT, ["batch", 6, 6]),
        ],
        [_weights("w1", [6, 8, 3]), _weights("w2", [16, 5])],
    )
    return _model(graph, 13)


# Int8 QDQ: x -Q(0.02, 3)-DQ-> MatMul with DQ(int8 W [4,3], per-axis scales) -> Add DQ(int32 bias [3])
# -> Q(0.05, -2) -DQ-> y. Params: 12 int8 weights + 3 int32 biases = 15 (scales, zero points excluded),
# stored in 12 + 3*4 = 24 bytes. MACs: 3 outputs x 4 = 12.
QDQ_MODEL_PARAMS = 15
QDQ_MODEL_WEIGHT_BYTES = 24


def onnx_qdq_model() -> bytes:
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero"], ["wd"], axis=1),
        helper.make_node("MatMul", ["xd", "wd"], ["xw"]),
        helper.make_node("DequantizeLinear", ["b", "b_scale", "b_zero"], ["bd"], axis=0),
        helper.make_node("Add", ["xw", "bd"], ["sum"]),
        helper.make_node("QuantizeLinear", ["sum", "y_scale", "y_zero"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zero"], ["y"]),
    ]
    w_scale = np.array([0.01, 0.02, 0.03], dtype=np.float32)
    initializers = [
        onnx.numpy_helper.from_array(np.array(0.02, dtype=np.float32), "x_scale"),
        onnx.numpy_helper.from_array(np.array(3, dtype=np.int8), "x_zero"),
        _weights("w", [4, 3], np.int8),
        onnx.numpy_helper.from_array(w_scale, "w_scale"),
        onnx.numpy_helper.from_array(np.zeros(3, dtype=np.int8), "w_zero"),
        onnx.numpy_helper.from_array(np.array([10, -20, 30], dtype=np.int32), "b"),
        onnx.numpy_helper.from_array(w_scale * 0.02, "b_scale"),
        onnx.numpy_helper.from_array(np.zeros(3, dtype=np.int32), "b_zero"),
        onnx.numpy_helper.from_array(np.array(0.05, dtype=np.float32), "y_scale"),
        onnx.numpy_helper.from_array(np.array(-2, dtype=np.int8), "y_zero"),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializers,
    )
    return _model(graph, 13)


# The TFLite twin of onnx_conv_model in NHWC, plus ops that check naming and TFLM support:
#   CONV_2D 3x3 (4 filters, bias)      : 6912 MACs, 108 + 4 params
#   DEPTHWISE_CONV_2D 3x3 (bias)       : 2304 MACs, 36 + 4 params
#   TRANSPOSE_CONV 2x2 s2 (4 -> 2)     : 2048 MACs, 32 params (its int32 output-shape input is not a param)
#   RESHAPE [1,512] (int32 shape const, not a param)
#   FULLY_CONNECTED 10 x 512 (bias)    : 5120 MACs, 5120 + 10 params
#   BATCH_MATMUL adj_x [1,16,6]' x [1,16,5] (second input a constant): 6*5 x 16 = 480 MACs, 80 params
#   LOCAL_RESPONSE_NORMALIZATION (no TFLM kernel), CUSTOM "MyPostProcess" (unknown to TFLM)
TFLITE_MODEL_MACS = 6912 + 2304 + 2048 + 5120 + 480
TFLITE_MODEL_PARAMS = 108 + 4 + 36 + 4 + 32 + 5120 + 10 + 80


def tflite_shapes_model() -> bytes:
    model = schema.ModelT()
    model.version = 3
    ops = schema.BuiltinOperator
    # (deprecated_builtin_code, builtin_code): old files set only the first, codes >= 127 only the second.
    codes = [
        (ops.CONV_2D, 0),
        (ops.DEPTHWISE_CONV_2D, ops.DEPTHWISE_CONV_2D),
        (ops.TRANSPOSE_CONV, ops.TRANSPOSE_CONV),
        (ops.RESHAPE, ops.RESHAPE),
        (ops.FULLY_CONNECTED, ops.FULLY_CONNECTED),
        (ops.BATCH_MATMUL, ops.BATCH_MATMUL),
        (ops.LOCAL_RESPONSE_NORMALIZATION, ops.LOCAL_RESPONSE_NORMALIZATION),
        (ops.CUSTOM, ops.CUSTOM),
        (ops.PLACEHOLDER_FOR_GREATER_OP_CODES, ops.GELU),
    ]
    model.operatorCodes = []
    for deprecated, builtin in codes:
        opcode = schema.OperatorCodeT()
        opcode.deprecatedBuiltinCode, opcode.builtinCode, opcode.version = deprecated, builtin, 1
        if builtin == ops.CUSTOM:
            opcode.customCode = b"MyPostProcess"
        model.operatorCodes.append(opcode)

    model.buffers = [schema.BufferT()]
    tensors: list[schema.TensorT] = []

    def tensor(name: str, shape: list[int], const: bool = False, kind: int = schema.TensorType.FLOAT32) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type = name.encode(), shape, kind
        buffer = schema.BufferT()
        if const:
            itemsize = 4
            buffer.data = np.zeros(int(np.prod(shape)) * itemsize, dtype=np.uint8)
        model.buffers.append(buffer)
        t.buffer = len(model.buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    x = tensor("x", [1, 8, 8, 3])
    c1 = tensor("c1", [1, 8, 8, 4])
    c2 = tensor("c2", [1, 8, 8, 4])
    c3 = tensor("c3", [1, 16, 16, 2])
    flat = tensor("flat", [1, 512])
    fc = tensor("fc", [1, 10])
    a = tensor("a", [1, 16, 6])
    mm = tensor("mm", [1, 6, 5])
    lrn = tensor("lrn", [1, 10])
    post = tensor("post", [1, 10])
    gelu = tensor("gelu", [1, 10])

    def op(code: int, inputs: list[int], outputs: list[int], options: object = None, kind: int = 0) -> schema.OperatorT:
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, inputs, outputs
        if options is not None:
            o.builtinOptions, o.builtinOptionsType = options, kind
        return o

    batch_matmul = schema.BatchMatMulOptionsT()
    batch_matmul.adjX = True
    subgraph = schema.SubGraphT()
    subgraph.operators = [
        op(0, [x, tensor("w1", [4, 3, 3, 3], True), tensor("b1", [4], True)], [c1]),
        op(1, [c1, tensor("w2", [1, 3, 3, 4], True), tensor("b2", [4], True)], [c2]),
        op(2, [tensor("oshape", [4], True, schema.TensorType.INT32), tensor("w3", [2, 2, 2, 4], True), c2], [c3]),
        op(3, [c3, tensor("shape", [2], True, schema.TensorType.INT32)], [flat]),
        op(4, [flat, tensor("w4", [10, 512], True), tensor("b4", [10], True)], [fc]),
        op(5, [a, tensor("w5", [1, 16, 5], True)], [mm], batch_matmul, schema.BuiltinOptions.BatchMatMulOptions),
        op(6, [fc], [lrn]),
        op(7, [lrn], [post]),
        op(8, [post], [gelu]),
    ]
    subgraph.tensors = tensors
    subgraph.inputs, subgraph.outputs = [x, a], [gelu, mm]
    model.subgraphs = [subgraph]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
