"""Stages 6-7: per-layer SQNR names the lossy layers; the board fit compares with the profile's budgets."""

from __future__ import annotations

from pathlib import Path

from tests.quantize.conftest import tiny_data
from wedge.boards import load
from wedge.quantize.calibrate import Method, calibrate
from wedge.quantize.calibration import ArraySampleSet
from wedge.quantize.evaluate import SQNR_CAP_DB
from wedge.quantize.fit import activation_peak_bytes, assess_fit
from wedge.quantize.layers import per_layer_errors, worst_layers
from wedge.quantize.load import prepare_model
from wedge.quantize.static import write_qdq_model
from wedge.runtime.artifacts import inspect_model


def _quantized(tiny_model: Path, tmp_path: Path) -> tuple[Path, Path, ArraySampleSet]:
    prepared = prepare_model(tiny_model, tmp_path)
    samples = ArraySampleSet({"x": tiny_data(32)}, None, "mem")
    out = tmp_path / "q.onnx"
    write_qdq_model(prepared.path, calibrate(prepared.path, samples, Method.MINMAX, batch_size=8), out)
    return prepared.path, out, samples


def test_per_layer_errors_cover_the_fused_conv_relu_and_the_dense_layer(tiny_model: Path, tmp_path: Path) -> None:
    fp32, int8, samples = _quantized(tiny_model, tmp_path)
    layers = per_layer_errors(fp32, int8, samples, batch_size=8, max_samples=8)
    by_name = {layer.node: layer for layer in layers}
    assert "conv + relu" in by_name and by_name["conv + relu"].op_type == "Conv + Relu"
    assert "fc" in by_name and by_name["fc"].weight_sqnr_db is not None
    for layer in layers:
        assert 10.0 < layer.sqnr_db <= SQNR_CAP_DB
    worst = worst_layers(layers, count=1)[0]
    assert worst.own_sqnr_db == min(layer.own_sqnr_db for layer in layers)


def test_activation_peak_counts_live_int8_tensors(tiny_model: Path, tmp_path: Path) -> None:
    prepared = prepare_model(tiny_model, tmp_path)
    # At the conv: input 64 B + output 4x6x6 = 144 B (the Relu fuses into it, no third buffer).
    # At the flatten: its 144 B input and 144 B output (TFLM copies a reshape) -> the peak.
    assert activation_peak_bytes(prepared.path) == 144 + 144


def test_board_fit_flags_a_model_over_the_slot(tiny_model: Path, tmp_path: Path) -> None:
    _, int8, _ = _quantized(tiny_model, tmp_path)
    ring = load("ring-nrf52840")
    fit = assess_fit(ring, inspect_model(int8), activation_bytes=ring.budgets.arena_bytes + 1)
    assert fit.slot.fits and not fit.fits_ram and not fit.fits
    assert fit.slot.latency_s > 0
