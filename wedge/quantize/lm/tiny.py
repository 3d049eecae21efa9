"""The tiny SLM fixture: a 2-layer Llama decoder with a 512-token BPE, trained by wedge on Python's pydoc topics.

Fast tests and the benchmark use it; `tiny_train` rebuilds it. Its text ships with every Python
(`pydoc_data.topics`): one topic in ten is held out for evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from wedge.quantize.lm.llama import LlamaConfig

TINY_MODEL_PATH: Final = Path(__file__).resolve().parent / "tiny_slm.onnx"
TINY_VOCAB_SIZE: Final = 512
HELDOUT_EVERY: Final = 10
TINY_CONFIG: Final = LlamaConfig(vocab_size=TINY_VOCAB_SIZE, hidden_size=64, intermediate_size=176, num_layers=2,
                                 num_heads=4, num_kv_heads=2, head_dim=16, context_length=256,
                                 rope_theta=10_000.0, rms_norm_eps=1e-5, bos_token_id=None, eos_token_id=0)


def _topics() -> list[tuple[str, str]]:
    from pydoc_data.topics import topics

    return sorted(topics.items())


def training_text() -> str:
    """Nine topics in ten, in name order."""
    return "\n\n".join(text for i, (_, text) in enumerate(_topics()) if i % HELDOUT_EVERY)


def heldout_text() -> str:
    """The tenth topics the model never saw: its evaluation text."""
    return "\n\n".join(text for i, (_, text) in enumerate(_topics()) if not i % HELDOUT_EVERY)
