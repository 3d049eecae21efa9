"""Text generation as `wedge generate` runs it: the prompt (plain, or through the model's chat template), the
tokens that end it, and streamed pieces with the time to the first token and the decode rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from wedge.quantize.lm.chat import ChatTemplate
from wedge.quantize.lm.errors import ChatTemplateError
from wedge.quantize.lm.sampling import Sampler
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.tokenizer import StreamDecoder, TextTokenizer


@dataclass(frozen=True)
class Prompt:
    """Token ids to start from and the ids that end the answer."""

    ids: list[int]
    stop_ids: frozenset[int]
    text: str  # what the model reads (the rendered chat for --chat)


def build_prompt(session: DecoderSession, tokenizer: TextTokenizer, text: str, *, chat: bool = False,
                 system: str | None = None) -> Prompt:
    """The prompt for `text`: as is (with the tokenizer's own framing, e.g. Llama's BOS), or as one user turn
    of the model's chat template (with an optional system turn)."""
    config = session.signature.config
    stops = set(config.stop_token_ids if config is not None else ())
    if not chat:
        return Prompt(ids=tokenizer.encode_prompt(text), stop_ids=frozenset(stops), text=text)
    template = session.signature.chat_template
    if template is None:
        raise ChatTemplateError(f"{session.path} carries no chat template (tokenizer_config.json's chat_template "
                                "or GGUF's tokenizer.chat_template): drop --chat to continue plain text")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    rendered = template.render(messages)
    stops |= _template_stops(template, tokenizer)
    return Prompt(ids=tokenizer.encode(rendered), stop_ids=frozenset(stops), text=rendered)


def _template_stops(template: ChatTemplate, tokenizer: TextTokenizer) -> set[int]:
    # Instruct models end a turn with the template's eos token (<|im_end|>, <|eot_id|>), which the base
    # config may not list.
    found = tokenizer.token_id(template.eos_token) if template.eos_token else None
    return set() if found is None else {found}


@dataclass
class GenerationStats:
    """Timings of one generation, from the moment the prompt goes in."""

    prompt_tokens: int
    new_tokens: int = 0
    first_token_s: float | None = None
    total_s: float = 0.0
    stopped_at_eos: bool = False
    _started: float = field(default=0.0, repr=False)

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens after the first per second of decoding (the first token's time is the prefill's)."""
        if self.first_token_s is None or self.new_tokens < 2 or self.total_s <= self.first_token_s:
            return None
        return (self.new_tokens - 1) / (self.total_s - self.first_token_s)

    def describe(self) -> str:
        rate = self.decode_tokens_per_s
        first = "no token" if self.first_token_s is None else f"first token after {1000 * self.first_token_s:.0f} ms"
        parts = [f"{self.new_tokens} tokens in {self.total_s:.2f} s", first + f" ({self.prompt_tokens}-token prompt)"]
        if rate is not None:
            parts.append(f"{rate:.1f} tokens/s decoding")
        parts.append("stopped at end of text" if self.stopped_at_eos else "stopped at --max-tokens")
        return "; ".join(parts)


def stream(session: DecoderSession, tokenizer: TextTokenizer, prompt: Prompt, max_new_tokens: int,
           sampler: Sampler, stats: GenerationStats, clock: Callable[[], float] = time.perf_counter,
           ) -> Iterator[str]:
    """Text pieces as tokens come (a stop token ends the stream unprinted); `stats` fills in as it goes."""
    decoder = StreamDecoder(tokenizer)
    started = clock()
    for token in session.generate(prompt.ids, max_new_tokens, prompt.stop_ids, sampler):
        now = clock() - started
        if stats.first_token_s is None:
            stats.first_token_s = now
        stats.total_s = now
        if token in prompt.stop_ids:
            stats.stopped_at_eos = True
            return
        stats.new_tokens += 1
        piece = decoder.push(token)
        if piece:
            yield piece
