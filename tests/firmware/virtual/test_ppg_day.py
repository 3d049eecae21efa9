"""The virtual ring's scripted day: the bundled PPG-quality model, run on what the ring replays, says each phase."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from wedge.boards import load
from wedge.firmware.virtual.always_on import AlwaysOnLoop, HeartRateEstimate, open_board_engine
from wedge.firmware.virtual.ppg_day import SCRIPTED_DAY, Phase, PpgDay
from wedge.samples import PPG_QUALITY, sample_path
from wedge.samples.ppg import GOOD, MOTION, NO_CONTACT
from wedge.signals.recordings import heartpy_data_dir

needs_heartpy = pytest.mark.skipif(heartpy_data_dir() is None, reason="heartpy's recordings are not installed")


@needs_heartpy
def test_the_model_reports_each_phase_of_the_day_most_of_the_time() -> None:
    board = load("ring-nrf52840")
    engine, _ = open_board_engine(board, sample_path("ppg_quality"))
    said: dict[str, Counter[str]] = {}
    with engine:
        loop = AlwaysOnLoop(board, engine, rate_hz=2.0)
        ppg = next(w for w in loop.windows if w.sensor.kind == "ppg")
        day = ppg.source
        assert isinstance(day, PpgDay)
        for _ in range(int(day.cycle_s * loop.rate_hz)):
            (output,) = loop.step().outputs
            end_s = day.elapsed_s
            phases = {day.phase_at(t).name for t in np.arange(end_s - 4.0, end_s, 0.25)}
            if len(phases) == 1:  # a window across a change of phase may say either
                said.setdefault(phases.pop(), Counter())[PPG_QUALITY.labels[int(np.argmax(output.values))]] += 1
    expected = {"at rest": "good", "back on": "good", "walking": "motion artifact", "off the finger": "no contact"}
    assert set(said) == set(expected)
    for phase, label in expected.items():
        share = said[phase][label] / sum(said[phase].values())
        assert share >= 0.8, f"{phase}: the model said {dict(said[phase])}"


@needs_heartpy
def test_the_heart_rate_is_physiological_on_the_finger_and_lost_off_it() -> None:
    board = load("ring-nrf52840")
    engine, _ = open_board_engine(board, sample_path("ppg_quality"))
    script = (Phase("at rest", GOOD, 30.0), Phase("off the finger", NO_CONTACT, 30.0))
    estimates: dict[str, list[HeartRateEstimate]] = {}
    with engine:
        loop = AlwaysOnLoop(board, engine, rate_hz=1.0)
        ppg = next(w for w in loop.windows if w.sensor.kind == "ppg")
        day = ppg.source = PpgDay(ppg.sensor, np.random.default_rng(3), script)
        for _ in range(50):
            loop.step()
            phases = {day.phase_at(t).name for t in np.arange(day.elapsed_s - 6.0, day.elapsed_s, 0.25)}
            estimate = loop.heart_rate()
            if len(phases) == 1 and estimate is not None:
                estimates.setdefault(phases.pop(), []).append(estimate)
    on, off = estimates["at rest"], estimates["off the finger"]
    # A seam between two recordings (two pulses blended for 2 s) costs a reading now and then.
    assert sum(e.contact and 40 <= e.bpm <= 180 for e in on) >= 0.7 * len(on)
    assert off and not any(e.contact for e in off)  # the skin detect sees the dark


def test_the_day_loops_and_motion_and_contact_phases_are_in_it() -> None:
    board = load("ring-nrf52840")
    sensor = next(s for s in board.sensors if s.kind == "ppg")
    day = PpgDay(sensor, np.random.default_rng(0))
    assert {p.label for p in SCRIPTED_DAY} == {GOOD, MOTION, NO_CONTACT}
    assert day.phase_at(0.0).name == "at rest" and day.phase_at(day.cycle_s + 61.0).name == "walking"
    samples = day.read(int(sensor.rate_hz * 10))
    assert samples.shape == (500, 1) and np.isfinite(samples).all()
    assert day.elapsed_s == pytest.approx(10.0)


def test_a_script_without_phases_is_refused() -> None:
    sensor = next(s for s in load("ring-nrf52840").sensors if s.kind == "ppg")
    with pytest.raises(ValueError, match="phases"):
        PpgDay(sensor, np.random.default_rng(0), ())
