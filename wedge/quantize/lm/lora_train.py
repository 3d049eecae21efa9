"""Fine-tune a LoRA adapter on the tiny Llama with exact numpy gradients, and write it in PEFT's format.

The gradient of each adapted weight W = W0 + s B A comes from `tiny_train.loss_and_grads`; the chain rule gives
dA = s B^T dW and dB = s dW A^T. `python -m wedge.quantize.lm.lora_train OUT_DIR` fine-tunes the tiny model
on the docstrings of a few standard-library modules (text it never saw: it learned the language reference).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.llama import LINEAR_TENSORS, LlamaWeights
from wedge.quantize.lm.lora import save_adapter
from wedge.quantize.lm.tiny_train import Adam, loss_and_grads

FINE_TUNE_MODULES: Final = ("argparse", "textwrap", "string", "json", "csv", "shlex")


def fine_tune_text() -> str:
    """The module docstrings of a few standard-library modules: Python's own text, outside pydoc's topics."""
    import importlib

    return "\n\n".join((importlib.import_module(name).__doc__ or "").strip() for name in FINE_TUNE_MODULES)


@dataclass(frozen=True)
class LoraTrainOptions:
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = LINEAR_TENSORS
    steps: int = 120
    batch: int = 8
    sequence: int = 64
    learning_rate: float = 5e-3
    seed: int = 11


def train_lora(weights: LlamaWeights, ids: NDArray[np.int64],
               options: LoraTrainOptions) -> tuple[dict[str, tuple[NDArray[Any], NDArray[Any]]], list[float]]:
    """LoRA pairs (A [r, in], B [out, r]) for every targeted projection of every layer, and the loss per step.

    B starts at zero (the adapter starts as the identity, as PEFT initialises it), A uniform in +-1/sqrt(in).
    """
    if ids.size <= options.sequence + 1:
        raise ValueError(f"{ids.size} tokens are too few for sequences of {options.sequence}")
    rng = np.random.default_rng(options.seed)
    scale = options.alpha / options.rank
    base = dict(weights.tensors)
    adapters: dict[str, NDArray[Any]] = {}
    names = [f"layers.{layer}.{t}" for layer in range(weights.config.num_layers) for t in options.targets]
    for name in names:
        out_features, in_features = base[name].shape
        bound = 1.0 / math.sqrt(in_features)
        adapters[f"{name}/A"] = rng.uniform(-bound, bound, (options.rank, in_features)).astype(np.float32)
        adapters[f"{name}/B"] = np.zeros((out_features, options.rank), np.float32)
    adam = Adam(adapters, weight_decay=0.0)
    losses = []
    for _ in range(options.steps):
        starts = rng.integers(0, ids.size - options.sequence - 1, size=options.batch)
        batch = np.stack([ids[s:s + options.sequence + 1] for s in starts])
        params = dict(base)
        for name in names:
            params[name] = base[name] + scale * (adapters[f"{name}/B"] @ adapters[f"{name}/A"])
        loss, grads = loss_and_grads(params, batch, weights.config)
        adapter_grads = {}
        for name in names:
            a, b = adapters[f"{name}/A"], adapters[f"{name}/B"]
            adapter_grads[f"{name}/A"] = scale * (b.T @ grads[name])
            adapter_grads[f"{name}/B"] = scale * (grads[name] @ a.T)
        adam.step(adapters, adapter_grads, options.learning_rate, clip_norm=1.0)
        losses.append(loss)
    return {name: (adapters[f"{name}/A"], adapters[f"{name}/B"]) for name in names}, losses


def write_trained_adapter(weights: LlamaWeights, ids: NDArray[np.int64], folder: Path,
                          options: LoraTrainOptions | None = None, base_model: str | None = None) -> list[float]:
    """Train (see `train_lora`) and save the adapter in PEFT's format; returns the losses."""
    options = options or LoraTrainOptions()
    pairs, losses = train_lora(weights, ids, options)
    save_adapter(folder, pairs, r=options.rank, lora_alpha=options.alpha, base_model=base_model)
    return losses


def main(argv: list[str] | None = None) -> int:
    from wedge.quantize.lm.llama_onnx import read_weights
    from wedge.quantize.lm.session import DecoderSession
    from wedge.quantize.lm.tiny import TINY_MODEL_PATH

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=LoraTrainOptions.steps)
    args = parser.parse_args(argv)
    tokenizer = DecoderSession(TINY_MODEL_PATH).tokenizer()
    ids = np.asarray(tokenizer.encode(fine_tune_text()), np.int64)
    losses = write_trained_adapter(read_weights(TINY_MODEL_PATH), ids, args.out,
                                   LoraTrainOptions(steps=args.steps), base_model="tiny_slm")
    print(f"wrote {args.out}: loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-10:]):.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
