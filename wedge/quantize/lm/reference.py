"""A plain numpy forward pass of the Llama decoder, with a KV cache: the yardstick for the ONNX graph's logits.

Written for clarity, in float64 by default, so a difference from the ONNX logits is the graph's fault.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.llama import LlamaWeights, rope_tables


@dataclass(frozen=True)
class LayerCache:
    """Keys (after rotary) and values of one layer: [batch, kv_heads, positions, head_dim]."""

    key: NDArray[np.floating]
    value: NDArray[np.floating]


def rms_norm(x: NDArray[np.floating], weight: NDArray[np.floating], eps: float) -> NDArray[np.floating]:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rotate_half(x: NDArray[np.floating]) -> NDArray[np.floating]:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def silu(x: NDArray[np.floating]) -> NDArray[np.floating]:
    return x / (1.0 + np.exp(-x))


def reference_forward(weights: LlamaWeights, input_ids: NDArray[np.integer],
                      past: list[LayerCache] | None = None,
                      dtype: type[np.floating] = np.float64) -> tuple[NDArray[np.floating], list[LayerCache]]:
    """Logits [batch, seq, vocab] for `input_ids` [batch, seq] after `past`, and the grown cache."""
    cfg = weights.config
    w = {name: array.astype(dtype) for name, array in weights.tensors.items()}
    batch, seq = input_ids.shape
    start = 0 if not past else past[0].key.shape[2]
    cos, sin = rope_tables(cfg, start + seq)
    cos, sin = cos[start:].astype(dtype), sin[start:].astype(dtype)
    group = cfg.num_heads // cfg.num_kv_heads
    total = start + seq
    # Query i (absolute position start+i) sees keys 0..start+i.
    causal = np.arange(total)[None, :] <= (start + np.arange(seq))[:, None]
    mask = np.where(causal, 0.0, -np.inf).astype(dtype)

    x = w["embed_tokens"][input_ids]
    present: list[LayerCache] = []
    for layer in range(cfg.num_layers):
        p = f"layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm"], cfg.rms_norm_eps)
        q = (h @ w[p + "q_proj"].T).reshape(batch, seq, cfg.num_heads, cfg.head_dim).transpose(0, 2, 1, 3)
        k = (h @ w[p + "k_proj"].T).reshape(batch, seq, cfg.num_kv_heads, cfg.head_dim).transpose(0, 2, 1, 3)
        v = (h @ w[p + "v_proj"].T).reshape(batch, seq, cfg.num_kv_heads, cfg.head_dim).transpose(0, 2, 1, 3)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past:
            k = np.concatenate([past[layer].key.astype(dtype), k], axis=2)
            v = np.concatenate([past[layer].value.astype(dtype), v], axis=2)
        present.append(LayerCache(k, v))
        keys = np.repeat(k, group, axis=1)
        values = np.repeat(v, group, axis=1)
        scores = q @ keys.transpose(0, 1, 3, 2) / np.sqrt(cfg.head_dim) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        attn = (probs @ values).transpose(0, 2, 1, 3).reshape(batch, seq, cfg.num_heads * cfg.head_dim)
        x = x + attn @ w[p + "o_proj"].T
        h = rms_norm(x, w[p + "post_attention_layernorm"], cfg.rms_norm_eps)
        x = x + (silu(h @ w[p + "gate_proj"].T) * (h @ w[p + "up_proj"].T)) @ w[p + "down_proj"].T
    x = rms_norm(x, w["norm"], cfg.rms_norm_eps)
    return x @ w["lm_head"].T, present
