"""Turns raw PPG recordings into the ring sample's labelled windows: quality gating, block splits, artifacts.

Numpy only: the recordings come from `wedge.signals.recordings`, the signal processing from `wedge.signals.ppg`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from wedge.signals.ppg import MIN_PERIODICITY, beat_correlation, resample, zscore
from wedge.signals.recordings import Recording

RATE_HZ: Final = 50
WINDOW_S: Final = 4
WINDOW_SAMPLES: Final = RATE_HZ * WINDOW_S
# Class indices, in the order of wedge.samples.PPG_QUALITY.labels.
GOOD: Final = 0
MOTION: Final = 1
NO_CONTACT: Final = 2

# Windows never straddle two blocks, and a block belongs to one split: overlapping windows cannot leak
# the same heartbeats from the training set into the test set.
BLOCK_S: Final = 20
HOP_S: Final = 1
# Saturation presses several beats onto the same ceiling (within 1% of the window's span), while real
# systolic peaks differ in height. A pulse's diastolic floor may be long and level, so the floor only
# counts as a rail when it is held flat for several samples in a row (a dropout to zero).
RAIL_BAND: Final = 0.01
MAX_CEILING_SAMPLES: Final = 5
MAX_FLOOR_RUN: Final = 3

Window = NDArray[np.float64]
Synthesizer = Callable[[np.random.Generator, Window], Window]


@dataclass(frozen=True)
class CleanWindows:
    """Quality-gated real windows (raw units, 50 Hz) for each split."""

    train: tuple[Window, ...]
    calib: tuple[Window, ...]
    test: tuple[Window, ...]


def periodicity(window: Window, rate_hz: float = RATE_HZ) -> float:
    """The best correlation of the window with itself shifted by one plausible heartbeat."""
    return beat_correlation(window, rate_hz).correlation


def _longest_run(mask: NDArray[np.bool_]) -> int:
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max(initial=0))


def is_saturated(window: Window) -> bool:
    """Whether the window sits on a rail: beats flattened onto one ceiling, or a floor held flat."""
    span = float(window.max() - window.min())
    if span <= 0:
        return True
    near_top = window >= window.max() - RAIL_BAND * span
    near_bottom = window <= window.min() + RAIL_BAND * span
    return int(near_top.sum()) > MAX_CEILING_SAMPLES or _longest_run(near_bottom) > MAX_FLOOR_RUN


def is_clean(window: Window) -> bool:
    """Whether a real window is good enough to stand for the 'good' class."""
    return not is_saturated(window) and periodicity(window) >= MIN_PERIODICITY


def clean_blocks(recordings: Sequence[Recording]) -> list[tuple[Window, ...]]:
    """The clean 4 s windows of every 20 s block of every recording, resampled to 50 Hz; blocks in order."""
    block_samples, hop_samples = BLOCK_S * RATE_HZ, HOP_S * RATE_HZ
    blocks = []
    for recording in recordings:
        signal = resample(recording.signal, recording.rate_hz, RATE_HZ)
        for block_start in range(0, len(signal) - block_samples + 1, block_samples):
            block = signal[block_start : block_start + block_samples]
            starts = range(0, block_samples - WINDOW_SAMPLES + 1, hop_samples)
            windows = tuple(block[s : s + WINDOW_SAMPLES] for s in starts)
            blocks.append(tuple(w for w in windows if is_clean(w)))
    return blocks


def split_clean_windows(
    recordings: Sequence[Recording], rng: np.random.Generator, calib_fraction: float, test_fraction: float
) -> CleanWindows:
    """Clean windows split by whole blocks into train / calibration / test."""
    blocks = [b for b in clean_blocks(recordings) if b]
    order = rng.permutation(len(blocks))
    n_test = max(1, round(test_fraction * len(blocks)))
    n_calib = max(1, round(calib_fraction * len(blocks)))

    def gather(indices: NDArray[np.intp]) -> tuple[Window, ...]:
        return tuple(w for i in sorted(indices) for w in blocks[i])

    return CleanWindows(
        train=gather(order[n_test + n_calib :]),
        calib=gather(order[n_test : n_test + n_calib]),
        test=gather(order[:n_test]),
    )


def _sinusoids(rng: np.random.Generator, count: int, freq_hz: tuple[float, float], amplitude: float) -> Window:
    t_s = np.arange(WINDOW_SAMPLES) / RATE_HZ
    out = np.zeros(WINDOW_SAMPLES)
    for _ in range(count):
        freq = rng.uniform(*freq_hz)
        out += amplitude * rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * freq * t_s + rng.uniform(0, 2 * np.pi))
    return out


def good(rng: np.random.Generator, clean: Window) -> Window:
    """A clean real window with a breathing baseline and sensor noise a still ring would see."""
    x = zscore(clean)
    x = x + _sinusoids(rng, 1, (0.1, 0.4), rng.uniform(0.0, 0.3))
    x = x + rng.normal(0.0, rng.uniform(0.0, 0.1), WINDOW_SAMPLES)
    return zscore(x)


def _bursts(rng: np.random.Generator) -> Window:
    # A finger tap or grip change: a short, strong oscillation of the light path.
    t_s = np.arange(WINDOW_SAMPLES) / RATE_HZ
    out = np.zeros(WINDOW_SAMPLES)
    for _ in range(rng.integers(1, 4)):
        center_s, width_s = rng.uniform(0, WINDOW_S), rng.uniform(0.1, 0.6)
        envelope = np.exp(-0.5 * ((t_s - center_s) / width_s) ** 2)
        carrier = np.sin(2 * np.pi * rng.uniform(0.5, 6.0) * t_s + rng.uniform(0, 2 * np.pi))
        out += rng.uniform(1.0, 5.0) * envelope * carrier
    return out


def _spikes(rng: np.random.Generator) -> Window:
    out = np.zeros(WINDOW_SAMPLES)
    for _ in range(rng.integers(1, 6)):
        start, width = int(rng.integers(0, WINDOW_SAMPLES - 3)), int(rng.integers(1, 4))
        out[start : start + width] += rng.choice((-1.0, 1.0)) * rng.uniform(2.0, 8.0)
    return out


def _step(rng: np.random.Generator) -> Window:
    # The ring slides on the finger: the DC level jumps and settles.
    t = np.arange(WINDOW_SAMPLES)
    edge = rng.uniform(0.1, 0.9) * WINDOW_SAMPLES
    return rng.choice((-1.0, 1.0)) * rng.uniform(1.0, 4.0) / (1.0 + np.exp(-(t - edge) / rng.uniform(1.0, 8.0)))


def _clip(rng: np.random.Generator, x: Window) -> Window:
    # Pressure pushes the photodiode current past the ADC range: flat tops and/or bottoms.
    high = np.quantile(x, rng.uniform(0.75, 0.95))
    low = np.quantile(x, rng.uniform(0.02, 0.2)) if rng.random() < 0.4 else -np.inf
    return np.clip(x, low, high)


def motion(rng: np.random.Generator, clean: Window) -> Window:
    """A real window corrupted by a random mix of realistic motion artifacts, some of them mild."""
    x = zscore(clean)
    kinds = rng.random(5) < (0.6, 0.45, 0.3, 0.25, 0.3)
    if not kinds.any():
        kinds[rng.integers(0, 5)] = True
    wander, bursts, spikes, step, clip = kinds
    if wander:
        x = x + _sinusoids(rng, int(rng.integers(1, 3)), (0.05, 0.8), rng.uniform(0.5, 3.0))
    if bursts:
        x = x + _bursts(rng)
    if spikes:
        x = x + _spikes(rng)
    if step:
        x = x + _step(rng)
    if clip:
        x = _clip(rng, x)
    return zscore(x)


def _ambient_flicker(rng: np.random.Generator) -> Window:
    # Off the skin the photodiode sees room light flickering at twice the mains frequency; sampled at
    # 50 Hz by a slightly-off RC clock it aliases to a slow or ~20 Hz wave.
    mains_hz = rng.choice((50.0, 60.0)) * rng.uniform(0.998, 1.002)
    clock_hz = RATE_HZ * (1.0 + rng.uniform(-0.01, 0.01))
    t_s = np.arange(WINDOW_SAMPLES) / clock_hz
    return rng.uniform(0.0, 5.0) * np.sin(2 * np.pi * 2 * mains_hz * t_s + rng.uniform(0, 2 * np.pi))


def _front_end_noise(rng: np.random.Generator) -> Window:
    # The analog front end integrates the photodiode current, so dark noise comes out more or less smooth.
    taps = int(rng.integers(1, 11))
    noise = rng.normal(0.0, 1.0, WINDOW_SAMPLES + taps - 1)
    return np.convolve(noise, np.full(taps, 1.0 / taps), mode="valid")


def no_contact(rng: np.random.Generator, clean: Window) -> Window:
    """What a ring off the finger records: noise, ambient light, drift, ADC steps, rails, faint light leaks."""
    x = _front_end_noise(rng)
    if rng.random() < 0.6:
        x = x + _ambient_flicker(rng)
    if rng.random() < 0.5:
        x = x + _sinusoids(rng, 1, (0.02, 0.3), rng.uniform(0.0, 3.0))
    if rng.random() < 0.3:
        # Part of the light still leaks through the finger: a faint pulse under the noise.
        x = x + zscore(clean) * rng.uniform(0.1, 0.5) * x.std()
    if rng.random() < 0.2:
        x = x + _step(rng) * x.std()
    if rng.random() < 0.4:
        # A dark, flat signal spans only a few ADC codes.
        x = np.round(zscore(x) * rng.uniform(0.5, 4.0))
    return zscore(x)


SYNTHESIZERS: Final[dict[int, Synthesizer]] = {GOOD: good, MOTION: motion, NO_CONTACT: no_contact}


def make_split(
    rng: np.random.Generator, clean: Sequence[Window], per_class: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """`per_class` windows of each class as a [n, 1, 200] float32 array (NCW) and int64 labels, shuffled."""
    windows, labels = [], []
    for label, synthesize in SYNTHESIZERS.items():
        picks = rng.permutation(np.resize(np.arange(len(clean)), per_class))
        windows += [synthesize(rng, clean[i]) for i in picks]
        labels += [label] * per_class
    order = rng.permutation(len(labels))
    # Half precision is what the 10-bit sensor carries anyway, and it keeps the shipped files small.
    x = np.stack(windows)[order].astype(np.float16).astype(np.float32)[:, None, :]
    return x, np.asarray(labels, dtype=np.int64)[order]
