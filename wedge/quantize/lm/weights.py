"""Weight-only quantization of a decoder LM with onnxruntime: int8 and int4 block-wise weights (MatMulNBits).

`MatMulNBitsQuantizer` writes blocks along each weight's input axis (round-to-nearest, or k-quant's search for
int4); `quantize_dynamic` (per-channel int8, activations quantized per call) is the alternative int8 scheme and
quantizes the int8 embedding table. Calibrated int4 (AWQ, GPTQ) is computed in numpy (`aware`) and written as
the same MatMulNBits nodes. The embedding and the LM head can be kept one step up: fp32 under int8 weights,
int8 under int4 weights.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
from numpy.typing import NDArray
from onnxruntime.quantization import QuantType, quantize_dynamic

from wedge.errors import first_line
from wedge.quantize.errors import QuantizeError
from wedge.quantize.lm.aware import AwareResult, quantize_activation_aware
from wedge.quantize.lm.llama import LlamaWeights
from wedge.quantize.lm.llama_onnx import (
    EMBEDDING_NODE,
    EXTERNAL_DATA_BYTES,
    LM_HEAD_NODE,
    METADATA_KEYS,
    build_llama_graph,
    save_model,
)
from wedge.quantize.lm.nbits_graph import replace_with_nbits
from wedge.quantize.lm.options import Algorithm, WeightFormat, WeightOptions
from wedge.runtime.quiet import quiet_onnxruntime

# MatMulNBits accuracy level 4: activations are quantized to int8 per block for the dot products (MLAS's fast
# path on x86 and Arm). Level 0/1 keeps fp32 activations but has no 8-bit kernel here (0.9 tokens/s on
# SmolLM2-135M against 14 at level 4) for +0.2% perplexity instead of +0.8%.
ACCURACY_LEVEL: Final = 4


def _nbits_module() -> Any:
    """onnxruntime's MatMulNBits quantizer module, imported without its side effect on logging.

    It calls logging.basicConfig(level=INFO) on import, which would print every later log record of the
    process (and undo `_quiet`): the root logger's handlers and level are put back as they were.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization import matmul_nbits_quantizer

    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return matmul_nbits_quantizer

def _weight_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer)


def model_metadata(model: onnx.ModelProto) -> dict[str, str]:
    """The wedge.lm.* entries (config, tokenizer, chat template, name) a quantized copy must carry on."""
    return {p.key: p.value for p in model.metadata_props if p.key in METADATA_KEYS}


def _restore_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    # Some quantizers rebuild the ModelProto and drop metadata; the tokenizer and config must travel on.
    present = {p.key for p in model.metadata_props}
    for key, value in metadata.items():
        if key not in present:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value


def quantize_weights(source: Path, target: Path, options: WeightOptions,
                     external_data_bytes: int = EXTERNAL_DATA_BYTES) -> Path:
    """Write the weight-quantized model of `source` (fp32 ONNX) to `target`; weights of `external_data_bytes` or
    more (protobuf's 2 GiB limit by default) go to `<target>.data` beside it."""
    nbits = _nbits_module()
    model = onnx.load(str(source))
    metadata = model_metadata(model)
    big = _weight_bytes(model) >= EXTERNAL_DATA_BYTES
    try:
        with quiet_onnxruntime():
            if options.weights is WeightFormat.INT8:
                quantized = _int8(nbits, source, model, target, options, big)
            else:
                quantized = _int4(nbits, model, target, options, big)
    except QuantizeError:
        raise
    except Exception as exc:  # onnxruntime's quantizers raise assorted errors on graphs they cannot handle
        raise QuantizeError(f"onnxruntime could not quantize {source} to {options.weights}: "
                            f"{first_line(exc)}") from None
    _restore_metadata(quantized, metadata)
    save_model(quantized, target, external_data_bytes)
    return target


def _excluded(options: WeightOptions) -> list[str]:
    return [LM_HEAD_NODE] if options.keep_lm_head else []


def _int8(nbits: Any, source: Path, model: onnx.ModelProto, target: Path, options: WeightOptions,
          big: bool) -> onnx.ModelProto:
    if options.algorithm is Algorithm.DYNAMIC:
        quantized = _dynamic(model if not big else source, target, big, op_types=["MatMul"],
                             nodes=[n.name for n in model.graph.node if n.op_type == "MatMul"],
                             excluded=_excluded(options), per_channel=True)
    else:
        quantized = _nbits(nbits, model, options, bits=8, config_kind=Algorithm.RTN)
    if options.keep_embeddings:
        return quantized
    return _int8_embedding(quantized, target, big)


def _int8_embedding(model: onnx.ModelProto, target: Path, big: bool) -> onnx.ModelProto:
    # The embedding is read a few rows at a time, so one per-tensor scale costs little; onnxruntime's
    # block-quantized Gather takes 4-bit data only.
    return _dynamic(model, target, big, op_types=["Gather"], nodes=[EMBEDDING_NODE], excluded=[], per_channel=False)


def _dynamic(model: onnx.ModelProto | Path, target: Path, big: bool, *, op_types: list[str], nodes: list[str],
             excluded: list[str], per_channel: bool) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".dynamic-") as scratch:
        out = Path(scratch) / target.name
        # Symmetric weights stored as uint8 around zero point 128: the same grid as int8, but x86 without VNNI
        # then runs u8u8 kernels, while u8s8 ones saturate int16 pair sums (per-channel int8 lost ~9% of a
        # MatMul's output that way, and SmolLM2 became noise).
        quantize_dynamic(model, out, op_types_to_quantize=op_types, per_channel=per_channel,
                         weight_type=QuantType.QUInt8, nodes_to_quantize=nodes, nodes_to_exclude=excluded,
                         use_external_data_format=big,
                         extra_options={"MatMulConstBOnly": True, "WeightSymmetric": True})
        return onnx.load(str(out))


def _nbits(nbits: Any, model: onnx.ModelProto, options: WeightOptions, bits: int,
           config_kind: Algorithm) -> onnx.ModelProto:
    # int8 blocks are symmetric (zero point 0, as the int8 spec wants); int4 blocks keep a zero point,
    # which 16 levels need to follow skewed weight blocks.
    symmetric = bits == 8
    if config_kind is Algorithm.KQUANT:
        config = nbits.KQuantWeightOnlyQuantConfig(op_types_to_quantize=("MatMul",))
    else:
        config = nbits.DefaultWeightOnlyQuantConfig(block_size=options.block_size, is_symmetric=symmetric,
                                                    accuracy_level=ACCURACY_LEVEL, op_types_to_quantize=("MatMul",),
                                                    bits=bits)
    quantizer = nbits.MatMulNBitsQuantizer(model, bits=bits, block_size=options.block_size, is_symmetric=symmetric,
                                           accuracy_level=ACCURACY_LEVEL, nodes_to_exclude=_excluded(options),
                                           op_types_to_quantize=("MatMul",), algo_config=config)
    quantizer.process()
    return quantizer.model.model


def _int4(nbits: Any, model: onnx.ModelProto, target: Path, options: WeightOptions, big: bool) -> onnx.ModelProto:
    return _int4_tables(nbits, _nbits(nbits, model, options, bits=4, config_kind=options.algorithm), target,
                        options, big)


def _int4_tables(nbits: Any, result: onnx.ModelProto, target: Path, options: WeightOptions,
                 big: bool) -> onnx.ModelProto:
    """The LM head (when kept: int8) and the embedding of a model whose projections are 4-bit already."""
    if options.keep_lm_head:
        # "Kept" under int4 means int8: on SmolLM2-135M int8 tables lose nothing against fp32 ones in perplexity
        # (+20% over fp32 either way, against +31% with 4-bit tables) at a quarter of the bytes.
        result = _nbits(nbits, result, WeightOptions(block_size=options.block_size), bits=8,
                        config_kind=Algorithm.RTN)
    if options.keep_embeddings:
        return _int8_embedding(result, target, big)
    # Embeddings: round-to-nearest blocks along the hidden axis (GatherBlockQuantized); k-quant covers MatMul only.
    gather = nbits.DefaultWeightOnlyQuantConfig(block_size=options.block_size, is_symmetric=False,
                                                op_types_to_quantize=("Gather",), quant_axes=(("Gather", 1),),
                                                bits=4)
    # The quantizer takes every Gather of a constant table: the rotary cos/sin tables must stay exact.
    others = [n.name for n in result.graph.node if n.op_type == "Gather" and n.name != EMBEDDING_NODE]
    embed = nbits.MatMulNBitsQuantizer(result, bits=4, block_size=options.block_size, is_symmetric=False,
                                       nodes_to_exclude=others, op_types_to_quantize=("Gather",), algo_config=gather)
    embed.process()
    return embed.model.model


def quantize_calibrated(weights: LlamaWeights, calibration: NDArray[np.int64], target: Path, options: WeightOptions,
                        metadata: dict[str, str], external_data_bytes: int = EXTERNAL_DATA_BYTES,
                        on_layer: Callable[[int], None] | None = None) -> AwareResult:
    """Write `weights` with AWQ or GPTQ 4-bit projections (calibrated on token windows `calibration`) to `target`;
    the tables follow `options` as for round-to-nearest. `metadata`: the wedge.lm.* entries to carry."""
    if options.weights is not WeightFormat.INT4 or not options.algorithm.calibrated:
        raise QuantizeError(f"{options.algorithm} is not a calibrated {options.weights} method")
    result = quantize_activation_aware(weights, calibration, options.algorithm, options.block_size,
                                       include_lm_head=not options.keep_lm_head, on_layer=on_layer)
    model = build_llama_graph(result.weights, metadata=metadata)
    replace_with_nbits(model, result.quantized, ACCURACY_LEVEL)
    big = _weight_bytes(model) >= EXTERNAL_DATA_BYTES
    nbits = _nbits_module()
    try:
        with quiet_onnxruntime():
            quantized = _int4_tables(nbits, model, target, options, big)
    except Exception as exc:  # onnxruntime's quantizers raise assorted errors on graphs they cannot handle
        raise QuantizeError(f"onnxruntime could not quantize the tables of {target.name}: {first_line(exc)}") from None
    _restore_metadata(quantized, metadata)
    save_model(quantized, target, external_data_bytes)
    return result
