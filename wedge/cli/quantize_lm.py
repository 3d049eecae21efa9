"""`wedge quantize --task lm`: the language-model branch of `wedge quantize` — its options and its report.

Weight-only int8/int4 via `wedge.quantize.lm.pipeline.run_lm_quantize`; rendered as rich tables or --json, with
progress as bars on a terminal and as periodic lines on stderr otherwise (CI logs, pipes, --json).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from wedge.boards import DEFAULT_LM_BOARD
from wedge.cli.progress import progress_bars_or_lines
from wedge.cli.units import human_bytes
from wedge.quantize.lm.report import LmReport

_F = TypeVar("_F", bound=Callable[..., Any])


def lm_options(command: _F) -> _F:
    """The options only `--task lm` reads, added to `wedge quantize`."""
    from wedge.quantize.lm.options import BLOCK_SIZES, DEFAULT_BLOCK_SIZE, Algorithm, WeightFormat
    from wedge.quantize.lm.pipeline import DEFAULT_CALIB_TOKENS

    options = [
        click.option("--weights", type=click.Choice([w.value for w in WeightFormat]), default="int8",
                     show_default=True, help="--task lm: precision of the weights, stored in blocks."),
        click.option("--block-size", type=click.Choice([str(b) for b in BLOCK_SIZES]),
                     default=str(DEFAULT_BLOCK_SIZE), show_default=True,
                     help="--task lm: weights per quantization block (one scale each)."),
        click.option("--algorithm", type=click.Choice([a.value for a in Algorithm]), default="rtn",
                     show_default=True,
                     help="--task lm: rtn (both), kquant (int4, error-weighted search), awq / gptq (int4, "
                          "activation-aware, calibrated on --calib text), dynamic (int8 quantize_dynamic)."),
        click.option("--lora", "lora", type=click.Path(path_type=Path),
                     help="--task lm: a PEFT LoRA adapter folder merged into MODEL before quantizing."),
        click.option("--calib-tokens", type=click.IntRange(min=64), default=DEFAULT_CALIB_TOKENS,
                     show_default=True, help="--task lm: tokens of --calib text that AWQ/GPTQ calibrate on."),
        click.option("--rtn-baseline/--no-rtn-baseline", "compare_rtn", default=True, show_default=True,
                     help="--task lm: with awq/gptq, also score plain round-to-nearest in the same run."),
        click.option("--eval-text", type=click.Path(path_type=Path),
                     help="--task lm: UTF-8 text for perplexity. Default: Python's held-out pydoc topics."),
        click.option("--context", "context_tokens", type=int, default=None,
                     help="--task lm: context length for the KV cache in the board fit; perplexity windows "
                          "use up to 256 of it (default: 512 or the model's, if shorter)."),
        click.option("--eval-tokens", type=click.IntRange(min=16), default=2048, show_default=True,
                     help="--task lm: score at most this many tokens of the eval text."),
        click.option("--keep-embeddings", is_flag=True,
                     help="--task lm: token embedding one step up (fp32 under int8, int8 under int4)."),
        click.option("--keep-lm-head", is_flag=True,
                     help="--task lm: output projection one step up (fp32 under int8, int8 under int4)."),
        click.option("--keep-fp32", is_flag=True,
                     help="--task lm: keep the fp32 ONNX built from a checkpoint or GGUF (deleted by default)."),
        click.option("--tokenizer", "tokenizer_path", type=click.Path(path_type=Path),
                     help="--task lm: tokenizer.json or .gguf, when the model carries none."),
        click.option("--speed/--no-speed", default=True, show_default=True,
                     help="--task lm: measure tokens/s and peak RSS of both models (one process each)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_lm_command(model: Path | None, out_dir: Path, board_name: str, as_json: bool, *, weights: str,
                   block_size: str, algorithm: str, eval_text: Path | None, context_tokens: int | None,
                   eval_tokens: int, keep_embeddings: bool, keep_lm_head: bool, tokenizer_path: Path | None,
                   speed: bool, calib: Path | None = None, lora: Path | None = None, calib_tokens: int = 4096,
                   compare_rtn: bool = True, keep_fp32: bool = False) -> None:
    """Validate the LM options, run the pipeline, print the report."""
    from wedge.boards import load as load_board
    from wedge.quantize.lm.options import Algorithm, WeightFormat, WeightOptions
    from wedge.quantize.lm.pipeline import LmOptions, run_lm_quantize
    from wedge.quantize.lm.tiny import TINY_MODEL_PATH

    source = click.get_current_context().get_parameter_source("board_name")
    if source is click.core.ParameterSource.DEFAULT:
        board_name = DEFAULT_LM_BOARD  # the int8 default is a ring; language models run on the glasses
    board = load_board(board_name)
    options = LmOptions(
        weights=WeightOptions(weights=WeightFormat(weights), block_size=int(block_size),
                              algorithm=Algorithm(algorithm), keep_embeddings=keep_embeddings,
                              keep_lm_head=keep_lm_head),
        context_tokens=context_tokens,
        eval_tokens=eval_tokens,
        measure_speed=speed,
        tokenizer=tokenizer_path,
        lora=lora,
        calib_text=calib,
        calib_tokens=calib_tokens,
        compare_rtn=compare_rtn,
        keep_fp32=keep_fp32,
    )
    with progress_bars_or_lines(bars=not as_json and sys.stderr.isatty()) as progress:
        report = run_lm_quantize(model or TINY_MODEL_PATH, out_dir, eval_text=eval_text, board=board,
                                 options=options, progress=progress)
    if as_json:
        click.echo(report.to_json())
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
    else:
        render_lm_report(report, Console())


def _verdict(ok: bool) -> str:
    return "[green]fits[/]" if ok else "[red]does not fit[/]"


def _change(change_pct: float) -> str:
    color = "green" if change_pct <= 2.0 else ("yellow" if change_pct <= 10.0 else "red")
    return f"[{color}]{change_pct:+.2f}%[/]"


def render_lm_report(report: LmReport, console: Console) -> None:
    """Print the report as a few tables, the most important first."""
    console.print(f"[bold]{report.source}[/] → [bold green]{report.output}[/]  ({report.scheme})")
    ppl = report.perplexity
    base = report.baseline
    quality = Table(title=f"fp32 vs {report.weights} on {ppl.scored_tokens} tokens of {ppl.source} "
                          f"(window {ppl.window}, stride {ppl.stride})", title_justify="left")
    columns = ["metric", "fp32", report.weights] + (["rtn, same run"] if base else [])
    for column in columns:
        quality.add_column(column, justify="left" if column == "metric" else "right")

    def row(name: str, fp32: str, quantized: str, baseline: str = "") -> None:
        quality.add_row(name, fp32, quantized, *([baseline] if base else []))

    row("perplexity", f"{ppl.fp32:.3f}", f"{ppl.quantized:.3f} ({_change(ppl.change_pct)})",
        f"{base.perplexity:.3f} ({_change(base.change_pct)})" if base else "")
    row("next-token top-1 accuracy", f"{ppl.fp32_top1_accuracy_pct:.2f}%", f"{ppl.quantized_top1_accuracy_pct:.2f}%")
    row("top-1 agreement with fp32", "", f"{ppl.top1_agreement_pct:.2f}%",
        f"{base.top1_agreement_pct:.2f}%" if base else "")
    row("size", human_bytes(report.fp32_bytes), f"{human_bytes(report.quantized_bytes)} ({report.size_ratio:.2f}x)",
        human_bytes(base.quantized_bytes) if base else "")
    row("time to quantize", "", f"{report.quantize_s:.1f} s", f"{base.quantize_s:.1f} s" if base else "")
    if report.fp32_speed is not None and report.quantized_speed is not None:
        fast, slow = report.quantized_speed, report.fp32_speed
        row("decode tokens/s (this CPU)", f"{slow.tokens_per_s:.1f}",
            f"{fast.tokens_per_s:.1f} ({fast.tokens_per_s / slow.tokens_per_s:.2f}x)")
        row("peak RSS", human_bytes(slow.peak_rss_bytes),
            f"{human_bytes(fast.peak_rss_bytes)} ({fast.peak_rss_bytes / slow.peak_rss_bytes:.2f}x)")
    console.print(quality)
    if report.calibration is not None:
        cal = report.calibration
        console.print(f"[dim]calibrated on {cal.tokens} tokens ({cal.windows} x {cal.window}) of {cal.source}; "
                      f"layer output error {cal.output_error_ratio:.2f}x that of round-to-nearest[/]")

    fit = report.fit
    if fit is not None:
        table = Table(title=f"Board fit: {fit.board} ({fit.runtime}), context {fit.context_tokens} tokens",
                      title_justify="left")
        for column in ("budget", "needed", "available", "verdict"):
            table.add_column(column, justify="left" if column == "budget" else "right")
        table.add_row("model file (slot)", human_bytes(fit.weights_bytes), human_bytes(fit.slot_bytes),
                      _verdict(fit.fits_flash))
        table.add_row(f"RAM: weights + KV cache {human_bytes(fit.kv_cache_bytes)} + buffers",
                      human_bytes(fit.ram_needed_bytes), f"{human_bytes(fit.ram_budget_bytes)} ({fit.ram_budget})",
                      _verdict(fit.fits_ram))
        limit = "the model's own context length" if fit.max_context_is_models else "RAM left after the weights"
        table.add_row("longest context that fits", f"{fit.max_context_tokens:,} tokens", limit, "")
        if fit.decode_tokens_per_s_estimate is not None:
            host = (f"this host: {report.quantized_speed.tokens_per_s:.1f} measured"
                    if report.quantized_speed is not None else "")
            table.add_row(f"decode tokens/s, board (≤, {human_bytes(fit.bytes_per_token)} read per token)",
                          f"≤ {fit.decode_tokens_per_s_estimate:.1f}", host, "")
        console.print(table)

    for sample in report.samples:
        console.print(f"[bold]prompt[/] {sample.prompt!r}")
        console.print(f"  [dim]fp32[/]   {sample.fp32!r}")
        console.print(f"  [dim]{report.weights}[/]   {sample.quantized!r}")
    if report.fp32_output:
        console.print(f"[dim]• fp32 ONNX kept: {report.fp32_output}[/]")
    for note in (*report.notes, *(fit.notes if fit else ())):
        console.print(f"[dim]• {note}[/]")
    for warning in report.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}")
