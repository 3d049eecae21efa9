"""PPG signal processing: resampling, the model's window normalization, and heartbeat self-correlation.

The ring sample's quality gate (`wedge.samples.ppg`) and the virtual ring's heart-rate estimate and contact
detection (`wedge.firmware.virtual.always_on`) use the same functions, so they judge a window alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

# A clean window repeats itself one beat later: best Pearson correlation over lags of 40-180 bpm.
MIN_PERIODICITY: Final[float] = 0.6
MIN_BEAT_LAG_S: Final[float] = 60.0 / 180.0
MAX_BEAT_LAG_S: Final[float] = 60.0 / 40.0
STD_FLOOR: Final[float] = 1e-6


@dataclass(frozen=True)
class BeatCorrelation:
    """The heartbeat-sized lag at which a window best matches itself, and how well (Pearson r, -1 if none)."""

    lag_samples: int
    correlation: float


def resample(signal: NDArray[np.float64], rate_hz: float, target_rate_hz: float) -> NDArray[np.float64]:
    """`signal` at `target_rate_hz`: windowed-sinc low-pass below the new Nyquist, then linear interpolation."""
    cutoff_hz = 0.4 * target_rate_hz
    half_taps = int(round(8 * rate_hz / target_rate_hz))
    n = np.arange(-half_taps, half_taps + 1)
    taps = np.sinc(2.0 * cutoff_hz / rate_hz * n) * np.hamming(len(n))
    taps /= taps.sum()
    # Edge padding keeps the filter from pulling the first and last samples towards zero.
    smoothed = np.convolve(np.pad(signal, half_taps, mode="edge"), taps, mode="valid")
    t_in_s = np.arange(len(signal)) / rate_hz
    t_out_s = np.arange(int(t_in_s[-1] * target_rate_hz) + 1) / target_rate_hz
    return np.interp(t_out_s, t_in_s, smoothed)


def zscore(window: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """The window shifted to zero mean and scaled to unit standard deviation (the model's input normalization)."""
    centered = window - window.mean()
    return centered / max(float(centered.std()), STD_FLOOR)


def beat_correlation(window: NDArray[np.floating[Any]], rate_hz: float) -> BeatCorrelation:
    """The best Pearson correlation of the window with itself shifted by one plausible heartbeat (40-180 bpm)."""
    best_lag, best = 0, -1.0
    for lag in range(max(int(MIN_BEAT_LAG_S * rate_hz), 1), int(MAX_BEAT_LAG_S * rate_hz) + 1):
        if lag >= window.size:
            break
        head, tail = window[:-lag], window[lag:]
        head, tail = head - head.mean(), tail - tail.mean()
        energy = float(np.sqrt((head @ head) * (tail @ tail)))
        if energy > 0 and (score := float(head @ tail) / energy) > best:
            best_lag, best = lag, score
    return BeatCorrelation(best_lag, best)
