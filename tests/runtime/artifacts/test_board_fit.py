"""A model against a board profile: slot use and margin, estimated latency, runtime warnings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.runtime.artifacts.artifact_models import onnx_conv_model, tflite_shapes_model
from wedge.boards import load
from wedge.runtime.artifacts import ModelInfo, inspect_model, slot_fit


@pytest.fixture
def tflite_info(tmp_path: Path) -> ModelInfo:
    path = tmp_path / "shapes.tflite"
    path.write_bytes(tflite_shapes_model())
    return inspect_model(path)


def test_a_small_model_fits_with_the_slot_margin_and_board_latency(tflite_info: ModelInfo) -> None:
    board = load("ring-nrf52840")
    fit = slot_fit(tflite_info, board)
    assert fit.fits
    assert fit.slot_bytes == board.budgets.model_slot_bytes
    assert fit.margin_bytes == board.budgets.model_slot_bytes - tflite_info.size_bytes
    assert fit.latency_s == pytest.approx(board.estimate_latency_s(tflite_info.macs))
    assert fit.latency_s > 0
    assert fit.runtime == "tflm"


def test_a_model_larger_than_the_slot_does_not_fit_and_shows_how_much_over(tflite_info: ModelInfo) -> None:
    board = load("ring-nrf52840")
    big = dataclasses.replace(tflite_info, size_bytes=board.budgets.model_slot_bytes + 1000)
    fit = slot_fit(big, board)
    assert not fit.fits
    assert fit.margin_bytes == -1000


def test_a_tflm_board_warns_about_ops_without_kernels_and_float_models(tflite_info: ModelInfo) -> None:
    notes = " ".join(slot_fit(tflite_info, load("ring-nrf52840")).notes)
    assert "LOCAL_RESPONSE_NORMALIZATION" in notes
    assert "float model" in notes


def test_an_onnx_model_on_a_tflm_board_is_told_it_needs_tflite(tmp_path: Path) -> None:
    path = tmp_path / "conv.onnx"
    path.write_bytes(onnx_conv_model())
    info = inspect_model(path)
    assert any("needs an int8 .tflite" in note for note in slot_fit(info, load("ring-nrf5340")).notes)
    assert slot_fit(info, load("glasses-soc")).notes == ()
