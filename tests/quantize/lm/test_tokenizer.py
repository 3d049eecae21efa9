"""The byte-level BPE tokenizers: round trips, streaming decode, special tokens, and bad GGUF metadata."""

from __future__ import annotations

import pytest

from tests.quantize.lm.conftest import SMOLLM2, needs_smollm2
from wedge.quantize.lm.errors import LmError
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.tiny import heldout_text
from wedge.quantize.lm.tokenizer import StreamDecoder, TextTokenizer

AWKWARD = "Tabs\tand  double spaces, digits 2024, accents café naïve, emoji 😀 and CJK 漢字\n\nend"


def test_tiny_tokenizer_round_trips_held_out_and_unusual_text(tiny_model):
    tokenizer = DecoderSession(tiny_model).tokenizer()
    for text in (heldout_text()[:3000], AWKWARD):
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == text
        assert max(ids) < tokenizer.vocab_size


def test_stream_decoder_holds_back_split_characters_until_complete(tiny_model):
    tokenizer = DecoderSession(tiny_model).tokenizer()
    stream = StreamDecoder(tokenizer)
    pieces = [stream.push(token) for token in tokenizer.encode(AWKWARD)]
    assert "".join(pieces) == AWKWARD
    assert not any("\ufffd" in piece for piece in pieces)


def test_tokenizer_survives_a_json_round_trip(tiny_model):
    tokenizer = DecoderSession(tiny_model).tokenizer()
    copy = TextTokenizer.from_json(tokenizer.to_json())
    assert copy.encode(AWKWARD) == tokenizer.encode(AWKWARD)


def test_a_sentencepiece_gguf_tokenizer_is_refused_with_its_name():
    with pytest.raises(LmError, match="'llama' is not supported"):
        TextTokenizer.from_gguf_fields(model="llama", tokens=["a"], merges=[], token_types=[1], pre=None)


@needs_smollm2
@pytest.mark.slow
def test_smollm2_tokenizer_from_gguf_metadata_round_trips_and_keeps_chat_tokens_whole():
    from wedge.quantize.lm.gguf_model import load_gguf_tokenizer

    tokenizer = load_gguf_tokenizer(SMOLLM2)
    assert tokenizer.vocab_size == 49152
    assert tokenizer.decode(tokenizer.encode(AWKWARD)) == AWKWARD
    chat = tokenizer.encode("<|im_start|>user")
    assert chat[0] == tokenizer.token_id("<|im_start|>") == 1
    # SmolLM's pre-tokenizer splits numbers into single digits.
    assert len(tokenizer.encode(" 2024")) == 5
