"""`wedge generate`: greedy text from a decoder LM ONNX (fp32, int8 or int4), streamed to the terminal.

A quick check that a quantized model still talks sense; uses the tokenizer stored in the model.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--prompt", required=True, help="Text the model continues.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True,
              help="Stop after this many new tokens (or at the end-of-text token).")
@click.option("--tokenizer", "tokenizer_path", type=click.Path(path_type=Path),
              help="tokenizer.json or .gguf, when the model carries none.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="onnxruntime intra-op threads.")
def generate(model: Path, prompt: str, max_tokens: int, tokenizer_path: Path | None, threads: int | None) -> None:
    """Continue PROMPT with MODEL greedily, printing each token as it comes."""
    from wedge.quantize.lm.pipeline import load_tokenizer
    from wedge.quantize.lm.session import DecoderSession
    from wedge.quantize.lm.tokenizer import StreamDecoder

    session = DecoderSession(model, threads=threads)
    tokenizer = session.tokenizer(load_tokenizer(tokenizer_path) if tokenizer_path is not None else None)
    config = session.signature.config
    stops = frozenset({config.eos_token_id} if config is not None and config.eos_token_id is not None else ())
    ids = tokenizer.encode(prompt)
    stream = StreamDecoder(tokenizer)
    for token in session.generate(ids, max_tokens, stops):
        if token in stops:
            break
        click.echo(stream.push(token), nl=False)
    click.echo()
