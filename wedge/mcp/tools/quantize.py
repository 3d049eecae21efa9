"""Tools over the int8 pipeline (`wedge.quantize`): quantize a float ONNX model, export an int8 ONNX to TFLite.

Both are long: they report progress and stop when the client cancels (the pipeline works in a hidden folder
and moves files into place only when it succeeds, so a cancelled run leaves nothing). One job runs at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

from wedge.boards import DEFAULT_BOARD
from wedge.mcp.errors import McpError
from wedge.mcp.policy import Policy
from wedge.mcp.progress import ProgressRelay, StageProgress, progress_relay, run_in_worker
from wedge.mcp.tools.base import WRITES_FILES, wedge_tool
from wedge.mcp.tools.boards import load_board
from wedge.mcp.tools.models import bundled, model_path
from wedge.quantize.calibrate import DEFAULT_METHODS, Method
from wedge.quantize.calibration import ImagePreprocess
from wedge.quantize.load import parse_input_shape
from wedge.quantize.pipeline import REPORT_NAME, QuantizeOptions, run_quantize
from wedge.quantize.report import QuantizeReport
from wedge.quantize.tflite import ExportResult, export_tflite

MethodName = Literal["minmax", "percentile", "entropy"]
TaskName = Literal["auto", "classification", "regression", "reconstruction"]


class QuantizeResult(BaseModel):
    """The report `wedge quantize --json` prints (also written as report.json), and the files the run wrote."""

    report: dict[str, Any]
    files: list[str]
    budget_exceeded: bool


class ExportReport(BaseModel):
    """What the TFLite export wrote and measured: size, ops, validation in LiteRT / TFLite-Micro, arena."""

    export: dict[str, Any]
    files: list[str]


def _options(methods: list[MethodName] | None, calib_samples: int | None, eval_samples: int | None,
             input_shapes: list[str] | None, preprocess: list[str] | None, max_drop_pp: float | None,
             batch_size: int, task: TaskName, output_format: Literal["onnx", "tflite"],
             io: Literal["int8", "float"]) -> QuantizeOptions:
    if max_drop_pp is not None and max_drop_pp < 0:
        raise McpError("max_drop_pp must be >= 0 percentage points")
    if io != "int8" and output_format != "tflite":
        raise McpError("io sets the .tflite's input/output type: use it with format tflite")
    return QuantizeOptions(
        methods=tuple(Method(m) for m in methods or ()) or DEFAULT_METHODS,
        calib_samples=calib_samples, eval_samples=eval_samples,
        input_shapes=dict(parse_input_shape(text) for text in input_shapes or ()),
        preprocess=ImagePreprocess.parse(tuple(preprocess or ())), max_drop_pp=max_drop_pp,
        batch_size=batch_size, task=task, format=output_format, io=io,
    )


def _written(policy: Policy, report: QuantizeReport, out_dir: Path) -> list[str]:
    files = [Path(report.output), out_dir / REPORT_NAME]
    if report.tflite is not None:
        files.insert(1, Path(report.tflite.path))
    return [policy.relative(path) for path in files]


def _quantize(model: Path, out_dir: Path, calib: Path, evaluation: Path | None, board: str | None,
              options: QuantizeOptions, relay: ProgressRelay) -> QuantizeReport:
    profile = load_board(board) if board is not None else None
    return run_quantize(model, out_dir, calib=calib, evaluation=evaluation, board=profile, options=options,
                        progress=StageProgress(relay))


def _export(model: Path, out: Path, io: Literal["int8", "float"], relay: ProgressRelay) -> ExportResult:
    relay.post_from_thread(0, 1, f"exporting {model.name} to TFLite", first=True)
    result = export_tflite(model, out, io=io)
    relay.post_from_thread(1, 1, f"wrote {out.name}", first=True)
    return result


def register(server: MCPServer, policy: Policy) -> None:
    # The pipeline uses every core: a second job waits for the first rather than halving both.
    jobs = anyio.Lock()

    @wedge_tool(server, WRITES_FILES)
    async def quantize(ctx: Context, out: str, model: str | None = None, sample: str | None = None,
                       calib: str | None = None, eval_set: str | None = None, board: str | None = DEFAULT_BOARD,
                       methods: list[MethodName] | None = None, calib_samples: int | None = None,
                       eval_samples: int | None = None, max_drop_pp: float | None = None,
                       task: TaskName = "auto", format: Literal["onnx", "tflite"] = "onnx",
                       io: Literal["int8", "float"] = "int8", batch_size: int = 32,
                       input_shapes: list[str] | None = None, preprocess: list[str] | None = None) -> QuantizeResult:
        """Quantize a float ONNX model to int8 QDQ ONNX (format tflite: also an int8 .tflite for TFLite-Micro),
        as `wedge quantize`: calibration methods searched and scored on the eval set, fp32 vs int8 metrics,
        per-layer noise, size, and the fit on `board`. Writes <stem>.int8.onnx (.tflite) and report.json into
        `out` (a folder in the workspace). `model` is a workspace path (then `calib` is required), or `sample`
        a bundled model with its own calibration and eval data; `eval_set` defaults to the calibration data.
        Long: sends progress, and can be cancelled (nothing is left behind). Needs --allow-write."""
        out_dir = policy.writable(out, "quantize", "output folder")
        source = model_path(policy, model, sample)
        calib_path = policy.readable(calib, "calibration data") if calib is not None else None
        eval_path = policy.readable(eval_set, "evaluation data") if eval_set is not None else None
        if sample is not None:
            data = bundled(sample)
            calib_path, eval_path = calib_path or data.calib_path, eval_path or data.eval_path
        if calib_path is None:
            raise McpError("calib is required with a model (calibration data for the activation ranges)")
        options = _options(methods, calib_samples, eval_samples, input_shapes, preprocess, max_drop_pp, batch_size,
                           task, format, io)
        async with jobs, progress_relay(ctx) as relay:
            report = await run_in_worker(
                lambda: _quantize(source, out_dir, calib_path, eval_path, board, options, relay), relay)
        return QuantizeResult(report=report.to_dict(), files=_written(policy, report, out_dir),
                              budget_exceeded=report.budget.exceeded)

    @wedge_tool(server, WRITES_FILES, name="export_tflite")
    async def export_tflite_model(ctx: Context, model: str, out: str | None = None,
                                  io: Literal["int8", "float"] = "int8") -> ExportReport:
        """Lower an int8 QDQ ONNX (from quantize) to an int8 .tflite for TFLite-Micro without TensorFlow, validated
        in LiteRT and TFLite-Micro against onnxruntime (on synthetic inputs over the int8 range) and with its
        TFLite-Micro arena measured. `out` defaults to the model's name with .tflite. Needs --allow-write."""
        source = policy.readable(model, "model")
        target = policy.writable(out if out is not None else str(source.with_suffix(".tflite")), "export_tflite")
        async with jobs, progress_relay(ctx) as relay:
            result = await run_in_worker(lambda: _export(source, target, io, relay), relay)
        return ExportReport(export=result.to_dict(), files=[policy.relative(result.path)])
