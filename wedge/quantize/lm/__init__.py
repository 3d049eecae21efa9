"""Small language models for glasses: weight-only int8/int4 quantization judged by perplexity.

GGUF in, Llama ONNX with a KV cache, onnxruntime weight quantization, perplexity, speed, board fit: `pipeline`.
"""

from wedge.quantize.lm.errors import (
    ContextLengthError,
    LmError,
    NotALanguageModelError,
    TextError,
    VocabularyMismatchError,
)

__all__ = ["ContextLengthError", "LmError", "NotALanguageModelError", "TextError", "VocabularyMismatchError"]
