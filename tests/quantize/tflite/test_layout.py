"""NCHW -> NHWC layouts: arrays, axes, weights and the Flatten -> dense-layer feature order."""

from __future__ import annotations

import numpy as np
import pytest

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.layout import (
    Layout,
    broadcast_constant,
    channel_last,
    conv_weights,
    depthwise_weights,
    flattened,
    identity,
    output_layout,
    transposed,
)


def test_channel_last_puts_channels_last_and_runs_1d_tensors_with_a_unit_height() -> None:
    image = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    nhwc = channel_last(4, "t")
    assert nhwc.tflite_shape((1, 3, 4, 5)) == (1, 4, 5, 3)
    assert np.array_equal(nhwc.to_tflite(image), image.transpose(0, 2, 3, 1))
    signal = np.arange(2 * 3 * 7).reshape(2, 3, 7)
    n1wc = channel_last(3, "t")
    assert n1wc.tflite_shape((1, 3, 7)) == (1, 1, 7, 3)
    assert n1wc.to_tflite(signal).shape == (2, 1, 7, 3)
    assert [n1wc.axis(a) for a in range(3)] == [0, 3, 2]


def test_to_onnx_undoes_to_tflite_for_a_batch() -> None:
    image = np.random.default_rng(0).integers(-128, 128, (3, 2, 4, 5))
    for layout in (channel_last(4, "t"), identity(4), Layout((0, 3, 1, 2))):
        assert np.array_equal(layout.to_onnx(layout.to_tflite(image), (1, 2, 4, 5)), image)
    signal = np.arange(3 * 2 * 6).reshape(3, 2, 6)
    assert np.array_equal(channel_last(3, "t").to_onnx(channel_last(3, "t").to_tflite(signal), (1, 2, 6)), signal)


def test_a_transpose_only_relabels_the_layout() -> None:
    image = np.arange(2 * 3 * 4).reshape(1, 2, 3, 4)
    nhwc = channel_last(4, "t")
    # ONNX Transpose(0,2,3,1) of an NHWC-held tensor is the same bytes in plain order.
    moved = transposed(nhwc, (0, 2, 3, 1))
    assert moved.is_identity
    assert np.array_equal(moved.to_tflite(image.transpose(0, 2, 3, 1)), nhwc.to_tflite(image))


def test_flattened_order_is_where_each_onnx_feature_sits_in_nhwc_bytes() -> None:
    image = np.arange(3 * 2 * 2).reshape(1, 3, 2, 2)
    layout = flattened(channel_last(4, "t"), (1, 3, 2, 2))
    assert layout.order is not None
    nhwc_bytes = image.transpose(0, 2, 3, 1).reshape(1, -1)
    onnx_flat = image.reshape(1, -1)
    assert np.array_equal(onnx_flat[:, layout.order], nhwc_bytes)
    assert np.array_equal(layout.to_onnx(nhwc_bytes, (1, 12)), onnx_flat)
    # A dense layer W @ x equals (W with permuted columns) @ (NHWC bytes).
    w = np.random.default_rng(1).normal(size=(5, 12))
    assert np.allclose(w @ onnx_flat[0], w[:, layout.order] @ nhwc_bytes[0])


def test_flatten_of_a_1x1_image_keeps_plain_order() -> None:
    assert flattened(channel_last(4, "t"), (1, 8, 1, 1)).is_identity


def test_weights_are_relaid_for_conv_and_depthwise() -> None:
    w = np.arange(6 * 2 * 3 * 5).reshape(6, 2, 3, 5)
    assert conv_weights(w).shape == (6, 3, 5, 2)
    assert conv_weights(w)[4, 1, 2, 0] == w[4, 0, 1, 2]
    dw = np.arange(4 * 1 * 3 * 3).reshape(4, 1, 3, 3)
    assert depthwise_weights(dw).shape == (1, 3, 3, 4)
    assert depthwise_weights(dw)[0, 2, 1, 3] == dw[3, 0, 2, 1]
    assert conv_weights(np.zeros((6, 2, 5))).shape == (6, 1, 5, 2)


def test_constants_broadcast_in_the_activation_layout() -> None:
    per_channel = np.arange(3).reshape(3, 1, 1)
    assert broadcast_constant(per_channel, channel_last(4, "t")).shape == (1, 1, 1, 3)
    with pytest.raises(ExportError, match="cannot broadcast"):
        broadcast_constant(np.zeros((1, 1, 1, 1, 1)), channel_last(4, "t"))


def test_outputs_stay_nhwc_or_nwc_and_anything_else_returns_to_onnx_order() -> None:
    assert output_layout(channel_last(4, "t")).perm == (0, 2, 3, 1)
    assert output_layout(channel_last(3, "t")).key() == ((0, 2, 1), ())
    assert output_layout(Layout((0, 3, 1, 2))).is_identity


def test_rank_5_tensors_are_refused_with_the_reason() -> None:
    with pytest.raises(ExportError, match="rank-5 tensor cannot run as NHWC"):
        channel_last(5, "node 'c' (Conv)")
