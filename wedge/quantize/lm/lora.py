"""PEFT LoRA adapters: read adapter_config.json + adapter_model.safetensors and merge them into fp32 weights
(W += scale * B @ A), or write one (what `lora_train` produces).

scale = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora; rank_pattern / alpha_pattern override both per
module as PEFT matches them. A module the adapter names but the base model lacks, or a shape that does not fit,
is a one-line LoraError: merging it anyway would give a model that is neither.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from wedge.quantize.lm.errors import LoraError
from wedge.quantize.lm.hf_checkpoint import hf_name, read_json_object, wedge_name
from wedge.quantize.lm.llama import LINEAR_TENSORS, Array, LlamaWeights
from wedge.quantize.lm.safetensors_io import SafetensorsFile, write_safetensors

ADAPTER_CONFIG: Final = "adapter_config.json"
ADAPTER_WEIGHTS: Final = "adapter_model.safetensors"
PREFIX: Final = "base_model.model."
# Modules of a Llama decoder an adapter can target (PEFT matches target_modules against module-name suffixes).
TARGETS: Final = (*LINEAR_TENSORS, "lm_head", "embed_tokens")
_LORA_KEY: Final = re.compile(r"^(?P<module>.+)\.(?P<part>lora_A|lora_B|lora_embedding_A|lora_embedding_B)"
                              r"(?:\.[A-Za-z0-9_-]+)?(?:\.weight)?$")


@dataclass(frozen=True)
class LoraConfig:
    """The adapter_config.json fields that change the merged weights."""

    r: int
    lora_alpha: float
    target_modules: tuple[str, ...] | str  # names, or one regex over full module names
    use_rslora: bool = False
    fan_in_fan_out: bool = False
    rank_pattern: Mapping[str, int] = field(default_factory=dict)
    alpha_pattern: Mapping[str, float] = field(default_factory=dict)
    base_model: str | None = None

    def scale(self, module: str) -> float:
        """The factor on B @ A for `module` (a full module name such as model.layers.0.self_attn.q_proj)."""
        rank = _pattern_value(self.rank_pattern, module, self.r)
        alpha = _pattern_value(self.alpha_pattern, module, self.lora_alpha)
        return alpha / math.sqrt(rank) if self.use_rslora else alpha / rank


def _pattern_value(patterns: Mapping[str, Any], module: str, default: Any) -> Any:
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?{pattern}$", module):
            return value
    return default


@dataclass(frozen=True)
class LoraAdapter:
    """The adapter's config and its low-rank pairs by wedge tensor name: (A [r, in], B [out, r])."""

    config: LoraConfig
    pairs: Mapping[str, tuple[Array, Array]]
    replaced: Mapping[str, Array]  # modules_to_save: whole tensors the adapter carries
    name: str


def _read_config(folder: Path) -> LoraConfig:
    path = folder / ADAPTER_CONFIG
    if not path.is_file():
        raise LoraError(f"{folder} has no {ADAPTER_CONFIG}: not a PEFT adapter folder")
    raw = read_json_object(path, LoraError)
    kind = str(raw.get("peft_type", "LORA")).upper()
    if kind != "LORA":
        raise LoraError(f"{path}: peft_type {kind} is not LoRA")
    for flag, what in (("use_dora", "DoRA's magnitude vectors"), ("lora_bias", "LoRA biases")):
        if raw.get(flag):
            raise LoraError(f"{path}: {flag} is set; merging {what} is not supported")
    if raw.get("bias", "none") != "none":
        raise LoraError(f"{path}: bias {raw['bias']!r} trains the base biases too; only bias 'none' merges")
    try:
        r, alpha = int(raw["r"]), float(raw["lora_alpha"])
    except (KeyError, TypeError, ValueError):
        raise LoraError(f"{path} needs a numeric r and lora_alpha") from None
    if r < 1:
        raise LoraError(f"{path}: r must be at least 1, not {r}")
    targets = raw.get("target_modules")
    if isinstance(targets, list):
        modules: tuple[str, ...] | str = tuple(str(t) for t in targets)
        unknown = [t for t in modules if t not in TARGETS and t != "all-linear"]
        if unknown:
            raise LoraError(f"the adapter targets {', '.join(unknown)}, which a Llama decoder does not have "
                            f"(its modules: {', '.join(TARGETS)}): it was trained for another architecture")
    elif isinstance(targets, str):
        modules = targets
    else:
        raise LoraError(f"{path} has no target_modules")
    # layers_to_transform / layers_pattern only decide which tensors exist, and those are read from the weights.
    return LoraConfig(r=r, lora_alpha=alpha, target_modules=modules, use_rslora=bool(raw.get("use_rslora")),
                      fan_in_fan_out=bool(raw.get("fan_in_fan_out")), rank_pattern=dict(raw.get("rank_pattern") or {}),
                      alpha_pattern=dict(raw.get("alpha_pattern") or {}),
                      base_model=raw.get("base_model_name_or_path"))


def load_adapter(folder: Path) -> LoraAdapter:
    """Read a PEFT LoRA adapter folder (safetensors only: adapter_model.bin is a pickle)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LoraError(f"{folder}: no such adapter folder")
    config = _read_config(folder)
    weights_path = folder / ADAPTER_WEIGHTS
    if not weights_path.is_file():
        hint = " (adapter_model.bin is a pickle, which wedge does not load)" if (
            folder / "adapter_model.bin").is_file() else ""
        raise LoraError(f"{folder} has no {ADAPTER_WEIGHTS}{hint}")
    handle = SafetensorsFile(weights_path, LoraError)
    halves: dict[str, dict[str, Array]] = {}
    replaced: dict[str, Array] = {}
    for key in handle.keys():
        path = key.removeprefix(PREFIX)
        match = _LORA_KEY.match(path)
        if match is None:
            target = wedge_name(path.replace(".modules_to_save", "").replace(".original_module", ""))
            if target is None:
                raise LoraError(f"{weights_path}: tensor {key} is not a LoRA matrix of a Llama module")
            replaced[target] = handle.tensor(key)
            continue
        module = match.group("module")
        target = wedge_name(module + ".weight")
        if target is None:
            raise LoraError(f"{weights_path}: {module} is not a module of a Llama decoder")
        halves.setdefault(target, {})[match.group("part").replace("embedding_", "")] = handle.tensor(key)
    pairs = {}
    for target, parts in halves.items():
        if set(parts) != {"lora_A", "lora_B"}:
            raise LoraError(f"{weights_path}: {hf_name(target)} has {', '.join(parts)} but not both lora_A and lora_B")
        pairs[target] = (parts["lora_A"], parts["lora_B"])
    if not pairs and not replaced:
        raise LoraError(f"{weights_path} holds no LoRA matrices")
    return LoraAdapter(config=config, pairs=pairs, replaced=replaced, name=folder.resolve().name)


def delta(adapter: LoraAdapter, target: str) -> NDArray[np.float64]:
    """scale * B @ A for one module, in the base weight's [out, in] layout."""
    a, b = adapter.pairs[target]
    module = hf_name(target).removesuffix(".weight")
    update = adapter.config.scale(module) * (b.astype(np.float64) @ a.astype(np.float64))
    if target == "embed_tokens":
        return update.T  # PEFT's embedding LoRA: A [r, vocab], B [hidden, r]
    return update.T if adapter.config.fan_in_fan_out else update


def merge_lora(weights: LlamaWeights, adapter: LoraAdapter) -> LlamaWeights:
    """New weights with every adapter pair merged; the base arrays are left untouched."""
    tensors = dict(weights.tensors)
    tied = weights.tied
    for target, array in adapter.replaced.items():
        _check_shape(weights, target, array.shape, "a saved module")
        tensors[target] = array
    for target in adapter.pairs:
        if target not in tensors:
            raise LoraError(f"the adapter changes {hf_name(target)}, which the base model does not have "
                            f"(it has {weights.config.num_layers} layers): it belongs to another base model")
        update = delta(adapter, target)
        _check_shape(weights, target, update.shape, f"LoRA r={adapter.pairs[target][0].shape[0]}")
        tensors[target] = (tensors[target].astype(np.float64) + update).astype(np.float32)
    if tied:
        # One parameter in transformers: merging into either the head or the embedding changes both.
        changed = [name for name in ("embed_tokens", "lm_head") if name in adapter.pairs or name in adapter.replaced]
        if len(changed) == 2:
            raise LoraError("the adapter changes both the tied embedding and the LM head")
        if changed:
            tensors["embed_tokens"] = tensors["lm_head"] = tensors[changed[0]]
    return LlamaWeights(weights.config, tensors)


def _check_shape(weights: LlamaWeights, target: str, shape: tuple[int, ...], what: str) -> None:
    if target not in weights.tensors:
        raise LoraError(f"the adapter changes {hf_name(target)}, which the base model does not have")
    expected = tuple(weights[target].shape)
    if tuple(shape) != expected:
        raise LoraError(f"{what} for {hf_name(target)} is {tuple(shape)} but the base weight is {expected}: "
                        "the adapter was trained on another base model")


def save_adapter(folder: Path, pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], *, r: int, lora_alpha: float,
                 base_model: str | None = None, use_rslora: bool = False) -> Path:
    """Write a PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors) for linear modules."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    modules = sorted({target.rsplit(".", 1)[-1] for target in pairs})
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": lora_alpha,
              "lora_dropout": 0.0, "target_modules": modules, "bias": "none", "use_rslora": use_rslora,
              "use_dora": False, "fan_in_fan_out": False, "base_model_name_or_path": base_model,
              "rank_pattern": {}, "alpha_pattern": {}}
    (folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tensors = {}
    for target, (a, b) in pairs.items():
        module = PREFIX + hf_name(target).removesuffix(".weight")
        tensors[f"{module}.lora_A.weight"] = a
        tensors[f"{module}.lora_B.weight"] = b
    write_safetensors(tensors, folder / ADAPTER_WEIGHTS)
    return folder
