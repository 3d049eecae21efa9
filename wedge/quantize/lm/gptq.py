"""Error-compensating 4-bit rounding (GPTQ, Frantar et al. 2022) in numpy, on MatMulNBits' block grid.

Columns (input channels) are rounded one at a time; each one's rounding error is spread over the columns not
yet rounded, weighted by the inverse Hessian of the layer's output error (2 X^T X), so later columns cancel
what earlier ones lost. Work goes in lazy batches of columns and in chunks of rows (rows are independent),
so memory stays at a few copies of one chunk whatever the layer's size.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.blockquant import BlockQuantized, encode, grid

DAMPING: Final = 0.01  # fraction of the mean Hessian diagonal added to it (the GPTQ paper's default)
LAZY_COLUMNS: Final = 128
ROW_CHUNK: Final = 8192


def _inverse_cholesky(gram: NDArray[np.floating], size: int) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """The upper Cholesky factor of H^-1 for H padded to `size` columns, and which columns never see input."""
    hessian = np.zeros((size, size), np.float64)
    hessian[:gram.shape[0], :gram.shape[1]] = gram
    dead = np.diag(hessian) == 0
    hessian[dead, dead] = 1.0
    hessian[np.diag_indices(size)] += DAMPING * float(np.mean(np.diag(hessian)))
    inverse = np.linalg.inv(hessian)
    inverse = (inverse + inverse.T) / 2
    return np.linalg.cholesky(inverse).T.astype(np.float32), dead


def gptq_quantize(weight: NDArray[np.floating], gram: NDArray[np.floating], block_size: int) -> BlockQuantized:
    """GPTQ rounding of `weight` [out, in] to 4-bit blocks of `block_size` along `in`; `gram` = X^T X / tokens
    of the layer's input on calibration text. Each block's scale and zero point come from the block's weights
    as the errors of the blocks before it left them."""
    out, inputs = weight.shape
    padded = inputs + (-inputs % block_size)
    lazy = max(block_size, LAZY_COLUMNS // block_size * block_size)
    upper, dead = _inverse_cholesky(gram, padded)
    codes = np.zeros((out, padded), np.uint8)
    scales = np.zeros((out, padded // block_size), np.float32)
    zeros = np.zeros((out, padded // block_size), np.uint8)
    for first_row in range(0, out, ROW_CHUNK):
        rows = slice(first_row, min(out, first_row + ROW_CHUNK))
        w = np.zeros((rows.stop - rows.start, padded), np.float32)
        w[:, :inputs] = weight[rows]
        w[:, dead] = 0.0
        for start in range(0, padded, lazy):
            stop = min(start + lazy, padded)
            part = w[:, start:stop].copy()
            errors = np.zeros_like(part)
            inverse = upper[start:stop, start:stop]
            for i in range(stop - start):
                column = start + i
                if column % block_size == 0:
                    group = part[:, i:i + block_size]
                    scale, zero = grid(group.min(axis=1), group.max(axis=1))
                    scales[rows, column // block_size] = scale
                    zeros[rows, column // block_size] = zero
                code = encode(part[:, i], scale, zero)
                codes[rows, column] = code
                error = (part[:, i] - (code.astype(np.float32) - zero) * scale) / inverse[i, i]
                part[:, i:] -= np.outer(error, inverse[i, i:])
                errors[:, i] = error
            w[:, stop:] -= errors @ upper[start:stop, stop:]
    codes[:, inputs:] = 0  # padding, never read
    return BlockQuantized(codes=codes, scales=scales, zeros=zeros, block_size=block_size, in_features=inputs)
