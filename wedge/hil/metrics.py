"""Device-vs-host agreement and latency figures, as vendor validators and MLPerf Tiny report them.

Agreement compares the device's outputs with the host reference on the same .tflite; latency is the median of
repeated `infer N W` runs (after warm-up), throughput its inverse.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Agreement:
    samples: int
    rmse: float
    mae: float
    max_abs_error: float
    l2_relative_error: float
    cosine_similarity: float
    top1_agreement: float
    exact_samples: int
    device_accuracy: float | None
    host_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement(device: np.ndarray, host: np.ndarray, labels: np.ndarray | None) -> Agreement:
    """Compare [samples, outputs] arrays of dequantized outputs (labels: class per sample, or None)."""
    device = np.asarray(device, dtype=np.float64)
    host = np.asarray(host, dtype=np.float64)
    if device.shape != host.shape:
        raise ValueError(f"device outputs {device.shape} and host outputs {host.shape} differ in shape")
    diff = device - host
    host_norm = float(np.linalg.norm(host))
    norms = np.linalg.norm(device, axis=1) * np.linalg.norm(host, axis=1)
    cosines = np.where(norms > 0, np.sum(device * host, axis=1) / np.where(norms > 0, norms, 1), 1.0)
    device_top = device.argmax(axis=1)
    host_top = host.argmax(axis=1)
    return Agreement(
        samples=len(device),
        rmse=float(np.sqrt(np.mean(diff**2))),
        mae=float(np.mean(np.abs(diff))),
        max_abs_error=float(np.max(np.abs(diff))),
        l2_relative_error=float(np.linalg.norm(diff) / host_norm) if host_norm > 0 else float(np.linalg.norm(diff)),
        cosine_similarity=float(np.mean(cosines)),
        top1_agreement=float(np.mean(device_top == host_top)),
        exact_samples=int(np.sum(np.all(diff == 0, axis=1))),
        device_accuracy=None if labels is None else float(np.mean(device_top == labels)),
        host_accuracy=None if labels is None else float(np.mean(host_top == labels)),
    )


def confusion(predicted: np.ndarray, labels: np.ndarray, classes: int) -> list[list[int]]:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for truth, guess in zip(labels, predicted, strict=True):
        if 0 <= truth < classes and 0 <= guess < classes:
            matrix[truth, guess] += 1
    return matrix.tolist()


@dataclass(frozen=True)
class Latency:
    """Per-inference latency over `repeats` infer commands of `runs` each (after `warmup_runs`)."""

    repeats: int
    runs: int
    warmup_runs: int
    median_us: float
    min_us: float
    max_us: float
    throughput_ips: float
    per_repeat_us: tuple[float, ...]
    source: str
    host_wall_median_us: float | None
    host_round_trip_median_s: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["per_repeat_us"] = list(self.per_repeat_us)
        return data


def latency(per_repeat_us: list[float], runs: int, warmup_runs: int, source: str,
            host_wall_us: list[float], round_trips_s: list[float]) -> Latency:
    median = statistics.median(per_repeat_us)
    return Latency(
        repeats=len(per_repeat_us), runs=runs, warmup_runs=warmup_runs, median_us=median,
        min_us=min(per_repeat_us), max_us=max(per_repeat_us),
        throughput_ips=1e6 / median if median > 0 else float("inf"),
        per_repeat_us=tuple(per_repeat_us), source=source,
        host_wall_median_us=statistics.median(host_wall_us) if host_wall_us else None,
        host_round_trip_median_s=statistics.median(round_trips_s),
    )
