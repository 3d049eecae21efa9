"""Stage 1: load a float ONNX model, check it, and preprocess it for the quantizer.

Upgrades the opset to >= 13, fixes dynamic shapes, runs shape inference and ORT's `quant_pre_process`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import onnx
from onnx import version_converter

from wedge.errors import first_line
from wedge.quantize.errors import ModelLoadError
from wedge.quantize.fold import fold_batch_norms
from wedge.quantize.interface import batch_first, pin_inputs
from wedge.runtime.quiet import quiet_onnxruntime

# onnxruntime writes per-channel QDQ with an `axis` attribute that DequantizeLinear only has from
# opset 13 on; on opset 11 the quantizer silently produces a model that fails to load.
MIN_OPSET: Final = 13
MAX_NAME_CHARS: Final = 64
# Bytes 4-8 of a TFLite flatbuffer (its file identifier).
TFLITE_IDENTIFIER: Final = b"TFL3"

_DEFAULT_DOMAINS: Final = ("", "ai.onnx")
# Domains whose ops onnxruntime's CPU provider implements (contrib ops); anything else is custom.
_ORT_DOMAINS: Final = ("com.microsoft", "com.microsoft.nchwc", "ai.onnx.ml")


@dataclass(frozen=True)
class InputSpec:
    """A model input as the pipeline feeds it: batch dim first, the rest fixed."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    batch_dynamic: bool

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: the input shape without its batch dimension."""
        return self.shape[1:]


@dataclass(frozen=True)
class PreparedModel:
    """The float model after preprocessing, ready for calibration and quantization."""

    source: Path
    path: Path
    inputs: tuple[InputSpec, ...]
    output_names: tuple[str, ...]
    opset_in: int
    opset: int
    notes: tuple[str, ...]


def parse_input_shape(text: str) -> tuple[str | None, tuple[int, ...]]:
    """Parse `--input-shape` text: `1x3x96x96` or `name:1x3x96x96` (commas also accepted)."""
    name: str | None = None
    dims_text = text.strip()
    if ":" in dims_text:
        name, dims_text = dims_text.rsplit(":", 1)
        name = name.strip() or None
    try:
        dims = tuple(int(d) for d in dims_text.replace(",", "x").split("x") if d.strip())
    except ValueError:
        raise ModelLoadError(f"--input-shape {text!r}: expected dims like 1x3x96x96 or name:1x3x96x96") from None
    if not dims or any(d <= 0 for d in dims):
        raise ModelLoadError(f"--input-shape {text!r}: every dimension must be a positive integer")
    return name, dims


def load_onnx(path: Path) -> onnx.ModelProto:
    """Read and check an ONNX file; every failure is a one-line ModelLoadError."""
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelLoadError(f"model path is not a file: {path}")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file is empty: {path}")
    with path.open("rb") as handle:
        head = handle.read(8)
    if head[4:8] == TFLITE_IDENTIFIER:
        raise ModelLoadError(f"{path.name} is a TFLite model; wedge quantize takes float ONNX: convert it first "
                             f"without TensorFlow (pip install tflite2onnx; tflite2onnx {path.name} "
                             f"{path.stem}.onnx)")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError, but truncated files raise others too
        raise ModelLoadError(f"{path.name} is not a valid ONNX model (truncated or another format?): "
                             f"{first_line(exc)}") from None
    if model.ir_version <= 0 or not model.graph.node or not model.graph.output:
        raise ModelLoadError(f"{path.name} is not a valid ONNX model: no graph (truncated or another format?)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelLoadError(f"{path.name} fails the ONNX checker: {first_line(exc)}") from None
    _check_ops(model, path.name)
    return model


def _check_ops(model: onnx.ModelProto, label: str) -> None:
    opsets = {o.domain: o.version for o in model.opset_import}
    for node in model.graph.node:
        domain = node.domain or ""
        where = f"node {node.name or '(unnamed)'!r}"
        if domain in _DEFAULT_DOMAINS:
            version = opsets.get(domain, opsets.get("", opsets.get("ai.onnx", MIN_OPSET)))
            try:
                onnx.defs.get_schema(node.op_type, version, "")
            except onnx.defs.SchemaError:
                raise ModelLoadError(f"{label}: {where} uses op {node.op_type!r}, which is not an ONNX op "
                                     f"at opset {version}; re-export the model with standard ops") from None
        elif domain not in _ORT_DOMAINS:
            raise ModelLoadError(f"{label}: {where} uses custom op '{domain}::{node.op_type}', which onnxruntime "
                                 f"cannot run; re-export the model without it or replace it with standard ops")


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default ONNX domain the model imports."""
    for o in model.opset_import:
        if o.domain in _DEFAULT_DOMAINS:
            return int(o.version)
    raise ModelLoadError("model imports no default-domain opset")


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def fix_input_shapes(
    model: onnx.ModelProto, overrides: Mapping[str | None, tuple[int, ...]]
) -> tuple[tuple[InputSpec, ...], list[str]]:
    """Apply `--input-shape` overrides and return the inputs; any dynamic dim past the batch is an error."""
    inputs = _graph_inputs(model)
    names = [i.name for i in inputs]
    notes: list[str] = []
    if None in overrides and len(inputs) != 1:
        raise ModelLoadError(f"the model has {len(inputs)} inputs ({', '.join(names)}): "
                             "name the input in --input-shape, e.g. name:1x3x96x96")
    for key in overrides:
        if key is not None and key not in names:
            raise ModelLoadError(f"--input-shape names input {key!r}, but the model's inputs are {', '.join(names)}")
    specs: list[InputSpec] = []
    for value_info in inputs:
        tensor_type = value_info.type.tensor_type
        if not tensor_type.HasField("shape"):
            raise ModelLoadError(f"input {value_info.name!r} has no shape; give one with --input-shape")
        dims = tensor_type.shape.dim
        wanted = overrides.get(value_info.name, overrides.get(None)) if overrides else None
        if wanted is not None:
            if len(wanted) != len(dims):
                raise ModelLoadError(f"--input-shape for {value_info.name!r} has {len(wanted)} dims, "
                                     f"the model's input has {len(dims)}")
            for dim, size in zip(dims, wanted, strict=True):
                if dim.HasField("dim_value") and dim.dim_value > 0 and dim.dim_value != size:
                    raise ModelLoadError(f"--input-shape {'x'.join(map(str, wanted))} contradicts the fixed shape "
                                         f"of input {value_info.name!r} ({_dims_text(dims)})")
                dim.Clear()
                dim.dim_value = size
            notes.append(f"input {value_info.name!r} fixed to {'x'.join(map(str, wanted))}")
        shape: list[int] = []
        batch_dynamic = False
        for axis, dim in enumerate(dims):
            fixed = dim.HasField("dim_value") and dim.dim_value > 0
            if fixed:
                shape.append(int(dim.dim_value))
            elif axis == 0:
                # A symbolic batch is normal (exported with dynamic_axes); we feed batches along it.
                batch_dynamic = True
                shape.append(1)
            else:
                raise ModelLoadError(f"input {value_info.name!r} has a dynamic dimension ({_dims_text(dims)}); "
                                     "give a fixed shape with --input-shape, e.g. --input-shape "
                                     f"{value_info.name}:1x{'x'.join('?' for _ in dims[1:])}")
        elem_type = tensor_type.elem_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
        specs.append(InputSpec(value_info.name, tuple(shape), dtype, batch_dynamic))
    return tuple(specs), notes


def _dims_text(dims: Sequence[onnx.TensorShapeProto.Dimension]) -> str:
    return "x".join(str(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
                    for d in dims)


def upgrade_opset(model: onnx.ModelProto, label: str) -> tuple[onnx.ModelProto, list[str]]:
    """Convert the model to opset MIN_OPSET when it is older."""
    opset = default_opset(model)
    if opset >= MIN_OPSET:
        return model, []
    try:
        upgraded = version_converter.convert_version(model, MIN_OPSET)
        onnx.checker.check_model(upgraded)
    except Exception as exc:
        raise ModelLoadError(f"{label}: cannot upgrade opset {opset} to {MIN_OPSET} (needed for per-channel int8): "
                             f"{first_line(exc)}") from None
    return upgraded, [f"opset upgraded from {opset} to {MIN_OPSET} (per-channel QDQ needs >= {MIN_OPSET})"]


def shorten_names(model: onnx.ModelProto, limit: int = MAX_NAME_CHARS) -> list[str]:
    """Rename nodes and inner tensors whose names exceed `limit` chars; graph inputs and outputs keep theirs.

    Converters (tflite2onnx, tf2onnx) name tensors after every fused TF op, hundreds of characters each; the
    quantizer copies a name into up to six new ones, so they would outweigh the int8 weights in the file.
    """
    graph = model.graph
    keep = {v.name for v in [*graph.input, *graph.output]}
    renames: dict[str, str] = {}
    for index, init in enumerate(graph.initializer):
        if len(init.name) > limit and init.name not in keep:
            renames[init.name] = f"w{index}_{init.name[-24:].replace('/', '_').replace(';', '_')}"
    for index, node in enumerate(graph.node):
        for out in node.output:
            if len(out) > limit and out not in keep:
                renames[out] = f"{node.op_type.lower()}{index}_out"
    count = 0
    for index, node in enumerate(graph.node):
        if len(node.name) > limit:
            node.name = f"{node.op_type.lower()}{index}"
            count += 1
        node.input[:] = [renames.get(i, i) for i in node.input]
        node.output[:] = [renames.get(o, o) for o in node.output]
    for init in graph.initializer:
        init.name = renames.get(init.name, init.name)
    for value in graph.value_info:
        value.name = renames.get(value.name, value.name)
    if not renames and not count:
        return []
    return [f"shortened {len(renames) + count} names longer than {limit} characters (converter-generated)"]


def _needs_symbolic_shapes(model: onnx.ModelProto) -> bool:
    """True when ONNX's own shape inference leaves a tensor without a rank or with unknown dims.

    ORT's symbolic shape inference handles those, but it imports sympy (tens of MB): use it only then.
    """
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return True
    graph = inferred.graph
    batch_symbols = {d.dim_param for i in graph.input for d in i.type.tensor_type.shape.dim[:1] if d.dim_param}
    known = {v.name: v for v in [*graph.value_info, *graph.output, *graph.input]}
    known.update({i.name: None for i in graph.initializer})
    for node in graph.node:
        for name in node.output:
            value = known.get(name, "missing")
            if value is None:
                continue
            if value == "missing" or not value.type.tensor_type.HasField("shape"):
                return True
            for dim in value.type.tensor_type.shape.dim:
                if not dim.HasField("dim_value") and dim.dim_param not in batch_symbols:
                    return True
    return False


def preprocess(model: onnx.ModelProto, out_path: Path) -> list[str]:
    """Run ORT's `quant_pre_process` (shape inference, constant folding); on failure retry without graph
    optimization, then without symbolic shape inference (which asserts on some graphs, e.g. weights inside `If`
    branches), as onnxruntime's own tool allows."""
    from onnxruntime.quantization import quant_pre_process

    # quant_pre_process rewrites a ModelProto it is given; hand it a file so a retry starts clean.
    source = out_path.with_suffix(".source.onnx")
    onnx.save(model, str(source))
    symbolic = _needs_symbolic_shapes(model)
    attempts = [(True, symbolic), (False, symbolic)]
    if symbolic:
        attempts += [(True, False), (False, False)]
    failures: list[str] = []
    try:
        for optimize, with_symbolic in attempts:
            try:
                with quiet_onnxruntime():
                    quant_pre_process(str(source), str(out_path), skip_optimization=not optimize,
                                      skip_symbolic_shape=not with_symbolic)
            except Exception as exc:  # ORT's tools raise whatever their passes raise (AssertionError, too)
                failures.append(first_line(exc) or type(exc).__name__)
                continue
            return _preprocess_notes(optimize, with_symbolic, symbolic, failures)
    finally:
        source.unlink(missing_ok=True)
    raise ModelLoadError(f"shape inference failed: {failures[-1]}")


def _preprocess_notes(optimized: bool, symbolic: bool, wanted_symbolic: bool, failures: list[str]) -> list[str]:
    notes: list[str] = []
    if not optimized:
        notes.append(f"graph optimization skipped ({failures[0]})")
    if wanted_symbolic and not symbolic:
        notes.append(f"symbolic shape inference skipped ({failures[0]}); shapes from ONNX's own inference")
    return notes


def check_runs(path: Path, label: str) -> None:
    """Open the model in onnxruntime, so ops it cannot run fail here and not mid-calibration."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelLoadError(f"{label}: onnxruntime cannot run this model: {first_line(exc)}") from None


def prepare_model(
    source: Path,
    workdir: Path,
    input_shapes: Mapping[str | None, tuple[int, ...]] | None = None,
    *,
    pinned_inputs: Mapping[str, float] | None = None,
    batch_axes: Mapping[str, int] | None = None,
) -> PreparedModel:
    """Load, check and preprocess `source` into `workdir`; returns where the prepared model is. `pinned_inputs`
    become constants; inputs and outputs in `batch_axes` are fed batch first (--input-shape too)."""
    model = load_onnx(source)
    opset_in = default_opset(model)
    notes = pin_inputs(model, pinned_inputs or {})
    notes += batch_first(model, batch_axes or {})
    inputs, shape_notes = fix_input_shapes(model, input_shapes or {})
    notes += shape_notes
    model, upgrade_notes = upgrade_opset(model, source.name)
    notes += upgrade_notes
    notes += shorten_names(model)
    folded = fold_batch_norms(model)
    if folded:
        notes.append(f"folded {folded} BatchNormalization into the convolution before each")
    # A fixed name inside the private work folder: the source's own name may not be UTF-8, which onnxruntime needs.
    prepared_path = workdir / "model.prepared.onnx"
    notes += preprocess(model, prepared_path)
    prepared = onnx.load(str(prepared_path))
    if split_activation_bias(prepared) + name_nodes(prepared):
        onnx.save(prepared, str(prepared_path))
    check_runs(prepared_path, source.name)
    return PreparedModel(
        source=source,
        path=prepared_path,
        inputs=inputs,
        output_names=tuple(o.name for o in prepared.graph.output),
        opset_in=opset_in,
        opset=default_opset(prepared),
        notes=tuple(notes),
    )


def split_activation_bias(model: onnx.ModelProto) -> int:
    """Split each Gemm whose C is an activation (onnxruntime's MatMul+Add fusion writes them) back into MatMul
    and Add, in place: the quantizer then gives the product its own int8 grid, as an int8 kernel needs."""
    initializers = {i.name for i in model.graph.initializer}
    split = 0
    for node in list(model.graph.node):
        if node.op_type != "Gemm" or len(node.input) < 3 or not node.input[2] or node.input[2] in initializers:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            continue
        product = f"{node.output[0]}_product"
        weights = node.input[1]
        nodes = []
        if attrs.get("transB", 0):
            weights = f"{node.input[1]}_transposed"
            nodes.append(onnx.helper.make_node("Transpose", [node.input[1]], [weights], name=f"{node.name}_wt"))
        nodes += [onnx.helper.make_node("MatMul", [node.input[0], weights], [product], name=f"{node.name}_matmul"),
                  onnx.helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_add")]
        position = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        for offset, new in enumerate(nodes):
            model.graph.node.insert(position + offset, new)
        split += 1
    return split


def load_prepared(prepared: PreparedModel) -> onnx.ModelProto:
    """The prepared model's graph (weights left on disk when external)."""
    return onnx.load(str(prepared.path), load_external_data=False)


def name_nodes(model: onnx.ModelProto) -> int:
    """Give every unnamed node a unique name (`conv_12`), so reports and --keep-float can address it."""
    taken = {n.name for n in model.graph.node if n.name}
    named = 0
    for index, node in enumerate(model.graph.node):
        if node.name:
            continue
        candidate = f"{node.op_type.lower()}_{index}"
        while candidate in taken:
            candidate += "_"
        node.name = candidate
        taken.add(candidate)
        named += 1
    return named



