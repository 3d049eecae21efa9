"""The 4-bit block grid of onnxruntime's MatMulNBits, in numpy: per block of `block_size` weights along the input
axis one fp32 scale and one 4-bit zero point, value = (code - zero) * scale.

The grid always holds 0 (a uint4 zero point puts it there) and spans the block's [min, max], possibly clipped.
`pack` lays codes, scales and zero points out exactly as MatMulNBits reads them: low nibble first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

LEVELS: Final = 15  # 4 bits: codes 0..15


@dataclass(frozen=True)
class BlockQuantized:
    """4-bit codes of a weight [out, in] in blocks along `in` (padded with zeros to whole blocks)."""

    codes: NDArray[np.uint8]  # [out, blocks * block_size]
    scales: NDArray[np.float32]  # [out, blocks]
    zeros: NDArray[np.uint8]  # [out, blocks]
    block_size: int
    in_features: int

    def rows(self, first: int, stop: int) -> BlockQuantized:
        """The blocks of output rows first..stop-1 (a stacked weight split back into its projections)."""
        return BlockQuantized(codes=self.codes[first:stop], scales=self.scales[first:stop],
                              zeros=self.zeros[first:stop], block_size=self.block_size, in_features=self.in_features)

    def dequantize(self) -> NDArray[np.float32]:
        out, padded = self.codes.shape
        blocks = self.codes.reshape(out, -1, self.block_size).astype(np.float32) - self.zeros[..., None]
        return (blocks * self.scales[..., None]).reshape(out, padded)[:, :self.in_features]


def padded_blocks(weight: NDArray[np.floating], block_size: int) -> NDArray[np.float32]:
    """`weight` [out, in] as [out, blocks, block_size], zero-padded on the input axis."""
    out, inputs = weight.shape
    pad = -inputs % block_size
    if pad:
        weight = np.pad(weight, ((0, 0), (0, pad)))
    return np.asarray(weight, np.float32).reshape(out, -1, block_size)


def grid(low: NDArray[np.floating], high: NDArray[np.floating]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Scale and (integer-valued) zero point of blocks whose values span [low, high]."""
    low = np.minimum(low, 0.0)
    high = np.maximum(high, 0.0)
    scale = (high - low) / LEVELS
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)  # an all-zero block: any scale, codes = zero
    zero = np.clip(np.round(-low / scale), 0, LEVELS).astype(np.float32)
    return scale, zero


def encode(values: NDArray[np.floating], scale: NDArray[np.floating], zero: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Codes of `values` on a grid (broadcasting scale and zero)."""
    return np.clip(np.round(values / scale) + zero, 0, LEVELS).astype(np.uint8)


def fake_quantize(values: NDArray[np.floating], scale: NDArray[np.floating],
                  zero: NDArray[np.floating]) -> NDArray[np.float32]:
    """`values` rounded onto the grid and back to floats."""
    return ((encode(values, scale, zero).astype(np.float32) - zero) * scale).astype(np.float32)


def block_grid(blocks: NDArray[np.floating], clip: NDArray[np.floating] | None = None,
               ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Scale and zero [out, blocks, 1] of each block; `clip` [out, blocks] shrinks its range to +-clip*max|w|."""
    low, high = blocks.min(axis=-1, keepdims=True), blocks.max(axis=-1, keepdims=True)
    if clip is not None:
        bound = np.abs(blocks).max(axis=-1, keepdims=True) * clip[..., None]
        low, high = np.maximum(low, -bound), np.minimum(high, bound)
    return grid(low, high)


def quantize_blocks(weight: NDArray[np.floating], block_size: int,
                    clip: NDArray[np.floating] | None = None) -> BlockQuantized:
    """Round-to-nearest 4-bit blocks of `weight` [out, in] (what onnxruntime's quantizer does, with `clip`
    optional): the starting point of AWQ, the baseline of GPTQ."""
    blocks = padded_blocks(weight, block_size)
    scale, zero = block_grid(blocks, clip)
    codes = encode(blocks, scale, zero).reshape(weight.shape[0], -1)
    codes[:, weight.shape[1]:] = 0  # padding, never read: zero as onnxruntime leaves it
    return BlockQuantized(codes=codes, scales=scale[..., 0],
                          zeros=zero[..., 0].astype(np.uint8), block_size=block_size, in_features=weight.shape[1])


def pack(quantized: BlockQuantized) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.uint8]]:
    """MatMulNBits' B [N, blocks, block_size / 2], scales [N, blocks] and zero_points [N, ceil(blocks / 2)]."""
    out, padded = quantized.codes.shape
    blocks = padded // quantized.block_size
    codes = quantized.codes.reshape(out, blocks, quantized.block_size // 2, 2)
    packed = (codes[..., 0] | (codes[..., 1] << 4)).astype(np.uint8)
    zeros = quantized.zeros
    if blocks % 2:
        zeros = np.pad(zeros, ((0, 0), (0, 1)), constant_values=8)  # the unused nibble, as onnxruntime fills it
    pairs = zeros.reshape(out, -1, 2)
    zero_points = (pairs[..., 0] | (pairs[..., 1] << 4)).astype(np.uint8)
    return packed, np.ascontiguousarray(quantized.scales, np.float32), zero_points


def output_error(delta: NDArray[np.floating], gram: NDArray[np.floating]) -> float:
    """||X delta^T||^2 / tokens for a weight error `delta` [out, in], from the input Gram matrix X^T X / tokens:
    how far the layer's outputs move on the calibration text."""
    delta = np.asarray(delta, np.float32)
    return float(np.sum((delta @ np.asarray(gram, np.float32)) * delta, dtype=np.float64))
