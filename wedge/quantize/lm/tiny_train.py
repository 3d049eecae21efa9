"""Train the tiny Llama fixture with exact numpy gradients: forward, backward, Adam, on Python's own docs.

`python -m wedge.quantize.lm.tiny_train` rewrites `tiny_slm.onnx`: the same bytes on the same machine, in about
a minute on 2 idle cores (400 steps of 640 tokens).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights, rope_tables, tensor_shapes
from wedge.quantize.lm.llama_onnx import export_llama
from wedge.quantize.lm.tiny import TINY_CONFIG, TINY_MODEL_PATH, TINY_VOCAB_SIZE, training_text
from wedge.quantize.lm.tokenizer import TextTokenizer

Grads = dict[str, NDArray[Any]]
SEED: Final = 7


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 400
    batch: int = 10
    sequence: int = 64
    learning_rate: float = 6e-3
    warmup_steps: int = 40
    clip_norm: float = 1.0
    seed: int = SEED


def init_params(config: LlamaConfig, rng: np.random.Generator, dtype: type = np.float32) -> dict[str, NDArray[Any]]:
    """Small normal weights, unit norms; projections into the residual stream scaled down by depth (GPT-2)."""
    params = {}
    residual = 0.02 / math.sqrt(2 * config.num_layers)
    for name, shape in tensor_shapes(config).items():
        if len(shape) == 1:
            params[name] = np.ones(shape, dtype)
        else:
            std = residual if name.endswith(("o_proj", "down_proj")) else 0.02
            params[name] = (rng.standard_normal(shape) * std).astype(dtype)
    return params


def _rms_forward(x: NDArray[Any], w: NDArray[Any], eps: float) -> tuple[NDArray[Any], tuple[Any, ...]]:
    r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    n = x * r
    return n * w, (n, r, w)


def _rms_backward(dy: NDArray[Any], cache: tuple[Any, ...]) -> tuple[NDArray[Any], NDArray[Any]]:
    n, r, w = cache
    dn = dy * w
    dx = r * (dn - n * np.mean(dn * n, axis=-1, keepdims=True))
    return dx, np.sum(dy * n, axis=tuple(range(dy.ndim - 1)))


def _rot(x: NDArray[Any]) -> NDArray[Any]:
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def _rot_t(y: NDArray[Any]) -> NDArray[Any]:
    h = y.shape[-1] // 2
    return np.concatenate([y[..., h:], -y[..., :h]], axis=-1)


def loss_and_grads(params: dict[str, NDArray[Any]], tokens: NDArray[np.int64],
                   config: LlamaConfig) -> tuple[float, Grads]:
    """Mean next-token cross-entropy of `tokens` [batch, seq + 1] and its gradient for every parameter."""
    cfg = config
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    batch, seq = inputs.shape
    nh, nkv, hd = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    group = nh // nkv
    dtype = params["embed_tokens"].dtype
    cos, sin = (t.astype(dtype) for t in rope_tables(cfg, seq))
    scale = 1.0 / math.sqrt(hd)
    mask = np.triu(np.full((seq, seq), -1e9, dtype), k=1)
    x = params["embed_tokens"][inputs]
    caches = []
    for layer in range(cfg.num_layers):
        p = f"layers.{layer}."
        h, c_in = _rms_forward(x, params[p + "input_layernorm"], cfg.rms_norm_eps)
        q = (h @ params[p + "q_proj"].T).reshape(batch, seq, nh, hd).transpose(0, 2, 1, 3)
        k = (h @ params[p + "k_proj"].T).reshape(batch, seq, nkv, hd).transpose(0, 2, 1, 3)
        v = (h @ params[p + "v_proj"].T).reshape(batch, seq, nkv, hd).transpose(0, 2, 1, 3)
        qr, kr = q * cos + _rot(q) * sin, k * cos + _rot(k) * sin
        kx, vx = np.repeat(kr, group, axis=1), np.repeat(v, group, axis=1)
        s = qr @ kx.transpose(0, 1, 3, 2) * scale + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        probs = s / s.sum(axis=-1, keepdims=True)
        o = (probs @ vx).transpose(0, 2, 1, 3).reshape(batch, seq, nh * hd)
        x1 = x + o @ params[p + "o_proj"].T
        h2, c_post = _rms_forward(x1, params[p + "post_attention_layernorm"], cfg.rms_norm_eps)
        g, u = h2 @ params[p + "gate_proj"].T, h2 @ params[p + "up_proj"].T
        sg = 1.0 / (1.0 + np.exp(-g))
        act = g * sg * u
        x = x1 + act @ params[p + "down_proj"].T
        caches.append((h, c_in, qr, kx, vx, probs, o, h2, c_post, g, u, sg, act))
    hf, c_final = _rms_forward(x, params["norm"], cfg.rms_norm_eps)
    logits = hf @ params["lm_head"].T
    top = logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits - top)
    total = exp.sum(axis=-1, keepdims=True)
    count = batch * seq
    picked = np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    loss = float(np.mean(np.log(total[..., 0]) + top[..., 0] - picked))

    grads: Grads = {}
    dlogits = exp / total
    np.put_along_axis(dlogits, targets[..., None], np.take_along_axis(dlogits, targets[..., None], axis=-1) - 1, -1)
    dlogits /= count
    grads["lm_head"] = dlogits.reshape(count, -1).T @ hf.reshape(count, -1)
    dx, grads["norm"] = _rms_backward(dlogits @ params["lm_head"], c_final)
    for layer in reversed(range(cfg.num_layers)):
        p = f"layers.{layer}."
        h, c_in, qr, kx, vx, probs, o, h2, c_post, g, u, sg, act = caches[layer]
        grads[p + "down_proj"] = dx.reshape(count, -1).T @ act.reshape(count, -1)
        dact = dx @ params[p + "down_proj"]
        du = dact * g * sg
        dg = dact * u * sg * (1.0 + g * (1.0 - sg))
        grads[p + "gate_proj"] = dg.reshape(count, -1).T @ h2.reshape(count, -1)
        grads[p + "up_proj"] = du.reshape(count, -1).T @ h2.reshape(count, -1)
        dh2 = dg @ params[p + "gate_proj"] + du @ params[p + "up_proj"]
        dx1_norm, grads[p + "post_attention_layernorm"] = _rms_backward(dh2, c_post)
        dx1 = dx + dx1_norm
        grads[p + "o_proj"] = dx1.reshape(count, -1).T @ o.reshape(count, -1)
        do = (dx1 @ params[p + "o_proj"]).reshape(batch, seq, nh, hd).transpose(0, 2, 1, 3)
        dprobs = do @ vx.transpose(0, 1, 3, 2)
        dvx = probs.transpose(0, 1, 3, 2) @ do
        ds = probs * (dprobs - np.sum(dprobs * probs, axis=-1, keepdims=True)) * scale
        dqr = ds @ kx
        dkx = ds.transpose(0, 1, 3, 2) @ qr
        dkr = dkx.reshape(batch, nkv, group, seq, hd).sum(axis=2)
        dv = dvx.reshape(batch, nkv, group, seq, hd).sum(axis=2)
        dq = dqr * cos + _rot_t(dqr * sin)
        dk = dkr * cos + _rot_t(dkr * sin)
        dq, dk, dv = (t.transpose(0, 2, 1, 3).reshape(count, -1) for t in (dq, dk, dv))
        flat_h = h.reshape(count, -1)
        grads[p + "q_proj"], grads[p + "k_proj"], grads[p + "v_proj"] = dq.T @ flat_h, dk.T @ flat_h, dv.T @ flat_h
        dh = dq @ params[p + "q_proj"] + dk @ params[p + "k_proj"] + dv @ params[p + "v_proj"]
        dx_norm, grads[p + "input_layernorm"] = _rms_backward(dh.reshape(batch, seq, -1), c_in)
        dx = dx1 + dx_norm
    grads["embed_tokens"] = np.zeros_like(params["embed_tokens"])
    np.add.at(grads["embed_tokens"], inputs.reshape(-1), dx.reshape(count, -1))
    return loss, grads


class Adam:
    """Adam with decoupled weight decay on matrices (AdamW) and a global gradient-norm clip."""

    def __init__(self, params: dict[str, NDArray[Any]], weight_decay: float = 0.01) -> None:
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0
        self.weight_decay = weight_decay

    def step(self, params: dict[str, NDArray[Any]], grads: Grads, lr: float, clip_norm: float) -> None:
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
        factor = min(1.0, clip_norm / (norm + 1e-6))
        self.t += 1
        b1, b2 = 0.9, 0.95
        for name, grad in grads.items():
            grad = grad * factor
            self.m[name] = b1 * self.m[name] + (1 - b1) * grad
            self.v[name] = b2 * self.v[name] + (1 - b2) * grad * grad
            m_hat = self.m[name] / (1 - b1 ** self.t)
            v_hat = self.v[name] / (1 - b2 ** self.t)
            if params[name].ndim > 1:
                params[name] *= 1 - lr * self.weight_decay
            params[name] -= (lr * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(params[name].dtype)


def _learning_rate(step: int, options: TrainOptions) -> float:
    if step < options.warmup_steps:
        return options.learning_rate * (step + 1) / options.warmup_steps
    progress = (step - options.warmup_steps) / max(1, options.steps - options.warmup_steps)
    return options.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(config: LlamaConfig, ids: NDArray[np.int64], options: TrainOptions,
          log: Any = None) -> tuple[LlamaWeights, list[float]]:
    """Train from scratch on random windows of `ids`; returns the weights and the loss of every step."""
    rng = np.random.default_rng(options.seed)
    params = init_params(config, rng)
    adam = Adam(params)
    losses = []
    for step in range(options.steps):
        starts = rng.integers(0, ids.size - options.sequence - 1, size=options.batch)
        batch = np.stack([ids[s:s + options.sequence + 1] for s in starts])
        loss, grads = loss_and_grads(params, batch, config)
        adam.step(params, grads, _learning_rate(step, options), options.clip_norm)
        losses.append(loss)
        if log is not None and (step % 100 == 0 or step == options.steps - 1):
            print(f"step {step:4d}  loss {loss:.3f}", file=log)
    return LlamaWeights(config, params), losses


def build_tiny(path: Path, options: TrainOptions | None = None, log: Any = None) -> Path:
    """Tokenizer and model trained on Python's pydoc topics, written as the fp32 ONNX fixture at `path`."""
    options = options or TrainOptions()
    text = training_text()
    tokenizer = TextTokenizer.train_byte_level([text], TINY_VOCAB_SIZE)
    ids = np.asarray(tokenizer.encode(text), np.int64)
    config = TINY_CONFIG
    if tokenizer.vocab_size != config.vocab_size:
        raise RuntimeError(f"the tokenizer learned {tokenizer.vocab_size} tokens, the config wants {config.vocab_size}")
    weights, _ = train(config, ids, options, log)
    return export_llama(weights, path, tokenizer.to_json())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TINY_MODEL_PATH)
    parser.add_argument("--steps", type=int, default=TrainOptions.steps)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    build_tiny(args.out, TrainOptions(steps=args.steps), log=sys.stderr)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes) in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
