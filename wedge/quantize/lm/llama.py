"""The Llama architecture as data: its hyperparameters and its weights in Hugging Face naming and layout.

Shared by the GGUF reader, the ONNX graph builder, the numpy reference and the tiny-model trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.rope import RopeScaling, attention_factor, dynamic_exponents, dynamic_ratio, inv_freq

Array = NDArray[np.float32]

# Per-layer weight names (Hugging Face LlamaForCausalLM naming, without the "model." prefix).
LAYER_TENSORS: Final = ("input_layernorm", "q_proj", "k_proj", "v_proj", "o_proj", "post_attention_layernorm",
                        "gate_proj", "up_proj", "down_proj")
LINEAR_TENSORS: Final = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LlamaConfig:
    """Hyperparameters of a Llama-architecture decoder (RMSNorm, rotary embeddings, GQA, SwiGLU)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    context_length: int
    rope_theta: float = 10_000.0
    rms_norm_eps: float = 1e-5
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    extra_eos_token_ids: tuple[int, ...] = ()  # generation_config.json may list several (Llama 3: eot, eom)
    rope_scaling: RopeScaling | None = None
    linear_biases: tuple[str, ...] = ()  # projections with a bias: Qwen2's q/k/v, Llama's attention_bias

    def __post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"{self.num_heads} heads do not split into {self.num_kv_heads} KV groups")
        if self.head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head size, not {self.head_dim}")
        unknown = sorted(set(self.linear_biases) - set(LINEAR_TENSORS))
        if unknown:
            raise ValueError(f"biases on {', '.join(unknown)}: not a Llama projection")

    @property
    def stop_token_ids(self) -> frozenset[int]:
        """Token ids that end generation."""
        first = () if self.eos_token_id is None else (self.eos_token_id,)
        return frozenset((*first, *self.extra_eos_token_ids))

    @property
    def kv_bytes_per_token(self) -> int:
        """fp32 key + value cache bytes one token adds across all layers."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * 4

    def to_dict(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["rope_scaling"] = None if self.rope_scaling is None else self.rope_scaling.to_dict()
        values["extra_eos_token_ids"] = list(self.extra_eos_token_ids)
        values["linear_biases"] = list(self.linear_biases)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LlamaConfig:
        """The inverse of `to_dict` (TypeError/ValueError on anything else)."""
        values = dict(values)
        scaling = values.pop("rope_scaling", None)
        values["extra_eos_token_ids"] = tuple(values.get("extra_eos_token_ids", ()))
        values["linear_biases"] = tuple(values.get("linear_biases", ()))
        return cls(**values, rope_scaling=None if scaling is None else RopeScaling(**scaling))


def tensor_shapes(config: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """Every weight's name and shape; linear weights are [out_features, in_features] as in torch.nn.Linear."""
    h, q, kv = config.hidden_size, config.num_heads * config.head_dim, config.num_kv_heads * config.head_dim
    shapes: dict[str, tuple[int, ...]] = {"embed_tokens": (config.vocab_size, h)}
    per_layer = {"input_layernorm": (h,), "q_proj": (q, h), "k_proj": (kv, h), "v_proj": (kv, h),
                 "o_proj": (h, q), "post_attention_layernorm": (h,), "gate_proj": (config.intermediate_size, h),
                 "up_proj": (config.intermediate_size, h), "down_proj": (h, config.intermediate_size)}
    for layer in range(config.num_layers):
        shapes.update({f"layers.{layer}.{name}": shape for name, shape in per_layer.items()})
        shapes.update({f"layers.{layer}.{name}.bias": per_layer[name][:1] for name in config.linear_biases})
    shapes["norm"] = (h,)
    shapes["lm_head"] = (config.vocab_size, h)
    return shapes


@dataclass(frozen=True)
class LlamaWeights:
    """A config and its fp32 weights by name (see `tensor_shapes`); a tied LM head is the embedding array."""

    config: LlamaConfig
    tensors: Mapping[str, Array]

    def __post_init__(self) -> None:
        expected = tensor_shapes(self.config)
        missing = sorted(set(expected) - set(self.tensors))
        if missing:
            raise ValueError(f"weights lack {', '.join(missing[:3])}")
        for name, shape in expected.items():
            if tuple(self.tensors[name].shape) != shape:
                raise ValueError(f"{name} is {tuple(self.tensors[name].shape)}, expected {shape}")

    def __getitem__(self, name: str) -> Array:
        return self.tensors[name]

    @property
    def param_count(self) -> int:
        """Distinct parameters (a tied LM head counts once)."""
        seen: set[int] = set()
        total = 0
        for array in self.tensors.values():
            if id(array) not in seen:
                seen.add(id(array))
                total += array.size
        return total

    @property
    def tied(self) -> bool:
        return self.tensors["lm_head"] is self.tensors["embed_tokens"]


def rotary_frequencies(config: LlamaConfig, sequence: int | None = None) -> NDArray[np.float64]:
    """The inverse frequencies [head_dim / 2] for a forward pass over `sequence` positions in all (dynamic NTK
    scaling depends on it; the other variants do not)."""
    freq = inv_freq(config.rope_theta, config.head_dim, config.rope_scaling, config.context_length)
    scaling = config.rope_scaling
    if scaling is not None and scaling.kind == "dynamic" and sequence is not None:
        ratio = dynamic_ratio(scaling, scaling.original_context or config.context_length, sequence)
        freq = freq * ratio ** dynamic_exponents(config.head_dim)
    return freq


def rope_tables(config: LlamaConfig, positions: int | None = None,
                sequence: int | None = None) -> tuple[Array, Array]:
    """cos and sin of the rotary angles, [positions, head_dim] with each half repeated (rotate-half layout);
    `sequence` (default: `positions`) is the length dynamic scaling sees."""
    count = config.context_length if positions is None else positions
    freq = rotary_frequencies(config, count if sequence is None else sequence)
    angles = np.outer(np.arange(count, dtype=np.float64), freq)
    angles = np.concatenate([angles, angles], axis=-1)
    factor = attention_factor(config.rope_scaling)
    return (np.cos(angles) * factor).astype(np.float32), (np.sin(angles) * factor).astype(np.float32)
