"""`wedge generate`: text from a decoder LM ONNX (fp32, int8 or int4), streamed as it comes.

The prompt is echoed, --chat wraps it in the model's chat template, sampling is greedy unless --temperature
says otherwise; time to first token and tokens/s go to stderr at the end (and progress lines every few seconds
when stdout is not a terminal).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Final

import click

PROGRESS_EVERY_S: Final = 10.0


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--prompt", required=True, help="Text the model continues (or, with --chat, the user's message).")
@click.option("--chat", is_flag=True, help="Put the prompt through the model's chat template (instruct models).")
@click.option("--system", default=None, help="With --chat: a system message before the prompt.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True,
              help="Stop after this many new tokens (or at the end-of-text token).")
@click.option("--temperature", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="0 picks the likeliest token (greedy); above 0 samples, more randomly as it grows.")
@click.option("--top-p", type=click.FloatRange(min=0.0, max=1.0, min_open=True), default=1.0, show_default=True,
              help="With --temperature: sample from the likeliest tokens that make up this probability.")
@click.option("--seed", type=int, default=None, help="Seed of the sampler, to repeat a sampled run.")
@click.option("--echo/--no-echo", default=True, show_default=True, help="Print the prompt before the answer.")
@click.option("--tokenizer", "tokenizer_path", type=click.Path(path_type=Path),
              help="tokenizer.json or .gguf, when the model carries none.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="onnxruntime intra-op threads.")
def generate(model: Path, prompt: str, chat: bool, system: str | None, max_tokens: int, temperature: float,
             top_p: float, seed: int | None, echo: bool, tokenizer_path: Path | None, threads: int | None) -> None:
    """Continue PROMPT with MODEL, printing each piece of text as it comes."""
    from wedge.quantize.lm.generation import GenerationStats, build_prompt, stream
    from wedge.quantize.lm.pipeline import load_tokenizer
    from wedge.quantize.lm.sampling import Sampler
    from wedge.quantize.lm.session import DecoderSession

    if system is not None and not chat:
        raise click.UsageError("--system goes with --chat")
    sampler = Sampler(temperature=temperature, top_p=top_p, seed=seed)
    session = DecoderSession(model, threads=threads)
    tokenizer = session.tokenizer(load_tokenizer(tokenizer_path) if tokenizer_path is not None else None)
    built = build_prompt(session, tokenizer, prompt, chat=chat, system=system)
    session.check_context(len(built.ids) + max_tokens, f"{len(built.ids)} prompt + {max_tokens} new tokens")
    terminal = sys.stdout.isatty()
    if echo:
        shown = f"> {prompt}\n" if chat else prompt
        click.echo(click.style(shown, dim=True) if terminal else shown, nl=False)
    stats = GenerationStats(prompt_tokens=len(built.ids))
    last_line = time.monotonic()
    for piece in stream(session, tokenizer, built, max_tokens, sampler, stats):
        click.echo(piece, nl=False)
        if not terminal and time.monotonic() - last_line >= PROGRESS_EVERY_S:
            last_line = time.monotonic()
            click.echo(f"[generate] {stats.new_tokens}/{max_tokens} tokens, {stats.total_s:.0f} s", err=True)
    click.echo()
    click.echo(stats.describe(), err=True)
