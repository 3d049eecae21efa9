"""Calibrated int4 in numpy on onnxruntime's MatMulNBits: the block layout byte for byte as onnxruntime packs it,
GPTQ and AWQ closer to a layer's outputs than plain rounding, and the tiny SLM from its fp16 checkpoint within
10% perplexity at every block size, each beside round-to-nearest from the same run."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnxruntime.capi._pybind_state import quantize_matmul_4bits

from wedge.quantize.lm.aware import quantize_activation_aware
from wedge.quantize.lm.awq import search_clip, search_scales
from wedge.quantize.lm.blockquant import output_error, pack, quantize_blocks
from wedge.quantize.lm.gptq import gptq_quantize
from wedge.quantize.lm.llama_onnx import build_llama_graph
from wedge.quantize.lm.nbits_graph import replace_with_nbits
from wedge.quantize.lm.options import Algorithm, WeightFormat, WeightOptions
from wedge.quantize.lm.pipeline import LmOptions, calibration_windows, run_lm_quantize
from wedge.quantize.lm.reference import reference_forward
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.tiny import training_text


@pytest.mark.parametrize(("inputs", "outputs", "block"), [(128, 8, 32), (96, 5, 64), (576, 3, 128), (64, 4, 128)])
def test_packed_blocks_are_byte_identical_to_onnxruntimes(inputs, outputs, block):
    weight = (np.random.default_rng(inputs).standard_normal((inputs, outputs)) + 0.3).astype(np.float32)
    blocks = -(-inputs // block)
    packed = np.zeros((outputs, blocks, block // 2), np.uint8)
    zero_points = np.zeros((outputs, (blocks + 1) // 2), np.uint8)
    scales = np.zeros((outputs, blocks), np.float32)
    quantize_matmul_4bits(packed, weight, scales, zero_points, block, outputs, inputs, False)
    mine = pack(quantize_blocks(weight.T, block))
    np.testing.assert_array_equal(mine[0], packed)
    np.testing.assert_array_equal(mine[1], scales)
    np.testing.assert_array_equal(mine[2], zero_points)


def _correlated(tokens: int, inputs: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((inputs, inputs)) * 0.3 + np.eye(inputs)
    x = rng.standard_normal((tokens, inputs)) @ mix
    x[:, :6] *= 15  # a few outlier channels, as LLM activations have
    return x.astype(np.float32)


@pytest.mark.parametrize("block", [32, 64, 128])
def test_gptq_and_awq_move_a_layers_outputs_less_than_rounding(block):
    x = _correlated(1024, 256, seed=block)
    weight = (np.random.default_rng(1).standard_normal((192, 256)) * 0.05).astype(np.float32)
    gram = x.T @ x / x.shape[0]
    plain = output_error(weight - quantize_blocks(weight, block).dequantize(), gram)
    gptq = output_error(weight - gptq_quantize(weight, gram, block).dequantize(), gram)
    search = search_scales(weight, gram, np.abs(x).mean(axis=0), block)
    scaled, scaled_gram = weight * search.scale, gram / np.outer(search.scale, search.scale)
    awq_blocks = quantize_blocks(scaled, block, search_clip(scaled, scaled_gram, block))
    awq = output_error(weight - awq_blocks.dequantize() / search.scale, gram)
    assert search.error < search.plain_error == pytest.approx(plain)
    assert gptq < 0.5 * plain and awq < 0.9 * plain


def test_matmulnbits_nodes_compute_exactly_the_blocks_numpy_chose(tmp_path, tiny_weights, tiny_tokenizer):
    ids = np.asarray(tiny_tokenizer.encode(training_text()), np.int64)
    calib = calibration_windows(ids, 1024, 128)
    result = quantize_activation_aware(tiny_weights, calib, Algorithm.AWQ_GPTQ, 32)
    assert set(result.quantized) == {f"layers.{i}.{p}" for i in range(2) for p in
                                     ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                      "down_proj")} | {"lm_head"}
    model = build_llama_graph(result.weights)
    replace_with_nbits(model, result.quantized, accuracy_level=0)  # fp32 activations: exact but slow kernels
    assert sum(n.op_type == "MatMulNBits" for n in model.graph.node) == 15
    onnx.save_model(model, str(tmp_path / "q.onnx"))
    logits, _ = DecoderSession(tmp_path / "q.onnx").forward(ids[None, :40])
    # The graph's fp32 weights are the dequantized blocks, so the numpy reference of them is the yardstick.
    expected, _ = reference_forward(result.weights, ids[None, :40])
    np.testing.assert_allclose(logits, expected, atol=2e-3, rtol=1e-3)
    assert result.error_ratio < 0.9


@pytest.mark.parametrize("block", [32, 64, 128])
def test_int4_from_the_fp16_checkpoint_stays_within_10_percent_beside_rtn(tmp_path, tiny_checkpoint,
                                                                         eval_text_file, block):
    reports = {}
    for algorithm in (Algorithm.AWQ, Algorithm.GPTQ, Algorithm.AWQ_GPTQ):
        options = LmOptions(weights=WeightOptions(weights=WeightFormat.INT4, block_size=block, algorithm=algorithm),
                            eval_tokens=1200, samples=0, measure_speed=False, calib_tokens=2048,
                            compare_rtn=algorithm is Algorithm.AWQ)
        reports[algorithm] = run_lm_quantize(tiny_checkpoint, tmp_path / algorithm.value, eval_text=eval_text_file,
                                             options=options)
    rtn = reports[Algorithm.AWQ].baseline
    assert rtn is not None and "rtn" in rtn.scheme
    for algorithm, report in reports.items():
        assert report.perplexity.change_pct < 10.0, algorithm
        assert report.calibration is not None and report.calibration.output_error_ratio < 1.0
        assert report.perplexity.quantized <= rtn.perplexity * 1.005, algorithm  # no worse than plain rounding
        assert report.warnings == ()
    assert sorted(p.name for p in (tmp_path / "awq").iterdir()) == ["report.json", "tiny-slm.int4.onnx"]


class _Exact:
    """Stands in for 4-bit blocks that round nothing: what AWQ's folding alone does to a model."""

    def __init__(self, weight: np.ndarray) -> None:
        self.weight = np.array(weight, np.float32)

    def dequantize(self) -> np.ndarray:
        return self.weight


def test_awq_folding_alone_leaves_a_biased_gqa_model_unchanged(monkeypatch):
    from dataclasses import replace

    from tests.quantize.lm.conftest import random_weights
    from wedge.quantize.lm import aware
    from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights

    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4,
                         num_kv_heads=2, head_dim=16, context_length=64)
    config = replace(config, linear_biases=("q_proj", "k_proj", "v_proj"))
    rng = np.random.default_rng(0)
    tensors = dict(random_weights(config, seed=3).tensors)
    for layer in range(config.num_layers):
        for name in config.linear_biases:
            tensors[f"layers.{layer}.{name}.bias"] = rng.standard_normal(
                tensors[f"layers.{layer}.{name}"].shape[0]).astype(np.float32)
    weights = LlamaWeights(config, tensors)
    monkeypatch.setattr(aware, "quantize_blocks", lambda weight, block, clip=None: _Exact(weight))
    ids = rng.integers(0, 64, (8, 32))
    result = aware.quantize_activation_aware(weights, ids, Algorithm.AWQ, 32)
    assert not np.allclose(result.weights["layers.0.input_layernorm"], weights["layers.0.input_layernorm"])
    np.testing.assert_allclose(reference_forward(result.weights, ids[:2])[0], reference_forward(weights, ids[:2])[0],
                               rtol=1e-4, atol=1e-4)
