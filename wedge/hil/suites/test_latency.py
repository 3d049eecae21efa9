"""Latency and throughput as MLPerf Tiny measures them: `infer N W`, time between the two `m-lap-us`, median.

A virtual board's `m-lap-us` is a wall clock and its inferences take its profile's cycle model (MACs x
cycles/MAC / clock) on it, or the host's compute time when that is longer (the `m-timer` line says so); the
host's compute time of the same runs is recorded separately.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from wedge.hil.metrics import latency
from wedge.hil.reference import HostReference

REPEATS: Final[int] = 5
RUNS: Final[int] = 10
WARMUP_RUNS: Final[int] = 2


def test_latency_median_over_repeated_runs(board: Any, flashed: Any, dut: Any, hil_model: Any,
                                           hil_record: Any) -> None:
    """Latency: median of repeated `infer` runs, and throughput."""
    reference = HostReference(hil_model)
    try:
        sample = b"".join(np.zeros(spec.shape, dtype=spec.dtype).tobytes() for spec in reference.inputs)
    finally:
        reference.close()
    profile = dut.profile()
    dut.load(sample)
    per_run, walls, trips = [], [], []
    for _ in range(REPEATS):
        result = dut.infer(RUNS, WARMUP_RUNS, timeout_s=60)
        per_run.append(result.latency_us)
        trips.append(result.host_round_trip_s)
        if result.device_host_wall_us is not None:
            walls.append(result.device_host_wall_us / RUNS)
    source = f"virtual board: {profile.timer}" if profile.timer else "device timer (m-lap-us)"
    figures = latency(per_run, RUNS, WARMUP_RUNS, source, walls, trips)
    hil_record("latency", figures.to_dict())
    assert figures.median_us > 0, "the board reported no time between its laps"
    if board.virtual:
        modelled = board.entry.profile.estimate_latency_s(_macs(hil_model)) * 1e6
        host = float(np.median(walls)) if walls else 0.0
        # At least the cycle model; at most that (or the host's compute time) plus the pacing's own overhead.
        assert modelled - 1 <= figures.median_us <= max(modelled, host) * 1.25 + 200, (
            f"the virtual board reports {figures.median_us} us; its cycle model says {modelled:.0f} us")


def _macs(model: Any) -> int:
    from wedge.runtime.artifacts import inspect_model

    return inspect_model(model).macs
