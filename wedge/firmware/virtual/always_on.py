"""The virtual board's always-on loop: sensor sources at the profile's rates, windowing, one inference per window.

PPG plays a scripted day (`ppg_day`: heartpy's real recordings at rest, with motion, off the finger); accelerometer,
temperature, audio and camera are synthetic.
`AlwaysOnLoop.step()` gives one window's outputs; `run()` paces steps at the record rate on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from wedge.boards import Board, Sensor
from wedge.firmware.protocol.ble_model_info import ModelInfo, model_id_of
from wedge.firmware.protocol.ble_records import Output
from wedge.firmware.virtual.ppg_day import SKIN_DETECT_COUNTS, PpgDay
from wedge.runtime.artifacts.labels import ModelLabels, read_model_labels, tflite_labels
from wedge.runtime.engines import Engine, TensorSpec, open_engine
from wedge.runtime.types import ArtifactError
from wedge.samples import SAMPLES
from wedge.signals.ppg import MIN_BEAT_LAG_S, MIN_PERIODICITY, beat_correlation, zscore

# A window this periodic holds a pulse: the same gate the PPG sample uses for clean windows.
CONTACT_PERIODICITY: Final[float] = MIN_PERIODICITY
MAX_CATCH_UP_STEPS: Final[int] = 64
# The virtual board's default record rate is at least this: a 4 s PPG window every 0.5 s (windows overlap, as a
# ring's firmware hops them), so a live page moves within seconds instead of once per window.
MIN_DEFAULT_RATE_HZ: Final[float] = 2.0


class SensorSource(Protocol):
    """Gives the next samples of one sensor: shape (n, channels), or (n, height, width, channels) for a camera."""

    sensor: Sensor

    def read(self, n: int) -> np.ndarray: ...


class _ClockedSource:
    """A synthetic sensor: its sample clock, so each `read` continues where the last one stopped."""

    def __init__(self, sensor: Sensor, rng: np.random.Generator) -> None:
        self.sensor = sensor
        self._rng = rng
        self._t = 0

    def _times(self, n: int) -> np.ndarray:
        """The times in seconds of the next `n` samples."""
        t = (self._t + np.arange(n)) / self.sensor.rate_hz
        self._t += n
        return t


class SyntheticAccelerometer(_ClockedSource):
    """Gravity on z plus small wrist motion, with an occasional burst of movement (m/s^2)."""

    def read(self, n: int) -> np.ndarray:
        t = self._times(n)
        burst = 2.0 * (np.sin(2 * np.pi * t / 17.0) > 0.95)
        motion = np.stack([0.3 * np.sin(2 * np.pi * 1.1 * t), 0.2 * np.cos(2 * np.pi * 0.7 * t), 9.81 + 0 * t], axis=1)
        samples = motion + burst[:, None] * self._rng.normal(0, 1, (n, 3))
        # A 6-axis IMU repeats the pattern on its gyroscope channels.
        return np.tile(samples, (1, 2))[:, : self.sensor.channels]


class SyntheticSlowSignal(_ClockedSource):
    """A slowly drifting value (skin temperature, pressure) with sensor noise."""

    def __init__(self, sensor: Sensor, rng: np.random.Generator, base: float = 33.0) -> None:
        super().__init__(sensor, rng)
        self._base = base

    def read(self, n: int) -> np.ndarray:
        t = self._times(n)
        value = self._base + 0.5 * np.sin(2 * np.pi * t / 600.0) + self._rng.normal(0, 0.02, n)
        return np.repeat(value[:, None], self.sensor.channels, axis=1)


class SyntheticAudio(_ClockedSource):
    """Microphone PCM in [-1, 1]: room noise with a voiced burst (a 220 Hz harmonic series) every few seconds."""

    def read(self, n: int) -> np.ndarray:
        t = self._times(n)
        voiced = (np.floor(t / 0.5) % 6) == 0
        tone = sum(np.sin(2 * np.pi * 220.0 * k * t) / k for k in (1, 2, 3))
        pcm = 0.02 * self._rng.standard_normal(n) + 0.3 * voiced * tone
        return np.repeat(np.clip(pcm, -1, 1)[:, None], self.sensor.channels, axis=1)


class SyntheticCamera:
    """uint8 frames: a bright blob drifting across a noisy, shaded background."""

    def __init__(self, sensor: Sensor, rng: np.random.Generator) -> None:
        self.sensor = sensor
        self._rng = rng
        self._frame = 0
        h, w = sensor.frame_height_px, sensor.frame_width_px
        self._yy, self._xx = np.mgrid[0:h, 0:w]

    def read(self, n: int) -> np.ndarray:
        h, w, c = self.sensor.frame_height_px, self.sensor.frame_width_px, self.sensor.channels
        frames = np.empty((n, h, w, c), dtype=np.uint8)
        for i in range(n):
            k = self._frame + i
            cx, cy = (w / 2) * (1 + np.sin(k / 15.0)), (h / 2) * (1 + np.cos(k / 23.0))
            blob = 180 * np.exp(-((self._xx - cx) ** 2 + (self._yy - cy) ** 2) / (2 * (w / 8) ** 2))
            base = 40 + 40 * self._yy / max(h, 1) + blob + self._rng.normal(0, 6, (h, w))
            frames[i] = np.clip(base, 0, 255)[:, :, None].astype(np.uint8)
        self._frame += n
        return frames


def source_for(sensor: Sensor, rng: np.random.Generator) -> SensorSource:
    """The source that feeds a sensor of this kind."""
    if sensor.kind == "ppg":
        return PpgDay(sensor, rng)
    if sensor.kind in ("accelerometer", "gyroscope", "magnetometer"):
        return SyntheticAccelerometer(sensor, rng)
    if sensor.kind == "audio":
        return SyntheticAudio(sensor, rng)
    if sensor.kind == "camera":
        return SyntheticCamera(sensor, rng)
    return SyntheticSlowSignal(sensor, rng)


class SensorWindow:
    """The newest `window_samples` samples of one sensor, advanced by a fractional number of samples per step."""

    def __init__(self, source: SensorSource) -> None:
        self.source = source
        self.sensor = source.sensor
        self.samples = source.read(max(self.sensor.window_samples, 1))
        self.version = 0  # counts window changes, so a model input built from an unchanged window is reused
        self._owed = 0.0

    def advance(self, seconds: float) -> None:
        self._owed += seconds * self.sensor.rate_hz
        n = int(self._owed)
        if n <= 0:
            return
        self._owed -= n
        size = len(self.samples)
        fresh = self.source.read(min(n, size))
        self.samples = np.concatenate([self.samples[len(fresh):], fresh]) if len(fresh) < size else fresh
        self.version += 1


def model_id_for(model_bytes: bytes) -> int:
    """The 32-bit model id a record carries: the first four bytes of the model's SHA-256."""
    return model_id_of(hashlib.sha256(model_bytes).digest())


def _fixed_shape(spec: TensorSpec) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in spec.shape)


def _normalized(window: SensorWindow) -> np.ndarray:
    """The window as the model's real-valued input: pixels in [0, 1], other signals z-scored over the window."""
    if window.sensor.kind == "camera":
        return window.samples.astype(np.float32) / 255.0
    return zscore(window.samples.astype(np.float64)).astype(np.float32)


def _fit(values: np.ndarray, count: int) -> np.ndarray:
    """`values` flattened and linearly resampled to `count` elements, for a model whose input is not the window."""
    flat = values.ravel()
    if flat.size == count:
        return flat
    return np.interp(np.linspace(0, flat.size - 1, count), np.arange(flat.size), flat).astype(np.float32)


@dataclass(frozen=True)
class HeartRateEstimate:
    """What a ring reports in its Heart Rate Measurement: rate, skin contact, and the beat interval."""

    bpm: int
    contact: bool
    rr_interval_s: float


def estimate_heart_rate(samples: np.ndarray, rate_hz: float) -> HeartRateEstimate:
    """Rate from the PPG window's strongest heartbeat-sized self-similarity lag; no clear pulse, or a level below
    the front end's skin detect (off the finger the photodiode sees little light), means no contact."""
    signal = samples[:, 0] if samples.ndim == 2 else samples
    on_skin = float(np.mean(signal)) >= SKIN_DETECT_COUNTS
    beat = beat_correlation(zscore(signal.astype(np.float64)), rate_hz)
    if beat.lag_samples == 0:
        return HeartRateEstimate(0, False, 0.0)
    rr_s = beat.lag_samples / rate_hz
    # The best match at the shortest lag tried is no beat: a smooth signal (drift, filtered noise, a fading
    # level) resembles itself most at the smallest shift. A pulse peaks at its period, inside the range.
    at_edge = beat.lag_samples <= max(int(MIN_BEAT_LAG_S * rate_hz), 1)
    contact = on_skin and beat.correlation >= CONTACT_PERIODICITY and not at_edge
    return HeartRateEstimate(round(60.0 / rr_s), contact, rr_s)


@dataclass(frozen=True)
class WindowResult:
    """One window's inference: when it ended (device clock, µs since the UNIX epoch) and the model's outputs."""

    t_device_us: int
    outputs: tuple[Output, ...]


class AlwaysOnLoop:
    """Sensors → windows → model, one result per step; the record rate is the step rate (windows overlap when
    it is faster than one per window; by default one per window, and at least MIN_DEFAULT_RATE_HZ).

    The engine is any wedge Engine (TFLite-Micro on a board); each model input is fed from the sensor whose
    window has exactly its size, else from the board's first sensor resampled to it.
    """

    def __init__(self, board: Board, engine: Engine, *, rate_hz: float | None = None, seed: int = 0,
                 clock_us: Callable[[], int] = lambda: time.time_ns() // 1000) -> None:
        if not board.sensors:
            raise ValueError(f"board {board.name} has no sensors to feed a model")
        rng = np.random.default_rng(seed)
        self.board = board
        self.engine = engine
        self.windows = [SensorWindow(source_for(s, rng)) for s in board.sensors]
        self._clock_us = clock_us
        self._feeds = [(spec, self._window_for(spec)) for spec in engine.inputs]
        self._inputs: dict[str, tuple[int, np.ndarray]] = {}
        primary = self._feeds[0][1].sensor if self._feeds else board.sensors[0]
        self.rate_hz = rate_hz if rate_hz is not None else max(1.0 / primary.window_s, MIN_DEFAULT_RATE_HZ)
        self._ppg = next((w for w in self.windows if w.sensor.kind == "ppg"), None)
        # Only sensors something reads are simulated (the model's inputs, the PPG for the heart rate).
        used = {id(w) for _, w in self._feeds} | ({id(self._ppg)} if self._ppg is not None else set())
        self._active = [w for w in self.windows if id(w) in used]

    def _window_for(self, spec: TensorSpec) -> SensorWindow:
        count = int(np.prod(_fixed_shape(spec)))
        for window in self.windows:
            if int(np.prod(window.sensor.window_shape)) == count:
                return window
        return self.windows[0]

    def set_rate(self, rate_hz: float) -> None:
        if rate_hz <= 0:
            raise ValueError(f"record rate must be > 0 Hz, got {rate_hz}")
        self.rate_hz = rate_hz

    def step(self) -> WindowResult:
        """Advance every sensor by one record period, then run the model on the newest windows."""
        period_s = 1.0 / self.rate_hz
        for window in self._active:
            window.advance(period_s)
        feeds = {}
        for spec, window in self._feeds:
            cached = self._inputs.get(spec.name)
            if cached is not None and cached[0] == window.version:
                feeds[spec.name] = cached[1]
                continue
            shape = _fixed_shape(spec)
            real = _fit(_normalized(window), int(np.prod(shape))).reshape(shape)
            if np.dtype(spec.dtype).kind in "iu" and spec.quant is not None:
                feeds[spec.name] = spec.quant.quantize(real, spec.dtype)
            else:
                feeds[spec.name] = real.astype(spec.dtype)
            self._inputs[spec.name] = (window.version, feeds[spec.name])
        results = self.engine.run(feeds)
        outputs = []
        for spec in self.engine.outputs:
            value = np.asarray(results[spec.name])
            quant = spec.quant if value.dtype.kind in "iu" and spec.quant is not None else None
            if quant is not None and quant.per_axis:
                quant = None  # per-channel output quantization has no single scale to send: raw integers go
            outputs.append(Output.from_array(value, quant.scales[0] if quant else None,
                                             quant.zero_points[0] if quant else None))
        return WindowResult(self._clock_us(), tuple(outputs))

    def heart_rate(self) -> HeartRateEstimate | None:
        """The heart rate in the newest PPG window, or None on a board without PPG."""
        if self._ppg is None:
            return None
        return estimate_heart_rate(self._ppg.samples, self._ppg.sensor.rate_hz)

    async def run(self, emit: Callable[[WindowResult], None], stop: asyncio.Event) -> None:
        """Step at `rate_hz` (read again every period, so a rate change applies at once) until `stop` is set.

        Steps are scheduled on absolute times, so a slow step makes the next ones run back to back (at most
        MAX_CATCH_UP_STEPS) instead of lowering the average rate.
        """
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            behind = 0
            while loop.time() >= next_at and behind < MAX_CATCH_UP_STEPS and not stop.is_set():
                emit(self.step())
                next_at += 1.0 / self.rate_hz
                behind += 1
            if behind == MAX_CATCH_UP_STEPS:
                next_at = loop.time()
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(next_at - loop.time(), 0.0))
            except TimeoutError:
                pass


def file_model_info(model: str | Path | bytes, model_id: int) -> ModelInfo:
    """What a model given as a file (or bytes) says of itself on the model info characteristic: its file name,
    and the labels it carries (a bundled sample's own when it is one and carries none)."""
    if isinstance(model, bytes):
        carried = tflite_labels(model) or ModelLabels()
        return ModelInfo(model_id, "model", "", carried.labels, carried.unit)
    path = Path(model)
    try:
        carried = read_model_labels(path)
    except ArtifactError:
        carried = None
    if carried is None:
        bundled = next((s for s in SAMPLES.values() if s.model_path == path.resolve()), None)
        carried = ModelLabels(bundled.labels if bundled is not None else ())
    return ModelInfo(model_id, path.stem, "", carried.labels, carried.unit)


def open_board_engine(board: Board, model: str | Path | bytes) -> tuple[Engine, int]:
    """The model in the engine the board runs (TFLite-Micro in the board's arena for .tflite), and its model id."""
    content = model if isinstance(model, bytes) else Path(model).read_bytes()
    if isinstance(model, bytes) or Path(model).suffix.lower() == ".tflite":
        return open_engine(content, "tflm", arena_bytes=board.budgets.arena_bytes), model_id_for(content)
    # A board runs its model on one core; more threads only add contention next to the BLE stack.
    return open_engine(model, threads=1), model_id_for(content)
