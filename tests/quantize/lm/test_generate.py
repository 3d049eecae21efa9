"""Generation as `wedge generate` drives it: prompts plain or through a chat template (SmolLM2's own, from its
GGUF), stopping at the end-of-text token, seeded sampling, and the timings it reports."""

from __future__ import annotations

import numpy as np
import pytest

from tests.quantize.lm.conftest import SMOLLM2, needs_smollm2
from wedge.quantize.lm.chat import ChatTemplate
from wedge.quantize.lm.errors import ChatTemplateError, LmError
from wedge.quantize.lm.generation import GenerationStats, Prompt, build_prompt, stream
from wedge.quantize.lm.sampling import Sampler
from wedge.quantize.lm.session import DecoderSession

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def test_a_chat_template_renders_turns_and_the_assistants_cue():
    template = ChatTemplate(CHATML, eos_token="<|im_end|>")
    text = template.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    refusing = ChatTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(ChatTemplateError, match="roles must alternate"):
        refusing.render([{"role": "user", "content": "x"}])
    with pytest.raises(ChatTemplateError, match="cannot be rendered"):
        ChatTemplate("{% for %}").render([])


def test_generation_stops_at_an_end_token_and_does_not_print_it(tiny_model):
    session = DecoderSession(tiny_model)
    tokenizer = session.tokenizer()
    ids = tokenizer.encode("The while statement is used for")
    first = next(session.generate(ids, 1))
    stats = GenerationStats(prompt_tokens=len(ids))
    pieces = list(stream(session, tokenizer, Prompt(ids, frozenset({first}), ""), 20, Sampler(), stats))
    assert pieces == [] and stats.stopped_at_eos and stats.new_tokens == 0
    assert stats.first_token_s is not None and "stopped at end of text" in stats.describe()


def test_stats_give_time_to_first_token_and_the_decode_rate_after_it(tiny_model):
    session = DecoderSession(tiny_model)
    tokenizer = session.tokenizer()
    prompt = build_prompt(session, tokenizer, "The for statement")
    ticks = iter(np.arange(0.0, 100.0, 0.5))
    stats = GenerationStats(prompt_tokens=len(prompt.ids))
    text = "".join(stream(session, tokenizer, prompt, 9, Sampler(), stats, clock=lambda: float(next(ticks))))
    assert text and stats.new_tokens == 9 and stats.first_token_s == 0.5  # the clock ticks 0.5 s per read
    assert stats.decode_tokens_per_s == pytest.approx(8 / 4.0)


def test_sampling_is_seeded_and_top_p_narrows_to_the_likeliest():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    draws = [Sampler(temperature=1.0, seed=5)(logits) for _ in range(3)]
    assert len(set(draws)) == 1  # the same seed, the same pick
    sampler = Sampler(temperature=1.0, top_p=0.6, seed=1)
    assert {sampler(logits) for _ in range(200)} == {0, 1}  # 0.5 + 0.3 reach 0.6; the tail never comes up
    assert Sampler()(logits) == 0
    with pytest.raises(LmError, match="--top-p"):
        Sampler(temperature=1.0, top_p=0.0)


@needs_smollm2
@pytest.mark.slow
def test_smollm2_answers_a_chat_in_its_own_template_and_stops_at_im_end(smollm2_onnx):
    session = DecoderSession(smollm2_onnx, threads=2)
    tokenizer = session.tokenizer()
    prompt = build_prompt(session, tokenizer, "What is the capital of France?", chat=True)
    assert prompt.text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert tokenizer.token_id("<|im_end|>") in prompt.stop_ids
    stats = GenerationStats(prompt_tokens=len(prompt.ids))
    answer = "".join(stream(session, tokenizer, prompt, 48, Sampler(), stats))
    assert "Paris" in answer and stats.stopped_at_eos
    assert SMOLLM2 is not None
