"""The numpy trainer's layers: analytic gradients agree with finite differences, forward with direct loops."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from wedge.samples.train import (
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool,
    ReLU,
    TrainConfig,
    backward,
    fit,
    forward,
    init_params,
    predict,
    softmax_cross_entropy,
)

EPS = 1e-6
RTOL = 1e-5
ATOL = 1e-8


def _numeric_grad(f: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """Central differences of the scalar f() w.r.t. every entry of `array` (perturbed in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + EPS
        plus = f()
        array[index] = saved - EPS
        minus = f()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * EPS)
    return grad


def _check_network(network: Sequence[Layer], x: np.ndarray, seed: int = 0) -> None:
    """Gradients of sum(out * R) w.r.t. the input and every parameter, analytic vs numeric."""
    rng = np.random.default_rng(seed)
    params = init_params(network, rng, dtype=np.float64)
    for p in params:
        for value in p.values():
            value += rng.normal(0, 0.1, value.shape)  # non-zero biases exercise their gradient too
    out, caches = forward(network, params, x)
    weights = rng.normal(size=out.shape)

    def loss() -> float:
        return float((forward(network, params, x)[0] * weights).sum())

    grads = backward(network, params, caches, weights)
    for layer_params, layer_grads in zip(params, grads, strict=True):
        assert layer_grads.keys() == layer_params.keys()
        for key in layer_params:
            np.testing.assert_allclose(layer_grads[key], _numeric_grad(loss, layer_params[key]), rtol=RTOL, atol=ATOL)
    grad_x = weights
    for layer, layer_params, cache in reversed(list(zip(network, params, caches, strict=True))):
        grad_x, _ = layer.backward(layer_params, cache, grad_x)
    np.testing.assert_allclose(grad_x, _numeric_grad(loss, x), rtol=RTOL, atol=ATOL)


def test_conv2d_with_padding_has_exact_gradients() -> None:
    x = np.random.default_rng(1).normal(size=(2, 2, 5, 4))
    _check_network([Conv(2, 3, (3, 3), padding=1)], x)


def test_conv2d_without_padding_and_a_rectangular_kernel_has_exact_gradients() -> None:
    x = np.random.default_rng(2).normal(size=(2, 3, 5, 6))
    _check_network([Conv(3, 2, (2, 3), padding=0)], x)


def test_conv1d_has_exact_gradients() -> None:
    x = np.random.default_rng(3).normal(size=(3, 2, 11))
    _check_network([Conv(2, 4, (5,), padding=2)], x)


def test_dense_has_exact_gradients() -> None:
    x = np.random.default_rng(4).normal(size=(4, 6))
    _check_network([Dense(6, 3)], x)


def test_2d_conv_net_with_pooling_has_exact_gradients() -> None:
    x = np.random.default_rng(5).normal(size=(2, 1, 6, 6))
    network = [Conv(1, 3, (3, 3), padding=1), ReLU(), MaxPool((2, 2)), Flatten(), Dense(27, 4)]
    _check_network(network, x)


def test_1d_conv_net_with_odd_length_pooling_and_global_average_has_exact_gradients() -> None:
    # Length 13 pooled by 4 drops a remainder, as ONNX MaxPool does in floor mode.
    x = np.random.default_rng(6).normal(size=(2, 1, 13))
    network = [Conv(1, 3, (3,), padding=1), ReLU(), MaxPool((4,)), Conv(3, 2, (3,), padding=1), ReLU(),
               GlobalAvgPool(), Flatten(), Dense(2, 3)]
    _check_network(network, x)


def test_softmax_cross_entropy_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(5, 4))
    labels = rng.integers(0, 4, 5)
    _, grad = softmax_cross_entropy(logits, labels)
    numeric = _numeric_grad(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    np.testing.assert_allclose(grad, numeric, rtol=RTOL, atol=ATOL)


def test_softmax_cross_entropy_survives_huge_logits() -> None:
    loss, grad = softmax_cross_entropy(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(500.0)
    assert np.isfinite(grad).all()


def test_conv2d_forward_matches_a_direct_convolution() -> None:
    rng = np.random.default_rng(8)
    layer = Conv(2, 3, (3, 3), padding=1)
    params = {"weight": rng.normal(size=(3, 2, 3, 3)), "bias": rng.normal(size=3)}
    x = rng.normal(size=(2, 2, 4, 5))
    out, _ = layer.forward(params, x)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 3, 4, 5))
    for n, o, i, j in np.ndindex(expected.shape):
        expected[n, o, i, j] = (padded[n, :, i : i + 3, j : j + 3] * params["weight"][o]).sum() + params["bias"][o]
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_conv1d_forward_matches_numpy_correlate() -> None:
    rng = np.random.default_rng(9)
    layer = Conv(1, 1, (5,), padding=2)
    params = {"weight": rng.normal(size=(1, 1, 5)), "bias": np.array([0.5])}
    x = rng.normal(size=(1, 1, 20))
    out, _ = layer.forward(params, x)
    expected = np.correlate(np.pad(x[0, 0], 2), params["weight"][0, 0], mode="valid") + 0.5
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-12)


def test_layers_reject_kernels_that_are_not_1d_or_2d() -> None:
    with pytest.raises(ValueError):
        Conv(1, 1, (3, 3, 3))
    with pytest.raises(ValueError):
        MaxPool(())


def _blobs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 300)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    return centers[labels] + rng.normal(0, 0.5, (300, 2)), labels


def test_fit_learns_a_separable_problem_and_reports_every_epoch() -> None:
    x, y = _blobs(10)
    network = [Dense(2, 16), ReLU(), Dense(16, 3)]
    reports = []
    params = fit(network, x, y, TrainConfig(epochs=8, batch_size=32, learning_rate=1e-2, seed=0), reports.append)
    assert [r.epoch for r in reports] == list(range(1, 9))
    assert reports[-1].loss < reports[0].loss
    assert (predict(network, params, x).argmax(axis=1) == y).mean() > 0.95


def test_fit_with_the_same_seed_gives_identical_weights() -> None:
    x, y = _blobs(11)
    network = [Dense(2, 8), ReLU(), Dense(8, 3)]
    config = TrainConfig(epochs=3, batch_size=16, learning_rate=1e-2, seed=4)
    first, second = fit(network, x, y, config), fit(network, x, y, config)
    for a, b in zip(first, second, strict=True):
        for key in a:
            assert a[key].tobytes() == b[key].tobytes()
