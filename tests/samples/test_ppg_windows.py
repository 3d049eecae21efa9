"""PPG window preparation: resampling keeps the pulse, the quality gate keeps only clean windows, classes look right."""

from __future__ import annotations

import numpy as np
import pytest

from wedge.samples import PPG_QUALITY, ppg
from wedge.signals.ppg import resample
from wedge.signals.recordings import Recording

RATE = ppg.RATE_HZ
N = ppg.WINDOW_SAMPLES


def _pulse(rate_hz: float, seconds: float, bpm: float = 72.0, seed: int = 0) -> np.ndarray:
    """A PPG-like wave in ADC counts: per beat a systolic and a smaller dicrotic peak, heights varying by
    beat, a diastolic decline to the foot of the next beat, on a breathing baseline."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    period_s = 60.0 / bpm
    wave = -0.3 * ((t / period_s) % 1.0)
    for beat_s in np.arange(0.0, seconds + 1.0, period_s):
        height = rng.uniform(0.85, 1.15)
        wave += height * np.exp(-(((t - beat_s - 0.15) / 0.06) ** 2))
        wave += 0.4 * height * np.exp(-(((t - beat_s - 0.40) / 0.07) ** 2))
    breathing = 15 * np.sin(2 * np.pi * 0.25 * t)
    return 500 + 200 * wave + breathing + rng.normal(0, 1, len(t))


def _dominant_hz(x: np.ndarray, rate_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x - x.mean()))
    return float(np.fft.rfftfreq(len(x), 1 / rate_hz)[spectrum.argmax()])


def test_resampling_to_50_hz_keeps_the_time_axis_and_the_frequency() -> None:
    t = np.arange(0, 10, 1 / 117.0)
    resampled = resample(np.sin(2 * np.pi * 1.5 * t), 117.0, RATE)
    assert len(resampled) == int(t[-1] * RATE) + 1
    assert _dominant_hz(resampled, RATE) == pytest.approx(1.5, abs=0.1)
    assert np.abs(resampled[50:-50]).max() == pytest.approx(1.0, abs=0.02)


def test_resampling_removes_content_above_the_new_nyquist() -> None:
    t = np.arange(0, 10, 1 / 100.0)
    resampled = resample(np.sin(2 * np.pi * 40.0 * t), 100.0, RATE)
    # 40 Hz would alias to 10 Hz at 50 Hz; the low-pass must have removed it first.
    assert np.abs(resampled[50:-50]).max() < 0.05


def test_a_clean_pulse_window_passes_the_quality_gate() -> None:
    window = resample(_pulse(100.0, 5.0), 100.0, RATE)[:N]
    assert ppg.is_clean(window)


def test_a_window_clipped_at_the_adc_rail_is_rejected() -> None:
    window = resample(_pulse(100.0, 5.0), 100.0, RATE)[:N]
    clipped = np.minimum(window, np.quantile(window, 0.85))
    assert ppg.is_saturated(clipped)
    assert not ppg.is_clean(clipped)


def test_noise_without_a_heartbeat_is_rejected() -> None:
    noise = np.random.default_rng(1).normal(500, 3, N)
    assert not ppg.is_clean(noise)


def test_flat_signal_is_rejected() -> None:
    assert not ppg.is_clean(np.full(N, 512.0))


def test_blocks_yield_only_clean_windows_of_the_right_length() -> None:
    recording = Recording("synthetic", _pulse(100.0, 45.0), 100.0)
    blocks = ppg.clean_blocks([recording])
    assert len(blocks) == 2  # 45 s holds two whole 20 s blocks
    assert all(len(w) == N for block in blocks for w in block)
    assert sum(len(block) for block in blocks) == 2 * 17  # 4 s windows every 1 s in 20 s


@pytest.mark.parametrize("label", sorted(ppg.SYNTHESIZERS))
def test_every_class_synthesizer_returns_a_z_scored_window(label: int) -> None:
    clean = resample(_pulse(100.0, 5.0), 100.0, RATE)[:N]
    rng = np.random.default_rng(label)
    for _ in range(20):
        window = ppg.SYNTHESIZERS[label](rng, clean)
        assert window.shape == (N,)
        assert np.isfinite(window).all()
        assert window.mean() == pytest.approx(0.0, abs=1e-9)
        assert window.std() == pytest.approx(1.0, abs=1e-9)


def test_good_windows_keep_the_real_pulse_and_no_contact_windows_mostly_lose_it() -> None:
    clean = resample(_pulse(100.0, 5.0), 100.0, RATE)[:N]
    rng = np.random.default_rng(3)

    def similarity(synthesize: ppg.Synthesizer) -> float:
        return float(np.median([np.corrcoef(clean, synthesize(rng, clean))[0, 1] for _ in range(40)]))

    assert similarity(ppg.good) > 0.9
    assert similarity(ppg.motion) < similarity(ppg.good)
    assert abs(similarity(ppg.no_contact)) < 0.2


def test_class_indices_follow_the_sample_labels() -> None:
    assert PPG_QUALITY.labels[ppg.GOOD] == "good"
    assert PPG_QUALITY.labels[ppg.MOTION] == "motion artifact"
    assert PPG_QUALITY.labels[ppg.NO_CONTACT] == "no contact"


def test_make_split_is_balanced_shaped_ncw_and_repeatable() -> None:
    clean = [resample(_pulse(100.0, 5.0, seed=s), 100.0, RATE)[:N] for s in range(4)]
    x, labels = ppg.make_split(np.random.default_rng(5), clean, per_class=10)
    again, _ = ppg.make_split(np.random.default_rng(5), clean, per_class=10)
    assert x.shape == (30, 1, N) and x.dtype == np.float32
    assert np.bincount(labels).tolist() == [10, 10, 10]
    assert x.tobytes() == again.tobytes()
