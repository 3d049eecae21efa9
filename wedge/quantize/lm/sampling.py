"""Choosing the next token from logits: greedy, or temperature with nucleus (top-p) sampling from a seeded
generator, so a run can be repeated."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.errors import LmError


@dataclass
class Sampler:
    """temperature 0 is greedy; otherwise softmax(logits / temperature) restricted to the smallest set of tokens
    whose probability reaches `top_p`."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise LmError(f"--temperature must be >= 0, not {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise LmError(f"--top-p must be in (0, 1], not {self.top_p}")
        self._rng = np.random.default_rng(self.seed)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def __call__(self, logits: NDArray[np.floating]) -> int:
        if self.greedy:
            return int(np.argmax(logits))
        scaled = np.asarray(logits, np.float64) / self.temperature
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = order[:int(np.searchsorted(cumulative, self.top_p)) + 1]
        kept = probs[keep] / probs[keep].sum()
        return int(keep[self._rng.choice(keep.size, p=kept)])
