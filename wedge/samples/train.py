"""A small numpy trainer for the sample models: layers with exact gradients, softmax cross-entropy, Adam.

No deep-learning framework: im2col convolutions, pooling and dense layers, enough to train the samples in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

Array: TypeAlias = NDArray[np.floating[Any]]
Params: TypeAlias = dict[str, Array]

SUPPORTED_RANKS: Final = (1, 2)


class Layer(Protocol):
    """One step of a sequential network; parameters live outside it so it stays immutable."""

    def init(self, rng: np.random.Generator) -> Params:
        """Fresh parameters (an empty dict for layers without any)."""
        ...

    def forward(self, params: Params, x: Array) -> tuple[Array, Any]:
        """The output and whatever backward needs."""
        ...

    def backward(self, params: Params, cache: Any, grad_out: Array) -> tuple[Array, Params]:
        """The gradient of the loss w.r.t. the input and w.r.t. each parameter."""
        ...


def _check_rank(shape: tuple[int, ...], what: str) -> int:
    rank = len(shape)
    if rank not in SUPPORTED_RANKS:
        raise ValueError(f"{what} must be 1-D or 2-D, got {shape}")
    return rank


def _as_2d(x: Array, rank: int) -> Array:
    # 1-D layers run as 2-D ones with a unit height, so there is one code path to get right.
    return x[:, :, None, :] if rank == 1 else x


def _from_2d(x: Array, rank: int) -> Array:
    return x[:, :, 0, :] if rank == 1 else x


def _he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> Array:
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)


@dataclass(frozen=True)
class Conv:
    """A stride-1 convolution with symmetric zero padding (ONNX `Conv`); weights are [out, in, *kernel]."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    padding: int = 0

    def __post_init__(self) -> None:
        _check_rank(self.kernel, "Conv kernel")

    @property
    def rank(self) -> int:
        return len(self.kernel)

    def _kernel_2d(self) -> tuple[int, int]:
        return (1, self.kernel[0]) if self.rank == 1 else (self.kernel[0], self.kernel[1])

    def _pads_2d(self) -> tuple[int, int]:
        return (0, self.padding) if self.rank == 1 else (self.padding, self.padding)

    def init(self, rng: np.random.Generator) -> Params:
        fan_in = self.in_channels * math.prod(self.kernel)
        weight = _he_normal(rng, (self.out_channels, self.in_channels, *self.kernel), fan_in)
        return {"weight": weight, "bias": np.zeros(self.out_channels)}

    def forward(self, params: Params, x: Array) -> tuple[Array, Any]:
        kh, kw = self._kernel_2d()
        ph, pw = self._pads_2d()
        x2 = _as_2d(x, self.rank)
        padded = np.pad(x2, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
        n, c, ho, wo = windows.shape[:4]
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
        w_mat = params["weight"].reshape(self.out_channels, -1)
        out = cols @ w_mat.T + params["bias"]
        out = np.ascontiguousarray(out.reshape(n, ho, wo, self.out_channels).transpose(0, 3, 1, 2))
        return _from_2d(out, self.rank), (cols, x2.shape)

    def backward(self, params: Params, cache: Any, grad_out: Array) -> tuple[Array, Params]:
        cols, x_shape = cache
        kh, kw = self._kernel_2d()
        ph, pw = self._pads_2d()
        g = _as_2d(grad_out, self.rank)
        n, _, ho, wo = g.shape
        g_mat = g.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)
        w_mat = params["weight"].reshape(self.out_channels, -1)
        grad_weight = (g_mat.T @ cols).reshape(params["weight"].shape)
        grad_bias = g_mat.sum(axis=0)
        grad_cols = (g_mat @ w_mat).reshape(n, ho, wo, self.in_channels, kh, kw)
        _, c, h, w = x_shape
        grad_padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        # col2im: each kernel tap scatters back onto a shifted view of the input.
        for i in range(kh):
            for j in range(kw):
                grad_padded[:, :, i : i + ho, j : j + wo] += grad_cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        grad_x = grad_padded[:, :, ph : ph + h, pw : pw + w]
        return _from_2d(grad_x, self.rank), {"weight": grad_weight, "bias": grad_bias}


@dataclass(frozen=True)
class ReLU:
    """max(x, 0) (ONNX `Relu`)."""

    def init(self, rng: np.random.Generator) -> Params:
        return {}

    def forward(self, params: Params, x: Array) -> tuple[Array, Any]:
        return np.maximum(x, 0.0), x > 0.0

    def backward(self, params: Params, cache: Any, grad_out: Array) -> tuple[Array, Params]:
        return grad_out * cache, {}


@dataclass(frozen=True)
class MaxPool:
    """Non-overlapping max pooling, stride = size, trailing remainder dropped (ONNX `MaxPool`, floor mode)."""

    size: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_rank(self.size, "MaxPool size")

    @property
    def rank(self) -> int:
        return len(self.size)

    def init(self, rng: np.random.Generator) -> Params:
        return {}

    def forward(self, params: Params, x: Array) -> tuple[Array, Any]:
        sh, sw = (1, self.size[0]) if self.rank == 1 else (self.size[0], self.size[1])
        x2 = _as_2d(x, self.rank)
        n, c, h, w = x2.shape
        ho, wo = h // sh, w // sw
        blocks = x2[:, :, : ho * sh, : wo * sw].reshape(n, c, ho, sh, wo, sw)
        blocks = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, sh * sw)
        # The first maximum gets the gradient, so backward is the exact derivative almost everywhere.
        winner = blocks.argmax(axis=-1)[..., None]
        out = np.take_along_axis(blocks, winner, axis=-1)[..., 0]
        return _from_2d(out, self.rank), (winner, x2.shape, (sh, sw))

    def backward(self, params: Params, cache: Any, grad_out: Array) -> tuple[Array, Params]:
        winner, x_shape, (sh, sw) = cache
        g = _as_2d(grad_out, self.rank)
        n, c, ho, wo = g.shape
        grad_blocks = np.zeros((n, c, ho, wo, sh * sw), dtype=g.dtype)
        np.put_along_axis(grad_blocks, winner, g[..., None], axis=-1)
        grad_blocks = grad_blocks.reshape(n, c, ho, wo, sh, sw).transpose(0, 1, 2, 4, 3, 5)
        grad_x = np.zeros(x_shape, dtype=g.dtype)
        grad_x[:, :, : ho * sh, : wo * sw] = grad_blocks.reshape(n, c, ho * sh, wo * sw)
        return _from_2d(grad_x, self.rank), {}


@dataclass(frozen=True)
class GlobalAvgPool:
    """The mean over all spatial positions, keeping unit spatial dims (ONNX `GlobalAveragePool`)."""

    def init(self, rng: np.random.Generator) -> Params:
        return {}

    def forward(self, params: Params, x: Array) -> tuple[Array, Any]:
        axes = tuple(range(2, x.ndim))
        return x.mean(axis=axes, keepdims=True), x.shape

    def backward(self, params: Params, cache: Any, grad_out: Array) -> tuple[Array, Params]:
        x_shape = cache
        count = math.prod(x_shape[2:])
        return np.broadcast_to(grad_out / count, x_shape).copy(), {}


@dataclass(frozen=True)
class Flatten:
    """[N, ...] → [N, features] in C order (ONNX `Flatten`, axis 1)."""

    def init(self, rng: np.random.Generator) -> Params:
        return {}

    def forward(self, params: Params, x: Array) -> tuple[Array, Any]:
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, params: Params, cache: Any, grad_out: Array) -> tuple[Array, Params]:
        return grad_out.reshape(cache), {}


@dataclass(frozen=True)
class Dense:
    """y = x Wᵀ + b with W as [out, in] (ONNX `Gemm`, transB = 1)."""

    in_features: int
    out_features: int

    def init(self, rng: np.random.Generator) -> Params:
        weight = _he_normal(rng, (self.out_features, self.in_features), self.in_features)
        return {"weight": weight, "bias": np.zeros(self.out_features)}

    def forward(self, params: Params, x: Array) -> tuple[Array, Any]:
        return x @ params["weight"].T + params["bias"], x

    def backward(self, params: Params, cache: Any, grad_out: Array) -> tuple[Array, Params]:
        x = cache
        grads = {"weight": grad_out.T @ x, "bias": grad_out.sum(axis=0)}
        return grad_out @ params["weight"], grads


Network: TypeAlias = Sequence[Layer]


def init_params(network: Network, rng: np.random.Generator, dtype: type[np.floating[Any]] = np.float32) -> list[Params]:
    """Initial parameters for every layer, He-normal weights and zero biases."""
    return [{k: v.astype(dtype) for k, v in layer.init(rng).items()} for layer in network]


def forward(network: Network, params: Sequence[Params], x: Array) -> tuple[Array, list[Any]]:
    """The network's output and the per-layer caches backward needs."""
    caches = []
    for layer, layer_params in zip(network, params, strict=True):
        x, cache = layer.forward(layer_params, x)
        caches.append(cache)
    return x, caches


def backward(network: Network, params: Sequence[Params], caches: Sequence[Any], grad_out: Array) -> list[Params]:
    """Gradients of the loss w.r.t. every parameter, given the gradient w.r.t. the output."""
    grads: list[Params] = [{} for _ in network]
    for index in reversed(range(len(network))):
        grad_out, grads[index] = network[index].backward(params[index], caches[index], grad_out)
    return grads


def predict(network: Network, params: Sequence[Params], x: Array, batch_size: int = 256) -> Array:
    """The network's output over `x`, computed in batches to bound memory."""
    outputs = [forward(network, params, x[i : i + batch_size])[0] for i in range(0, len(x), batch_size)]
    return np.concatenate(outputs)


def softmax_cross_entropy(logits: Array, labels: NDArray[np.integer[Any]]) -> tuple[float, Array]:
    """The mean cross-entropy of softmax(logits) against integer labels, and its gradient w.r.t. the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    loss = float(-log_probs[rows, labels].mean())
    grad = np.exp(log_probs)
    grad[rows, labels] -= 1.0
    return loss, grad / len(labels)


@dataclass
class Adam:
    """Adam (Kingma & Ba); updates the parameter arrays in place."""

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    _steps: int = field(default=0, init=False, repr=False)
    _m: list[Params] | None = field(default=None, init=False, repr=False)
    _v: list[Params] | None = field(default=None, init=False, repr=False)

    def step(self, params: list[Params], grads: Sequence[Params], learning_rate: float | None = None) -> None:
        """Moves every parameter one step against its gradient."""
        if self._m is None or self._v is None:
            # float64 moments: squared float32 gradients late in training fall into the denormal
            # range, where arithmetic is many times slower.
            self._m = [{k: np.zeros(v.shape) for k, v in p.items()} for p in params]
            self._v = [{k: np.zeros(v.shape) for k, v in p.items()} for p in params]
        self._steps += 1
        lr = self.learning_rate if learning_rate is None else learning_rate
        correction1 = 1.0 - self.beta1**self._steps
        correction2 = 1.0 - self.beta2**self._steps
        for layer_params, layer_grads, m, v in zip(params, grads, self._m, self._v, strict=True):
            for key, grad in layer_grads.items():
                m[key] = self.beta1 * m[key] + (1.0 - self.beta1) * grad
                v[key] = self.beta2 * v[key] + (1.0 - self.beta2) * grad * grad
                update = lr * (m[key] / correction1) / (np.sqrt(v[key] / correction2) + self.eps)
                layer_params[key] -= update.astype(layer_params[key].dtype)


@dataclass(frozen=True)
class TrainConfig:
    """How to fit a network: epochs, minibatch, a cosine-decayed Adam learning rate, and the seed."""

    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    final_lr_fraction: float = 0.05


@dataclass(frozen=True)
class EpochReport:
    """What one finished epoch looked like on the training data."""

    epoch: int
    epochs: int
    loss: float
    accuracy: float


def _cosine_lr(config: TrainConfig, epoch: int) -> float:
    progress = epoch / max(config.epochs - 1, 1)
    floor = config.final_lr_fraction
    return config.learning_rate * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def fit(
    network: Network,
    x: Array,
    labels: NDArray[np.integer[Any]],
    config: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> list[Params]:
    """Trains `network` on (x, labels) with softmax cross-entropy; the same inputs give the same weights."""
    rng = np.random.default_rng(config.seed)
    params = init_params(network, rng, dtype=x.dtype.type)
    optimizer = Adam(learning_rate=config.learning_rate)
    for epoch in range(config.epochs):
        lr = _cosine_lr(config, epoch)
        order = rng.permutation(len(x))
        loss_sum, correct = 0.0, 0
        for start in range(0, len(x), config.batch_size):
            batch = order[start : start + config.batch_size]
            logits, caches = forward(network, params, x[batch])
            loss, grad = softmax_cross_entropy(logits, labels[batch])
            optimizer.step(params, backward(network, params, caches, grad), learning_rate=lr)
            loss_sum += loss * len(batch)
            correct += int((logits.argmax(axis=1) == labels[batch]).sum())
        if on_epoch is not None:
            on_epoch(EpochReport(epoch + 1, config.epochs, loss_sum / len(x), correct / len(x)))
    return params
