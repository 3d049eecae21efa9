"""The host reference: the same .tflite in LiteRT, its outputs dequantized as the device prints them.

Devices answer `m-results` in real values (int8 outputs dequantized with the tensor's scale and zero point);
the host does the same, so the two compare value for value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wedge.runtime.engines import Engine, TensorSpec, open_engine


def dequantized_outputs(specs: tuple[TensorSpec, ...], outputs: dict[str, np.ndarray]) -> np.ndarray:
    """All outputs of one sample, flattened in model order, as float32 real values."""
    values = []
    for spec in specs:
        array = np.asarray(outputs[spec.name])
        if spec.quant is not None and array.dtype.kind in "iu":
            array = spec.quant.dequantize(array)
        values.append(np.asarray(array, dtype=np.float32).ravel())
    return np.concatenate(values)


class HostReference:
    """LiteRT on the model file; `run(feeds)` gives one sample's outputs as the device reports them."""

    def __init__(self, model: Path) -> None:
        self.engine: Engine = open_engine(model, "litert")

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(self.engine.inputs)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return dequantized_outputs(tuple(self.engine.outputs), self.engine.run(feeds))

    def close(self) -> None:
        self.engine.close()
