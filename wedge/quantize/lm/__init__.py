"""Small language models for glasses: weight-only int8/int4 quantization judged by perplexity.

Hugging Face checkpoints (LoRA adapters merged) or GGUF in, Llama ONNX with a KV cache, onnxruntime weight
quantization (activation-aware int4 in numpy), perplexity, speed, board fit: `pipeline`.
"""

from wedge.quantize.lm.errors import (
    ChatTemplateError,
    CheckpointError,
    ContextLengthError,
    LmError,
    LoraError,
    NotALanguageModelError,
    TextError,
    VocabularyMismatchError,
)

__all__ = ["ChatTemplateError", "CheckpointError", "ContextLengthError", "LmError", "LoraError",
           "NotALanguageModelError", "TextError", "VocabularyMismatchError"]
