"""The language-model path's exceptions, inside the quantization pipeline's family.

Each names what is wrong with the user's input in one line: the model, the text, the tokenizer or the context.
"""

from __future__ import annotations

from wedge.quantize.errors import QuantizeError


class LmError(QuantizeError):
    """The language-model path could not go on."""


class NotALanguageModelError(LmError):
    """The model is not a decoder LM with the input_ids / logits / KV-cache contract wedge runs."""


class TextError(LmError):
    """An evaluation or prompt text file is missing, empty, too short or not decodable text."""


class VocabularyMismatchError(LmError):
    """The tokenizer's vocabulary does not match the model's logits."""


class ContextLengthError(LmError):
    """A context length beyond what the model was built for (its rotary table), or below one token."""


class CheckpointError(LmError):
    """A Hugging Face checkpoint folder is missing a file, corrupted, or of an architecture wedge does not build."""


class LoraError(LmError):
    """A LoRA adapter is unreadable or does not fit the base model it is merged into."""


class ChatTemplateError(LmError):
    """The model has no chat template, or its template cannot be rendered."""
