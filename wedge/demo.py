"""`wedge demo` end to end, with no hardware: quantize a bundled sample, export it for TFLite-Micro, sign it with
a throwaway key, flash a virtual ring, run the HIL smoke suite on it, and stream its results over (virtual) BLE
into SQLite through a forced disconnect; every process is stopped at the end.

The ring is started here and handed to the bench by its port path, exactly as a real ring on a desk would be.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from wedge.boards import DEFAULT_BOARD
from wedge.boards import load as load_board
from wedge.errors import WedgeError
from wedge.firmware.flash.flasher import flash_image
from wedge.firmware.image.build import write_image_bytes
from wedge.firmware.image.keys import existing_or_new_keys
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.hil.flashing import model_arena_bytes, pack_model
from wedge.hil.runner import SMOKE_SUITES, run_bench
from wedge.hil.streaming import stream_check
from wedge.quantize.pipeline import QuantizeOptions, run_quantize, tflite_output_path
from wedge.samples import DEFAULT_SAMPLE, SAMPLES

DEMO_VERSION: Final[str] = "1.0.0"
DEMO_SAMPLES: Final[int] = 64
STREAM_S: Final[float] = 3.0


class DemoError(WedgeError):
    """A step of the demo failed; the message names the step."""


class DemoObserver(Protocol):
    def step(self, name: str) -> None: ...

    def done(self, name: str, detail: str) -> None: ...


@dataclass(frozen=True)
class DemoSummary:
    sample: str
    board: str
    workdir: Path
    steps: dict[str, str] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    hil: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    stream: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.hil.get("passed")) and self.stream.get("lost_records") == 0

    def to_dict(self) -> dict[str, Any]:
        return {"sample": self.sample, "board": self.board, "workdir": str(self.workdir), "steps": self.steps,
                "timings_s": {k: round(v, 2) for k, v in self.timings_s.items()}, "passed": self.passed,
                "wall_s": round(self.wall_s, 2), "hil": self.hil,
                "stream": {k: v for k, v in self.stream.items() if k not in ("seq", "arrival_s")}}


class _Steps:
    def __init__(self, observer: DemoObserver) -> None:
        self.observer = observer
        self.details: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    def run(self, name: str, work: Any) -> Any:
        self.observer.step(name)
        started = time.perf_counter()
        try:
            value, detail = work()
        except WedgeError as exc:
            raise DemoError(f"{name}: {exc}") from None
        self.timings[name] = time.perf_counter() - started
        self.details[name] = detail
        self.observer.done(name, detail)
        return value


def run_demo(workdir: Path, observer: DemoObserver, *, sample: str = DEFAULT_SAMPLE,
             board_name: str = DEFAULT_BOARD) -> DemoSummary:
    """Run every step in `workdir`; the virtual ring is stopped whatever happens."""
    started = time.perf_counter()
    if sample not in SAMPLES:
        raise DemoError(f"no sample {sample!r}: choose from {', '.join(sorted(SAMPLES))}")
    chosen = SAMPLES[sample]
    board = load_board(board_name)
    workdir = workdir.resolve()  # the bench map names files by absolute path
    workdir.mkdir(parents=True, exist_ok=True)
    steps = _Steps(observer)

    def quantize() -> tuple[Path, str]:
        report = run_quantize(chosen.model_path, workdir / "model", calib=chosen.calib_path,
                              evaluation=chosen.eval_path, board=board, options=QuantizeOptions(format="tflite"))
        ev = report.evaluation
        accuracy = "" if ev.int8_accuracy_pct is None else f", int8 accuracy {ev.int8_accuracy_pct:.1f}%"
        path = tflite_output_path(chosen.model_path, workdir / "model")
        return path, (f"{path.name} ({path.stat().st_size:,} bytes, {report.chosen_method}{accuracy}) · "
                      f"{report.html}")

    tflite = steps.run("quantize + export", quantize)
    # A workdir run again keeps its key: the virtual ring in it trusts that key.
    keys = steps.run("throwaway key", lambda: (existing_or_new_keys(workdir / "keys"), f"ed25519 in {workdir / 'keys'}"))

    def pack() -> tuple[Any, str]:
        image = pack_model(tflite, board, keys.private_path, DEMO_VERSION, arena_bytes=model_arena_bytes(tflite))
        # Kept beside the model, named as `wedge pack` names it: flash it again with `wedge flash`.
        path = write_image_bytes(image.data, tflite.with_suffix(".img"))
        return image, (f"{path.name}: {image.size_bytes:,}-byte signed image, arena "
                       f"{image.manifest.arena_bytes:,} bytes")

    image = steps.run("pack", pack)
    ring = EmulatorProcess(workdir / "ring", keys.private_path, board.name, error=DemoError)
    try:
        steps.run("start virtual ring", lambda: (ring.start(), f"{board.name} on {ring.port}"))

        def flash() -> tuple[Any, str]:
            report = flash_image(ring.port, image, image.manifest.model_name)
            return report, f"{report.outcome}: {report.model} {report.version} in {report.total_s:.2f} s"

        steps.run("flash", flash)
        bench = workdir / "bench.toml"
        # The running ring is addressed by its port, as a real one would be; the bench signs with the same key.
        bench.write_text(f'[boards.ring]\nprofile = "{board.name}"\nport = "{ring.port}"\n'
                         f'key = "{keys.private_path}"\n')

        def smoke() -> tuple[Any, str]:
            run = run_bench(tflite, bench, workdir / "hil-report", eval_path=chosen.eval_path,
                            suites=SMOKE_SUITES, samples=DEMO_SAMPLES, labels=chosen.labels)
            summary = run.boards[0].summary()
            return run, ", ".join(f"{n} {k}" for k, n in summary.items() if n) + f" · {run.files['html']}"

        hil = steps.run("HIL smoke suite", smoke)
    finally:
        ring.stop()

    def stream() -> tuple[Any, str]:
        check = stream_check(board.name, tflite, f"wedge-demo-{board.name}", workdir / "ble", seconds=STREAM_S)
        said = ", ".join(f"{label} {count}" for label, count in check.labels.items()) or "no labels"
        return check, (f"{check.received_records} records into {workdir / 'ble' / 'stream.db'} at "
                       f"{check.rate_hz:.0f} Hz ({said}), {check.lost_records} lost across "
                       f"{check.forced_disconnects} forced disconnect(s), latency p50 {check.latency_ms_median} ms")

    streamed = steps.run("BLE stream", stream)
    return DemoSummary(sample, board.name, workdir, steps.details, steps.timings, hil.to_dict(),
                       time.perf_counter() - started, streamed.to_dict())
