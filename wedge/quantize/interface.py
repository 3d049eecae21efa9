"""The model's inputs and outputs as the pipeline feeds them: inputs pinned to a constant, and a batch axis other
than 0 moved first (a recurrent state [layers, batch, units]).

`--input sr=const:16000` makes the input an initializer (the board runs one sample rate); `--batch-axis state=1`
adds a Transpose after the input (or before the output), so data, calibration and evaluation stay batch-first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import onnx
from onnx import helper, numpy_helper

from wedge.quantize.errors import ModelLoadError

CONST_PREFIX: Final = "const:"
_INNER_SUFFIX: Final = "__batch_first"


def parse_pinned_input(text: str) -> tuple[str, float]:
    """`--input name=const:VALUE` -> (name, VALUE)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.startswith(CONST_PREFIX):
        raise ModelLoadError(f"--input {text!r}: expected name=const:VALUE, e.g. sr=const:16000")
    try:
        return name.strip(), float(value.removeprefix(CONST_PREFIX))
    except ValueError:
        raise ModelLoadError(f"--input {text!r}: {value.removeprefix(CONST_PREFIX)!r} is not a number") from None


def parse_batch_axis(text: str) -> tuple[str, int]:
    """`--batch-axis name=AXIS` -> (name, AXIS)."""
    name, sep, value = text.partition("=")
    try:
        axis = int(value)
    except ValueError:
        axis = -1
    if not sep or not name.strip() or axis < 0:
        raise ModelLoadError(f"--batch-axis {text!r}: expected name=AXIS with AXIS >= 0, e.g. state=1")
    return name.strip(), axis


def parse_stream_state(text: str) -> tuple[str, str]:
    """`--stream-state IN=OUT` -> (input name, output name)."""
    source, sep, target = text.partition("=")
    if not sep or not source.strip() or not target.strip():
        raise ModelLoadError(f"--stream-state {text!r}: expected INPUT=OUTPUT, e.g. state=stateN")
    return source.strip(), target.strip()


def _graph_inputs(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    initializers = {i.name for i in model.graph.initializer}
    return {v.name: v for v in model.graph.input if v.name not in initializers}


def pin_inputs(model: onnx.ModelProto, pinned: Mapping[str, float]) -> list[str]:
    """Turn each pinned input into a constant of its shape (a symbolic dim becomes 1) and type, in place."""
    inputs = _graph_inputs(model)
    notes: list[str] = []
    for name, value in pinned.items():
        if name not in inputs:
            raise ModelLoadError(f"--input names {name!r}, but the model's inputs are {', '.join(inputs)}")
        tensor_type = inputs[name].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        model.graph.input.remove(inputs[name])
        model.graph.initializer.append(numpy_helper.from_array(np.full(dims, value, dtype=dtype), name))
        notes.append(f"input {name!r} pinned to {value:g} ({np.dtype(dtype)}, shape {dims})")
    return notes


def batch_first(model: onnx.ModelProto, axes: Mapping[str, int]) -> list[str]:
    """Move the batch axis of the named inputs and outputs to the front, in place, with a Transpose inside."""
    inputs = _graph_inputs(model)
    outputs = {v.name: v for v in model.graph.output}
    notes: list[str] = []
    for name, axis in axes.items():
        if axis == 0:
            continue
        value = inputs.get(name) or outputs.get(name)
        if value is None:
            raise ModelLoadError(f"--batch-axis names {name!r}, which is neither an input nor an output of the model")
        dims = value.type.tensor_type.shape.dim
        rank = len(dims)
        if axis >= rank:
            raise ModelLoadError(f"--batch-axis {name}={axis}: {name!r} has only {rank} axes")
        inner = f"{name}{_INNER_SUFFIX}"
        order = [axis, *[i for i in range(rank) if i != axis]]  # batch-first axis j holds model axis order[j]
        if name in inputs:
            for node in model.graph.node:
                node.input[:] = [inner if i == name else i for i in node.input]
            to_model = [order.index(i) for i in range(rank)]
            model.graph.node.insert(0, helper.make_node("Transpose", [name], [inner], perm=to_model,
                                                        name=f"{name}_to_model_layout"))
        else:
            for node in model.graph.node:
                node.output[:] = [inner if o == name else o for o in node.output]
                node.input[:] = [inner if i == name else i for i in node.input]
            model.graph.node.append(helper.make_node("Transpose", [inner], [name], perm=order,
                                                     name=f"{name}_to_batch_first"))
        stale = [v for v in model.graph.value_info if v.name == name]
        for entry in stale:
            model.graph.value_info.remove(entry)
        moved = [onnx.TensorShapeProto.Dimension() for _ in range(rank)]
        for position, source in enumerate(order):
            moved[position].CopyFrom(dims[source])
        del dims[:]
        dims.extend(moved)
        notes.append(f"{'input' if name in inputs else 'output'} {name!r} is fed batch first (its axis {axis} "
                     "moved to the front)")
    return notes
