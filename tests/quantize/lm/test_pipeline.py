"""The tiny SLM end to end through the library: int8 and int4 weights, perplexity, samples, speed, board fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wedge.boards import load as load_board
from wedge.quantize.lm.errors import ContextLengthError, TextError
from wedge.quantize.lm.evaluate import measure_speed, score_text, windows
from wedge.quantize.lm.fit import activation_bytes, assess_lm_fit, kv_cache_bytes
from wedge.quantize.lm.options import Algorithm, WeightFormat, WeightOptions
from wedge.quantize.lm.pipeline import LmOptions, run_lm_quantize
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.weights import quantize_weights

QUICK = LmOptions(eval_tokens=600, samples=1, sample_tokens=8, speed_tokens=8)


def test_sliding_windows_score_every_token_after_the_first_exactly_once():
    for count, window, stride in ((10, 4, 2), (100, 32, 16), (33, 33, 33), (5, 8, 4)):
        spans = windows(count, window, stride)
        scored = [t for begin, end, first in spans for t in range(first, end)]
        assert scored == list(range(1, count))
        assert all(end - begin <= window and first > begin for begin, end, first in spans)


def test_int8_weights_keep_perplexity_and_shrink_the_tiny_model(tmp_path, tiny_model, eval_text_file):
    report = run_lm_quantize(tiny_model, tmp_path / "out", eval_text=eval_text_file,
                             board=load_board("glasses-soc"), options=QUICK)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "tiny_slm.int8.onnx"]
    ppl = report.perplexity
    assert 1.0 < ppl.fp32 < 100.0  # a trained model, far below the 512 of a uniform guess
    assert ppl.change_pct < 2.0
    assert ppl.top1_agreement_pct > 90.0
    assert report.size_ratio < 0.45
    assert report.quantized_speed is not None and report.quantized_speed.tokens_per_s > 0
    assert report.fit is not None and report.fit.fits
    assert report.samples[0].fp32 and report.samples[0].quantized
    saved = json.loads((out / "report.json").read_text())
    assert saved["perplexity"]["quantized"] == pytest.approx(ppl.quantized)
    # The quantized model runs on its own and carries the tokenizer.
    session = DecoderSession(out / "tiny_slm.int8.onnx")
    assert session.tokenizer().vocab_size == 512


@pytest.mark.parametrize("algorithm", [Algorithm.RTN, Algorithm.KQUANT, Algorithm.AWQ_GPTQ])
def test_int4_blocks_cost_little_perplexity_on_the_tiny_model(tmp_path, tiny_model, eval_text_file, algorithm):
    options = LmOptions(weights=WeightOptions(weights=WeightFormat.INT4, block_size=32, algorithm=algorithm),
                        eval_tokens=600, samples=1, sample_tokens=4, measure_speed=False)
    report = run_lm_quantize(tiny_model, tmp_path, eval_text=eval_text_file, options=options)
    assert report.perplexity.change_pct < 10.0
    assert report.size_ratio < 0.35
    assert report.quantized_speed is None


@pytest.mark.parametrize(("weights", "extra_bytes"), [
    (WeightFormat.INT8, (2 * 512 * 64 * 3 * 0.9, 2 * 512 * 64 * 3 * 1.1)),  # two fp32 tables instead of int8
    (WeightFormat.INT4, (20_000, 40_000)),  # two int8 tables instead of int4 blocks (~0.6 -> ~1.1 B/weight)
])
def test_keeping_embeddings_and_lm_head_holds_them_one_step_up(tmp_path, tiny_model, weights, extra_bytes):
    plain = quantize_weights(tiny_model, tmp_path / "plain.onnx", WeightOptions(weights=weights))
    kept = quantize_weights(tiny_model, tmp_path / "kept.onnx",
                            WeightOptions(weights=weights, keep_embeddings=True, keep_lm_head=True))
    low, high = extra_bytes
    assert low < kept.stat().st_size - plain.stat().st_size < high
    ids = np.asarray([[3, 40, 200, 7]])
    assert DecoderSession(kept).forward(ids)[0].shape == (1, 4, 512)


def test_int8_and_int4_models_predict_like_fp32(tiny_model, tiny_int8, tiny_int4):
    from wedge.quantize.lm.tiny import heldout_text

    fp32 = DecoderSession(tiny_model)
    ids = np.asarray(fp32.tokenizer().encode(heldout_text()[:2000]))[:300]
    reference = score_text(fp32, ids, 128, 64)
    for path, limit in ((tiny_int8, 1.02), (tiny_int4, 1.10)):
        assert score_text(DecoderSession(path), ids, 128, 64).perplexity < reference.perplexity * limit


def test_speed_is_measured_in_a_separate_process_whose_peak_rss_is_its_own(tiny_model):
    ballast = np.ones(300_000_000 // 8)  # the caller holding a big model must not show in the child's peak
    result = measure_speed(tiny_model, [1, 2, 3, 4], 5)
    assert result.new_tokens == 5 and result.tokens_per_s > 0
    assert 0 < result.baseline_rss_bytes <= result.peak_rss_bytes < 250_000_000
    del ballast


def test_board_fit_counts_the_kv_cache_and_finds_the_longest_context(tiny_model):
    signature = DecoderSession(tiny_model).signature
    cache = kv_cache_bytes(signature, 256)
    assert cache == 2 * 2 * 2 * 16 * 256 * 4
    esp = assess_lm_fit(load_board("glasses-esp32s3"), signature, 200_000, 256)
    assert esp.ram_budget == "memory.psram_bytes" and esp.fits
    assert esp.ram_needed_bytes >= 200_000 + cache
    too_big = assess_lm_fit(load_board("glasses-esp32s3"), signature, 9_000_000, 256)
    assert not too_big.fits_ram and too_big.max_context_tokens == 0
    soc = assess_lm_fit(load_board("glasses-soc"), signature, 200_000, 256)
    assert soc.ram_budget == "budgets.arena_bytes" and soc.max_context_tokens == 256  # capped by the model
    assert soc.max_context_is_models and not too_big.max_context_is_models
    # Weights that leave room for exactly 100 positions of cache (and their attention scores) in the PSRAM.
    per_position = kv_cache_bytes(signature, 1) + signature.config.num_heads * 4
    board = load_board("glasses-esp32s3")
    tight = board.memory.psram_bytes - activation_bytes(signature, 0) - 100 * per_position
    squeezed = assess_lm_fit(board, signature, tight, 64)
    assert squeezed.max_context_tokens == 100 and not squeezed.max_context_is_models and squeezed.fits_ram


def test_a_context_longer_than_the_model_is_refused_before_any_work(tmp_path, tiny_model):
    with pytest.raises(ContextLengthError, match="longer than the model's context of 256"):
        run_lm_quantize(tiny_model, tmp_path, options=LmOptions(context_tokens=4096))
    assert not any(tmp_path.iterdir())  # the hidden work folder is gone too


def test_text_that_is_not_utf8_is_refused(tmp_path, tiny_model):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 cr\xe8me ".encode("latin-1") * 50)
    with pytest.raises(TextError, match="not UTF-8"):
        run_lm_quantize(tiny_model, tmp_path / "out", eval_text=bad, options=QUICK)


def test_weights_on_external_data_land_beside_the_model(tmp_path, tiny_model):
    options = LmOptions(eval_tokens=200, samples=0, measure_speed=False, external_data_bytes=0)
    report = run_lm_quantize(tiny_model, tmp_path, options=options)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["report.json", "tiny_slm.int8.onnx", "tiny_slm.int8.onnx.data"]
    assert report.quantized_bytes == sum(p.stat().st_size for p in tmp_path.iterdir() if "int8" in p.name)
    logits, _ = DecoderSession(tmp_path / "tiny_slm.int8.onnx").forward(np.asarray([[1, 2, 3]]))
    assert logits.shape == (1, 3, 512)


def test_a_perplexity_rise_over_the_threshold_warns_with_the_options_that_help(tmp_path, tiny_model, eval_text_file):
    options = LmOptions(weights=WeightOptions(weights=WeightFormat.INT4, block_size=128), eval_tokens=400, samples=0,
                        measure_speed=False, warn_above_pct=-100.0)  # any change counts as a rise here
    report = run_lm_quantize(tiny_model, tmp_path, eval_text=eval_text_file, options=options)
    (warning,) = report.warnings
    assert "--keep-embeddings --keep-lm-head" in warning and "--block-size 64" in warning
    assert "--algorithm awq+gptq" in warning
    assert json.loads((tmp_path / "report.json").read_text())["warnings"] == [warning]


def test_advice_names_what_was_not_tried_and_the_double_rounding_of_a_quantized_source():
    from wedge.quantize.lm.advice import perplexity_warnings

    tried = WeightOptions(weights=WeightFormat.INT4, block_size=32, algorithm=Algorithm.AWQ_GPTQ,
                          keep_embeddings=True, keep_lm_head=True)
    assert perplexity_warnings(4.0, tried) == ()
    (warning,) = perplexity_warnings(14.0, tried, requantized_from="Q4_1")
    assert "--keep-embeddings" not in warning and "--block-size" not in warning
    assert "Q4_1 already" in warning and "--calib-tokens" in warning
    (int8,) = perplexity_warnings(3.0, WeightOptions())
    assert "more than the 2% int8" in int8


def test_board_fit_estimates_decode_speed_from_memory_bandwidth(tiny_model):
    signature = DecoderSession(tiny_model).signature
    soc = load_board("glasses-soc")
    fit = assess_lm_fit(soc, signature, 300_000, 256, embedding_bytes=40_000)
    assert fit.bytes_per_token == 300_000 - 40_000 + kv_cache_bytes(signature, 256)
    assert fit.decode_tokens_per_s_estimate == pytest.approx(7_466_000_000 / fit.bytes_per_token)
    esp = assess_lm_fit(load_board("glasses-esp32s3"), signature, 300_000, 256, embedding_bytes=40_000)
    assert esp.decode_tokens_per_s_estimate == pytest.approx(160_000_000 / fit.bytes_per_token)
    ring = assess_lm_fit(load_board("ring-nrf52840"), signature, 300_000, 256)
    assert ring.decode_tokens_per_s_estimate is None  # the profile gives no bandwidth


def test_line_progress_prints_each_stage_its_ticks_and_its_time(capsys):
    from wedge.cli.progress import LineProgress

    progress = LineProgress(every_s=0.0)
    advance = progress.stage("perplexity fp32", 4)
    advance(1)
    advance(3)
    progress.stage("greedy samples", None)(1)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[wedge] perplexity fp32 (0/4)"
    assert lines[1].startswith("[wedge] perplexity fp32: 1/4 (25%)") and "4/4 (100%)" in lines[2]
    assert lines[3].startswith("[wedge] perplexity fp32: done in ")
    assert lines[-1].startswith("[wedge] greedy samples: done in ")
