"""Build the fp32 ONNX graph of a Llama decoder (RMSNorm, rotary embeddings, GQA attention, SwiGLU) with a KV cache.

I/O contract (what wedge's runner, quantizers and `wedge generate` rely on):
  inputs   input_ids                    int64 [batch, sequence]
           position_ids                 int64 [batch, sequence]   absolute positions, < context_length
           past_key_values.N.key/value  float [batch, kv_heads, past_sequence, head_dim]   (past_sequence may be 0)
  outputs  logits                       float [batch, sequence, vocab]
           present.N.key/value          float [batch, kv_heads, past_sequence + sequence, head_dim]
Keys are cached after the rotary rotation. Query i attends to cache slots 0..position_ids[i], so a batch must
hold contiguous sequences that start at position 0 (no padding). Metadata: `wedge.lm.config` (the LlamaConfig
as JSON) and `wedge.lm.tokenizer` (tokenizer.json), so the file carries what generation needs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Final

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights
from wedge.quantize.lm.rope import attention_factor, dynamic_exponents, inv_freq

# 21: int4 tensors (the 4-bit embedding's GatherBlockQuantized) need it, and the quantizers would otherwise
# raise the opset of a finished graph under ops whose signature changed.
OPSET: Final = 21
CONFIG_KEY: Final = "wedge.lm.config"
TOKENIZER_KEY: Final = "wedge.lm.tokenizer"
CHAT_TEMPLATE_KEY: Final = "wedge.lm.chat_template"
NAME_KEY: Final = "wedge.lm.name"
METADATA_KEYS: Final = (CONFIG_KEY, TOKENIZER_KEY, CHAT_TEMPLATE_KEY, NAME_KEY)
LM_HEAD_NODE: Final = "lm_head/MatMul"
EMBEDDING_NODE: Final = "embed_tokens/Gather"
EMBEDDING_WEIGHT: Final = "model.embed_tokens.weight"  # quantizers name their tables after it (..._Q4, ...)
# Protobuf cannot serialize a message of 2 GiB or more; past this the weights go to a side file.
EXTERNAL_DATA_BYTES: Final = 2_000_000_000
_FLOAT: Final = TensorProto.FLOAT


def linear_node_name(tensor: str) -> str:
    """The MatMul node of a projection (`layers.0.q_proj` -> `layers.0/q_proj/MatMul`, `lm_head`)."""
    if tensor == "lm_head":
        return LM_HEAD_NODE
    scope, _, name = tensor.rpartition(".")
    return f"{scope}/{name}/MatMul"


def linear_weight_name(tensor: str) -> str:
    """The initializer holding a projection's weight, transposed to [in, out] for MatMul."""
    return "lm_head.weight_t" if tensor == "lm_head" else f"model.{tensor}.weight_t"


def past_key_name(layer: int, kind: str) -> str:
    return f"past_key_values.{layer}.{kind}"


def present_name(layer: int, kind: str) -> str:
    return f"present.{layer}.{kind}"


class _Builder:
    """Appends nodes with unique, readable names; initializers are kept apart from the graph until the end."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._count = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], scope: str, name: str | None = None, outputs: int = 1,
           **attrs: object) -> str | list[str]:
        self._count += 1
        node_name = name or f"{scope}/{op_type}_{self._count}"
        names = [f"{node_name}_out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=node_name, **attrs))
        return names[0] if outputs == 1 else names


def _rms_norm(b: _Builder, x: str, weight: str, eps: str, scope: str) -> str:
    squared = b.op("Mul", [x, x], scope)
    mean = b.op("ReduceMean", [squared, "axis_last"], scope, keepdims=1)
    inv = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [mean, eps], scope)], scope)], scope)
    return b.op("Mul", [b.op("Mul", [x, inv], scope), weight], scope)


def _rotate(b: _Builder, x: str, cos: str, sin: str, half: str, scope: str) -> str:
    first, second = b.op("Split", [x, half], scope, outputs=2, axis=-1)
    rotated = b.op("Concat", [b.op("Neg", [second], scope), first], scope, axis=-1)
    return b.op("Add", [b.op("Mul", [x, cos], scope), b.op("Mul", [rotated, sin], scope)], scope)


def _rotary(b: _Builder, cfg: LlamaConfig, total: str) -> tuple[str, str]:
    """cos and sin [batch, 1, seq, head_dim] from the positions, computed in the graph in fp32 as transformers
    does (a precomputed table would cost context x head_dim x 8 bytes: 64 MB at Llama 3's 131072 positions)."""
    scaling = cfg.rope_scaling
    freq = b.const("rope_inv_freq", inv_freq(cfg.rope_theta, cfg.head_dim, scaling, cfg.context_length)
                   .astype(np.float32))
    if scaling is not None and scaling.kind == "dynamic":
        # Dynamic NTK: the base grows with the sequence once it passes the original context (ratio r >= 1).
        original = float(scaling.original_context or cfg.context_length)
        length = b.op("Cast", [total], "rope", to=_FLOAT)
        ratio = b.op("Sub", [b.op("Mul", [length, b.const("rope_dyn_slope", np.array(scaling.factor / original,
                                                                                     np.float32))], "rope"),
                            b.const("rope_dyn_offset", np.array(scaling.factor - 1.0, np.float32))], "rope")
        ratio = b.op("Max", [ratio, b.const("rope_one", np.array(1.0, np.float32))], "rope")
        exponents = b.const("rope_dyn_exponents", dynamic_exponents(cfg.head_dim).astype(np.float32))
        freq = b.op("Mul", [freq, b.op("Pow", [ratio, exponents], "rope")], "rope")
    positions = b.op("Unsqueeze", [b.op("Cast", ["position_ids"], "rope", to=_FLOAT), "axis_last"], "rope")
    angles = b.op("Mul", [positions, freq], "rope")  # [batch, seq, head_dim / 2]
    angles = b.op("Concat", [angles, angles], "rope", axis=-1)
    cos, sin = b.op("Cos", [angles], "rope"), b.op("Sin", [angles], "rope")
    factor = attention_factor(scaling)
    if factor != 1.0:
        scale = b.const("rope_attention_factor", np.array(factor, np.float32))
        cos, sin = b.op("Mul", [cos, scale], "rope"), b.op("Mul", [sin, scale], "rope")
    return (b.op("Unsqueeze", [cos, "axis_1"], "rope"), b.op("Unsqueeze", [sin, "axis_1"], "rope"))


def build_llama_graph(weights: LlamaWeights, tokenizer_json: str | None = None,
                      metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """The ONNX model of `weights` (fp32), following the I/O contract in this module's docstring; `metadata`
    adds entries such as the chat template (`CHAT_TEMPLATE_KEY`) and the model's name (`NAME_KEY`)."""
    cfg = weights.config
    b = _Builder()
    group = cfg.num_heads // cfg.num_kv_heads
    eps = b.const("rms_eps", np.array(cfg.rms_norm_eps, np.float32))
    half = b.const("rope_half", np.array([cfg.head_dim // 2, cfg.head_dim // 2], np.int64))
    q_shape = b.const("shape_q", np.array([0, 0, cfg.num_heads, cfg.head_dim], np.int64))
    kv_shape = b.const("shape_kv", np.array([0, 0, cfg.num_kv_heads, cfg.head_dim], np.int64))
    grouped = b.const("shape_grouped", np.array([0, cfg.num_kv_heads, group, -1, cfg.head_dim], np.int64))
    heads_shape = b.const("shape_heads", np.array([0, cfg.num_heads, -1, cfg.head_dim], np.int64))
    merged_shape = b.const("shape_merged", np.array([0, 0, cfg.num_heads * cfg.head_dim], np.int64))
    scale = b.const("attn_scale", np.array(1.0 / math.sqrt(cfg.head_dim), np.float32))
    zero = b.const("mask_zero", np.array(0.0, np.float32))
    # A large finite negative rather than -inf: a fully masked row then stays finite instead of NaN.
    neg = b.const("mask_neg", np.array(np.finfo(np.float32).min, np.float32))
    one_axis = b.const("axis_1", np.array([1], np.int64))
    mask_axes = b.const("axes_mask", np.array([1, 2], np.int64))
    last_axis = b.const("axis_last", np.array([-1], np.int64))
    i64_zero = b.const("i64_zero", np.array(0, np.int64))
    i64_one = b.const("i64_one", np.array(1, np.int64))
    seq_axis = b.const("axis_seq", np.array([2], np.int64))

    embed = b.const(EMBEDDING_WEIGHT, weights["embed_tokens"])
    x = b.op("Gather", [embed, "input_ids"], "embed_tokens", name=EMBEDDING_NODE, axis=0)

    # Causal mask from positions: key slot j is visible to a query at position p when j <= p.
    total = b.op("Gather", [b.op("Shape", [past_key_name(0, "key")], "mask"), seq_axis], "mask", axis=0)
    seq_len = b.op("Gather", [b.op("Shape", ["input_ids"], "mask"), one_axis], "mask", axis=0)
    total = b.op("Add", [total, seq_len], "mask")
    cos, sin = _rotary(b, cfg, total)  # [batch, 1, seq, head_dim]: broadcasts over heads
    slots = b.op("Range", [i64_zero, b.op("Squeeze", [total], "mask"), i64_one], "mask")
    visible = b.op("LessOrEqual", [slots, b.op("Unsqueeze", ["position_ids", last_axis], "mask")], "mask")
    mask = b.op("Unsqueeze", [b.op("Where", [visible, zero, neg], "mask"), mask_axes], "mask")  # [B,1,1,S,T]

    for layer in range(cfg.num_layers):
        s = f"layers.{layer}"

        def linear(inp: str, name: str, scope: str = s) -> str:
            tensor = f"{scope}.{name}"
            w = b.const(linear_weight_name(tensor), np.ascontiguousarray(weights[tensor].T))
            out = b.op("MatMul", [inp, w], scope, name=linear_node_name(tensor))
            if name not in cfg.linear_biases:
                return out
            bias = b.const(f"model.{scope}.{name}.bias", weights[f"{scope}.{name}.bias"])
            return b.op("Add", [out, bias], scope, name=f"{scope}/{name}/Add")

        norm_w = b.const(f"model.{s}.input_layernorm.weight", weights[f"{s}.input_layernorm"])
        h = _rms_norm(b, x, norm_w, eps, f"{s}/input_layernorm")
        q = b.op("Transpose", [b.op("Reshape", [linear(h, "q_proj"), q_shape], s)], s, perm=[0, 2, 1, 3])
        k = b.op("Transpose", [b.op("Reshape", [linear(h, "k_proj"), kv_shape], s)], s, perm=[0, 2, 1, 3])
        v = b.op("Transpose", [b.op("Reshape", [linear(h, "v_proj"), kv_shape], s)], s, perm=[0, 2, 1, 3])
        q = _rotate(b, q, cos, sin, half, f"{s}/rope_q")
        k = _rotate(b, k, cos, sin, half, f"{s}/rope_k")
        keys = b.op("Concat", [past_key_name(layer, "key"), k], s, axis=2)
        values = b.op("Concat", [past_key_name(layer, "value"), v], s, axis=2)
        b.nodes.append(helper.make_node("Identity", [keys], [present_name(layer, "key")], name=f"{s}/present_key"))
        b.nodes.append(helper.make_node("Identity", [values], [present_name(layer, "value")],
                                        name=f"{s}/present_value"))
        # GQA without copying the cache: queries grouped as [B, kv_heads, group, S, hd] broadcast against
        # keys [B, kv_heads, 1, T, hd].
        q5 = b.op("Reshape", [q, grouped], s)
        k5 = b.op("Unsqueeze", [keys, b.const(f"{s}.axis_group", np.array([2], np.int64))], s)
        v5 = b.op("Unsqueeze", [values, f"{s}.axis_group"], s)
        scores = b.op("MatMul", [q5, b.op("Transpose", [k5], s, perm=[0, 1, 2, 4, 3])], s, name=f"{s}/attn/QK")
        scores = b.op("Add", [b.op("Mul", [scores, scale], s), mask], s)
        probs = b.op("Softmax", [scores], s, axis=-1)
        attn = b.op("MatMul", [probs, v5], s, name=f"{s}/attn/PV")
        attn = b.op("Reshape", [b.op("Transpose", [b.op("Reshape", [attn, heads_shape], s)], s, perm=[0, 2, 1, 3]),
                                merged_shape], s)
        x = b.op("Add", [x, linear(attn, "o_proj")], s)

        post_w = b.const(f"model.{s}.post_attention_layernorm.weight", weights[f"{s}.post_attention_layernorm"])
        h = _rms_norm(b, x, post_w, eps, f"{s}/post_attention_layernorm")
        gate = linear(h, "gate_proj")
        act = b.op("Mul", [b.op("Mul", [gate, b.op("Sigmoid", [gate], s)], s), linear(h, "up_proj")], s)
        x = b.op("Add", [x, linear(act, "down_proj")], s)

    final_w = b.const("model.norm.weight", weights["norm"])
    h = _rms_norm(b, x, final_w, eps, "norm")
    head = b.const(linear_weight_name("lm_head"), np.ascontiguousarray(weights["lm_head"].T))
    b.nodes.append(helper.make_node("MatMul", [h, head], ["logits"], name=LM_HEAD_NODE))

    kv_dims = ["batch", cfg.num_kv_heads, "past_sequence", cfg.head_dim]
    out_dims = ["batch", cfg.num_kv_heads, "total_sequence", cfg.head_dim]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"])]
    outputs = [helper.make_tensor_value_info("logits", _FLOAT, ["batch", "sequence", cfg.vocab_size])]
    for layer in range(cfg.num_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(past_key_name(layer, kind), _FLOAT, kv_dims))
            outputs.append(helper.make_tensor_value_info(present_name(layer, kind), _FLOAT, out_dims))
    graph = helper.make_graph(b.nodes, "llama_decoder", inputs, outputs, initializer=b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="wedge")
    model.ir_version = 10  # the IR of opset 21
    props = {**(metadata or {}), CONFIG_KEY: json.dumps(cfg.to_dict())}
    if tokenizer_json is not None:
        props[TOKENIZER_KEY] = tokenizer_json
    helper.set_model_props(model, props)
    return model


def save_model(model: onnx.ModelProto, path: Path, external_data_bytes: int = EXTERNAL_DATA_BYTES) -> None:
    """Write `model`; when its weights reach `external_data_bytes`, they go to `<name>.data` beside it."""
    weight_bytes = sum(len(t.raw_data) for t in model.graph.initializer)
    path.parent.mkdir(parents=True, exist_ok=True)
    if weight_bytes >= external_data_bytes:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{path.name}.data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))


def export_llama(weights: LlamaWeights, path: Path, tokenizer_json: str | None = None,
                 external_data_bytes: int = EXTERNAL_DATA_BYTES, metadata: dict[str, str] | None = None) -> Path:
    """Build and write the fp32 ONNX decoder of `weights` to `path`."""
    save_model(build_llama_graph(weights, tokenizer_json, metadata), path, external_data_bytes)
    return path


def read_weights(path: Path) -> LlamaWeights:
    """The config and fp32 weights of a model this module built (the inverse of `build_llama_graph`)."""
    return weights_of(onnx.load(str(path)), str(path))


def weights_of(model: onnx.ModelProto, source: str) -> LlamaWeights:
    """`read_weights` for a loaded model; ValueError when it is not an fp32 graph wedge built."""
    config = read_config(model)
    if config is None:
        raise ValueError(f"{source} carries no {CONFIG_KEY} metadata: not built by wedge")
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    tensors = {}
    for name, array in arrays.items():
        if name.endswith("weight_t"):
            tensors[name.removeprefix("model.").removesuffix(".weight_t")] = np.ascontiguousarray(array.T)
        elif name.endswith(".weight"):
            tensors[name.removeprefix("model.").removesuffix(".weight")] = array
        elif name.endswith(".bias"):
            tensors[name.removeprefix("model.")] = array
    return LlamaWeights(config, tensors)


def read_config(model: onnx.ModelProto) -> LlamaConfig | None:
    """The LlamaConfig a wedge-built model carries in its metadata, or None for a model built elsewhere."""
    return config_from_json({p.key: p.value for p in model.metadata_props}.get(CONFIG_KEY))


def config_from_json(text: str | None) -> LlamaConfig | None:
    """The `wedge.lm.config` metadata value as a LlamaConfig; None when absent or not one."""
    if not text:
        return None
    try:
        return LlamaConfig.from_dict(json.loads(text))
    except (TypeError, ValueError):
        return None
