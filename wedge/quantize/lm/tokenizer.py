"""Text <-> token ids for the language-model path: a byte-level BPE (GPT-2 style) on the `tokenizers` package.

Built from GGUF metadata (tokens, merges, token types) or trained on a text for the tiny model; it travels
inside the ONNX model as JSON so a model file carries its own tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from wedge.errors import first_line
from wedge.quantize.lm.errors import LmError

# GGUF token types (llama.cpp's llama_token_type): control tokens are specials that BPE must not split.
_CONTROL: Final = 3
_USER_DEFINED: Final = 4
# GGUF pre-tokenizer names whose splitting wedge reproduces: SmolLM splits digits one by one, then GPT-2's regex.
_PRE_TOKENIZERS: Final = {"smollm": True, "gpt2": False, "default": False}
END_OF_TEXT: Final = "<|endoftext|>"


@dataclass(frozen=True)
class TextTokenizer:
    """A `tokenizers.Tokenizer` with the few operations wedge needs."""

    backend: Tokenizer = field(repr=False)

    @property
    def vocab_size(self) -> int:
        return int(self.backend.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> list[int]:
        return list(self.backend.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.backend.decode(list(ids), skip_special_tokens=False))

    def encode_prompt(self, text: str) -> list[int]:
        """Ids for a prompt as the model's tokenizer.json frames one (Llama's BOS, say); chat templates write
        their special tokens themselves, so a rendered chat goes through `encode`."""
        return list(self.backend.encode(text, add_special_tokens=True).ids)

    def token_id(self, token: str) -> int | None:
        found = self.backend.token_to_id(token)
        return None if found is None else int(found)

    def token_text(self, token_id: int) -> str | None:
        found = self.backend.id_to_token(token_id)
        return None if found is None else str(found)

    def to_json(self) -> str:
        return str(self.backend.to_str())

    @classmethod
    def from_json(cls, text: str) -> TextTokenizer:
        try:
            return cls(Tokenizer.from_str(text))
        except Exception as exc:  # tokenizers raises its own Exception subclass with a serde message
            raise LmError(f"not a tokenizer.json: {first_line(exc)}") from None

    @classmethod
    def from_gguf_fields(cls, *, model: str | None, tokens: Sequence[str] | None, merges: Sequence[str] | None,
                         token_types: Sequence[int] | None, pre: str | None) -> TextTokenizer:
        """The byte-level BPE that llama.cpp calls 'gpt2', from a GGUF file's tokenizer.ggml.* fields."""
        if model != "gpt2":
            raise LmError(f"GGUF tokenizer model {model!r} is not supported (wedge reads byte-level BPE, 'gpt2')")
        if not tokens or merges is None:
            raise LmError("GGUF metadata lacks tokenizer.ggml.tokens or tokenizer.ggml.merges")
        digits = _PRE_TOKENIZERS.get(pre or "default")
        if digits is None:
            raise LmError(f"GGUF pre-tokenizer {pre!r} is not supported (known: {', '.join(_PRE_TOKENIZERS)})")
        vocab = {token: index for index, token in enumerate(tokens)}
        pairs = [tuple(merge.split(" ", 1)) for merge in merges]
        backend = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False))
        backend.pre_tokenizer = _pre_tokenizer(digits)
        backend.decoder = decoders.ByteLevel()
        types = list(token_types or [])
        specials = [AddedToken(tokens[i], special=True, normalized=False)
                    for i, kind in enumerate(types) if kind in (_CONTROL, _USER_DEFINED)]
        backend.add_special_tokens(specials)
        return cls(backend)

    @classmethod
    def train_byte_level(cls, texts: Iterable[str], vocab_size: int) -> TextTokenizer:
        """A byte-level BPE learned on `texts` (every byte is in the alphabet, so any text encodes)."""
        backend = Tokenizer(models.BPE(fuse_unk=False))
        backend.pre_tokenizer = _pre_tokenizer(digits=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      special_tokens=[END_OF_TEXT])
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(backend)


def _pre_tokenizer(digits: bool) -> pre_tokenizers.PreTokenizer:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if not digits:
        return byte_level
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])


class StreamDecoder:
    """Turns token ids arriving one by one into text pieces, holding back a piece until its UTF-8 is complete."""

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._emitted = 0

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        text = self._tokenizer.decode(self._ids)
        if text.endswith("\ufffd"):
            return ""  # a multi-byte character split across tokens: wait for the rest
        piece = text[self._emitted:]
        self._emitted = len(text)
        return piece
