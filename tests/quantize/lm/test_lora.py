"""LoRA adapters in PEFT's format: merged as W + scale B A (rsLoRA and per-module patterns too), refused when
they belong to another model, and an adapter trained by wedge's numpy code that lowers perplexity on its text
and keeps the gain through int8."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from tests.quantize.lm.conftest import random_weights
from wedge.quantize.lm.errors import LoraError
from wedge.quantize.lm.llama import LlamaConfig
from wedge.quantize.lm.lora import ADAPTER_CONFIG, load_adapter, merge_lora, save_adapter
from wedge.quantize.lm.options import WeightOptions
from wedge.quantize.lm.pipeline import LmOptions, run_lm_quantize
from wedge.quantize.lm.safetensors_io import SafetensorsFile

SMALL = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4,
                    num_kv_heads=2, head_dim=8, context_length=64)


def _pairs(rank: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {"layers.0.q_proj": (rng.standard_normal((rank, 32)).astype(np.float32),
                                rng.standard_normal((32, rank)).astype(np.float32)),
            "layers.1.down_proj": (rng.standard_normal((rank, 48)).astype(np.float32),
                                   rng.standard_normal((32, rank)).astype(np.float32))}


def test_an_adapter_is_written_with_peft_names_and_merges_as_w_plus_scaled_ba(tmp_path):
    weights = random_weights(SMALL)
    pairs = _pairs(rank=4)
    folder = save_adapter(tmp_path / "adapter", pairs, r=4, lora_alpha=8.0)
    keys = SafetensorsFile(folder / "adapter_model.safetensors", LoraError).keys()
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in keys
    assert "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight" in keys
    merged = merge_lora(weights, load_adapter(folder))
    a, b = pairs["layers.0.q_proj"]
    np.testing.assert_allclose(merged["layers.0.q_proj"], weights["layers.0.q_proj"] + 2.0 * b @ a, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_array_equal(merged["layers.0.k_proj"], weights["layers.0.k_proj"])
    assert not np.array_equal(weights["layers.0.q_proj"], merged["layers.0.q_proj"])  # the base is untouched


def test_rslora_and_rank_patterns_change_the_scale_as_peft_does(tmp_path):
    weights = random_weights(SMALL)
    pairs = _pairs(rank=4)
    folder = save_adapter(tmp_path / "adapter", pairs, r=4, lora_alpha=8.0, use_rslora=True)
    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    config["alpha_pattern"] = {"down_proj": 2.0}
    (folder / ADAPTER_CONFIG).write_text(json.dumps(config))
    adapter = load_adapter(folder)
    assert adapter.config.scale("model.layers.0.self_attn.q_proj") == pytest.approx(8.0 / math.sqrt(4))
    assert adapter.config.scale("model.layers.1.mlp.down_proj") == pytest.approx(2.0 / math.sqrt(4))
    merged = merge_lora(weights, adapter)
    a, b = pairs["layers.1.down_proj"]
    np.testing.assert_allclose(merged["layers.1.down_proj"], weights["layers.1.down_proj"] + 1.0 * b @ a,
                               rtol=1e-5, atol=1e-5)


def _edited(folder, tmp_path, **changes):
    target = tmp_path / "edited"
    shutil.copytree(folder, target)
    config = json.loads((target / ADAPTER_CONFIG).read_text())
    config.update(changes)
    (target / ADAPTER_CONFIG).write_text(json.dumps(config))
    return target


def test_an_adapter_for_another_model_is_refused_with_the_reason(tmp_path):
    weights = random_weights(SMALL)
    folder = save_adapter(tmp_path / "adapter", _pairs(rank=4), r=4, lora_alpha=8.0)
    with pytest.raises(LoraError, match="targets c_attn, which a Llama decoder does not have"):
        load_adapter(_edited(folder, tmp_path, target_modules=["c_attn"]))
    wide = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=48, num_layers=2, num_heads=4,
                       num_kv_heads=2, head_dim=16, context_length=64)
    with pytest.raises(LoraError, match="trained on another base model"):
        merge_lora(random_weights(wide), load_adapter(folder))
    deep = save_adapter(tmp_path / "deep", {"layers.5.q_proj": _pairs(4)["layers.0.q_proj"]}, r=4, lora_alpha=8.0)
    with pytest.raises(LoraError, match="model.layers.5.self_attn.q_proj.weight, which the base model does not"):
        merge_lora(weights, load_adapter(deep))


@pytest.mark.parametrize(("change", "fragment"), [
    ({"use_dora": True}, "use_dora is set"),
    ({"peft_type": "IA3"}, "peft_type IA3 is not LoRA"),
    ({"bias": "all"}, "only bias 'none' merges"),
])
def test_adapter_kinds_that_do_not_merge_are_refused(tmp_path, change, fragment):
    folder = save_adapter(tmp_path / "adapter", _pairs(rank=2), r=2, lora_alpha=4.0)
    with pytest.raises(LoraError, match=fragment):
        load_adapter(_edited(folder, tmp_path, **change))


def test_a_folder_without_safetensors_weights_is_refused(tmp_path):
    folder = save_adapter(tmp_path / "adapter", _pairs(rank=2), r=2, lora_alpha=4.0)
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
    with pytest.raises(LoraError, match="adapter_model.bin is a pickle"):
        load_adapter(folder)


def test_a_lora_trained_by_wedge_lowers_perplexity_on_its_text_and_int8_keeps_it(
        tmp_path, tiny_checkpoint, tiny_lora, fine_tune_file):
    adapter, losses = tiny_lora
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5  # the training itself converged
    options = LmOptions(weights=WeightOptions(), eval_tokens=1500, samples=0, measure_speed=False)
    base = run_lm_quantize(tiny_checkpoint, tmp_path / "base", eval_text=fine_tune_file, options=options)
    tuned = run_lm_quantize(tiny_checkpoint, tmp_path / "tuned", eval_text=fine_tune_file,
                            options=LmOptions(**{**options.__dict__, "lora": adapter}))
    assert tuned.perplexity.fp32 < 0.6 * base.perplexity.fp32  # the adapter learned its text
    assert tuned.perplexity.quantized < 0.6 * base.perplexity.quantized  # and int8 keeps what it learned
    assert tuned.perplexity.change_pct < 2.0
    assert (tmp_path / "tuned" / "tiny-slm-stdlib-lora.int8.onnx").is_file()
    assert any("merged LoRA stdlib-lora (r=8, alpha=16)" in note for note in tuned.notes)


def test_an_embedding_lora_on_tied_weights_changes_the_one_shared_table(tmp_path):
    from wedge.quantize.lm.llama import LlamaWeights
    from wedge.quantize.lm.safetensors_io import write_safetensors

    base = random_weights(SMALL)
    tied = LlamaWeights(SMALL, {**base.tensors, "lm_head": base["embed_tokens"]})
    folder = save_adapter(tmp_path / "embed-lora", _pairs(rank=2), r=2, lora_alpha=2.0)
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((2, 64)).astype(np.float32), rng.standard_normal((32, 2)).astype(np.float32)
    # PEFT's embedding LoRA: A [r, vocab], B [hidden, r], saved without ".weight" and (older PEFT) with the
    # adapter's name in the key.
    write_safetensors({"base_model.model.model.embed_tokens.lora_embedding_A": a,
                       "base_model.model.model.embed_tokens.lora_embedding_B.default": b},
                      folder / "adapter_model.safetensors")
    merged = merge_lora(tied, load_adapter(folder))
    np.testing.assert_allclose(merged["embed_tokens"], base["embed_tokens"] + (b @ a).T, rtol=1e-5, atol=1e-5)
    assert merged.tied
