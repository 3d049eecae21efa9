"""Where an ONNX (NCHW) tensor's elements sit in its TFLite (NHWC) tensor, and weight re-layout to match.

A Layout is a permutation of ONNX axes plus inserted unit axes (a 1-D NCW tensor runs as N,1,W,C), and for
a tensor flattened from a channel-last one, the order of its features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wedge.quantize.tflite.errors import ExportError


@dataclass(frozen=True, eq=False)
class Layout:
    """TFLite tensor = ONNX tensor transposed by `perm`, with unit axes inserted at TFLite axes `inserted`.

    `order` is set only on [1, K] tensors flattened from a channel-last tensor: TFLite feature j holds ONNX
    feature order[j]. A fully-connected layer reading such a tensor permutes its weight columns instead.
    """

    perm: tuple[int, ...]
    inserted: tuple[int, ...] = ()
    order: np.ndarray | None = None

    @property
    def rank(self) -> int:
        return len(self.perm)

    @property
    def is_identity(self) -> bool:
        return self.perm == tuple(range(self.rank)) and not self.inserted and self.order is None

    def key(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A hashable identity for layouts without a feature order."""
        return self.perm, self.inserted

    def same_as(self, other: Layout) -> bool:
        if self.order is not None or other.order is not None:
            return (self.order is not None and other.order is not None and self.key() == other.key()
                    and np.array_equal(self.order, other.order))
        return self.key() == other.key()

    def tflite_shape(self, onnx_shape: Sequence[int]) -> tuple[int, ...]:
        dims = [int(onnx_shape[axis]) for axis in self.perm]
        for position in sorted(self.inserted):
            dims.insert(position, 1)
        return tuple(dims)

    def axis(self, onnx_axis: int) -> int:
        """The TFLite axis that holds ONNX axis `onnx_axis` (negative counts from the end)."""
        position = self.perm.index(onnx_axis % self.rank)
        for inserted in sorted(self.inserted):
            if inserted <= position:
                position += 1
        return position

    def tflite_axes(self) -> list[int | None]:
        """For each TFLite axis, the ONNX axis it holds (None for an inserted unit axis)."""
        axes: list[int | None] = list(self.perm)
        for position in sorted(self.inserted):
            axes.insert(position, None)
        return axes

    def keeps_memory_order(self, onnx_shape: Sequence[int]) -> bool:
        """Whether the TFLite tensor's bytes are in ONNX order (then a RESHAPE converts between them)."""
        if self.order is not None:
            return False
        moved = [axis for axis in self.perm if onnx_shape[axis] != 1]
        return moved == sorted(moved)

    def to_tflite(self, array: np.ndarray) -> np.ndarray:
        """An ONNX-layout array in this layout (for constants and model inputs)."""
        out = np.transpose(array, self.perm)
        for position in sorted(self.inserted):
            out = np.expand_dims(out, position)
        if self.order is not None:
            out = out.reshape(out.shape[0], -1)[:, self.order]
        return np.ascontiguousarray(out)

    def to_onnx(self, array: np.ndarray, onnx_shape: Sequence[int]) -> np.ndarray:
        """A TFLite-layout array back in ONNX layout (for comparing model outputs)."""
        if self.order is not None:
            flat = np.empty_like(array.reshape(array.shape[0], -1))
            flat[:, self.order] = array.reshape(array.shape[0], -1)
            return flat.reshape(array.shape[0], *onnx_shape[1:])
        permuted = [onnx_shape[axis] for axis in self.perm]
        out = array.reshape(array.shape[0], *permuted[1:]) if self.perm[0] == 0 else array.reshape(permuted)
        return np.ascontiguousarray(np.transpose(out, np.argsort(self.perm)))


def identity(rank: int) -> Layout:
    return Layout(tuple(range(rank)))


def channel_last(rank: int, where: str) -> Layout:
    """NCHW -> NHWC; NCW (1-D) -> N,1,W,C so that 1-D convolutions run as 2-D ones with H = 1."""
    if rank == 4:
        return Layout((0, 2, 3, 1))
    if rank == 3:
        return Layout((0, 2, 1), inserted=(1,))
    raise ExportError(f"{where}: a rank-{rank} tensor cannot run as NHWC; TFLite export handles 1-D and 2-D "
                      "convolutions and pools")


def transposed(layout: Layout, perm: Sequence[int]) -> Layout:
    """The layout of Transpose(x, perm) when it reuses x's TFLite tensor unchanged (no op needed)."""
    inverse = np.argsort(perm)
    return Layout(tuple(int(inverse[axis]) for axis in layout.perm), layout.inserted)


def flattened(layout: Layout, onnx_shape: Sequence[int]) -> Layout:
    """The layout of [1, K] = Flatten(x) taken straight from x's TFLite bytes."""
    positions = np.arange(int(np.prod(onnx_shape)), dtype=np.int64).reshape(tuple(onnx_shape))
    order = np.transpose(positions, layout.perm).reshape(-1)
    if np.array_equal(order, np.arange(order.size)):
        return identity(2)
    return Layout((0, 1), order=order)


def output_layout(layout: Layout) -> Layout:
    """How a model output is laid out for its users: NHWC images stay NHWC, 1-D ones become NWC, else ONNX."""
    if layout.order is None and layout.perm == (0, 2, 3, 1) and not layout.inserted:
        return layout
    if layout.order is None and layout.perm == (0, 2, 1):
        return Layout((0, 2, 1))
    return identity(layout.rank)


def spatial(values: Sequence[int], rank: int, fill: int) -> tuple[int, int]:
    """(H, W) of a per-spatial-axis attribute; a 1-D op's single value is W, with H = `fill`."""
    if rank == 3:
        return fill, int(values[0])
    return int(values[0]), int(values[1])


def spatial_pads(pads: Sequence[int], rank: int) -> tuple[int, int, int, int]:
    """ONNX pads (begins then ends) as (top, left, bottom, right)."""
    if rank == 3:
        return 0, int(pads[0]), 0, int(pads[1])
    return int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])


def conv_weights(weights: np.ndarray) -> np.ndarray:
    """ONNX [O, I, kH, kW] (or [O, I, kW]) -> TFLite CONV_2D [O, kH, kW, I]."""
    if weights.ndim == 3:
        weights = weights[:, :, None, :]
    return np.ascontiguousarray(np.transpose(weights, (0, 2, 3, 1)))


def depthwise_weights(weights: np.ndarray) -> np.ndarray:
    """ONNX [O, 1, kH, kW] (or [O, 1, kW]) -> TFLite DEPTHWISE_CONV_2D [1, kH, kW, O]."""
    if weights.ndim == 3:
        weights = weights[:, :, None, :]
    return np.ascontiguousarray(np.transpose(weights, (1, 2, 3, 0)))


def broadcast_constant(values: np.ndarray, layout: Layout) -> np.ndarray:
    """A constant operand of an elementwise op, right-aligned to the activation's rank, in its layout."""
    if values.ndim > layout.rank:
        raise ExportError(f"a constant of rank {values.ndim} cannot broadcast to a rank-{layout.rank} tensor")
    aligned = values.reshape((1,) * (layout.rank - values.ndim) + tuple(values.shape))
    if layout.order is not None:
        if aligned.shape[-1] == 1:
            return aligned
        return np.ascontiguousarray(aligned[..., layout.order])
    return Layout(layout.perm, layout.inserted).to_tflite(aligned)
