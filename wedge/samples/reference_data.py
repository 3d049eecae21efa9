"""Calibration and eval inputs for the MLPerf Tiny reference models, made from real media that ships locally.

Image models get crops of scikit-learn's bundled photographs; the anomaly-detection autoencoder gets
log-mel frames of a real speech clip. Nothing is downloaded; the arrays are deterministic for a seed.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from wedge.samples import SampleError

SAMPLE_RATE_HZ: Final = 16_000
# ToyADMOS / MLPerf Tiny AD front end: 128 mel bands, 1024-point FFT, hop 512, 5 frames per input.
MEL_BANDS: Final = 128
FFT_SIZE: Final = 1024
HOP: Final = 512
FRAMES: Final = 5


@dataclass(frozen=True)
class ReferenceData:
    """Inputs for one reference model: calibration and eval arrays keyed by the ONNX input name."""

    model_file: str
    input_name: str
    calib: np.ndarray
    eval: np.ndarray


def natural_image_crops(count: int, size: int, *, seed: int, scale: float) -> np.ndarray:
    """`count` random crops of the bundled photographs, resized to size x size, NCHW float32 in [0, scale]."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        raise SampleError("reference image data needs scikit-learn (pip install scikit-learn)") from None
    from PIL import Image

    photos = [np.asarray(p) for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    crops = np.empty((count, 3, size, size), np.float32)
    for index in range(count):
        photo = photos[index % len(photos)]
        height, width = photo.shape[:2]
        side = int(rng.uniform(0.15, 0.9) * min(height, width))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        patch = Image.fromarray(photo[top : top + side, left : left + side]).resize((size, size), Image.BILINEAR)
        pixels = np.asarray(patch, dtype=np.float32)
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        crops[index] = pixels.transpose(2, 0, 1) * (scale / 255.0)
    return crops


def read_wav(path: Path) -> np.ndarray:
    """A mono 16-bit PCM wav as float32 in [-1, 1]."""
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getsampwidth() != 2:
                raise SampleError(f"{path.name}: expected 16-bit PCM")
            frames = handle.readframes(handle.getnframes())
            channels = handle.getnchannels()
    except (OSError, wave.Error) as exc:
        raise SampleError(f"cannot read {path}: {exc}") from None
    audio = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return audio.reshape(-1, channels).mean(axis=1)


def mel_filterbank(bands: int = MEL_BANDS, fft_size: int = FFT_SIZE, rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Slaney-style triangular mel filters, shape (bands, fft_size // 2 + 1)."""

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(rate_hz / 2)), bands + 2))
    bins = np.linspace(0, rate_hz / 2, fft_size // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def log_mel_windows(audio: np.ndarray, count: int, *, seed: int) -> np.ndarray:
    """`count` inputs of FRAMES x MEL_BANDS log-mel (10*log10 power) from `audio` with random gain and noise."""
    rng = np.random.default_rng(seed)
    filters = mel_filterbank()
    window = np.hanning(FFT_SIZE).astype(np.float32)
    out = np.empty((count, FRAMES * MEL_BANDS), np.float32)
    span = FFT_SIZE + HOP * (FRAMES - 1)
    for index in range(count):
        start = int(rng.integers(0, max(1, len(audio) - span)))
        clip = audio[start : start + span] * rng.uniform(0.3, 3.0)
        clip = clip + rng.normal(0, rng.uniform(1e-4, 2e-2), clip.shape).astype(np.float32)
        frames = np.stack([clip[i * HOP : i * HOP + FFT_SIZE] * window for i in range(FRAMES)])
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        out[index] = (10.0 * np.log10(power @ filters.T + 1e-10)).ravel()
    return out


def reference_data(models_dir: Path, model_file: str, *, calib_count: int = 100, eval_count: int = 200,
                   seed: int = 0) -> ReferenceData:
    """Calibration and eval inputs for one of the shared MLPerf Tiny ONNX models in `models_dir`."""
    if model_file == "vww_96_float.onnx":  # trained on images scaled to [0, 1]
        make = lambda n, s: natural_image_crops(n, 96, seed=s, scale=1.0)  # noqa: E731
        name = "input_1"
    elif model_file == "pretrainedResnet.onnx":  # CIFAR-10 ResNet-8 takes raw 0..255 pixels
        make = lambda n, s: natural_image_crops(n, 32, seed=s, scale=255.0)  # noqa: E731
        name = "input_1"
    elif model_file == "ad01_fp32.onnx":
        audio = read_wav(models_dir / "marvin_617de221_0.wav")
        make = lambda n, s: log_mel_windows(audio, n, seed=s)  # noqa: E731
        name = "input_1"
    else:
        raise SampleError(f"no reference data recipe for {model_file}")
    return ReferenceData(model_file, name, calib=make(calib_count, seed), eval=make(eval_count, seed + 1))
