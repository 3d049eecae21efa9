"""The sample models wedge ships: a digits CNN and a ring PPG-quality classifier, with their data.

Their files live next to this module; `python -m wedge.samples.make` rebuilds them byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from wedge.errors import WedgeError

SAMPLES_DIR: Final = Path(__file__).resolve().parent


class SampleError(WedgeError):
    """A sample was asked for that wedge does not ship, or could not be made."""


@dataclass(frozen=True)
class Sample:
    """One shipped model with its calibration and evaluation data.

    The .npz files hold the model input under `input_name` ([n, *input_shape] float32); the eval file also
    holds `labels` (int64 class indices into `labels`).
    """

    name: str
    model_path: Path
    calib_path: Path
    eval_path: Path
    description: str
    task: str
    labels: tuple[str, ...]
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    min_accuracy: float


def _sample(
    name: str,
    *,
    description: str,
    labels: tuple[str, ...],
    input_name: str,
    input_shape: tuple[int, ...],
    min_accuracy: float,
) -> Sample:
    # One naming scheme for the three files, so make.py and the loaders cannot disagree.
    return Sample(
        name=name,
        model_path=SAMPLES_DIR / f"{name}.onnx",
        calib_path=SAMPLES_DIR / f"{name}_calib.npz",
        eval_path=SAMPLES_DIR / f"{name}_eval.npz",
        description=description,
        task="classification",
        labels=labels,
        input_name=input_name,
        input_shape=input_shape,
        output_name="logits",
        min_accuracy=min_accuracy,
    )


DIGITS: Final = _sample(
    "digits",
    description=(
        "CNN on scikit-learn's 8x8 handwritten digits (pixels scaled to [0, 1]): "
        "2 conv3x3 + maxpool + 2 dense, ~38k parameters."
    ),
    labels=tuple(str(d) for d in range(10)),
    input_name="input",
    input_shape=(1, 8, 8),
    min_accuracy=0.97,
)

PPG_QUALITY: Final = _sample(
    "ppg_quality",
    description=(
        "Ring PPG signal-quality classifier: 4 s windows at 50 Hz of real PPG (heartpy recordings), "
        "z-scored, labelled good / motion artifact / no contact; 3 conv1d + global average pool + dense, "
        "~2k parameters."
    ),
    labels=("good", "motion artifact", "no contact"),
    input_name="ppg",
    input_shape=(1, 200),
    min_accuracy=0.90,
)

SAMPLES: Final = MappingProxyType({s.name: s for s in (DIGITS, PPG_QUALITY)})
# What `wedge quantize` and `wedge demo` use when given no model: the sample the default board (a ring, with a PPG
# sensor and no camera) runs.
DEFAULT_SAMPLE: Final[str] = PPG_QUALITY.name


def get_sample(name: str) -> Sample:
    """The shipped sample called `name`; SampleError names the known ones otherwise."""
    try:
        return SAMPLES[name]
    except KeyError:
        known = ", ".join(sorted(SAMPLES))
        raise SampleError(f"unknown sample {name!r}; known samples: {known}") from None


def sample_path(name: str) -> Path:
    """The path of the shipped sample model (.onnx) called `name`."""
    return get_sample(name).model_path
