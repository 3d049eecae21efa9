"""Stage 4: write the int8 QDQ model from calibrated ranges with onnxruntime's static quantizer.

Int8 activations (asymmetric), symmetric per-channel int8 weights, int32 biases: the TFLite int8 spec.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
from onnx import numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.calibrate import TensorsData, save_tensors_data

from wedge.errors import first_line
from wedge.quantize.errors import QuantizeError
from wedge.quantize.plan import QuantPlan
from wedge.runtime.quiet import quiet_onnxruntime

# Weights symmetric (zero point 0) per output channel, activations asymmetric: what TFLite-Micro's
# int8 kernels and CMSIS-NN expect, so the same ranges carry over to the .tflite export.
_EXTRA_OPTIONS = {"WeightSymmetric": True, "ActivationSymmetric": False}


def write_qdq_model(prepared_path: Path, ranges: TensorsData, out_path: Path, plan: QuantPlan | None = None) -> None:
    """Quantize `prepared_path` with precomputed `ranges` into `out_path` (int8 QDQ ONNX), the op types and
    float nodes as `plan` says (default: onnxruntime's op set, nothing kept float)."""
    plan = plan or QuantPlan()
    with tempfile.TemporaryDirectory(prefix="wedge-ranges-") as tmp, quiet_onnxruntime():
        # ORT's calibration cache is its public way to quantize with ranges computed elsewhere.
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(ranges, cache)
        try:
            quantize_static(
                str(prepared_path),
                str(out_path),
                None,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(plan.op_types),
                nodes_to_exclude=list(plan.float_nodes),
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=ranges.calibration_method,
                extra_options={**_EXTRA_OPTIONS, "ForceQuantizeNoInputCheck": plan.force_quantize_inputs},
                calibration_cache_path=cache,
            )
        except Exception as exc:
            raise QuantizeError(f"onnxruntime could not quantize the model: {first_line(exc)}") from None
    drop_zero_zero_points(out_path)


def drop_zero_zero_points(path: Path) -> int:
    """Remove all-zero zero points of constant DequantizeLinear inputs (weights, biases); returns how many.

    Zero is ONNX's default zero point, symmetric weights and int32 biases always have it, and a per-channel
    zero-point tensor per weight and per bias is a few percent of a small model's file. Activation zero
    points stay: a QuantizeLinear's zero point also fixes its output type.
    """
    model = onnx.load(str(path))
    initializers = {i.name: i for i in model.graph.initializer}
    dropped = 0
    for node in model.graph.node:
        if (node.op_type == "DequantizeLinear" and len(node.input) == 3 and node.input[0] in initializers
                and node.input[2] in initializers
                and not numpy_helper.to_array(initializers[node.input[2]]).any()):
            del node.input[2]
            dropped += 1
    used = {name for node in model.graph.node for name in node.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    onnx.save(model, str(path))
    return dropped
