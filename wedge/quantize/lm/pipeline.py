"""The whole `wedge quantize --task lm` job: load (HF checkpoint, GGUF or ONNX; LoRA merged), quantize the
weights (AWQ/GPTQ calibrated beside plain rounding), score, measure, fit, warn.

Work happens in a hidden folder inside the output folder; only a finished run moves its files into place, and
the fp32 ONNX built on the way stays there (deleted) unless asked for.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Final

import numpy as np
import onnx
from numpy.typing import NDArray

from wedge.boards import Board
from wedge.quantize.lm.advice import perplexity_warnings
from wedge.quantize.lm.errors import ContextLengthError, LmError, TextError
from wedge.quantize.lm.evaluate import (
    SpeedResult,
    TextScore,
    agreement_pct,
    eval_tokens,
    measure_speed,
    read_text,
    score_text,
    windows,
)
from wedge.quantize.lm.fit import LmFit, assess_lm_fit
from wedge.quantize.lm.llama_onnx import EMBEDDING_WEIGHT, EXTERNAL_DATA_BYTES, export_llama
from wedge.quantize.lm.options import Algorithm, WeightOptions
from wedge.quantize.lm.report import Baseline, Calibration, LmReport, Perplexity, Sample
from wedge.quantize.lm.session import DecoderSession, check_vocabulary
from wedge.quantize.lm.source import LmSource, load_source
from wedge.quantize.lm.tiny import heldout_text, training_text
from wedge.quantize.lm.tokenizer import TextTokenizer
from wedge.quantize.lm.weights import model_metadata, quantize_calibrated, quantize_weights
from wedge.quantize.pipeline import REPORT_NAME, make_workdir, remove_workdir
from wedge.quantize.progress import Progress, SilentProgress

DEFAULT_CONTEXT: Final = 512
DEFAULT_EVAL_TOKENS: Final = 2048
DEFAULT_CALIB_TOKENS: Final = 4096
CALIB_WINDOW: Final = 256  # tokens per calibration window (less when the model's context is shorter)
MIN_CALIB_TOKENS: Final = 64
SAMPLE_PROMPT_TOKENS: Final = 12
SPEED_PROMPT_TOKENS: Final = 32
DEFAULT_EVAL_SOURCE: Final = "Python's pydoc topics (held-out tenth)"
DEFAULT_CALIB_SOURCE: Final = "Python's pydoc topics (the nine tenths not scored)"


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
    lora: Path | None = None  # a PEFT LoRA adapter folder merged before quantizing
    calib_text: Path | None = None  # AWQ/GPTQ calibration text; None: DEFAULT_CALIB_SOURCE
    calib_tokens: int = DEFAULT_CALIB_TOKENS
    keep_fp32: bool = False  # keep the fp32 ONNX built from a checkpoint or GGUF
    compare_rtn: bool = True  # with AWQ/GPTQ, also score plain round-to-nearest in the same run
    warn_above_pct: float | None = None  # perplexity rise that warns; None: advice.WARN_CHANGE_PCT


def output_path(name: str, out_dir: Path, weights: str) -> Path:
    """`<out>/<model name>.<int8|int4>.onnx`."""
    return out_dir / f"{name}.{weights}.onnx"


def _files(model: Path) -> list[Path]:
    """A model file and its external-data file, when it has one."""
    data = model.with_name(model.name + ".data")
    return [model, data] if data.exists() else [model]


def model_bytes(model: Path) -> int:
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
    """Quantize the weights of decoder `model` (checkpoint folder, .gguf or .onnx), judge it on `eval_text`,
    write to `out_dir`."""
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
        remove_workdir(workdir)


def calibration_windows(ids: NDArray[np.int64], tokens: int, window: int) -> NDArray[np.int64]:
    """[windows, window] token windows spread evenly over `ids`, about `tokens` in all."""
    if ids.size < MIN_CALIB_TOKENS:
        raise TextError(f"the calibration text gives {ids.size} tokens; AWQ/GPTQ need at least {MIN_CALIB_TOKENS}")
    window = min(window, int(ids.size))
    count = max(1, min(tokens // window, ids.size // window))
    starts = np.linspace(0, ids.size - window, count).astype(np.int64)
    return np.stack([ids[s:s + window] for s in starts])


def embedding_bytes(path: Path) -> int:
    """Bytes of the token table (however it is quantized) in a model file, without loading external data."""
    model = onnx.load(str(path), load_external_data=False)
    total = 0
    for tensor in model.graph.initializer:
        if tensor.name.startswith(EMBEDDING_WEIGHT):
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                total += int({e.key: e.value for e in tensor.external_data}.get("length", 0))
            else:
                total += len(tensor.raw_data)
    return total


def _score(session: DecoderSession, ids: NDArray[np.int64], window: int, progress: Progress,
           what: str) -> TextScore:
    stride = max(1, window // 2)
    advance = progress.stage(f"perplexity {what}", len(windows(ids.size, window, stride)))
    return score_text(session, ids, window, stride, advance)


def _source_tokenizer(source: LmSource, override: TextTokenizer | None) -> TextTokenizer:
    tokenizer = override or source.tokenizer
    if tokenizer is None:
        raise LmError(f"{source.name} has no tokenizer (no tokenizer.json): give one with --tokenizer")
    return tokenizer


def _run(model: Path, out_dir: Path, workdir: Path, eval_path: Path | None, board: Board | None,
         options: LmOptions, progress: Progress, started: float) -> tuple[LmReport, list[Path]]:
    notes: list[str] = []
    produced: list[Path] = []
    weight_options = options.weights
    calibrated = weight_options.algorithm.calibrated
    advance = progress.stage("loading model", 1)
    # Cheap inputs first: a bad text, tokenizer or adapter should not wait for a model to load.
    if eval_path is not None:
        text, source_name = read_text(eval_path), str(eval_path)
    else:
        text, source_name = heldout_text(), DEFAULT_EVAL_SOURCE
        notes.append(f"no --eval-text: scored on {source_name}")
    calib_text, calib_name = None, ""
    if calibrated:
        if options.calib_text is not None:
            calib_text, calib_name = read_text(options.calib_text), str(options.calib_text)
        else:
            calib_text, calib_name = training_text(), DEFAULT_CALIB_SOURCE
            notes.append(f"no --calib: {weight_options.algorithm} calibrated on {calib_name}")
    override = load_tokenizer(options.tokenizer) if options.tokenizer is not None else None
    source = load_source(model, lora=options.lora, need_weights=calibrated)
    notes.extend(source.notes)
    if source.onnx is not None:
        fp32_path = source.onnx
    else:
        assert source.weights is not None
        source = replace(source, tokenizer=_source_tokenizer(source, override))
        fp32_path = export_llama(source.weights, workdir / f"{source.name}.fp32.onnx",
                                 external_data_bytes=options.external_data_bytes, metadata=source.metadata())
        if options.keep_fp32:
            produced.append(fp32_path)
        else:
            notes.append("the fp32 ONNX built on the way was deleted (--keep-fp32 keeps it)")
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

    ids = eval_tokens(tokenizer, text, options.eval_tokens, source_name)
    target = workdir / output_path(source.name, out_dir, weight_options.weights).name
    calibration: Calibration | None = None
    quantize_started = time.perf_counter()
    if calibrated:
        assert calib_text is not None and source.weights is not None
        calib = calibration_windows(np.asarray(tokenizer.encode(calib_text), np.int64), options.calib_tokens,
                                    min(CALIB_WINDOW, limit or CALIB_WINDOW))
        advance = progress.stage(f"{weight_options.algorithm} int4, layer by layer",
                                 source.weights.config.num_layers + 1)
        aware = quantize_calibrated(source.weights, calib, target, weight_options,
                                    model_metadata(onnx.load(str(fp32_path), load_external_data=False)),
                                    options.external_data_bytes, on_layer=advance)
        calibration = Calibration(source=calib_name, tokens=int(calib.size), windows=int(calib.shape[0]),
                                  window=int(calib.shape[1]), output_error_ratio=round(aware.error_ratio, 4))
    else:
        advance = progress.stage(f"quantizing weights to {weight_options.weights}", 1)
        quantize_weights(fp32_path, target, weight_options, options.external_data_bytes)
        advance(1)
    quantize_s = time.perf_counter() - quantize_started
    produced.append(target)
    quantized = DecoderSession(target, threads=options.threads)
    check_vocabulary(tokenizer, quantized.signature.vocab_size, str(target))

    fp32_score = _score(fp32, ids, window, progress, "fp32")
    q_score = _score(quantized, ids, window, progress, "quantized")
    stride = max(1, window // 2)
    perplexity = Perplexity(source=source_name, tokens=int(ids.size), scored_tokens=int(fp32_score.nll.size),
                            window=window, stride=stride, fp32=fp32_score.perplexity, quantized=q_score.perplexity,
                            top1_agreement_pct=agreement_pct(fp32_score, q_score),
                            fp32_top1_accuracy_pct=fp32_score.top1_accuracy_pct,
                            quantized_top1_accuracy_pct=q_score.top1_accuracy_pct)
    baseline = None
    if calibrated and options.compare_rtn:
        baseline = _rtn_baseline(fp32_path, workdir, weight_options, options, ids, window, fp32_score, progress)

    advance = progress.stage("greedy samples", options.samples)
    samples = []
    stops = signature.config.stop_token_ids if signature.config else frozenset()
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
        fit = assess_lm_fit(board, signature, model_bytes(target), context, embedding_bytes(target))
    config = signature.config
    warnings = (*source.caveats, *perplexity_warnings(perplexity.change_pct, weight_options, source.requantized_from,
                                                      options.warn_above_pct))
    report = LmReport(
        source=str(model),
        output=str(out_dir / target.name),
        weights=weight_options.weights.value,
        scheme=weight_options.describe(),
        model={"layers": signature.num_layers, "kv_heads": signature.kv_heads, "head_dim": signature.head_dim,
               "vocab_size": signature.vocab_size, "context_length": limit,
               "config": None if config is None else config.to_dict()},
        perplexity=perplexity,
        samples=tuple(samples),
        fp32_bytes=model_bytes(fp32_path),
        quantized_bytes=model_bytes(target),
        fp32_speed=fp32_speed,
        quantized_speed=q_speed,
        fit=fit,
        notes=tuple(notes),
        wall_s=time.perf_counter() - started,
        versions=_versions(),
        name=source.name,
        quantize_s=quantize_s,
        baseline=baseline,
        calibration=calibration,
        warnings=warnings,
        fp32_output=str(out_dir / fp32_path.name) if fp32_path in produced else None,
    )
    report.write(workdir / REPORT_NAME)
    return report, produced


def _rtn_baseline(fp32_path: Path, workdir: Path, weight_options: WeightOptions, options: LmOptions,
                  ids: NDArray[np.int64], window: int, fp32_score: TextScore, progress: Progress) -> Baseline:
    """Round-to-nearest with the same blocks and tables, scored on the same tokens (then deleted)."""
    rtn = replace(weight_options, algorithm=Algorithm.RTN)
    path = workdir / "rtn-baseline.onnx"
    started = time.perf_counter()
    quantize_weights(fp32_path, path, rtn, options.external_data_bytes)
    seconds = time.perf_counter() - started
    score = _score(DecoderSession(path, threads=options.threads), ids, window, progress, "rtn baseline")
    baseline = Baseline(scheme=rtn.describe(), perplexity=score.perplexity,
                        change_pct=100.0 * (score.perplexity / fp32_score.perplexity - 1.0),
                        top1_agreement_pct=agreement_pct(fp32_score, score), quantized_bytes=model_bytes(path),
                        quantize_s=seconds)
    for part in _files(path):
        part.unlink()
    return baseline


def _versions() -> dict[str, str]:
    versions = {}
    for package in ("wedge", "onnx", "onnxruntime", "numpy", "tokenizers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions
