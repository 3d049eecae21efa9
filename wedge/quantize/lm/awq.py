"""Activation-aware scaling (AWQ, Lin et al. 2023) for 4-bit blocks, in numpy: per input channel a scale s that
makes the channels carrying large activations coarser-rounded less, folded into the op before; then per block
the clipping range that minimises the output error.

Both searches score a candidate by the change of the layer's outputs on calibration text, computed from the
input Gram matrix (exact over every calibration token, whatever their number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.blockquant import block_grid, fake_quantize, output_error, padded_blocks

SCALE_GRID: Final = 20  # ratios 0, 1/20, ..., 19/20 as AutoAWQ searches them
CLIP_RATIOS: Final = tuple(float(r) for r in np.linspace(1.0, 0.5, 11))
CLIP_ROW_CHUNK: Final = 4096  # rows per step of the clip search: bounds its memory on a 49k-row LM head


@dataclass(frozen=True)
class ScaleSearch:
    """The chosen per-channel scale and the output error with it and without any (s = 1)."""

    scale: NDArray[np.float32]
    error: float
    plain_error: float


def fake_quantize_weight(weight: NDArray[np.floating], block_size: int,
                         clip: NDArray[np.floating] | None = None) -> NDArray[np.float32]:
    """`weight` [out, in] rounded to 4-bit blocks and back (clipped per block when `clip` is given)."""
    blocks = padded_blocks(weight, block_size)
    scale, zero = block_grid(blocks, clip)
    return fake_quantize(blocks, scale, zero).reshape(weight.shape[0], -1)[:, :weight.shape[1]]


def _tie(scale: NDArray[np.float64], tie: NDArray[np.int64] | None) -> NDArray[np.float64]:
    # Channels that one folded scale must serve (o_proj inputs of heads sharing a KV head) get one value: the
    # geometric mean of what each would have had.
    if tie is None:
        return scale
    groups = int(tie.max()) + 1
    logs = np.bincount(tie, weights=np.log(scale), minlength=groups) / np.bincount(tie, minlength=groups)
    return np.exp(logs)[tie]


def search_scales(weight: NDArray[np.floating], gram: NDArray[np.floating], x_mean: NDArray[np.floating],
                  block_size: int, tie: NDArray[np.int64] | None = None) -> ScaleSearch:
    """AWQ's grid search over s = x_mean^a / w_mean^(1-a) for the weights [out, in] that read one input.

    x_mean is the mean |activation| per input channel, w_mean the mean of |w| relative to its block's max
    (AutoAWQ's "duo" scaling). s = 1 is a candidate too, so the result is never worse than plain rounding.
    """
    weight = np.asarray(weight, np.float32)
    magnitude = np.abs(padded_blocks(weight, block_size))
    w_mean = (magnitude / (magnitude.max(axis=-1, keepdims=True) + 1e-6)).reshape(weight.shape[0], -1)
    w_mean = w_mean[:, :weight.shape[1]].mean(axis=0).astype(np.float64)
    x_mean = np.asarray(x_mean, np.float64)
    plain = output_error(weight - fake_quantize_weight(weight, block_size), gram)
    best = ScaleSearch(np.ones(weight.shape[1], np.float32), plain, plain)
    for step in range(SCALE_GRID):
        ratio = step / SCALE_GRID
        scale = np.maximum(x_mean ** ratio / (w_mean ** (1 - ratio) + 1e-4), 1e-4)
        scale = _tie(scale / np.sqrt(scale.max() * scale.min()), tie).astype(np.float32)
        candidate = fake_quantize_weight(weight * scale, block_size) / scale
        error = output_error(weight - candidate, gram)
        if error < best.error:
            best = ScaleSearch(scale, error, plain)
    return best


def search_clip(weight: NDArray[np.floating], gram: NDArray[np.floating], block_size: int) -> NDArray[np.float32]:
    """Per (row, block) the ratio of max|w| to clip to, among CLIP_RATIOS, that moves the block's share of the
    outputs least (each block judged on its own inputs' Gram block, as AWQ's clip search does)."""
    blocks = padded_blocks(weight, block_size)
    out, count, size = blocks.shape
    padded = np.zeros((count * size, count * size), np.float32)
    padded[:gram.shape[0], :gram.shape[1]] = gram
    diagonal = np.stack([padded[i * size:(i + 1) * size, i * size:(i + 1) * size] for i in range(count)])
    best_ratio = np.ones((out, count), np.float32)
    for first in range(0, out, CLIP_ROW_CHUNK):
        rows = blocks[first:first + CLIP_ROW_CHUNK]
        best_error = np.full(rows.shape[:2], np.inf)
        for ratio in CLIP_RATIOS:
            clip = np.full(rows.shape[:2], ratio, np.float32)
            scale, zero = block_grid(rows, clip)
            delta = (rows - fake_quantize(rows, scale, zero)).transpose(1, 0, 2)  # [blocks, rows, size]
            error = np.sum((delta @ diagonal) * delta, axis=-1).T  # [rows, blocks]
            better = error < best_error
            best_error = np.where(better, error, best_error)
            best_ratio[first:first + CLIP_ROW_CHUNK][better] = ratio
    return best_ratio
