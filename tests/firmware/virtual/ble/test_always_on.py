"""The always-on loop: sensors at the profile's rates, the scripted PPG day replayed, one inference per step."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tests.conftest import shared_model
from wedge.boards import load
from wedge.firmware.protocol.ble_records import OutputDType
from wedge.firmware.virtual.always_on import AlwaysOnLoop, estimate_heart_rate, open_board_engine
from wedge.samples import sample_path
from wedge.signals.recordings import heartpy_data_dir


def test_the_ring_runs_the_ppg_model_on_replayed_recordings_twice_a_second() -> None:
    board = load("ring-nrf52840")
    engine, model_id = open_board_engine(board, sample_path("ppg_quality"))
    with engine:
        loop = AlwaysOnLoop(board, engine)
        assert loop.rate_hz == pytest.approx(2.0)  # a 4 s PPG window every 0.5 s (the default floor)
        ppg = next(w for w in loop.windows if w.sensor.kind == "ppg")
        assert ppg.samples.shape == (200, 1)
        first, second = loop.step(), loop.step()
    assert second.t_device_us >= first.t_device_us
    assert [o.dtype for o in first.outputs] == [OutputDType.FLOAT32] and len(first.outputs[0].values) == 3
    digest = hashlib.sha256(sample_path("ppg_quality").read_bytes()).digest()
    assert model_id == int.from_bytes(digest[:4], "big")


@pytest.mark.skipif(heartpy_data_dir() is None, reason="heartpy (the samples extra) is not installed")
def test_heart_rate_from_replayed_ppg_is_physiological_with_skin_contact() -> None:
    board = load("ring-nrf52840")
    engine, _ = open_board_engine(board, sample_path("ppg_quality"))
    with engine:
        loop = AlwaysOnLoop(board, engine, rate_hz=1.0)
        estimates = []
        for _ in range(10):
            loop.step()
            estimates.append(loop.heart_rate())
    assert all(e is not None and 40 <= e.bpm <= 180 for e in estimates)
    assert sum(e.contact for e in estimates if e is not None) >= 7


def test_noise_is_not_taken_for_a_pulse() -> None:
    noise = np.random.default_rng(1).normal(size=(200, 1))
    assert not estimate_heart_rate(noise, 50.0).contact


def test_a_faster_record_rate_advances_the_sensors_by_less_per_record() -> None:
    board = load("ring-nrf52840")
    engine, _ = open_board_engine(board, sample_path("ppg_quality"))
    with engine:
        loop = AlwaysOnLoop(board, engine, rate_hz=50.0)
        ppg = next(w for w in loop.windows if w.sensor.kind == "ppg")
        before = ppg.samples.copy()
        loop.step()
    # 50 Hz PPG at 50 records/s: each record brings exactly one new sample.
    np.testing.assert_array_equal(ppg.samples[:-1], before[1:])


def test_the_glasses_run_an_int8_vision_model_in_tflite_micro_on_camera_frames() -> None:
    board = load("glasses-esp32s3")
    engine, _ = open_board_engine(board, shared_model("vww_96_int8.tflite"))
    with engine:
        assert engine.kind == "tflm"
        loop = AlwaysOnLoop(board, engine)
        assert loop.rate_hz == pytest.approx(5.0)  # the camera's 5 frames/s, one frame per window
        result = loop.step()
    (output,) = result.outputs
    assert output.dtype is OutputDType.INT8 and output.quantized
    assert sum(output.real_values()) == pytest.approx(1.0, abs=0.02)  # softmax over person / no person
