"""How much weight quantization costs a language model: perplexity on held-out text (sliding window), next-token
top-1 agreement with fp32, greedy samples, and tokens/s with peak RSS measured in a fresh process per model.

Perplexity follows the usual sliding-window recipe: each window sees up to `window` tokens of context and
scores only the tokens the previous window did not.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from wedge.errors import first_line
from wedge.quantize.lm.errors import ContextLengthError, LmError, TextError
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.tokenizer import TextTokenizer

MIN_EVAL_TOKENS: Final = 16
SPEED_TIMEOUT_S: Final = 900.0


@dataclass(frozen=True)
class TextScore:
    """Per scored token: its negative log-likelihood and the model's top-1 prediction for it."""

    nll: NDArray[np.float64]
    predicted: NDArray[np.int64]
    targets: NDArray[np.int64]

    @property
    def perplexity(self) -> float:
        return float(math.exp(float(self.nll.mean())))

    @property
    def top1_accuracy_pct(self) -> float:
        return float(100.0 * np.mean(self.predicted == self.targets))


def read_text(path: Path) -> str:
    """A UTF-8 text file's content; anything else is a one-line TextError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise TextError(f"{path}: no such text file") from None
    except OSError as exc:
        raise TextError(f"{path} cannot be read: {exc.strerror or first_line(exc)}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextError(f"{path} is not UTF-8 text (undecodable byte at offset {exc.start})") from None
    if "\x00" in text:
        raise TextError(f"{path} holds NUL bytes: it is a binary file, not text")
    if not text.strip():
        raise TextError(f"{path} is empty")
    return text


def eval_tokens(tokenizer: TextTokenizer, text: str, max_tokens: int | None, source: str) -> NDArray[np.int64]:
    ids = np.asarray(tokenizer.encode(text), np.int64)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if ids.size < MIN_EVAL_TOKENS:
        raise TextError(f"{source} gives {ids.size} tokens; perplexity needs at least {MIN_EVAL_TOKENS}")
    return ids


def windows(count: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored target) of each window over `count` tokens; targets start at token 1."""
    if window < 2 or not 1 <= stride <= window:
        raise ContextLengthError(f"a window of {window} tokens with stride {stride} cannot score text")
    spans = []
    scored_to = 1
    begin = 0
    while scored_to < count:
        end = min(begin + window, count)
        spans.append((begin, end, scored_to))
        scored_to = end
        begin += stride
        if end == count:
            break
    return spans


def score_text(session: DecoderSession, ids: NDArray[np.int64], window: int, stride: int,
               on_window: Callable[[int], None] | None = None) -> TextScore:
    """Sliding-window negative log-likelihood and top-1 predictions of every token after the first."""
    nll: list[NDArray[np.float64]] = []
    predicted: list[NDArray[np.int64]] = []
    targets: list[NDArray[np.int64]] = []
    for begin, end, first in windows(ids.size, window, stride):
        logits, _ = session.forward(ids[None, begin:end])
        rows = logits[0, first - begin - 1:end - begin - 1].astype(np.float64)  # row j predicts token begin+j+1
        wanted = ids[first:end]
        top = rows.max(axis=-1, keepdims=True)
        log_norm = np.log(np.exp(rows - top).sum(axis=-1)) + top[:, 0]
        nll.append(log_norm - rows[np.arange(wanted.size), wanted])
        predicted.append(rows.argmax(axis=-1).astype(np.int64))
        targets.append(wanted)
        if on_window is not None:
            on_window(1)
    return TextScore(np.concatenate(nll), np.concatenate(predicted), np.concatenate(targets))


def agreement_pct(reference: TextScore, other: TextScore) -> float:
    """How often two models' top-1 next-token predictions agree on the same text."""
    return float(100.0 * np.mean(reference.predicted == other.predicted))


@dataclass(frozen=True)
class SpeedResult:
    """Greedy decoding in a fresh process: time to load and to prefill, decode rate, and peak RSS."""

    load_s: float
    prefill_s: float
    prompt_tokens: int
    new_tokens: int
    tokens_per_s: float
    peak_rss_bytes: int
    baseline_rss_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_speed(model: Path, prompt: Sequence[int], new_tokens: int, threads: int | None = None) -> SpeedResult:
    """Run `wedge.quantize.lm.speed` on `model` in a child process, so each model's peak RSS is its own."""
    request = {"model": str(model), "prompt": [int(t) for t in prompt], "new_tokens": new_tokens, "threads": threads}
    try:
        done = subprocess.run([sys.executable, "-m", "wedge.quantize.lm.speed"], input=json.dumps(request),
                              capture_output=True, text=True, timeout=SPEED_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise LmError(f"measuring {model} took over {SPEED_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        raise LmError(f"measuring {model} failed: {first_line(done.stderr or done.stdout)}")
    return SpeedResult(**json.loads(done.stdout.strip().splitlines()[-1]))
