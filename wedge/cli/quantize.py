"""`wedge quantize`: float ONNX to int8 QDQ ONNX (and .tflite), with a report of what it cost and whether it fits.

Parses options, calls `wedge.quantize.pipeline.run_quantize`, renders the report (rich table or --json).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

import click
from rich.console import Console

from wedge.boards import DEFAULT_BOARD, DEFAULT_LM_BOARD
from wedge.cli.grammar import out_dir_option
from wedge.cli.progress import progress_bars
from wedge.cli.quantize_lm import lm_options, run_lm_command
from wedge.cli.quantize_render import render_quantize_report
from wedge.quantize.calibrate import DEFAULT_METHODS, Method
from wedge.quantize.calibration import ImagePreprocess
from wedge.quantize.evaluate import TASKS
from wedge.quantize.interface import parse_batch_axis, parse_pinned_input, parse_stream_state
from wedge.quantize.load import parse_input_shape
from wedge.quantize.pipeline import FORMATS, QuantizeOptions, run_quantize
from wedge.quantize.tflite.convert import IO_KINDS
from wedge.samples import DEFAULT_SAMPLE

EXIT_BUDGET_EXCEEDED: Final = 3


@click.command()
@click.argument("model", required=False, type=click.Path(path_type=Path))
@click.option("--board", "board_name", default=DEFAULT_BOARD, metavar="NAME",
              help=f"Board profile to fit. Default: {DEFAULT_BOARD}; with --task lm, {DEFAULT_LM_BOARD}.")
@click.option("--calib", type=click.Path(path_type=Path),
              help="Calibration data: .npz (keyed by input name), .npy, .csv (one window a row) or an image folder; "
                   "with --task lm, UTF-8 text for --algorithm awq/gptq.")
@click.option("--eval", "eval_path", type=click.Path(path_type=Path),
              help="Evaluation data (same formats; an .npz may hold `labels`). Default: the calibration data.")
@out_dir_option(default=Path("wedge-out"), help="Output folder for <stem>.int8.onnx (and .tflite), report.json and "
                                                 "report.html.")
@click.option("--sample", type=str, default=None,
              help=f"Quantize a bundled sample model (ppg_quality, digits) instead of MODEL. Default: "
                   f"{DEFAULT_SAMPLE} (what wedge demo uses).")
@click.option("--max-drop", type=float, default=None,
              help="Accuracy budget in percentage points; exit 3 when int8 loses more.")
@click.option("--calib-samples", type=int, default=None, help="Use only the first N calibration samples.")
@click.option("--eval-samples", type=int, default=None, help="Use only the first N evaluation samples.")
@click.option("--method", "methods", multiple=True, type=click.Choice([m.value for m in Method]),
              help="Calibration method(s) to try (repeat). Default: minmax, percentile, entropy.")
@click.option("--input-shape", "input_shapes", multiple=True,
              help="Fix a dynamic input shape: 1x3x96x96 or name:1x3x96x96 (repeat per input).")
@click.option("--preprocess", "preprocess", multiple=True,
              help="Image folder preprocessing, key=value: scale=255, mean=.., std=.., layout=nchw|nhwc, color=rgb|bgr.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Samples per model run (models with a fixed batch of 1 run one at a time).")
@click.option("--task", type=click.Choice(TASKS), default="auto", show_default=True,
              help="What the first output is, which sets its metric; auto: labels or an [N, classes] output -> "
                   "classification, output shaped like the input -> reconstruction, else regression (printed).")
@click.option("--threshold", type=float, default=0.5, show_default=True,
              help="Decision threshold for 1-value outputs (decision agreement) and detection scores (F1).")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="onnx", show_default=True,
              help="tflite also writes <stem>.int8.tflite for TFLite-Micro boards, validated in LiteRT and "
                   "TFLite-Micro, with its arena measured.")
@click.option("--io", "io", type=click.Choice(IO_KINDS), default="int8", show_default=True,
              help="Input/output type of the .tflite: int8, or float (QUANTIZE/DEQUANTIZE at the edges).")
@click.option("--keep-float", "keep_float", multiple=True,
              help="Leave a node (by name) or every node of an op type (Conv, Softmax) in float, in the ONNX and "
                   "as a float island in the .tflite (repeat); auto: the noisiest layers, until --max-drop holds.")
@click.option("--input", "pinned", multiple=True,
              help="Pin an input to a constant: name=const:VALUE (a sample rate, a flag); repeat per input.")
@click.option("--batch-axis", "batch_axes", multiple=True,
              help="An input or output whose batch axis is not 0: name=AXIS (a state [layers, batch, units]: "
                   "state=1); its data is then batch first.")
@click.option("--stream-state", "stream_states", multiple=True,
              help="Stream the eval set: feed output OUT back as input IN each step, for fp32 and int8: IN=OUT.")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Class names of the first output, one a line (default: the sample's, or the model's metadata); "
                   "they travel in the int8 ONNX and .tflite into the image manifest.")
@click.option("--unit", help="For a regression output: the unit of its value (e.g. bpm), carried like the labels.")
@click.option("--latency-budget-ms", type=click.FloatRange(min=0, min_open=True),
              help="How long one inference may take on the board (default: the profile's budgets.latency_ms).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the HTML report page here (default: report.html in the output folder).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout instead of tables.")
@lm_options
def quantize(model: Path | None, board_name: str, calib: Path | None, eval_path: Path | None, out_dir: Path,
             sample: str | None, max_drop: float | None, calib_samples: int | None, eval_samples: int | None,
             methods: tuple[str, ...], input_shapes: tuple[str, ...], preprocess: tuple[str, ...],
             batch_size: int, task: str, threshold: float, output_format: str, io: str, keep_float: tuple[str, ...],
             pinned: tuple[str, ...], batch_axes: tuple[str, ...], stream_states: tuple[str, ...],
             labels_path: Path | None, unit: str | None, latency_budget_ms: float | None, html_path: Path | None,
             as_json: bool,
             weights: str, block_size: str, algorithm: str, eval_text: Path | None, context_tokens: int | None,
             eval_tokens: int, keep_embeddings: bool, keep_lm_head: bool, tokenizer_path: Path | None,
             speed: bool, lora: Path | None, calib_tokens: int, compare_rtn: bool, keep_fp32: bool) -> None:
    """Quantize MODEL (float ONNX) to int8 and report accuracy, size and board fit.

    Without MODEL, quantizes the bundled sample (--sample; the ring's PPG signal-quality model) with its own
    calibration and eval sets.
    With --task lm: weight-only int8/int4 of a decoder LM (Hugging Face checkpoint folder, .gguf or .onnx;
    --lora merges an adapter), judged by perplexity; --calib is then the AWQ/GPTQ calibration text.
    """
    if task == "lm":  # language models take their own branch: wedge.cli.quantize_lm
        if labels_path or unit or latency_budget_ms or html_path:
            raise click.UsageError("--labels, --unit, --latency-budget-ms and --html are for classifiers and sensor "
                                   "models, not --task lm")
        return run_lm_command(model, out_dir, board_name, as_json, weights=weights, block_size=block_size,
                              algorithm=algorithm, eval_text=eval_text, context_tokens=context_tokens,
                              eval_tokens=eval_tokens, keep_embeddings=keep_embeddings, keep_lm_head=keep_lm_head,
                              tokenizer_path=tokenizer_path, speed=speed, calib=calib, lora=lora,
                              calib_tokens=calib_tokens, compare_rtn=compare_rtn, keep_fp32=keep_fp32)
    from wedge.boards import load as load_board
    from wedge.quantize.labels import ClassNames, resolve_class_names
    from wedge.samples import SAMPLES, sample_path

    if model is not None and sample is not None:
        raise click.UsageError("give MODEL or --sample, not both")
    class_names = None if labels_path is None else resolve_class_names(labels_file=labels_path)
    if model is None:
        name = sample or DEFAULT_SAMPLE
        model = sample_path(name)  # an unknown name raises the error that lists the known samples
        bundled = SAMPLES[name]
        calib = calib or bundled.calib_path
        eval_path = eval_path or bundled.eval_path
        class_names = class_names or ClassNames(bundled.labels, f"sample {name}")
    if calib is None:
        raise click.UsageError("--calib is required with a MODEL (calibration data for the activation ranges)")
    if max_drop is not None and max_drop < 0:
        raise click.UsageError("--max-drop must be >= 0 percentage points")
    if io != "int8" and output_format != "tflite":
        raise click.UsageError("--io sets the .tflite's input/output type: use it with --format tflite")
    board = load_board(board_name)
    shapes = dict(parse_input_shape(text) for text in input_shapes)
    options = QuantizeOptions(
        methods=tuple(Method(m) for m in methods) or DEFAULT_METHODS,
        calib_samples=calib_samples,
        eval_samples=eval_samples,
        input_shapes=shapes,
        preprocess=ImagePreprocess.parse(preprocess),
        max_drop_pp=max_drop,
        batch_size=batch_size,
        task=task,
        format="tflite" if output_format == "tflite" else "onnx",
        io="float" if io == "float" else "int8",
        keep_float=keep_float,
        threshold=threshold,
        pinned_inputs=dict(parse_pinned_input(text) for text in pinned),
        batch_axes=dict(parse_batch_axis(text) for text in batch_axes),
        stream_states=tuple(parse_stream_state(text) for text in stream_states),
        class_names=class_names,
        unit=unit,
        latency_budget_ms=latency_budget_ms,
        html_path=html_path,
    )
    with progress_bars(enabled=not as_json and sys.stderr.isatty()) as bars:
        report = run_quantize(model, out_dir, calib=calib, evaluation=eval_path, board=board,
                              options=options, progress=bars)
    if as_json:
        click.echo(report.to_json())
    else:
        render_quantize_report(report, Console())
    if report.budget.exceeded:
        budget = report.budget
        reason = ("no task metric for the first output (give labels, or --task)" if budget.drop_pp is None
                  else f"{budget.metric} dropped {budget.drop_pp:.2f} pp")
        click.echo(f"error: accuracy budget exceeded: {reason} > --max-drop {budget.max_drop_pp:g} pp", err=True)
        sys.exit(EXIT_BUDGET_EXCEEDED)
