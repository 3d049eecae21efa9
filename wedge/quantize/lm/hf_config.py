"""A Hugging Face config.json (Llama, SmolLM2, Qwen2, Mistral) as a LlamaConfig, and back.

Only decoders that the Llama graph computes exactly are accepted; anything else is named in a one-line error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from wedge.quantize.lm.errors import CheckpointError
from wedge.quantize.lm.llama import LlamaConfig
from wedge.quantize.lm.rope import RopeScaling, RopeScalingError

# model_type -> the HF class; all are RMSNorm + rotary + GQA + SwiGLU decoders with the same tensor names.
ARCHITECTURES: Final = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}
_ATTENTION: Final = ("q_proj", "k_proj", "v_proj", "o_proj")
_MLP: Final = ("gate_proj", "up_proj", "down_proj")


def _int(config: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        if value is None:
            raise CheckpointError(f"config.json lacks {key}")
        raise CheckpointError(f"config.json: {key} must be a positive integer, not {value!r}")
    return value


def _token_ids(value: Any) -> list[int]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [int(v) for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _biases(model_type: str, config: Mapping[str, Any]) -> tuple[str, ...]:
    if model_type == "qwen2":
        return ("q_proj", "k_proj", "v_proj")  # Qwen2Attention: q/k/v with bias, o_proj without
    biases: tuple[str, ...] = ()
    if config.get("attention_bias"):
        biases += _ATTENTION
    if config.get("mlp_bias"):
        biases += _MLP
    return biases


def _context(model_type: str, config: Mapping[str, Any]) -> int:
    context = _int(config, "max_position_embeddings")
    if model_type == "qwen2" and config.get("use_sliding_window"):
        raise CheckpointError("config.json: use_sliding_window is on; wedge's graph attends to the whole context "
                              "(sliding-window attention is not built)")
    window = config.get("sliding_window")
    if model_type == "mistral" and isinstance(window, int) and window < context:
        return window  # within the window, full attention is exactly what Mistral computes
    return context


def _rope(config: Mapping[str, Any]) -> tuple[float, RopeScaling | None]:
    # transformers 4.x writes rope_theta + rope_scaling; 5.x one rope_parameters table holding both.
    parameters = config.get("rope_parameters")
    if isinstance(parameters, Mapping):
        theta = parameters.get("rope_theta", config.get("rope_theta", 10_000.0))
        entry: Mapping[str, Any] | None = {k: v for k, v in parameters.items() if k != "rope_theta"}
    else:
        theta, entry = config.get("rope_theta", 10_000.0), config.get("rope_scaling")
    try:
        return float(theta), RopeScaling.from_hf(entry)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"config.json: {exc}") from None


def config_from_hf(config: Mapping[str, Any], generation: Mapping[str, Any] | None = None) -> LlamaConfig:
    """The LlamaConfig of a config.json (and generation_config.json, whose eos ids take precedence)."""
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        names = ", ".join(str(a) for a in config.get("architectures") or []) or "no architectures"
        raise CheckpointError(f"model_type {model_type!r} ({names}) is not supported: wedge builds "
                              f"{', '.join(ARCHITECTURES)} decoders")
    act = config.get("hidden_act", "silu")
    if act != "silu":
        raise CheckpointError(f"config.json: hidden_act {act!r}; the Llama graph computes SwiGLU with silu")
    hidden, heads = _int(config, "hidden_size"), _int(config, "num_attention_heads")
    head_dim = config.get("head_dim") or hidden // heads
    theta, scaling = _rope(config)
    eos = _token_ids((generation or {}).get("eos_token_id")) or _token_ids(config.get("eos_token_id"))
    bos = _token_ids((generation or {}).get("bos_token_id")) or _token_ids(config.get("bos_token_id"))
    try:
        return LlamaConfig(
            vocab_size=_int(config, "vocab_size"), hidden_size=hidden,
            intermediate_size=_int(config, "intermediate_size"), num_layers=_int(config, "num_hidden_layers"),
            num_heads=heads, num_kv_heads=_int(config, "num_key_value_heads", heads), head_dim=int(head_dim),
            context_length=_context(str(model_type), config), rope_theta=theta,
            rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
            bos_token_id=bos[0] if bos else None, eos_token_id=eos[0] if eos else None,
            extra_eos_token_ids=tuple(eos[1:]), rope_scaling=scaling,
            linear_biases=_biases(str(model_type), config))
    except (RopeScalingError, ValueError) as exc:
        raise CheckpointError(f"config.json: {exc}") from None


def tied_embeddings(config: Mapping[str, Any]) -> bool:
    """Whether the LM head is the embedding (LlamaConfig and Qwen2Config default to untied)."""
    return bool(config.get("tie_word_embeddings", False))


def config_to_hf(config: LlamaConfig, model_type: str, tied: bool, dtype: str) -> dict[str, Any]:
    """A config.json that transformers would load for these hyperparameters."""
    hf: dict[str, Any] = {
        "architectures": [ARCHITECTURES[model_type]], "model_type": model_type,
        "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size, "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads, "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim, "max_position_embeddings": config.context_length,
        "rope_theta": config.rope_theta, "rms_norm_eps": config.rms_norm_eps, "hidden_act": "silu",
        "tie_word_embeddings": tied, "torch_dtype": dtype,
        "rope_scaling": None if config.rope_scaling is None else config.rope_scaling.to_hf(),
        "bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id,
    }
    if model_type == "qwen2":
        if set(config.linear_biases) != {"q_proj", "k_proj", "v_proj"}:
            raise ValueError("Qwen2 has biases on q_proj, k_proj and v_proj exactly")
        hf["use_sliding_window"] = False
    else:
        hf["attention_bias"] = set(_ATTENTION) <= set(config.linear_biases)
        hf["mlp_bias"] = set(_MLP) <= set(config.linear_biases)
    return hf
