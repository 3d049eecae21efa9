"""The whole `wedge quantize --task lm` job: load (ONNX or GGUF), quantize the weights, score, measure, fit.

Work happens in a hidden folder inside the output folder; only a finished run moves its files into place.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Final

from wedge.boards import Board
from wedge.quantize.lm.errors import ContextLengthError
from wedge.quantize.lm.evaluate import (
    SpeedResult,
    agreement_pct,
    eval_tokens,
    measure_speed,
    read_text,
    score_text,
    windows,
)
from wedge.quantize.lm.fit import LmFit, assess_lm_fit
from wedge.quantize.lm.llama_onnx import EXTERNAL_DATA_BYTES, export_llama
from wedge.quantize.lm.options import WeightOptions
from wedge.quantize.lm.report import LmReport, Perplexity, Sample
from wedge.quantize.lm.session import DecoderSession, check_vocabulary
from wedge.quantize.lm.tiny import heldout_text
from wedge.quantize.lm.tokenizer import TextTokenizer
from wedge.quantize.lm.weights import quantize_weights
from wedge.quantize.pipeline import REPORT_NAME, make_workdir
from wedge.quantize.progress import Progress, SilentProgress

DEFAULT_CONTEXT: Final = 512
DEFAULT_EVAL_TOKENS: Final = 2048
SAMPLE_PROMPT_TOKENS: Final = 12
SPEED_PROMPT_TOKENS: Final = 32
DEFAULT_EVAL_SOURCE: Final = "Python's pydoc topics (held-out tenth)"


@dataclass(frozen=True)
class LmOptions:
    """Knobs of the LM pipeline; the defaults are what `wedge quantize --task lm` uses."""

    weights: WeightOptions = field(default_factory=WeightOptions)
    context_tokens: int | None = None  # None: min(DEFAULT_CONTEXT, the model's)
    eval_tokens: int = DEFAULT_EVAL_TOKENS
    window_tokens: int | None = None  # None: the context, at most 256 (scoring cost grows with it)
    samples: int = 2
    sample_tokens: int = 24
    speed_tokens: int = 32
    measure_speed: bool = True
    threads: int | None = None
    tokenizer: Path | None = None
    external_data_bytes: int = EXTERNAL_DATA_BYTES  # weights at least this big go to a .data file


def output_path(model: Path, out_dir: Path, weights: str) -> Path:
    """`<out>/<stem>.<int8|int4>.onnx`."""
    return out_dir / f"{model.stem}.{weights}.onnx"


def _files(model: Path) -> list[Path]:
    """A model file and its external-data file, when it has one."""
    data = model.with_name(model.name + ".data")
    return [model, data] if data.exists() else [model]


def _size_bytes(model: Path) -> int:
    return sum(p.stat().st_size for p in _files(model))


def load_tokenizer(path: Path) -> TextTokenizer:
    """A tokenizer.json, or the tokenizer inside a .gguf file."""
    if path.suffix == ".gguf":
        from wedge.quantize.lm.gguf_model import load_gguf_tokenizer

        return load_gguf_tokenizer(path)
    return TextTokenizer.from_json(read_text(path))


def run_lm_quantize(
    model: Path,
    out_dir: Path,
    *,
    eval_text: Path | None = None,
    board: Board | None = None,
    options: LmOptions | None = None,
    progress: Progress | None = None,
) -> LmReport:
    """Quantize the weights of decoder `model` (.onnx or .gguf), judge it on `eval_text`, write to `out_dir`."""
    options = options or LmOptions()
    progress = progress or SilentProgress()
    started = time.perf_counter()
    model = Path(model)
    workdir = make_workdir(out_dir)
    try:
        report, produced = _run(model, out_dir, workdir, eval_text, board, options, progress, started)
        # Files land only now, each by an atomic rename within the same folder.
        for path in produced:
            for part in _files(path):
                os.replace(part, out_dir / part.name)
        os.replace(workdir / REPORT_NAME, out_dir / REPORT_NAME)
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(model: Path, out_dir: Path, workdir: Path, eval_path: Path | None, board: Board | None,
         options: LmOptions, progress: Progress, started: float) -> tuple[LmReport, list[Path]]:
    notes: list[str] = []
    produced: list[Path] = []
    advance = progress.stage("preparing model", 1)
    # Cheap inputs first: a bad text or tokenizer file should not wait for a model to load.
    if eval_path is not None:
        text, source = read_text(eval_path), str(eval_path)
    else:
        text, source = heldout_text(), DEFAULT_EVAL_SOURCE
        notes.append(f"no --eval-text: scored on {source}")
    override = load_tokenizer(options.tokenizer) if options.tokenizer is not None else None
    if model.suffix == ".gguf":
        from wedge.quantize.lm.gguf_model import load_gguf

        gguf = load_gguf(model)
        fp32_path = export_llama(gguf.weights, workdir / f"{model.stem}.fp32.onnx", gguf.tokenizer.to_json(),
                                 options.external_data_bytes)
        produced.append(fp32_path)
        notes.append(f"built the fp32 ONNX from {gguf.file_type} GGUF weights (dequantized): fp32 here means "
                     f"those values, already rounded once")
        del gguf
    else:
        fp32_path = model
    fp32 = DecoderSession(fp32_path, threads=options.threads)
    tokenizer = fp32.tokenizer(override)
    advance(1)
    signature = fp32.signature
    limit = signature.context_length
    context = (options.context_tokens if options.context_tokens is not None
               else min(DEFAULT_CONTEXT, limit or DEFAULT_CONTEXT))
    if context < 1:
        raise ContextLengthError(f"--context must be at least 1 token, not {context}")
    if limit is not None and context > limit:
        raise ContextLengthError(f"--context {context} is longer than the model's context of {limit} tokens")
    window = options.window_tokens or min(context, 256)
    fp32.check_context(window, f"a {window}-token evaluation window")

    ids = eval_tokens(tokenizer, text, options.eval_tokens, source)

    advance = progress.stage(f"quantizing weights to {options.weights.weights}", 1)
    target = workdir / output_path(model, out_dir, options.weights.weights).name
    quantize_weights(fp32_path, target, options.weights, options.external_data_bytes)
    produced.append(target)
    advance(1)
    quantized = DecoderSession(target, threads=options.threads)
    check_vocabulary(tokenizer, quantized.signature.vocab_size, str(target))

    stride = max(1, window // 2)
    count = len(windows(ids.size, window, stride))
    advance = progress.stage("perplexity fp32", count)
    fp32_score = score_text(fp32, ids, window, stride, advance)
    advance = progress.stage("perplexity quantized", count)
    q_score = score_text(quantized, ids, window, stride, advance)
    perplexity = Perplexity(source=source, tokens=int(ids.size), scored_tokens=int(fp32_score.nll.size),
                            window=window, stride=stride, fp32=fp32_score.perplexity, quantized=q_score.perplexity,
                            top1_agreement_pct=agreement_pct(fp32_score, q_score),
                            fp32_top1_accuracy_pct=fp32_score.top1_accuracy_pct,
                            quantized_top1_accuracy_pct=q_score.top1_accuracy_pct)

    advance = progress.stage("greedy samples", options.samples)
    samples = []
    stops = frozenset(t for t in (signature.config.eos_token_id if signature.config else None,) if t is not None)
    for index in range(options.samples):
        start = (index * ids.size) // max(1, options.samples)
        prompt = [int(t) for t in ids[start:start + SAMPLE_PROMPT_TOKENS]]
        budget = min(options.sample_tokens, (limit or 1 << 30) - len(prompt))
        samples.append(Sample(prompt=tokenizer.decode(prompt),
                              fp32=tokenizer.decode(list(fp32.generate(prompt, budget, stops))),
                              quantized=tokenizer.decode(list(quantized.generate(prompt, budget, stops)))))
        advance(1)
    del fp32, quantized  # the speed runs below should not share the machine with two loaded sessions

    fp32_speed: SpeedResult | None = None
    q_speed: SpeedResult | None = None
    if options.measure_speed:
        advance = progress.stage("tokens/s and peak RSS", 2)
        prompt = [int(t) for t in ids[:SPEED_PROMPT_TOKENS]]
        new_tokens = min(options.speed_tokens, (limit or 1 << 30) - len(prompt))
        fp32_speed = measure_speed(fp32_path, prompt, new_tokens, options.threads)
        advance(1)
        q_speed = measure_speed(target, prompt, new_tokens, options.threads)
        advance(1)

    fit: LmFit | None = None
    if board is not None:
        fit = assess_lm_fit(board, signature, _size_bytes(target), context)
    config = signature.config
    report = LmReport(
        source=str(model),
        output=str(out_dir / target.name),
        weights=options.weights.weights.value,
        scheme=options.weights.describe(),
        model={"layers": signature.num_layers, "kv_heads": signature.kv_heads, "head_dim": signature.head_dim,
               "vocab_size": signature.vocab_size, "context_length": limit,
               "config": None if config is None else config.to_dict()},
        perplexity=perplexity,
        samples=tuple(samples),
        fp32_bytes=_size_bytes(fp32_path),
        quantized_bytes=_size_bytes(target),
        fp32_speed=fp32_speed,
        quantized_speed=q_speed,
        fit=fit,
        notes=tuple(notes),
        wall_s=time.perf_counter() - started,
        versions=_versions(),
    )
    report.write(workdir / REPORT_NAME)
    return report, produced


def _versions() -> dict[str, str]:
    versions = {}
    for package in ("wedge", "onnx", "onnxruntime", "numpy", "tokenizers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions
