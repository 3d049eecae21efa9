"""The engine interface shared by every runtime: feed validation, batch looping, and the Engine base class.

Backends implement `_invoke` on exactly-shaped feeds; feed validation and batch looping live here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import ClassVar

import numpy as np

from wedge.runtime.types import Dim, EngineError, TensorSpec


def _is_fixed(dim: Dim) -> bool:
    return isinstance(dim, int) and dim >= 0


class Engine(ABC):
    """A loaded model that runs feeds by input name and returns outputs by output name.

    Subclasses call `super().__init__()`, set `self._inputs` / `self._outputs` (the specs), and provide
    `_invoke` (one call whose feeds match the specs) and `_release` (free the runtime). When an input's batch dimension is
    fixed to 1 and a feed carries N > 1 samples, `run` loops over the samples and concatenates the
    outputs, because LiteRT and TFLM models are built batch-1.
    """

    kind: ClassVar[str]

    def __init__(self) -> None:
        self._closed = False
        self._inputs: tuple[TensorSpec, ...] = ()
        self._outputs: tuple[TensorSpec, ...] = ()

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @abstractmethod
    def _invoke(self, feeds: Mapping[str, np.ndarray]) -> Sequence[np.ndarray]:
        """Run once; feeds match the input specs exactly; return outputs in `self.outputs` order."""

    @abstractmethod
    def _release(self) -> None:
        """Free the runtime's resources; called once, by `close`."""

    def close(self) -> None:
        """Free the runtime; later `run` calls raise EngineError. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._release()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on `feeds`; the result is keyed by output name, in output order."""
        if self._closed:
            raise EngineError(f"the {self.kind} engine is closed")
        arrays, batch = self._validate(feeds)
        names = [spec.name for spec in self.outputs]
        if batch is None:
            results = self._invoke(arrays)
            return {name: np.asarray(out) for name, out in zip(names, results, strict=True)}
        per_sample: list[Sequence[np.ndarray]] = []
        for i in range(batch):
            sample = {
                name: (arr[i : i + 1] if self._loops_over(name) else arr) for name, arr in arrays.items()
            }
            per_sample.append(self._invoke(sample))
        return {
            name: _stack([np.asarray(outs[k]) for outs in per_sample])
            for k, name in enumerate(names)
        }

    def _loops_over(self, input_name: str) -> bool:
        spec = next(s for s in self.inputs if s.name == input_name)
        return bool(spec.shape) and spec.shape[0] == 1

    def _validate(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int | None]:
        """Check names, dtypes and shapes; return the arrays and the loop count (None: no loop)."""
        expected = {spec.name: spec for spec in self.inputs}
        unknown = [name for name in feeds if name not in expected]
        if unknown:
            raise EngineError(
                f"unknown input {unknown[0]!r}; the model's inputs are: {', '.join(expected) or 'none'}"
            )
        missing = [name for name in expected if name not in feeds]
        if missing:
            raise EngineError(f"missing input {missing[0]!r}; the model's inputs are: {', '.join(expected)}")
        arrays: dict[str, np.ndarray] = {}
        loop_counts: set[int] = set()
        for name, spec in expected.items():
            arr = np.asarray(feeds[name])
            if arr.dtype != spec.dtype:
                raise EngineError(f"input {name!r} has dtype {arr.dtype}, the model expects {spec.dtype}")
            if arr.ndim != len(spec.shape):
                raise EngineError(
                    f"input {name!r} has shape {list(arr.shape)}, the model expects {spec.shape_text()}"
                )
            for axis, (got, want) in enumerate(zip(arr.shape, spec.shape, strict=True)):
                if not _is_fixed(want) or got == want:
                    continue
                if axis == 0 and want == 1 and got > 1:
                    loop_counts.add(got)
                    continue
                raise EngineError(
                    f"input {name!r} has shape {list(arr.shape)}, the model expects {spec.shape_text()}"
                )
            arrays[name] = arr
        if len(loop_counts) > 1:
            raise EngineError(f"inputs disagree on the batch size: {sorted(loop_counts)}")
        if not loop_counts:
            return arrays, None
        batch = loop_counts.pop()
        # Every batch-1 input must carry the same N samples, else samples would pair up wrongly.
        for name, arr in arrays.items():
            if self._loops_over(name) and arr.shape[0] != batch:
                raise EngineError(f"input {name!r} has {arr.shape[0]} samples, other inputs have {batch}")
        return arrays, batch

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stack(outputs: list[np.ndarray]) -> np.ndarray:
    if outputs[0].ndim == 0:
        return np.stack(outputs)
    return np.concatenate(outputs, axis=0)
