"""What `wedge quantize --task lm` starts from: a Hugging Face checkpoint folder, a GGUF file or a decoder ONNX,
optionally with a PEFT LoRA adapter merged, as fp32 weights (when wedge can read them), a tokenizer, a chat
template and a name for the output files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import onnx

from wedge.errors import first_line
from wedge.quantize.errors import ModelLoadError
from wedge.quantize.lm.chat import ChatTemplate
from wedge.quantize.lm.errors import LmError
from wedge.quantize.lm.llama import LlamaWeights
from wedge.quantize.lm.llama_onnx import CHAT_TEMPLATE_KEY, NAME_KEY, TOKENIZER_KEY, weights_of
from wedge.quantize.lm.tokenizer import TextTokenizer

FP32_SUFFIX: Final = ".fp32"


@dataclass(frozen=True)
class LmSource:
    """A model ready to export or quantize; `onnx` is set when it is an fp32 ONNX to use as it is."""

    name: str
    kind: str  # "hf", "gguf" or "onnx"
    weights: LlamaWeights | None
    tokenizer: TextTokenizer | None
    chat_template: ChatTemplate | None
    onnx: Path | None = None
    requantized_from: str | None = None  # the GGUF's quantization type when its weights were rounded already
    notes: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()  # what the report must warn of whatever the figures (re-quantization)

    def metadata(self) -> dict[str, str]:
        """The wedge.lm.* entries an exported ONNX carries besides the config."""
        entries = {NAME_KEY: self.name}
        if self.tokenizer is not None:
            entries[TOKENIZER_KEY] = self.tokenizer.to_json()
        if self.chat_template is not None:
            entries[CHAT_TEMPLATE_KEY] = self.chat_template.to_json()
        return entries


def onnx_name(path: Path) -> str:
    """An ONNX decoder's model name: the file stem, without wedge's `.fp32`."""
    return Path(path).stem.removesuffix(FP32_SUFFIX)


def _from_onnx(path: Path, need_weights: bool) -> LmSource:
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    if not need_weights:
        return LmSource(name=onnx_name(path), kind="onnx", weights=None, tokenizer=None, chat_template=None,
                        onnx=path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and OSError alike
        raise ModelLoadError(f"{path} is not a readable ONNX model: {first_line(exc)}") from None
    try:
        weights = weights_of(model, str(path))
    except (ValueError, KeyError) as exc:
        raise LmError(f"{path}: wedge needs the model's weights here (--lora, --algorithm awq/gptq) and cannot "
                      f"read them ({first_line(exc)}): give the Hugging Face checkpoint or GGUF instead") from None
    meta = {p.key: p.value for p in model.metadata_props}
    tokenizer_json = meta.get(TOKENIZER_KEY)
    return LmSource(name=onnx_name(path), kind="onnx", weights=weights,
                    tokenizer=TextTokenizer.from_json(tokenizer_json) if tokenizer_json else None,
                    chat_template=ChatTemplate.from_json(meta.get(CHAT_TEMPLATE_KEY)), onnx=path)


def _from_gguf(path: Path) -> LmSource:
    from wedge.quantize.lm.gguf_model import load_gguf

    loaded = load_gguf(path)
    caveats: tuple[str, ...] = ()
    requantized = None
    if loaded.quantized:
        requantized = loaded.file_type if loaded.file_type != "unknown" else "/".join(loaded.quantized_types)
        caveat = (f"re-quantization: the GGUF's weights are {requantized} already ({', '.join(loaded.quantized_types)}"
                  " tensors), so 'fp32' here means those values dequantized, and the new rounding comes on top of "
                  "the old one (start from the fp16/fp32 checkpoint for a first quantization)")
        caveats = (caveat,)
    return LmSource(name=loaded.name, kind="gguf", weights=loaded.weights, tokenizer=loaded.tokenizer,
                    chat_template=loaded.chat_template, requantized_from=requantized, caveats=caveats)


def _from_checkpoint(folder: Path) -> LmSource:
    from wedge.quantize.lm.hf_checkpoint import load_hf_checkpoint

    checkpoint = load_hf_checkpoint(folder)
    notes = (f"read the Hugging Face {checkpoint.model_type} checkpoint ({checkpoint.dtype} weights) as fp32",)
    return LmSource(name=checkpoint.name, kind="hf", weights=checkpoint.weights, tokenizer=checkpoint.tokenizer,
                    chat_template=checkpoint.chat_template, notes=notes)


def load_source(model: Path, *, lora: Path | None = None, need_weights: bool = False) -> LmSource:
    """Read `model` (checkpoint folder, .gguf, or .onnx) and merge the adapter at `lora`; an ONNX is read for its
    weights only when `need_weights` or an adapter asks for them."""
    from wedge.quantize.lm.lora import load_adapter, merge_lora

    model = Path(model)
    adapter = load_adapter(lora) if lora is not None else None  # cheap: a bad adapter fails before the model
    if model.is_dir():
        source = _from_checkpoint(model)
    elif model.suffix == ".gguf":
        source = _from_gguf(model)
    else:
        source = _from_onnx(model, need_weights or adapter is not None)
    if adapter is None:
        return source
    assert source.weights is not None
    merged = merge_lora(source.weights, adapter)
    modules = sorted({name.rsplit(".", 1)[-1] for name in adapter.pairs})
    note = (f"merged LoRA {adapter.name} (r={adapter.config.r}, alpha={adapter.config.lora_alpha:g}"
            f"{', rsLoRA' if adapter.config.use_rslora else ''}) into {len(adapter.pairs)} projections "
            f"({', '.join(modules)})")
    if adapter.config.base_model and Path(adapter.config.base_model).name != source.name:
        note += f"; the adapter says it was trained on {adapter.config.base_model}"
    return replace(source, name=f"{source.name}-{adapter.name}", weights=merged, onnx=None,
                   notes=(*source.notes, note))
