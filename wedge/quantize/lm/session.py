"""Run a decoder LM ONNX in onnxruntime: check it keeps wedge's I/O contract, prefill, step with the KV cache.

Works for models wedge builds (see `llama_onnx`) and for exports with the same names (an `attention_mask`
input, as Hugging Face exports have, is fed with ones).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from wedge.errors import first_line
from wedge.quantize.errors import ModelLoadError
from wedge.quantize.lm.chat import ChatTemplate
from wedge.quantize.lm.errors import ContextLengthError, LmError, NotALanguageModelError, VocabularyMismatchError
from wedge.quantize.lm.llama import LlamaConfig
from wedge.quantize.lm.llama_onnx import CHAT_TEMPLATE_KEY, CONFIG_KEY, NAME_KEY, TOKENIZER_KEY, config_from_json
from wedge.quantize.lm.tokenizer import TextTokenizer

_PAST: Final = re.compile(r"^past_key_values\.(\d+)\.(key|value)$")
_OPTIONAL_INPUTS: Final = frozenset({"position_ids", "attention_mask"})
VOCAB_PADDING_FRACTION: Final = 50  # at most 1/50 of the logits may be padding

Cache = list[NDArray[np.float32]]  # past_key_values.0.key, .0.value, .1.key, ... in that order


@dataclass(frozen=True)
class DecoderSignature:
    """What wedge learned about a decoder from its inputs, outputs and metadata."""

    num_layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int | None
    context_length: int | None
    inputs: frozenset[str]
    config: LlamaConfig | None
    tokenizer_json: str | None
    chat_template: ChatTemplate | None = None
    name: str | None = None


def _static(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def read_signature(session: ort.InferenceSession, source: str) -> DecoderSignature:
    """Check the input_ids / logits / past_key_values contract; NotALanguageModelError says what is missing."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if "input_ids" not in inputs or "logits" not in outputs:
        raise NotALanguageModelError(
            f"{source} is not a decoder language model: it needs an `input_ids` input and a `logits` output "
            f"(inputs: {', '.join(list(inputs)[:4])})")
    layers: dict[int, set[str]] = {}
    for name in inputs:
        match = _PAST.match(name)
        if match:
            layers.setdefault(int(match.group(1)), set()).add(match.group(2))
    if not layers:
        raise NotALanguageModelError(f"{source} has no KV-cache inputs (past_key_values.N.key/value): wedge runs "
                                     "decoders exported with their cache")
    count = len(layers)
    if sorted(layers) != list(range(count)) or any(kinds != {"key", "value"} for kinds in layers.values()):
        raise NotALanguageModelError(f"{source}: past_key_values inputs are not a key and a value for layers 0..N")
    missing = [f"present.{n}.{k}" for n in range(count) for k in ("key", "value") if f"present.{n}.{k}" not in outputs]
    if missing:
        raise NotALanguageModelError(f"{source} lacks the output {missing[0]} (the updated KV cache)")
    unknown = sorted(set(inputs) - _OPTIONAL_INPUTS - {"input_ids"} - {n for n in inputs if _PAST.match(n)})
    if unknown:
        raise NotALanguageModelError(f"{source} has inputs wedge does not know how to feed: {', '.join(unknown)}")
    past_shape = inputs["past_key_values.0.key"].shape
    if len(past_shape) != 4 or _static(past_shape[1]) is None or _static(past_shape[3]) is None:
        raise NotALanguageModelError(f"{source}: past_key_values.0.key is {past_shape}, expected "
                                     "[batch, kv_heads, past_sequence, head_dim] with fixed heads and head size")
    meta = session.get_modelmeta().custom_metadata_map
    config = config_from_json(meta.get(CONFIG_KEY))
    logits_shape = outputs["logits"].shape
    vocab = _static(logits_shape[-1]) if logits_shape else None
    if vocab is None and config is not None:
        vocab = config.vocab_size
    return DecoderSignature(num_layers=count, kv_heads=int(past_shape[1]), head_dim=int(past_shape[3]),
                            vocab_size=vocab, context_length=None if config is None else config.context_length,
                            inputs=frozenset(inputs), config=config, tokenizer_json=meta.get(TOKENIZER_KEY),
                            chat_template=ChatTemplate.from_json(meta.get(CHAT_TEMPLATE_KEY)), name=meta.get(NAME_KEY))


def open_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session; a missing or unreadable file is a ModelLoadError."""
    if not Path(path).is_file():
        raise ModelLoadError(f"{path}: no such model file")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated classes for a bad file
        raise ModelLoadError(f"{path} cannot be loaded by onnxruntime: {first_line(exc)}") from None


class DecoderSession:
    """A decoder LM in onnxruntime: forward passes over token windows and greedy generation with a KV cache."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self._session = open_session(self.path, threads)
        self.signature = read_signature(self._session, str(path))
        self._cache_names = [f"past_key_values.{n}.{k}" for n in range(self.signature.num_layers)
                             for k in ("key", "value")]
        self._output_names = ["logits"] + [f"present.{n}.{k}" for n in range(self.signature.num_layers)
                                           for k in ("key", "value")]

    def tokenizer(self, override: TextTokenizer | None = None) -> TextTokenizer:
        """The tokenizer to use: `override`, else the one stored in the model; its vocabulary must fit the model."""
        tokenizer = override
        if tokenizer is None:
            if self.signature.tokenizer_json is None:
                raise LmError(f"{self.path} carries no tokenizer: give one with --tokenizer "
                                              "(a tokenizer.json or the model's .gguf)")
            tokenizer = TextTokenizer.from_json(self.signature.tokenizer_json)
        check_vocabulary(tokenizer, self.signature.vocab_size, str(self.path))
        return tokenizer

    def empty_cache(self, batch: int = 1) -> Cache:
        shape = (batch, self.signature.kv_heads, 0, self.signature.head_dim)
        return [np.zeros(shape, np.float32) for _ in self._cache_names]

    def check_context(self, tokens: int, what: str) -> None:
        limit = self.signature.context_length
        if limit is not None and tokens > limit:
            raise ContextLengthError(f"{what} needs {tokens} positions; the model was built for {limit}")

    def forward(self, input_ids: NDArray[np.int64], cache: Cache | None = None) -> tuple[NDArray[np.float32], Cache]:
        """Logits [batch, seq, vocab] for `input_ids` after `cache`, and the cache grown by them."""
        cache = cache if cache is not None else self.empty_cache(input_ids.shape[0])
        start = cache[0].shape[2]
        batch, seq = input_ids.shape
        self.check_context(start + seq, f"a window of {start + seq} tokens")
        feeds: dict[str, np.ndarray] = {"input_ids": input_ids.astype(np.int64)}
        if "position_ids" in self.signature.inputs:
            feeds["position_ids"] = np.broadcast_to(np.arange(start, start + seq, dtype=np.int64), (batch, seq))
        if "attention_mask" in self.signature.inputs:
            feeds["attention_mask"] = np.ones((batch, start + seq), np.int64)
        feeds.update(zip(self._cache_names, cache))
        results = self._session.run(self._output_names, feeds)
        return results[0], results[1:]

    def generate(self, prompt: Sequence[int], max_new_tokens: int, stop_ids: frozenset[int] = frozenset(),
                 sampler: Callable[[NDArray[np.float32]], int] | None = None) -> Iterator[int]:
        """Decoding (greedy unless `sampler` picks from the logits): yields each new token id; stops after
        `max_new_tokens` or a stop id (yielded too)."""
        if not prompt:
            raise ContextLengthError("the prompt is empty: it needs at least one token")
        self.check_context(len(prompt) + max_new_tokens, f"{len(prompt)} prompt + {max_new_tokens} new tokens")
        pick = sampler or (lambda logits: int(np.argmax(logits)))
        logits, cache = self.forward(np.asarray([prompt], np.int64))
        for produced in range(max_new_tokens):
            token = pick(logits[0, -1])
            yield token
            if token in stop_ids or produced + 1 == max_new_tokens:
                return
            logits, cache = self.forward(np.asarray([[token]], np.int64), cache)


def check_vocabulary(tokenizer: TextTokenizer, model_vocab: int | None, source: str) -> None:
    """A tokenizer that can emit ids beyond the model's logits, or leaves many of them unused, is the wrong one.

    Exporters pad the embedding to a round size (GPT-2 50257 -> 50304, Phi-2 50295 -> 51200), so up to 2%
    unused rows are normal.
    """
    if model_vocab is None:
        return
    padding = model_vocab - tokenizer.vocab_size
    if padding < 0 or padding > model_vocab // VOCAB_PADDING_FRACTION:
        raise VocabularyMismatchError(f"the tokenizer has {tokenizer.vocab_size} tokens but {source} predicts "
                                      f"{model_vocab}: they do not belong together")

