"""The real PPG recordings heartpy ships (three finger PPG records in ADC counts), read with numpy alone.

Read exactly as heartpy's `get_data` reads them, with heartpy's own sample-rate formulas, but without importing
heartpy (its import pulls in seconds of SciPy): the sample trainer and the virtual ring replay the same data.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from wedge.errors import WedgeError

# data.csv carries no timing; heartpy's documentation gives its rate.
DATA_RATE_HZ: Final[float] = 100.0
DATETIME_FORMAT: Final[str] = "%Y-%m-%d %H:%M:%S.%f"


class RecordingsError(WedgeError):
    """heartpy's recordings are not installed or cannot be read."""


@dataclass(frozen=True)
class Recording:
    """A raw PPG recording in ADC counts, sampled uniformly at rate_hz."""

    name: str
    signal: NDArray[np.float64]
    rate_hz: float


def heartpy_data_dir() -> Path | None:
    """The folder of heartpy's bundled recordings, found without importing heartpy; None when it is absent."""
    spec = importlib.util.find_spec("heartpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if all((folder / f"{name}.csv").is_file() for name in ("data", "data2", "data3")) else None


def _column(path: Path, name: str) -> NDArray[np.generic]:
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding=None)
    return np.asarray(table[name])


def heartpy_recordings(folder: Path | None = None) -> list[Recording]:
    """data (100 Hz), data2 (rate from its millisecond timer) and data3 (rate from its timestamps).

    The rates are heartpy's: samples over elapsed time. data3's timestamps tick in ~16 ms steps, too coarse to
    place single samples, so every recording is taken as uniformly sampled.
    """
    folder = folder or heartpy_data_dir()
    if folder is None:
        raise RecordingsError("heartpy's PPG recordings are not installed (pip install heartpy)")
    try:
        timer_ms = _column(folder / "data2.csv", "timer").astype(np.float64)
        stamps = np.asarray(_column(folder / "data3.csv", "datetime"), dtype="str")
        elapsed_s = (datetime.strptime(stamps[-1], DATETIME_FORMAT)
                     - datetime.strptime(stamps[0], DATETIME_FORMAT)).total_seconds()
        return [
            Recording("data", np.genfromtxt(folder / "data.csv", delimiter=",", dtype=np.float64), DATA_RATE_HZ),
            Recording("data2", _column(folder / "data2.csv", "hr").astype(np.float64),
                      float(len(timer_ms) / (timer_ms[-1] - timer_ms[0]) * 1000)),
            Recording("data3", _column(folder / "data3.csv", "hr").astype(np.float64), float(len(stamps) / elapsed_s)),
        ]
    except (OSError, ValueError, KeyError) as exc:
        raise RecordingsError(f"cannot read heartpy's recordings in {folder}: {exc}") from exc
