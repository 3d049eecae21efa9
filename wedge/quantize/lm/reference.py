"""A plain numpy forward pass of the Llama decoder, with a KV cache: the yardstick for the ONNX graph's logits.

Written for clarity, in float64 by default, so a difference from the ONNX logits is the graph's fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights, rope_tables


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


@dataclass(frozen=True)
class Rotary:
    """What a forward pass over positions start..start+seq needs besides the weights: cos, sin and the mask."""

    cos: NDArray[np.floating]
    sin: NDArray[np.floating]
    mask: NDArray[np.floating]

    @classmethod
    def make(cls, config: LlamaConfig, start: int, seq: int, dtype: type[np.floating]) -> Rotary:
        cos, sin = rope_tables(config, start + seq)
        total = start + seq
        # Query i (absolute position start+i) sees keys 0..start+i.
        causal = np.arange(total)[None, :] <= (start + np.arange(seq))[:, None]
        return cls(cos[start:].astype(dtype), sin[start:].astype(dtype),
                   np.where(causal, 0.0, -np.inf).astype(dtype))


def linear(w: Mapping[str, NDArray[np.floating]], config: LlamaConfig, name: str,
           x: NDArray[np.floating]) -> NDArray[np.floating]:
    """x @ W^T (+ bias): `name` as in LlamaWeights (layers.0.q_proj)."""
    out = x @ w[name].T
    return out + w[name + ".bias"] if name.rsplit(".", 1)[-1] in config.linear_biases else out


def layer_forward(w: Mapping[str, NDArray[np.floating]], config: LlamaConfig, layer: int, x: NDArray[np.floating],
                  rotary: Rotary, past: LayerCache | None = None,
                  capture: dict[str, NDArray[np.floating]] | None = None,
                  ) -> tuple[NDArray[np.floating], LayerCache]:
    """One decoder layer on x [batch, seq, hidden]; `capture` receives the inputs of its projections
    (attn_in: q/k/v, o_in: o_proj, mlp_in: gate/up, down_in: down_proj), which calibration needs."""
    cfg = config
    batch, seq, _ = x.shape
    p = f"layers.{layer}."
    group = cfg.num_heads // cfg.num_kv_heads
    h = rms_norm(x, w[p + "input_layernorm"], cfg.rms_norm_eps)
    q = linear(w, cfg, p + "q_proj", h).reshape(batch, seq, cfg.num_heads, cfg.head_dim).transpose(0, 2, 1, 3)
    k = linear(w, cfg, p + "k_proj", h).reshape(batch, seq, cfg.num_kv_heads, cfg.head_dim).transpose(0, 2, 1, 3)
    v = linear(w, cfg, p + "v_proj", h).reshape(batch, seq, cfg.num_kv_heads, cfg.head_dim).transpose(0, 2, 1, 3)
    q = q * rotary.cos + rotate_half(q) * rotary.sin
    k = k * rotary.cos + rotate_half(k) * rotary.sin
    if past is not None:
        k = np.concatenate([past.key.astype(k.dtype), k], axis=2)
        v = np.concatenate([past.value.astype(v.dtype), v], axis=2)
    keys = np.repeat(k, group, axis=1)
    values = np.repeat(v, group, axis=1)
    scores = q @ keys.transpose(0, 1, 3, 2) / np.sqrt(cfg.head_dim) + rotary.mask
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs = scores / scores.sum(axis=-1, keepdims=True)
    attn = (probs @ values).transpose(0, 2, 1, 3).reshape(batch, seq, cfg.num_heads * cfg.head_dim)
    x = x + linear(w, cfg, p + "o_proj", attn)
    h2 = rms_norm(x, w[p + "post_attention_layernorm"], cfg.rms_norm_eps)
    act = silu(linear(w, cfg, p + "gate_proj", h2)) * linear(w, cfg, p + "up_proj", h2)
    if capture is not None:
        capture.update(attn_in=h, o_in=attn, mlp_in=h2, down_in=act)
    return x + linear(w, cfg, p + "down_proj", act), LayerCache(k, v)


def reference_forward(weights: LlamaWeights, input_ids: NDArray[np.integer],
                      past: list[LayerCache] | None = None,
                      dtype: type[np.floating] = np.float64) -> tuple[NDArray[np.floating], list[LayerCache]]:
    """Logits [batch, seq, vocab] for `input_ids` [batch, seq] after `past`, and the grown cache."""
    cfg = weights.config
    w = {name: array.astype(dtype) for name, array in weights.tensors.items()}
    start = 0 if not past else past[0].key.shape[2]
    rotary = Rotary.make(cfg, start, input_ids.shape[1], dtype)
    x = w["embed_tokens"][input_ids]
    present: list[LayerCache] = []
    for layer in range(cfg.num_layers):
        x, cache = layer_forward(w, cfg, layer, x, rotary, past[layer] if past else None)
        present.append(cache)
    x = rms_norm(x, w["norm"], cfg.rms_norm_eps)
    return x @ w["lm_head"].T, present
