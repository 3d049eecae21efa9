"""What weight-only quantization of a language model can be asked for: precision, block size, rounding, and
which tables stay one step up. Light on purpose: the CLI imports it to declare its options.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from wedge.quantize.errors import QuantizeError

BLOCK_SIZES: Final = (16, 32, 64, 128, 256)
DEFAULT_BLOCK_SIZE: Final = 32


class WeightFormat(enum.StrEnum):
    INT8 = "int8"
    INT4 = "int4"


class Algorithm(enum.StrEnum):
    """How weights are rounded and run.

    rtn: round-to-nearest blocks in MatMulNBits (int8 symmetric, int4 with a zero point); activations stay fp32
    between ops. kquant (int4): llama.cpp's k-quant search for each block's scale and minimum that minimise an
    importance-weighted error, no data needed. awq (int4): activation-aware per-channel scales and clipping
    searched on calibration text (`wedge.quantize.lm.awq`). gptq (int4): error-compensating rounding driven
    by the calibration text's second moments (`wedge.quantize.lm.gptq`). awq+gptq (int4): AWQ's scales, then
    GPTQ's rounding instead of AWQ's clipped round-to-nearest. dynamic (int8): `quantize_dynamic`,
    per-channel symmetric weights with activations quantized per tensor on every call.
    """

    RTN = "rtn"
    KQUANT = "kquant"
    AWQ = "awq"
    GPTQ = "gptq"
    AWQ_GPTQ = "awq+gptq"
    DYNAMIC = "dynamic"

    @property
    def calibrated(self) -> bool:
        """Whether the method reads calibration text (and needs the model's weights, not just an ONNX file)."""
        return self in (Algorithm.AWQ, Algorithm.GPTQ, Algorithm.AWQ_GPTQ)

    @property
    def scales_activations(self) -> bool:
        """Whether AWQ's per-channel scales are searched and folded."""
        return self in (Algorithm.AWQ, Algorithm.AWQ_GPTQ)

    @property
    def compensates_rounding(self) -> bool:
        """Whether GPTQ rounds (else round-to-nearest, clipped per block for AWQ)."""
        return self in (Algorithm.GPTQ, Algorithm.AWQ_GPTQ)


ALGORITHMS: Final = {"int8": (Algorithm.RTN, Algorithm.DYNAMIC),
                     "int4": (Algorithm.RTN, Algorithm.KQUANT, Algorithm.AWQ, Algorithm.GPTQ, Algorithm.AWQ_GPTQ)}


@dataclass(frozen=True)
class WeightOptions:
    """How to quantize the weights: `block_size` is MatMulNBits' (all but `dynamic`); `keep_*` hold a table one
    step up (fp32 under int8, int8 under int4)."""

    weights: WeightFormat = WeightFormat.INT8
    block_size: int = DEFAULT_BLOCK_SIZE
    algorithm: Algorithm = Algorithm.RTN
    keep_embeddings: bool = False
    keep_lm_head: bool = False

    def __post_init__(self) -> None:
        if self.block_size not in BLOCK_SIZES:
            raise QuantizeError(f"--block-size {self.block_size} is not supported by MatMulNBits "
                                f"(use one of {', '.join(map(str, BLOCK_SIZES))})")
        allowed = ALGORITHMS[self.weights.value]
        if self.algorithm not in allowed:
            raise QuantizeError(f"--algorithm {self.algorithm} does not apply to {self.weights} weights "
                                f"(use {' or '.join(allowed)})")

    def describe(self) -> str:
        kept = [name for name, keep in (("embeddings", self.keep_embeddings), ("LM head", self.keep_lm_head)) if keep]
        kept_as = "int8" if self.weights is WeightFormat.INT4 else "fp32"
        if self.algorithm is Algorithm.DYNAMIC:
            scheme = "int8 per-channel symmetric weights, activations quantized per call (quantize_dynamic)"
        elif self.weights is WeightFormat.INT8:
            scheme = f"int8 symmetric blocks of {self.block_size} (MatMulNBits)"
        else:
            scheme = f"int4 blocks of {self.block_size} with zero points, {self.algorithm} (MatMulNBits)"
        return scheme + (f"; {kept_as} {' and '.join(kept)}" if kept else "")
