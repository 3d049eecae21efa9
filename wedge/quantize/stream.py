"""Streaming models (a recurrent state fed back each step): the states the model itself produces, in order.

Samples are consecutive steps of one stream. Calibrating on the fp32 model's own states, and evaluating fp32 and
int8 each on their own fed-back states, measures the error a device accumulates, not a teacher-forced one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wedge.quantize.calibration import ArraySampleSet, SampleSet
from wedge.quantize.errors import QuantizeError
from wedge.runtime.engines import Engine

StatePairs = Sequence[tuple[str, str]]


def check_pairs(pairs: StatePairs, inputs: Sequence[str], outputs: Sequence[str]) -> None:
    for source, target in pairs:
        if source not in inputs:
            raise QuantizeError(f"--stream-state {source}={target}: {source!r} is not an input of the model "
                                f"({', '.join(inputs)})")
        if target not in outputs:
            raise QuantizeError(f"--stream-state {source}={target}: {target!r} is not an output of the model "
                                f"({', '.join(outputs)})")


def fed_back(previous: dict[str, np.ndarray] | None, batch: dict[str, np.ndarray],
             pairs: StatePairs) -> dict[str, np.ndarray]:
    """This step's feeds: the data's, with each state input replaced by the previous step's state output."""
    if previous is None:
        return batch
    feeds = dict(batch)
    for source, target in pairs:
        feeds[source] = previous[target].astype(batch[source].dtype).reshape(batch[source].shape)
    return feeds


def streamed_samples(engine: Engine, samples: SampleSet, pairs: StatePairs) -> SampleSet:
    """`samples` with every state input replaced by the state `engine` produced at the step before."""
    arrays: dict[str, list[np.ndarray]] = {}
    previous: dict[str, np.ndarray] | None = None
    for batch in samples.batches(1):
        feeds = fed_back(previous, batch, pairs)
        previous = engine.run(feeds)
        for name, value in feeds.items():
            arrays.setdefault(name, []).append(value)
    return ArraySampleSet({k: np.concatenate(v) for k, v in arrays.items()}, samples.labels,
                          f"{samples.source} (states streamed by the fp32 model)")
