"""Hugging Face checkpoints: the tiny SLM written the way transformers saves one (fp32/fp16/bf16, tied or not,
sharded or not), a Qwen2-style decoder with QKV biases, the rope scaling variants, and every broken folder."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import ml_dtypes
import numpy as np
import pytest

from tests.quantize.lm.conftest import random_weights
from wedge.quantize.lm.errors import CheckpointError
from wedge.quantize.lm.hf_checkpoint import hf_name, load_hf_checkpoint, save_hf_checkpoint, wedge_name
from wedge.quantize.lm.hf_config import config_from_hf
from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights, rotary_frequencies
from wedge.quantize.lm.llama_onnx import export_llama
from wedge.quantize.lm.reference import reference_forward
from wedge.quantize.lm.rope import RopeScaling, RopeScalingError, base_inv_freq
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.tiny import TINY_CONFIG

SMALL = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4,
                    num_kv_heads=2, head_dim=8, context_length=512, eos_token_id=1)


def _onnx_matches_reference(weights: LlamaWeights, tmp_path, ids: np.ndarray, atol: float = 2e-4) -> None:
    # A prefill then a step with the cache, in both: dynamic scaling depends on the length each pass sees.
    session = DecoderSession(export_llama(weights, tmp_path / "model.onnx"))
    logits, cache = session.forward(ids[:, :-3])
    step, _ = session.forward(ids[:, -3:], cache)
    expected, past = reference_forward(weights, ids[:, :-3])
    expected_step, _ = reference_forward(weights, ids[:, -3:], past)
    np.testing.assert_allclose(logits, expected, atol=atol, rtol=1e-3)
    np.testing.assert_allclose(step, expected_step, atol=atol, rtol=1e-3)


@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", 0.0), ("float16", 1e-3), ("bfloat16", 8e-3)])
def test_the_tiny_model_round_trips_through_a_checkpoint_in_each_dtype(tmp_path, tiny_weights, tiny_tokenizer,
                                                                       dtype, tolerance):
    folder = save_hf_checkpoint(tiny_weights, tmp_path / "tiny", tokenizer=tiny_tokenizer, dtype=dtype)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["torch_dtype"] == dtype
    loaded = load_hf_checkpoint(folder)
    assert loaded.dtype == dtype and loaded.name == "tiny"
    assert loaded.weights.config == tiny_weights.config
    for name, array in tiny_weights.tensors.items():
        np.testing.assert_allclose(loaded.weights[name], array, rtol=tolerance, atol=tolerance * 0.05, err_msg=name)
    assert loaded.tokenizer.encode("The with statement") == tiny_tokenizer.encode("The with statement")


def test_transformers_tensor_names_map_both_ways():
    assert hf_name("layers.3.q_proj") == "model.layers.3.self_attn.q_proj.weight"
    assert hf_name("layers.0.k_proj.bias") == "model.layers.0.self_attn.k_proj.bias"
    assert hf_name("layers.1.down_proj") == "model.layers.1.mlp.down_proj.weight"
    assert hf_name("layers.1.post_attention_layernorm") == "model.layers.1.post_attention_layernorm.weight"
    for name in ("embed_tokens", "norm", "lm_head", "layers.2.up_proj", "layers.0.v_proj.bias"):
        assert wedge_name(hf_name(name)) == name
    assert wedge_name("model.layers.0.self_attn.q_norm.weight") is None  # Qwen3's, not a Llama tensor
    assert wedge_name("model.layers.0.mlp.q_proj.weight") is None


def test_tied_embeddings_are_stored_once_and_come_back_tied(tmp_path, tiny_tokenizer):
    weights = random_weights(SMALL, seed=2)
    tied = LlamaWeights(SMALL, {**weights.tensors, "lm_head": weights["embed_tokens"]})
    folder = save_hf_checkpoint(tied, tmp_path / "tied")
    assert json.loads((folder / "config.json").read_text())["tie_word_embeddings"] is True
    loaded = load_hf_checkpoint(folder)
    assert loaded.weights.tied and loaded.tokenizer is None


def test_a_sharded_checkpoint_is_read_through_its_index(tmp_path, tiny_weights):
    folder = save_hf_checkpoint(tiny_weights, tmp_path / "sharded", shard_bytes=60_000)
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    assert len(shards) > 2 and (folder / "model.safetensors.index.json").is_file()
    loaded = load_hf_checkpoint(folder)
    np.testing.assert_array_equal(loaded.weights["layers.1.down_proj"], tiny_weights["layers.1.down_proj"])


def test_qwen2_qkv_biases_run_in_the_graph_as_in_the_reference(tmp_path):
    config = replace(SMALL, linear_biases=("q_proj", "k_proj", "v_proj"))
    rng = np.random.default_rng(4)
    weights = random_weights(config, seed=3)
    tensors = dict(weights.tensors)
    for layer in range(config.num_layers):
        for name in config.linear_biases:
            tensors[f"layers.{layer}.{name}.bias"] = rng.standard_normal(tensors[f"layers.{layer}.{name}"].shape[0]
                                                                         ).astype(np.float32)
    weights = LlamaWeights(config, tensors)
    folder = save_hf_checkpoint(weights, tmp_path / "qwen", model_type="qwen2")
    hf = json.loads((folder / "config.json").read_text())
    assert hf["architectures"] == ["Qwen2ForCausalLM"] and "attention_bias" not in hf
    loaded = load_hf_checkpoint(folder)
    assert loaded.weights.config.linear_biases == ("q_proj", "k_proj", "v_proj")
    np.testing.assert_array_equal(loaded.weights["layers.1.k_proj.bias"], tensors["layers.1.k_proj.bias"])
    _onnx_matches_reference(loaded.weights, tmp_path, rng.integers(0, config.vocab_size, (1, 12)))


@pytest.mark.parametrize("scaling", [
    {"rope_type": "linear", "factor": 4.0},
    {"rope_type": "dynamic", "factor": 2.0},
    {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
     "original_max_position_embeddings": 64},
    {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128},
])
def test_rope_scaling_variants_rotate_alike_in_graph_and_reference(tmp_path, scaling):
    hf = {"model_type": "llama", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "max_position_embeddings": 160, "rope_scaling": scaling}
    config = config_from_hf(hf)
    assert config.rope_scaling is not None and config.rope_scaling.kind == scaling.get("rope_type", "yarn")
    weights = random_weights(config, seed=6)
    ids = np.random.default_rng(1).integers(0, 64, (1, 150))
    _onnx_matches_reference(weights, tmp_path, ids, atol=5e-4)


def test_dynamic_scaling_changes_nothing_within_the_original_context_and_stretches_beyond():
    config = replace(SMALL, context_length=64, rope_scaling=RopeScaling(kind="dynamic", factor=2.0))
    plain = base_inv_freq(config.rope_theta, config.head_dim)
    np.testing.assert_allclose(rotary_frequencies(config, 64), plain)
    longer = rotary_frequencies(config, 256)
    assert longer[0] == pytest.approx(plain[0]) and np.all(longer[1:] < plain[1:])


def test_llama3_scaling_keeps_fast_rotations_and_slows_the_slow_ones():
    scaling = RopeScaling(kind="llama3", factor=8.0, original_context=8192, low_freq_factor=1.0, high_freq_factor=4.0)
    config = replace(SMALL, head_dim=64, hidden_size=256, context_length=131072, rope_theta=500_000.0,
                     rope_scaling=scaling)
    plain = base_inv_freq(config.rope_theta, 64)
    scaled = rotary_frequencies(config)
    wavelength = 2 * np.pi / plain
    np.testing.assert_allclose(scaled[wavelength < 8192 / 4], plain[wavelength < 8192 / 4])
    np.testing.assert_allclose(scaled[wavelength > 8192], plain[wavelength > 8192] / 8.0)


def test_a_dynamic_model_runs_past_its_original_context_as_the_reference_does(tmp_path):
    config = replace(SMALL, context_length=32, rope_scaling=RopeScaling(kind="dynamic", factor=4.0,
                                                                       original_context=32))
    config = replace(config, context_length=128)  # the limit the graph checks; the scaling starts at 32
    weights = random_weights(config, seed=8)
    _onnx_matches_reference(weights, tmp_path, np.random.default_rng(2).integers(0, 64, (1, 90)), atol=5e-4)


def test_unsupported_rope_scaling_is_named():
    with pytest.raises(RopeScalingError, match="'longrope' is not supported"):
        RopeScaling.from_hf({"rope_type": "longrope", "factor": 2.0})


def _copy(folder, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def _edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(("breakage", "fragment"), [
    (lambda f: (f / "config.json").unlink(), "has no config.json"),
    (lambda f: _edit_config(f, model_type="gpt2", architectures=["GPT2LMHeadModel"]),
     "model_type 'gpt2' (GPT2LMHeadModel) is not supported"),
    (lambda f: _edit_config(f, hidden_act="gelu"), "hidden_act 'gelu'"),
    (lambda f: _edit_config(f, hidden_size=48), "config.json and the weights disagree"),
    (lambda f: _edit_config(f, num_hidden_layers=3), "lack model.layers.2"),
    (lambda f: _edit_config(f, model_type="qwen2", use_sliding_window=True), "sliding-window"),
    (lambda f: (f / "config.json").write_text("{not json"), "not readable JSON"),
    (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:5000]),
     "not a readable safetensors file"),
    (lambda f: (f / "model.safetensors").unlink(), "has no *.safetensors"),
    (lambda f: ((f / "model.safetensors").unlink(), (f / "pytorch_model.bin").write_bytes(b"PK")),
     "pickled PyTorch weights"),
])
def test_a_broken_checkpoint_is_one_error_naming_the_problem(tmp_path, tiny_checkpoint, breakage, fragment):
    folder = _copy(tiny_checkpoint, tmp_path)
    breakage(folder)
    with pytest.raises(CheckpointError) as raised:
        load_hf_checkpoint(folder)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_a_tensor_of_another_architecture_is_refused(tmp_path, tiny_weights):
    from wedge.quantize.lm.safetensors_io import write_safetensors

    folder = save_hf_checkpoint(tiny_weights, tmp_path / "qwen3ish")
    write_safetensors({"model.layers.0.self_attn.q_norm.weight": np.ones(16, ml_dtypes.bfloat16)},
                      folder / "model-extra.safetensors")
    with pytest.raises(CheckpointError, match="q_norm.weight has no place"):
        load_hf_checkpoint(folder)


def test_the_tiny_checkpoint_carries_its_chat_template(tiny_checkpoint):
    template = load_hf_checkpoint(tiny_checkpoint).chat_template
    assert template is not None
    assert template.render([{"role": "user", "content": "hi"}]) == "user: hi\nassistant:"
    assert TINY_CONFIG.vocab_size == 512
