"""Reading GGUF files: a Llama GGUF written here the way llama.cpp's converter writes one (Q/K rows permuted for
its RoPE, a Q8_0 tensor, a byte-level BPE in the metadata) must come back as the weights and tokenizer it holds."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from click.testing import CliRunner

from tests.quantize.lm.conftest import random_weights
from wedge.cli import main
from wedge.quantize.errors import ModelLoadError
from wedge.quantize.lm.gguf_model import load_gguf, load_gguf_tokenizer
from wedge.quantize.lm.llama import LlamaWeights
from wedge.quantize.lm.reference import reference_forward
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.tiny import TINY_CONFIG
from wedge.quantize.lm.tokenizer import TextTokenizer

_LAYER = {"input_layernorm": "attn_norm", "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v",
          "o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "gate_proj": "ffn_gate",
          "up_proj": "ffn_up", "down_proj": "ffn_down"}


def _permute(weight: np.ndarray, heads: int) -> np.ndarray:
    # convert_hf_to_gguf.py's LlamaModel.permute
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(
        weight.shape)


def write_llama_gguf(weights: LlamaWeights, tokenizer: TextTokenizer, path: Path, q8_name: str) -> Path:
    cfg = weights.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(cfg.num_layers)
    writer.add_context_length(cfg.context_length)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_heads)
    writer.add_head_count_kv(cfg.num_kv_heads)
    writer.add_rope_dimension_count(cfg.head_dim)
    writer.add_rope_freq_base(cfg.rope_theta)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    state = json.loads(tokenizer.to_json())
    vocab = sorted(state["model"]["vocab"].items(), key=lambda item: item[1])
    specials = {t["content"] for t in state["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types([3 if token in specials else 1 for token, _ in vocab])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in state["model"]["merges"]])
    writer.add_eos_token_id(0)
    names = {"embed_tokens": "token_embd.weight", "norm": "output_norm.weight", "lm_head": "output.weight"}
    for layer in range(cfg.num_layers):
        names.update({f"layers.{layer}.{hf}": f"blk.{layer}.{short}.weight" for hf, short in _LAYER.items()})
    for hf_name, gguf_name in names.items():
        array = weights[hf_name]
        if hf_name.endswith("q_proj"):
            array = _permute(array, cfg.num_heads)
        elif hf_name.endswith("k_proj"):
            array = _permute(array, cfg.num_kv_heads)
        if hf_name == q8_name:
            kind = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(gguf_name, gguf.quants.quantize(array, kind), raw_dtype=kind)
        else:
            writer.add_tensor(gguf_name, np.ascontiguousarray(array, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> tuple[Path, LlamaWeights]:
    weights = random_weights(TINY_CONFIG, seed=5)
    tokenizer = DecoderSession(tiny_model).tokenizer()
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    return write_llama_gguf(weights, tokenizer, path, q8_name="layers.1.k_proj"), weights


def test_gguf_weights_come_back_unpermuted_and_dequantized(tiny_gguf, tiny_model):
    path, original = tiny_gguf
    loaded = load_gguf(path)
    assert loaded.weights.config.num_kv_heads == 2 and loaded.weights.config.context_length == 256
    for name, array in original.tensors.items():
        # Q8_0 keeps each block of 32 within half a step of max|w|/127.
        tolerance = np.abs(array).max() / 127 if name == "layers.1.k_proj" else 0.0
        np.testing.assert_allclose(loaded.weights[name], array, atol=tolerance + 1e-7, err_msg=name)
    ids = np.asarray([[5, 17, 300, 2]])
    np.testing.assert_allclose(reference_forward(loaded.weights, ids)[0], reference_forward(original, ids)[0],
                               atol=0.05)
    text = "The with statement, café"
    assert loaded.tokenizer.encode(text) == DecoderSession(tiny_model).tokenizer().encode(text)
    assert load_gguf_tokenizer(path).vocab_size == 512


def test_quantize_task_lm_takes_a_gguf_and_keeps_the_fp32_onnx_only_when_asked(tiny_gguf, tmp_path):
    path, _ = tiny_gguf
    args = ["quantize", str(path), "--task", "lm", "--eval-tokens", "200", "--no-speed", "--json"]
    result = CliRunner().invoke(main, [*args, "--out-dir", str(tmp_path / "plain")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["report.json", "tiny.int8.onnx"]
    report = json.loads(result.stdout)
    assert report["perplexity"]["change_pct"] < 5.0 and report["fp32_output"] is None
    assert any("--keep-fp32" in note for note in report["notes"])
    # One tensor is Q8_0: the caveat is a warning whatever the perplexity, in the JSON and on stderr.
    (caveat,) = report["warnings"]
    assert caveat.startswith("re-quantization: the GGUF's weights are Q8_0 already")
    assert f"warning: {caveat}" in result.stderr
    kept = CliRunner().invoke(main, [*args, "--keep-fp32", "--out-dir", str(tmp_path / "kept")])
    assert kept.exit_code == 0, kept.output
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["report.json", "tiny.fp32.onnx", "tiny.int8.onnx"]


def test_output_files_are_named_after_the_model_not_its_quantization_type(tiny_gguf, tmp_path):
    path, _ = tiny_gguf
    renamed = tmp_path / "TinyChat-2M-Instruct.Q8_0.gguf"
    renamed.write_bytes(path.read_bytes())
    result = CliRunner().invoke(main, ["quantize", str(renamed), "--task", "lm", "--eval-tokens", "100",
                                       "--no-speed", "--json", "--out-dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "TinyChat-2M-Instruct.int8.onnx").is_file()
    assert json.loads(result.stdout)["name"] == "TinyChat-2M-Instruct"


def test_a_file_that_is_not_gguf_is_one_line(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"GGML" + b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="not a readable GGUF file"):
        load_gguf(bogus)
