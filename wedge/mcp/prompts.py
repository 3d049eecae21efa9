"""Prompts: deploying a model to a board with the server's checks in order, and explaining what int8 cost."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer

from wedge.mcp.policy import Policy
from wedge.mcp.resources import read_report


def deploy_text(model: str, board: str) -> str:
    return f"""Deploy the model {model} to the board {board} safely with the wedge tools; stop at the first problem.

1. board_profile name={board}: note the model slot, the arena budget and the runtime.
2. check_fit on {model}: if it does not fit the slot or the arena, or the notes name missing TFLite-Micro
   kernels, stop and say why.
3. If {model} is a float ONNX: quantize it (format tflite for a TFLite-Micro board) into a new folder; report
   the accuracy drop and the worst layers, and stop if the drop is larger than the user accepts. Then
   check_fit again on the .tflite.
4. pack_image the .tflite for {board} with the user's signing key and a version newer than the board's
   (device_images shows what it runs). Note the image's SHA-256.
5. device_info on the board's port: the board name must be {board}, and its trusted key hash must be the key
   hash of the image (pack_image reports it).
6. Show the user the image, the version it replaces and the SHA-256, and ask before flashing.
7. flash with confirm_sha256 set to that SHA-256 only after the user agreed. Report the outcome: confirmed,
   or the rollback and its reason.
Never retry a refused flash with other arguments without telling the user what was refused and why."""


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a quantize report that say what int8 cost."""
    keep = ("source", "chosen_method", "evaluation", "onnxruntime_int8_kernels", "size", "worst_layers",
            "board_fit", "accuracy_budget", "notes")
    return {key: report[key] for key in keep if key in report}


def explain_text(path: str, report_text: str) -> str:
    try:
        report = json.loads(report_text)
    except ValueError:
        report = None
    if not isinstance(report, dict) or "evaluation" not in report:
        return f"{path} is not a quantize report (report.json written by `wedge quantize`)."
    figures = json.dumps(_figures(report), indent=2, default=str)
    return f"""Explain to an embedded engineer what the int8 conversion of {report.get('source', 'the model')} cost,
from the figures of its quantize report ({path}) below.

Say: the task metric of fp32 and int8 and the drop in percentage points (or, without labels, the top-1
agreement and SQNR); which calibration method won; how much smaller the model got; which layers add the most
noise and whether one stands out (a candidate to keep in float); whether onnxruntime's own int8 kernels on this
host lose more than exact int8 math (a host effect, not the board's); and whether it fits the board. Keep to the
numbers given; do not guess others.

{figures}"""


def register_prompts(server: MCPServer, policy: Policy) -> None:

    @server.prompt(name="deploy_model_safely", title="Deploy this model to this board safely")
    def deploy_model_safely(model: str, board: str) -> str:
        """Steps to check, quantize, sign and flash a model onto a board, asking the user before flashing."""
        return deploy_text(model, board)

    @server.prompt(name="explain_int8_cost", title="Explain what the int8 conversion cost")
    def explain_int8_cost(report: str) -> str:
        """Explain a quantize report.json (a workspace path): accuracy drop, size, noisy layers, board fit."""
        return explain_text(report, read_report(policy, report))
