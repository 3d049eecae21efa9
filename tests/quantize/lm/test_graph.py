"""The Llama ONNX graph against the numpy reference, the trainer's gradients, and weights on external data."""

from __future__ import annotations

import numpy as np
import pytest

from tests.quantize.lm.conftest import SMOLLM2, needs_smollm2, random_weights
from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights
from wedge.quantize.lm.llama_onnx import export_llama, read_weights
from wedge.quantize.lm.reference import LayerCache, reference_forward
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.tiny import TINY_CONFIG
from wedge.quantize.lm.tiny_train import TrainOptions, init_params, loss_and_grads, train

MICRO = LlamaConfig(vocab_size=11, hidden_size=8, intermediate_size=12, num_layers=2, num_heads=4, num_kv_heads=2,
                    head_dim=4, context_length=16)


def _cache(present: list[np.ndarray]) -> list[LayerCache]:
    return [LayerCache(present[i], present[i + 1]) for i in range(0, len(present), 2)]


def test_onnx_logits_match_the_numpy_reference_with_and_without_the_cache(tmp_path):
    weights = random_weights(TINY_CONFIG)
    session = DecoderSession(export_llama(weights, tmp_path / "random.onnx"))
    ids = np.random.default_rng(1).integers(0, TINY_CONFIG.vocab_size, size=(2, 9))
    logits, cache = session.forward(ids[:, :6])
    expected, past = reference_forward(weights, ids[:, :6])
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
    step, _ = session.forward(ids[:, 6:], cache)
    expected_step, _ = reference_forward(weights, ids[:, 6:], past)
    np.testing.assert_allclose(step, expected_step, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(step, reference_forward(weights, ids)[0][:, 6:], atol=1e-4, rtol=1e-4)


def test_the_committed_tiny_model_matches_the_reference_of_its_own_weights(tiny_model):
    weights = read_weights(tiny_model)
    assert weights.config == TINY_CONFIG
    session = DecoderSession(tiny_model)
    ids = np.asarray([session.tokenizer().encode("The while statement is used for repeated execution")])
    logits, _ = session.forward(ids)
    np.testing.assert_allclose(logits, reference_forward(weights, ids)[0], atol=1e-3, rtol=1e-4)


def test_trainer_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    params = {k: v + rng.standard_normal(v.shape) * 0.3 for k, v in init_params(MICRO, rng, np.float64).items()}
    tokens = rng.integers(0, MICRO.vocab_size, size=(2, 7))
    loss, grads = loss_and_grads(params, tokens, MICRO)
    logits, _ = reference_forward(LlamaWeights(MICRO, params), tokens[:, :-1])
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert loss == pytest.approx(-np.take_along_axis(log_probs, tokens[:, 1:, None], -1).mean(), rel=1e-9)
    for name, value in params.items():
        index = tuple(int(rng.integers(0, s)) for s in value.shape)
        original = value[index]
        value[index] = original + 1e-6
        plus, _ = loss_and_grads(params, tokens, MICRO)
        value[index] = original - 1e-6
        minus, _ = loss_and_grads(params, tokens, MICRO)
        value[index] = original
        assert grads[name][index] == pytest.approx((plus - minus) / 2e-6, rel=1e-4, abs=1e-8), name


def test_training_is_deterministic_and_lowers_the_loss():
    ids = np.random.default_rng(3).integers(0, MICRO.vocab_size, size=400)
    ids[1::2] = (ids[::2] + 1) % MICRO.vocab_size  # a learnable rule: every odd token follows its neighbour
    options = TrainOptions(steps=60, batch=4, sequence=12, warmup_steps=5, learning_rate=1e-2)
    first, losses = train(MICRO, ids, options)
    second, _ = train(MICRO, ids, options)
    assert all(np.array_equal(first[k], second[k]) for k in first.tensors)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.3


def test_big_weights_go_to_an_external_data_file_that_loads_back(tmp_path):
    weights = random_weights(TINY_CONFIG)
    path = export_llama(weights, tmp_path / "external.onnx", external_data_bytes=0)
    assert (tmp_path / "external.onnx.data").stat().st_size > path.stat().st_size
    logits, _ = DecoderSession(path).forward(np.asarray([[1, 2, 3]]))
    np.testing.assert_allclose(logits, reference_forward(weights, np.asarray([[1, 2, 3]]))[0], atol=1e-4)


@needs_smollm2
@pytest.mark.slow
def test_smollm2_onnx_logits_match_the_numpy_reference_for_a_few_tokens(smollm2_onnx):
    from wedge.quantize.lm.gguf_model import load_gguf

    loaded = load_gguf(SMOLLM2)
    session = DecoderSession(smollm2_onnx)
    ids = np.asarray([loaded.tokenizer.encode("The capital of France is Paris. The capital of Germany is")])
    logits, cache = session.forward(ids[:, :-1])
    step, _ = session.forward(ids[:, -1:], cache)
    expected, _ = reference_forward(loaded.weights, ids, dtype=np.float32)
    np.testing.assert_allclose(logits[0], expected[0, :-1], atol=2e-3, rtol=1e-3)
    np.testing.assert_allclose(step[0, 0], expected[0, -1], atol=2e-3, rtol=1e-3)
    assert loaded.tokenizer.decode([int(step[0, 0].argmax())]) == " Berlin"
