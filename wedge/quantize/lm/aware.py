"""Calibrated 4-bit weights for a Llama decoder, one layer at a time: AWQ scales + clipping, GPTQ rounding, or
AWQ's scales with GPTQ's rounding.

Calibration text runs through the model in numpy; for each layer the inputs of its projections are captured,
reduced to Gram matrices and mean magnitudes, the layer's weights are quantized from them, and the text then
goes on through the *quantized* layer, so each layer is calibrated on what the ones before it really output.
Only one layer's activations are alive at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.awq import search_clip, search_scales
from wedge.quantize.lm.blockquant import BlockQuantized, output_error, quantize_blocks
from wedge.quantize.lm.gptq import gptq_quantize
from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights
from wedge.quantize.lm.options import Algorithm
from wedge.quantize.lm.reference import Rotary, layer_forward, rms_norm

# AWQ leaves q and k unclipped: attention scores are sensitive to their extremes (AutoAWQ skips them too).
_UNCLIPPED: Final = ("q_proj", "k_proj")


@dataclass(frozen=True)
class _Group:
    """Projections that read one captured input, and where an AWQ scale on that input is folded."""

    capture: str
    names: tuple[str, ...]
    fold: str  # a norm weight (divided by s) or a projection (its output rows divided by s)


_GROUPS: Final = (_Group("attn_in", ("q_proj", "k_proj", "v_proj"), "input_layernorm"),
                  _Group("o_in", ("o_proj",), "v_proj"),
                  _Group("mlp_in", ("gate_proj", "up_proj"), "post_attention_layernorm"),
                  _Group("down_in", ("down_proj",), "up_proj"))


@dataclass(frozen=True)
class AwareResult:
    """The weights to build the graph from (AWQ's folded norms, dequantized projections), the 4-bit blocks of
    every quantized projection, and the calibration output error against plain rounding."""

    weights: LlamaWeights
    quantized: dict[str, BlockQuantized]
    error: float
    rtn_error: float

    @property
    def error_ratio(self) -> float:
        return self.error / self.rtn_error if self.rtn_error else 1.0


def _v_rows_of_o_inputs(config: LlamaConfig) -> NDArray[np.int64]:
    # o_proj input channel (head h, dim d) reads v row (h // group, d): with grouped-query attention several
    # heads share a v row, so a scale folded into v must be one value for all of them.
    group = config.num_heads // config.num_kv_heads
    heads = np.arange(config.num_heads * config.head_dim) // config.head_dim
    dims = np.arange(config.num_heads * config.head_dim) % config.head_dim
    return (heads // group) * config.head_dim + dims


class _Calibrator:
    """The per-layer work, with the weights being rewritten in `self.w`."""

    def __init__(self, weights: LlamaWeights, method: Algorithm, block_size: int) -> None:
        self.config = weights.config
        self.original = weights.tensors
        self.w = {name: np.asarray(a, np.float32) for name, a in weights.tensors.items()}
        self.method = method
        self.block_size = block_size
        self.quantized: dict[str, BlockQuantized] = {}
        self.error = 0.0
        self.rtn_error = 0.0
        self.o_tie = _v_rows_of_o_inputs(self.config)
        self._v_rows = np.unique(self.o_tie, return_index=True)[1]  # one o_proj input per v row
        self._row_scale: dict[str, NDArray[np.float32]] = {}

    def _fold(self, target: str, scale: NDArray[np.float32]) -> None:
        """Divide the op before by AWQ's scale: a norm's weight, or a projection's output rows (and bias)."""
        if not target.endswith("_proj"):
            self.w[target] = self.w[target] / scale
            return
        rows = scale[self._v_rows] if target.endswith("v_proj") else scale
        self.w[target] = self.w[target] / rows[:, None]
        if target + ".bias" in self.w:
            self.w[target + ".bias"] = self.w[target + ".bias"] / rows
        self._row_scale[target] = self._row_scale.get(target, np.ones_like(rows)) * rows

    def quantize(self, groups: list[tuple[tuple[str, ...], NDArray[np.floating], str | None, NDArray[np.int64] | None]],
                 ) -> None:
        """Quantize groups of projections, each (names, their captured input [..., in], the op to fold an AWQ
        scale into, channels tied to one scale): all scales first (AutoAWQ's order), then every rounding."""
        prepared = []
        for names, inputs, fold, tie in groups:
            flat = inputs.reshape(-1, inputs.shape[-1]).astype(np.float32)
            # Accumulated in float64: fp32 sums over thousands of tokens swamp the small entries beside the
            # outlier channels, and GPTQ inverts this matrix (SmolLM2, awq+gptq int4 in blocks of 32: +8.7%
            # perplexity with an fp32 Gram, +5.9% with this one).
            wide = flat.astype(np.float64)
            gram = (wide.T @ wide / flat.shape[0]).astype(np.float32)
            scale = np.ones(flat.shape[1], np.float32)
            if self.method.scales_activations:
                stacked = np.concatenate([self.w[n] for n in names], axis=0)
                scale = search_scales(stacked, gram, np.abs(flat).mean(axis=0), self.block_size, tie).scale
                if fold is not None:
                    self._fold(fold, scale)
                for n in names:
                    self.w[n] = self.w[n] * scale
            prepared.append((names, gram, scale))
        for names, gram, scale in prepared:
            scaled_gram = gram / np.outer(scale, scale)
            stacked_blocks = None
            if self.method.compensates_rounding:
                # GPTQ rows are independent: the projections reading one input go through it together.
                stacked_blocks = gptq_quantize(np.concatenate([self.w[n] for n in names], axis=0), scaled_gram,
                                               self.block_size)
            first = 0
            for n in names:
                weight = self.w[n]
                if stacked_blocks is not None:
                    chosen = stacked_blocks.rows(first, first + weight.shape[0])
                    first += weight.shape[0]
                elif not n.endswith(_UNCLIPPED):
                    chosen = quantize_blocks(weight, self.block_size, search_clip(weight, scaled_gram, self.block_size))
                else:
                    chosen = quantize_blocks(weight, self.block_size)
                self.quantized[n] = chosen
                self.w[n] = chosen.dequantize()
                # Scored on the source model's terms: what the folded, rounded weight computes from the
                # unscaled input, against the source weight, beside round-to-nearest of the source weight.
                rows = self._row_scale.get(n, np.ones(weight.shape[0], np.float32))
                original = np.asarray(self.original[n], np.float32)
                self.error += output_error(original - rows[:, None] * self.w[n] / scale, gram)
                self.rtn_error += output_error(original - quantize_blocks(original, self.block_size).dequantize(),
                                               gram)


def quantize_activation_aware(weights: LlamaWeights, calibration: NDArray[np.int64], method: Algorithm,
                              block_size: int, include_lm_head: bool = True,
                              on_layer: Callable[[int], None] | None = None) -> AwareResult:
    """AWQ, GPTQ or AWQ+GPTQ 4-bit blocks for every projection (and the LM head unless it is kept at int8),
    calibrated on token windows `calibration` [windows, tokens]."""
    if not method.calibrated:
        raise ValueError(f"{method} is not a calibrated 4-bit method")
    config = weights.config
    work = _Calibrator(weights, method, block_size)
    rotary = Rotary.make(config, 0, calibration.shape[1], np.float32)
    x = work.w["embed_tokens"][calibration]
    for layer in range(config.num_layers):
        prefix = f"layers.{layer}."
        captured: dict[str, NDArray[np.floating]] = {}
        layer_forward(work.w, config, layer, x, rotary, capture=captured)
        work.quantize([(tuple(prefix + n for n in g.names), captured[g.capture], prefix + g.fold,
                        work.o_tie if g.capture == "o_in" else None) for g in _GROUPS])
        del captured
        x, _ = layer_forward(work.w, config, layer, x, rotary)
        x = x.astype(np.float32)
        if on_layer is not None:
            on_layer(1)
    if include_lm_head:
        hidden = rms_norm(x, work.w["norm"], config.rms_norm_eps).astype(np.float32)
        work.w["lm_head"] = np.array(work.w["lm_head"], np.float32)  # never the (tied) embedding array itself
        work.quantize([(("lm_head",), hidden, "norm", None)])
    if on_layer is not None:
        on_layer(1)
    return AwareResult(weights=LlamaWeights(config, work.w), quantized=work.quantized, error=work.error,
                       rtn_error=work.rtn_error)
