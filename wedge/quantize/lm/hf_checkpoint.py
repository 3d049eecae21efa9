"""Read a Hugging Face decoder checkpoint folder (config.json, *.safetensors, tokenizer.json, tokenizer_config.json)
into fp32 weights, a tokenizer and a chat template; write one (how the tests make their fixtures).

Weights are read with `safetensors` into numpy (fp32, fp16 or bf16; one shard open at a time). Pickled
`pytorch_model.bin` files are refused: loading them runs code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from wedge.errors import first_line
from wedge.quantize.lm.chat import ChatTemplate, template_text, token_text
from wedge.quantize.lm.errors import CheckpointError, LmError
from wedge.quantize.lm.hf_config import ARCHITECTURES, config_from_hf, config_to_hf, tied_embeddings
from wedge.quantize.lm.llama import Array, LlamaWeights, tensor_shapes
from wedge.quantize.lm.safetensors_io import iter_tensors, write_safetensors
from wedge.quantize.lm.tokenizer import TextTokenizer

CONFIG_FILE: Final = "config.json"
INDEX_FILE: Final = "model.safetensors.index.json"
WEIGHTS_FILE: Final = "model.safetensors"
TOKENIZER_FILE: Final = "tokenizer.json"
TOKENIZER_CONFIG_FILE: Final = "tokenizer_config.json"
GENERATION_CONFIG_FILE: Final = "generation_config.json"
CHAT_TEMPLATE_FILE: Final = "chat_template.jinja"  # transformers >= 4.43 may save the template on its own
_ATTENTION: Final = frozenset({"q_proj", "k_proj", "v_proj", "o_proj"})
_HF_LAYER: Final = re.compile(r"^model\.layers\.(\d+)\.(?:(self_attn|mlp)\.)?(\w+?)\.(weight|bias)$")
_IGNORED: Final = re.compile(r"\.rotary_emb\.inv_freq$")  # older checkpoints saved the rotary buffer


@dataclass(frozen=True)
class HfCheckpoint:
    """What wedge takes from a checkpoint folder."""

    weights: LlamaWeights
    tokenizer: TextTokenizer | None
    chat_template: ChatTemplate | None
    name: str
    model_type: str
    dtype: str  # of the stored weights: float32, float16, bfloat16 (or several, comma-separated)


def hf_name(name: str) -> str:
    """wedge's tensor name -> the checkpoint's (`layers.0.q_proj` -> `model.layers.0.self_attn.q_proj.weight`)."""
    if name == "lm_head":
        return "lm_head.weight"
    if name in ("embed_tokens", "norm"):
        return f"model.{name}.weight"
    layer, _, rest = name.removeprefix("layers.").partition(".")
    module, _, kind = rest.partition(".")
    kind = kind or "weight"
    block = "self_attn." if module in _ATTENTION else ("mlp." if module.endswith("_proj") else "")
    return f"model.layers.{layer}.{block}{module}.{kind}"


def wedge_name(key: str) -> str | None:
    """The checkpoint's tensor name -> wedge's, or None when it is not one of a Llama decoder's."""
    if key == "lm_head.weight":
        return "lm_head"
    if key in ("model.embed_tokens.weight", "model.norm.weight"):
        return key.split(".")[1]
    match = _HF_LAYER.match(key)
    if match is None:
        return None
    layer, block, module, kind = match.groups()
    expected_block = "self_attn" if module in _ATTENTION else ("mlp" if module.endswith("_proj") else None)
    if block != expected_block:
        return None
    return f"layers.{layer}.{module}" + (".bias" if kind == "bias" else "")


def read_json_object(path: Path, error: type[LmError]) -> dict[str, Any]:
    """A JSON object file (config.json, adapter_config.json, ...); anything else is one `error` line."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise error(f"{path} is not readable JSON: {first_line(exc)}") from None
    if not isinstance(value, dict):
        raise error(f"{path} is not a JSON object")
    return value


def _read_json(path: Path) -> dict[str, Any] | None:
    """An optional JSON file of the checkpoint (None when absent)."""
    return read_json_object(path, CheckpointError) if path.is_file() else None


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder} has no {CONFIG_FILE}: not a Hugging Face checkpoint folder")
    return read_json_object(path, CheckpointError)


def weight_files(folder: Path) -> list[Path]:
    """The safetensors shards of a checkpoint: from the index when there is one, else every *.safetensors."""
    index = _read_json(folder / INDEX_FILE)
    if index is not None:
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{folder / INDEX_FILE} has no weight_map")
        files = [folder / name for name in dict.fromkeys(str(v) for v in weight_map.values())]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{folder}: shard {missing[0]} named by {INDEX_FILE} is missing")
        return files
    files = sorted(p for p in folder.glob("*.safetensors") if not p.name.startswith("adapter_"))
    if files:
        return files
    if any(folder.glob("pytorch_model*.bin")) or any(folder.glob("*.pt")):
        raise CheckpointError(f"{folder} holds only pickled PyTorch weights (.bin), which wedge does not load "
                              "(unpickling runs code): save the model with safetensors")
    raise CheckpointError(f"{folder} has no *.safetensors weights")


def checkpoint_name(folder: Path) -> str:
    """A folder's model name; a Hugging Face cache snapshot (models--org--name/snapshots/<hash>) is named after
    its repository."""
    folder = Path(folder).resolve()
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        return folder.parent.parent.name.split("--")[-1]
    return folder.name


def _chat_template(folder: Path, tokenizer_config: Mapping[str, Any] | None) -> ChatTemplate | None:
    settings = tokenizer_config or {}
    jinja = folder / CHAT_TEMPLATE_FILE
    text = jinja.read_text(encoding="utf-8") if jinja.is_file() else template_text(settings.get("chat_template"))
    if text is None:
        return None
    return ChatTemplate(template=text, bos_token=token_text(settings.get("bos_token")),
                        eos_token=token_text(settings.get("eos_token")))


def load_hf_checkpoint(folder: Path, on_file: Callable[[Path], None] | None = None) -> HfCheckpoint:
    """The fp32 weights, tokenizer (None without tokenizer.json) and chat template of checkpoint `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    hf = _read_config(folder)
    config = config_from_hf(hf, _read_json(folder / GENERATION_CONFIG_FILE))
    tokenizer_config = _read_json(folder / TOKENIZER_CONFIG_FILE)
    expected = tensor_shapes(config)
    tensors: dict[str, Array] = {}
    dtypes: set[str] = set()
    for key, dtype, array in iter_tensors(weight_files(folder), CheckpointError, on_file):
        name = wedge_name(key)
        if name is None or name not in expected:
            if _IGNORED.search(key):
                continue
            raise CheckpointError(f"{folder}: tensor {key} has no place in a {hf.get('model_type')} decoder "
                                  f"as wedge builds it ({', '.join(ARCHITECTURES.values())})")
        tensors[name] = array
        dtypes.add(dtype)
    if tied_embeddings(hf) and "embed_tokens" in tensors:
        tensors["lm_head"] = tensors["embed_tokens"]  # tied: transformers points the head at the embedding
    missing = [hf_name(n) for n in expected if n not in tensors]
    if missing:
        raise CheckpointError(f"{folder}: the weights lack {missing[0]}" +
                              (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    try:
        weights = LlamaWeights(config, tensors)
    except ValueError as exc:
        raise CheckpointError(f"{folder}: {exc} (config.json and the weights disagree)") from None
    tokenizer = None
    if (folder / TOKENIZER_FILE).is_file():
        try:
            tokenizer = TextTokenizer.from_json((folder / TOKENIZER_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{folder / TOKENIZER_FILE} cannot be read: {first_line(exc)}") from None
    return HfCheckpoint(weights=weights, tokenizer=tokenizer, chat_template=_chat_template(folder, tokenizer_config),
                        name=checkpoint_name(folder), model_type=str(hf["model_type"]),
                        dtype=",".join(sorted(dtypes)))


def save_hf_checkpoint(weights: LlamaWeights, folder: Path, *, tokenizer: TextTokenizer | None = None,
                       chat_template: ChatTemplate | None = None, dtype: str = "float32", model_type: str = "llama",
                       shard_bytes: int | None = None) -> Path:
    """Write `weights` as transformers saves a checkpoint: config.json, model.safetensors (or shards of at most
    `shard_bytes` with their index), generation_config.json, and the tokenizer files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = weights.config
    tied = weights.tied
    (folder / CONFIG_FILE).write_text(json.dumps(config_to_hf(config, model_type, tied, dtype), indent=2) + "\n",
                                      encoding="utf-8")
    eos = ([config.eos_token_id] if config.eos_token_id is not None else []) + list(config.extra_eos_token_ids)
    generation = {"bos_token_id": config.bos_token_id, "eos_token_id": eos[0] if len(eos) == 1 else eos or None}
    (folder / GENERATION_CONFIG_FILE).write_text(json.dumps(generation, indent=2) + "\n", encoding="utf-8")
    named = {hf_name(name): array for name, array in weights.tensors.items() if not (tied and name == "lm_head")}
    _write_shards(named, folder, dtype, shard_bytes)
    if tokenizer is not None:
        (folder / TOKENIZER_FILE).write_text(tokenizer.to_json(), encoding="utf-8")
        settings: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": False}
        if chat_template is not None:
            settings.update(chat_template=chat_template.template, bos_token=chat_template.bos_token,
                            eos_token=chat_template.eos_token)
        (folder / TOKENIZER_CONFIG_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return folder


def _write_shards(named: Mapping[str, np.ndarray], folder: Path, dtype: str, shard_bytes: int | None) -> None:
    if shard_bytes is None:
        write_safetensors(named, folder / WEIGHTS_FILE, dtype)
        return
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, array in named.items():
        if shards[-1] and size + array.nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = array
        size += array.nbytes
    weight_map = {}
    for index, shard in enumerate(shards, start=1):
        file = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(shard, folder / file, dtype)
        weight_map.update(dict.fromkeys(shard, file))
    index_json = {"metadata": {"total_size": sum(a.nbytes for a in named.values())}, "weight_map": weight_map}
    (folder / INDEX_FILE).write_text(json.dumps(index_json, indent=2) + "\n", encoding="utf-8")
