"""Does a quantized language model fit a board: its weights plus the KV cache at a context length, in RAM; and
how fast could it decode there.

On an application processor (glasses-soc) the budget is the profile's model RAM (`budgets.arena_bytes`); on
a PSRAM board (glasses-esp32s3) weights and cache must share the PSRAM (`memory.psram_bytes`). Decoding one
token reads every weight but the embedding table (one row of it) and the whole KV cache, so the memory's
bandwidth (`memory.bandwidth_bytes_per_s`) over those bytes bounds the tokens/s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

from wedge.boards import Board
from wedge.quantize.lm.session import DecoderSignature

FP32_BYTES: Final = 4
# Buffers of one decode step besides the cache: logits, the residual stream, Q/K/V, the MLP's gate and up
# projections, and the attention scores over the context (onnxruntime keeps a few such tensors alive at once).
LIVE_BUFFERS: Final = 4


@dataclass(frozen=True)
class LmFit:
    """The verdict for one weight-quantized LM on one board at `context_tokens`."""

    board: str
    runtime: str
    context_tokens: int
    weights_bytes: int
    kv_cache_bytes: int
    activation_bytes: int
    ram_needed_bytes: int
    ram_budget_bytes: int
    ram_budget: str  # which profile field the budget is
    fits_ram: bool
    slot_bytes: int
    fits_flash: bool
    max_context_tokens: int
    notes: tuple[str, ...]
    bytes_per_token: int = 0  # read from memory for each decoded token at `context_tokens`
    bandwidth_bytes_per_s: int | None = None
    decode_tokens_per_s_estimate: float | None = None  # bandwidth / bytes_per_token: an upper bound
    max_context_is_models: bool = False  # memory would hold more: the model's own context length is the limit

    @property
    def fits(self) -> bool:
        return self.fits_ram and self.fits_flash

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "notes": list(self.notes), "fits": self.fits}


def kv_cache_bytes(signature: DecoderSignature, context_tokens: int) -> int:
    """fp32 keys and values of every layer for `context_tokens` positions (batch 1)."""
    return 2 * signature.num_layers * signature.kv_heads * signature.head_dim * context_tokens * FP32_BYTES


def activation_bytes(signature: DecoderSignature, context_tokens: int) -> int:
    """A decode step's working buffers: logits, hidden-size tensors and one layer's attention scores."""
    config = signature.config
    hidden = config.hidden_size if config else signature.kv_heads * signature.head_dim
    inner = config.intermediate_size if config else 4 * hidden
    heads = config.num_heads if config else signature.kv_heads
    vocab = signature.vocab_size or 0
    per_step = vocab + LIVE_BUFFERS * hidden + 2 * inner + heads * context_tokens
    return per_step * FP32_BYTES


def assess_lm_fit(board: Board, signature: DecoderSignature, weights_bytes: int, context_tokens: int,
                  embedding_bytes: int = 0) -> LmFit:
    """Weights + KV cache at `context_tokens` + decode buffers against the board's RAM budget and model slot;
    `embedding_bytes` (the token table inside `weights_bytes`, read a row per token) for the speed estimate."""
    notes: list[str] = []
    if board.memory.psram_bytes > 0:
        budget, budget_name = board.memory.psram_bytes, "memory.psram_bytes"
        notes.append("PSRAM board: weights are copied from flash into PSRAM (reading them through the flash "
                     "cache on every token would be far slower) and share it with the KV cache; camera and "
                     "audio buffers need some of it too")
    else:
        budget, budget_name = board.budgets.arena_bytes, "budgets.arena_bytes"
        notes.append("onnxruntime loads the weights into RAM beside the KV cache and the decode buffers")
    kv = kv_cache_bytes(signature, context_tokens)
    activations = activation_bytes(signature, context_tokens)
    needed = weights_bytes + kv + activations
    per_token = kv_cache_bytes(signature, 1) + (signature.config.num_heads if signature.config else 0) * FP32_BYTES
    spare = budget - weights_bytes - activation_bytes(signature, 0)
    max_context = max(0, spare // per_token) if per_token else 0
    by_model = signature.context_length is not None and max_context >= signature.context_length
    if by_model:
        max_context = signature.context_length
    notes.append("KV cache in fp32 at batch 1; RAM is an estimate, tokens/s and peak RSS on this host are measured")
    per_token_read = max(0, weights_bytes - embedding_bytes) + kv
    bandwidth = board.memory.bandwidth_bytes_per_s
    estimate = bandwidth / per_token_read if bandwidth and per_token_read else None
    if estimate is not None:
        notes.append(f"board decode tokens/s: peak memory bandwidth (memory.bandwidth_bytes_per_s) over the "
                     f"{per_token_read:,} bytes of weights and KV cache read per token; an upper bound (sustained "
                     "bandwidth is lower and compute may bind first)")
    return LmFit(board=board.name, runtime=board.compute.runtime, context_tokens=context_tokens,
                 weights_bytes=weights_bytes, kv_cache_bytes=kv, activation_bytes=activations,
                 ram_needed_bytes=needed, ram_budget_bytes=budget, ram_budget=budget_name, fits_ram=needed <= budget,
                 slot_bytes=board.budgets.model_slot_bytes, fits_flash=weights_bytes <= board.budgets.model_slot_bytes,
                 max_context_tokens=int(max_context), notes=tuple(notes), bytes_per_token=per_token_read,
                 bandwidth_bytes_per_s=bandwidth, decode_tokens_per_s_estimate=estimate,
                 max_context_is_models=by_model)
