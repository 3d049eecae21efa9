"""Rotary position embeddings and the scaling variants Hugging Face configs name (`rope_scaling`).

linear, dynamic (NTK, recomputed from the sequence length), llama3 and yarn follow transformers'
`modeling_rope_utils`; the inverse frequencies are computed here once for the graph, the numpy reference and
the trainer, so all three rotate alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

ROPE_KINDS: Final = ("linear", "dynamic", "llama3", "yarn")
_KNOWN_KEYS: Final = frozenset({"type", "rope_type", "factor", "original_max_position_embeddings", "low_freq_factor",
                                "high_freq_factor", "beta_fast", "beta_slow", "attention_factor"})


class RopeScalingError(ValueError):
    """A rope_scaling entry wedge does not reproduce."""


@dataclass(frozen=True)
class RopeScaling:
    """One `rope_scaling` entry: how the rotary frequencies stretch past the pre-training context."""

    kind: str
    factor: float
    original_context: int | None = None  # original_max_position_embeddings
    low_freq_factor: float = 1.0  # llama3
    high_freq_factor: float = 4.0  # llama3
    beta_fast: float = 32.0  # yarn
    beta_slow: float = 1.0  # yarn
    attention_factor: float | None = None  # yarn: scales cos and sin; None: 0.1 ln(factor) + 1

    def __post_init__(self) -> None:
        if self.kind not in ROPE_KINDS:
            raise RopeScalingError(f"rope_scaling type {self.kind!r} is not supported (wedge reproduces "
                                   f"{', '.join(ROPE_KINDS)})")
        if not self.factor >= 1.0:
            raise RopeScalingError(f"rope_scaling factor {self.factor} must be a number >= 1")
        if self.kind == "llama3" and (self.original_context is None or self.high_freq_factor <= self.low_freq_factor):
            raise RopeScalingError("llama3 rope_scaling needs original_max_position_embeddings and "
                                   "high_freq_factor > low_freq_factor")

    @classmethod
    def from_hf(cls, entry: Mapping[str, Any] | None) -> RopeScaling | None:
        """The `rope_scaling` of a config.json (None, or {"rope_type"/"type": ..., "factor": ...})."""
        if entry is None:
            return None
        if not isinstance(entry, Mapping):
            raise RopeScalingError(f"rope_scaling must be a table, not {entry!r}")
        kind = entry.get("rope_type", entry.get("type", "default"))
        if kind == "default":
            return None
        unknown = sorted(set(entry) - _KNOWN_KEYS)
        if unknown:
            raise RopeScalingError(f"rope_scaling {kind!r} has keys wedge does not reproduce: {', '.join(unknown)}")
        if "factor" not in entry:
            raise RopeScalingError(f"rope_scaling {kind!r} lacks its factor")
        try:
            original = entry.get("original_max_position_embeddings")
            return cls(kind=str(kind), factor=float(entry["factor"]),
                       original_context=None if original is None else int(original),
                       low_freq_factor=float(entry.get("low_freq_factor", 1.0)),
                       high_freq_factor=float(entry.get("high_freq_factor", 4.0)),
                       beta_fast=float(entry.get("beta_fast") or 32.0), beta_slow=float(entry.get("beta_slow") or 1.0),
                       attention_factor=None if entry.get("attention_factor") is None
                       else float(entry["attention_factor"]))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, RopeScalingError):
                raise
            raise RopeScalingError(f"rope_scaling {kind!r} has a value that is not a number: {exc}") from None

    def to_hf(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"rope_type": self.kind, "factor": self.factor}
        if self.original_context is not None:
            entry["original_max_position_embeddings"] = self.original_context
        if self.kind == "llama3":
            entry.update(low_freq_factor=self.low_freq_factor, high_freq_factor=self.high_freq_factor)
        if self.kind == "yarn":
            entry.update(beta_fast=self.beta_fast, beta_slow=self.beta_slow)
            if self.attention_factor is not None:
                entry["attention_factor"] = self.attention_factor
        return entry

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def base_inv_freq(theta: float, head_dim: int) -> NDArray[np.float64]:
    """1 / theta^(2i/d), the unscaled rotary frequencies [head_dim / 2]."""
    return 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))


def inv_freq(theta: float, head_dim: int, scaling: RopeScaling | None, context: int) -> NDArray[np.float64]:
    """The frequencies the graph multiplies positions by (for `dynamic`: those up to the original context,
    which `dynamic_ratio` stretches once a sequence grows past it)."""
    freq = base_inv_freq(theta, head_dim)
    if scaling is None or scaling.kind == "dynamic":
        return freq
    if scaling.kind == "linear":
        return freq / scaling.factor
    if scaling.kind == "llama3":
        return _llama3(freq, scaling)
    return _yarn(freq, theta, head_dim, scaling, context)


def attention_factor(scaling: RopeScaling | None) -> float:
    """The factor on cos and sin (yarn's temperature); 1 for the others."""
    if scaling is None or scaling.kind != "yarn":
        return 1.0
    if scaling.attention_factor is not None:
        return scaling.attention_factor
    return 0.1 * math.log(scaling.factor) + 1.0


def dynamic_exponents(head_dim: int) -> NDArray[np.float64]:
    """Dynamic NTK raises the base by r^(d/(d-2)), so frequency i gets multiplied by r^(-2i/(d-2))."""
    return -np.arange(0, head_dim, 2, dtype=np.float64) / (head_dim - 2)


def dynamic_ratio(scaling: RopeScaling, original_context: int, sequence: int) -> float:
    """r = factor * L / L0 - (factor - 1) for a sequence of L positions past the original L0, else 1."""
    return max(1.0, scaling.factor * sequence / original_context - (scaling.factor - 1.0))


def _llama3(freq: NDArray[np.float64], scaling: RopeScaling) -> NDArray[np.float64]:
    assert scaling.original_context is not None
    old = float(scaling.original_context)
    low_wavelen, high_wavelen = old / scaling.low_freq_factor, old / scaling.high_freq_factor
    wavelen = 2 * math.pi / freq
    scaled = np.where(wavelen > low_wavelen, freq / scaling.factor, freq)
    smooth = (old / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor)
    smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, scaled)


def _yarn(freq: NDArray[np.float64], theta: float, dim: int, scaling: RopeScaling,
          context: int) -> NDArray[np.float64]:
    original = scaling.original_context or context

    def correction_dim(rotations: float) -> float:
        return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(theta))

    low = max(math.floor(correction_dim(scaling.beta_fast)), 0)
    high = min(math.ceil(correction_dim(scaling.beta_slow)), dim - 1)
    if low == high:
        high += 0.001  # transformers' guard against a zero-width ramp
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    extrapolation = 1.0 - ramp
    return freq / scaling.factor * (1 - extrapolation) + freq * extrapolation
