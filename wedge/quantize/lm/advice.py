"""When quantization cost more perplexity than it usually does, say so, and name what usually wins it back."""

from __future__ import annotations

from typing import Final

from wedge.quantize.lm.options import BLOCK_SIZES, Algorithm, WeightFormat, WeightOptions

# Perplexity rise (%) above which a result deserves a warning: int8 weights usually cost well under 1%, int4
# a few percent with calibration.
WARN_CHANGE_PCT: Final = {WeightFormat.INT8: 2.0, WeightFormat.INT4: 10.0}


def perplexity_warnings(change_pct: float, options: WeightOptions, requantized_from: str | None = None,
                        threshold_pct: float | None = None) -> tuple[str, ...]:
    """One warning with the options worth trying, or none when `change_pct` is within the usual cost."""
    limit = WARN_CHANGE_PCT[options.weights] if threshold_pct is None else threshold_pct
    if change_pct <= limit:
        return ()
    hints = []
    if not (options.keep_embeddings and options.keep_lm_head):
        kept = "int8" if options.weights is WeightFormat.INT4 else "fp32"
        hints.append(f"--keep-embeddings --keep-lm-head (those tables {kept}; they are the most sensitive)")
    smaller = [b for b in BLOCK_SIZES if b < options.block_size and b >= 32]
    if smaller and options.algorithm.value != "dynamic":
        hints.append(f"--block-size {smaller[-1]} (smaller blocks, one scale per {smaller[-1]} weights)")
    if options.weights is WeightFormat.INT4 and options.algorithm is not Algorithm.AWQ_GPTQ:
        hints.append("--algorithm awq+gptq (activation-aware scales and error-compensating rounding, calibrated "
                     "on --calib text)")
    elif options.weights is WeightFormat.INT4:
        hints.append("more --calib-tokens, of --calib text like what the model will see")
    if options.weights is WeightFormat.INT4:
        hints.append("--weights int8 (about twice the size, usually within 1%)")
    message = f"perplexity rose {change_pct:+.1f}%, more than the {limit:g}% {options.weights} weights usually cost"
    if requantized_from is not None:
        message += (f"; the source weights were {requantized_from} already, so part of it is rounding twice "
                    "(quantize the fp16/fp32 checkpoint instead)")
    return (f"{message}. Options that usually help: {'; '.join(hints)}",) if hints else (message,)
