"""A scripted day of finger PPG for the virtual ring: at rest, walking, off the finger, back on, in a loop.

Built from heartpy's real recordings and the sample trainer's own artifact synthesizers (`wedge.samples.ppg`),
so a model trained on them changes its mind for the reasons the script gives. The signal is synthesized in 4 s
blocks, half-overlapping, and overlap-added under a Hann window: consecutive blocks of a phase continue the same
real pulse (the overlap adds the same beats at the same times), and one phase fades into the next over 2 s, so
no window sees a seam that is not in the script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from wedge.boards import Sensor
from wedge.samples.ppg import GOOD, MOTION, NO_CONTACT, RATE_HZ, SYNTHESIZERS, WINDOW_SAMPLES, is_clean
from wedge.signals.ppg import resample
from wedge.signals.recordings import heartpy_data_dir, heartpy_recordings


@dataclass(frozen=True)
class Phase:
    """One stretch of the day: what the wearer does, the class (index into the PPG sample's labels) it is."""

    name: str
    label: int
    seconds: float


# Three minutes that loop: long enough for a live page to show each class, short enough to watch.
SCRIPTED_DAY: Final[tuple[Phase, ...]] = (
    Phase("at rest", GOOD, 60.0),
    Phase("walking", MOTION, 30.0),
    Phase("at rest", GOOD, 30.0),
    Phase("off the finger", NO_CONTACT, 30.0),
    Phase("back on", GOOD, 30.0),
)
BLOCK_SAMPLES: Final[int] = WINDOW_SAMPLES
HOP_SAMPLES: Final[int] = BLOCK_SAMPLES // 2
# A periodic Hann window: shifted by half its length, two of them sum to exactly 1.
_HANN: Final = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(BLOCK_SAMPLES) / BLOCK_SAMPLES)
# A seam between two stretches blends two unrelated pulses for 2 s, which looks like motion to the model: long
# stretches only (heartpy's recordings hold about 4 minutes of them), so seams are rare.
MIN_CLEAN_SPAN_S: Final[float] = 30.0
CLEAN_HOP_SAMPLES: Final[int] = RATE_HZ // 2
# What the photodiode reads, in ADC counts: on the finger, and in the dark (off it, only ambient light leaks).
ON_FINGER_LEVEL: Final[tuple[float, float]] = (2000.0, 60.0)
OFF_FINGER_LEVEL: Final[tuple[float, float]] = (150.0, 8.0)
# An optical front end's skin detect: with the LED on, skin reflects far more light than the air does.
SKIN_DETECT_COUNTS: Final[float] = 1000.0


def clean_spans(signals: Sequence[NDArray[np.float64]], min_s: float = MIN_CLEAN_SPAN_S) -> list[NDArray[np.float64]]:
    """The stretches (50 Hz) in which every 4 s window is clean by the sample trainer's gate, at least min_s long."""
    spans = []
    for signal in signals:
        starts = range(0, len(signal) - BLOCK_SAMPLES + 1, CLEAN_HOP_SAMPLES)
        run_start: int | None = None
        last = 0
        for start in [*starts, None]:
            clean = start is not None and is_clean(signal[start:start + BLOCK_SAMPLES])
            if clean and run_start is None:
                run_start = start
            elif not clean and run_start is not None:
                span = signal[run_start:last + BLOCK_SAMPLES]
                if len(span) >= min_s * RATE_HZ:
                    spans.append(span)
                run_start = None
            if start is not None:
                last = start
    return spans


def _stand_in_pulse(rng: np.random.Generator, seconds: float = 60.0) -> NDArray[np.float64]:
    """A pulse (systolic peak, dicrotic notch, ~70 bpm with a little variability) for an install without heartpy."""
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    phase = 2 * np.pi * np.cumsum(np.full(t.size, 70.0 / 60.0) + 0.05 * np.sin(2 * np.pi * t / 9.0)) / RATE_HZ
    return 500 + 40 * np.sin(phase) + 12 * np.sin(2 * phase + 0.8) + rng.normal(0, 1.5, t.size)


def real_clean_spans(rng: np.random.Generator) -> list[NDArray[np.float64]]:
    """Clean stretches of heartpy's recordings at 50 Hz, in a board-specific order (a stand-in pulse without them)."""
    folder = heartpy_data_dir()
    spans = []
    if folder is not None:
        spans = clean_spans([resample(r.signal, r.rate_hz, RATE_HZ) for r in heartpy_recordings(folder)])
    if not spans:
        return [_stand_in_pulse(rng)]
    return [spans[i] for i in rng.permutation(len(spans))]


class PpgDay:
    """The scripted day as a sensor source: `read(n)` gives the next n samples (n, channels) at the sensor's rate."""

    def __init__(self, sensor: Sensor, rng: np.random.Generator, script: Sequence[Phase] = SCRIPTED_DAY) -> None:
        if not script or any(p.seconds <= 0 or p.label not in SYNTHESIZERS for p in script):
            raise ValueError("a PPG script needs phases of positive length with a class the synthesizers know")
        self.sensor = sensor
        self.script = tuple(script)
        self.cycle_s = sum(p.seconds for p in self.script)
        self._rng = rng
        self._spans = real_clean_spans(rng)
        self._span, self._offset = 0, 0
        self._tail = np.zeros(BLOCK_SAMPLES - HOP_SAMPLES)
        self._buffer = np.zeros(0)      # synthesized at 50 Hz, not read yet
        self._owed = 0.0                # fractional 50 Hz samples owed to a sensor of another rate
        self.elapsed_s = 0.0            # sensor time of the samples read so far
        # Prime the overlap: sample 0 is the middle of the first block, already a whole signal, not a fade-in.
        self._block = -1
        self._next_block()

    def phase_at(self, t_s: float) -> Phase:
        """The phase the script is in at `t_s` seconds of sensor time."""
        t = t_s % self.cycle_s
        for phase in self.script:
            if t < phase.seconds:
                return phase
            t -= phase.seconds
        return self.script[-1]

    @property
    def phase(self) -> Phase:
        """The phase of the newest sample read."""
        return self.phase_at(max(self.elapsed_s - 1.0 / self.sensor.rate_hz, 0.0))

    def _clean_window(self) -> NDArray[np.float64]:
        """The next 4 s of clean real pulse, half a block on from the last one (the same beats overlap)."""
        span = self._spans[self._span]
        if self._offset + BLOCK_SAMPLES > len(span):
            self._span = (self._span + 1) % len(self._spans)
            self._offset = 0
            span = self._spans[self._span]
            if len(span) < BLOCK_SAMPLES:
                span = np.resize(span, BLOCK_SAMPLES)
        window = span[self._offset:self._offset + BLOCK_SAMPLES]
        self._offset += HOP_SAMPLES
        return window

    def _next_block(self) -> NDArray[np.float64]:
        """HOP_SAMPLES more samples at 50 Hz, in ADC counts."""
        # Block k spans samples [k, k + 2) x HOP_SAMPLES and is centred on (k + 1) x HOP_SAMPLES; the priming
        # block (-1) is centred on sample 0.
        phase = self.phase_at((self._block + 1) * HOP_SAMPLES / RATE_HZ)
        self._block += 1
        shaped = SYNTHESIZERS[phase.label](self._rng, self._clean_window())
        level, scale = OFF_FINGER_LEVEL if phase.label == NO_CONTACT else ON_FINGER_LEVEL
        block = (level + scale * shaped) * _HANN
        out = self._tail + block[:HOP_SAMPLES]
        self._tail = block[HOP_SAMPLES:]
        return out

    def _take(self, count: int) -> NDArray[np.float64]:
        while len(self._buffer) < count:
            self._buffer = np.concatenate([self._buffer, self._next_block()])
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken

    def read(self, n: int) -> np.ndarray:
        rate_hz = self.sensor.rate_hz
        if rate_hz == RATE_HZ:
            samples = self._take(n)
        else:
            # Another sensor rate: the matching stretch at 50 Hz, resampled (the script is in seconds).
            self._owed += n * RATE_HZ / rate_hz
            count = max(int(self._owed), 2)
            self._owed -= count
            samples = np.interp(np.linspace(0, count - 1, n), np.arange(count), self._take(count))
        self.elapsed_s += n / rate_hz
        return np.repeat(samples[:, None], self.sensor.channels, axis=1)


__all__ = ["GOOD", "MOTION", "NO_CONTACT", "SCRIPTED_DAY", "Phase", "PpgDay", "clean_spans"]
