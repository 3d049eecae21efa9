"""The Llama architecture as data: its hyperparameters and its weights in Hugging Face naming and layout.

Shared by the GGUF reader, the ONNX graph builder, the numpy reference and the tiny-model trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]

# Per-layer weight names (Hugging Face LlamaForCausalLM naming, without the "model." prefix).
LAYER_TENSORS: Final = ("input_layernorm", "q_proj", "k_proj", "v_proj", "o_proj", "post_attention_layernorm",
                        "gate_proj", "up_proj", "down_proj")


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

    def __post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"{self.num_heads} heads do not split into {self.num_kv_heads} KV groups")
        if self.head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head size, not {self.head_dim}")

    @property
    def kv_bytes_per_token(self) -> int:
        """fp32 key + value cache bytes one token adds across all layers."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * 4

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def tensor_shapes(config: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """Every weight's name and shape; linear weights are [out_features, in_features] as in torch.nn.Linear."""
    h, q, kv = config.hidden_size, config.num_heads * config.head_dim, config.num_kv_heads * config.head_dim
    shapes: dict[str, tuple[int, ...]] = {"embed_tokens": (config.vocab_size, h)}
    per_layer = {"input_layernorm": (h,), "q_proj": (q, h), "k_proj": (kv, h), "v_proj": (kv, h),
                 "o_proj": (h, q), "post_attention_layernorm": (h,), "gate_proj": (config.intermediate_size, h),
                 "up_proj": (config.intermediate_size, h), "down_proj": (h, config.intermediate_size)}
    for layer in range(config.num_layers):
        shapes.update({f"layers.{layer}.{name}": shape for name, shape in per_layer.items()})
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


def rope_tables(config: LlamaConfig, positions: int | None = None) -> tuple[Array, Array]:
    """cos and sin of the rotary angles, [positions, head_dim] with each half repeated (rotate-half layout)."""
    count = config.context_length if positions is None else positions
    inv_freq = 1.0 / (config.rope_theta ** (np.arange(0, config.head_dim, 2, dtype=np.float64) / config.head_dim))
    angles = np.outer(np.arange(count, dtype=np.float64), inv_freq)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
