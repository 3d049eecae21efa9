"""HIL bench timing: the default suites for one model on one virtual board, then on 4 in parallel, the
device-vs-host agreement, and `wedge demo` end to end; prints a JSON summary on stdout (progress on stderr).

    python3 bench/hil_bench.py [--sample ppg_quality|digits] [--boards 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from wedge.boards import load as load_board
from wedge.demo import run_demo
from wedge.hil.board_map import virtual_map_text
from wedge.hil.runner import SUITES, run_bench
from wedge.quantize.pipeline import QuantizeOptions, run_quantize, tflite_output_path
from wedge.samples import SAMPLES

GOAL_ONE_BOARD_S = 60.0
GOAL_PARALLEL_RATIO = 1.5
GOAL_DEMO_S = 90.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _DemoLog:
    def step(self, name: str) -> None:
        log(f"demo: {name}")

    def done(self, name: str, detail: str) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="ppg_quality", choices=sorted(SAMPLES))
    parser.add_argument("--boards", type=int, default=4)
    args = parser.parse_args()
    sample = SAMPLES[args.sample]
    with tempfile.TemporaryDirectory(prefix="wedge-hil-bench-") as folder:
        work = Path(folder)
        log(f"quantizing {args.sample} to a .tflite")
        run_quantize(sample.model_path, work / "model", calib=sample.calib_path, evaluation=sample.eval_path,
                     board=load_board("ring-nrf52840"), options=QuantizeOptions(format="tflite"))
        model = tflite_output_path(sample.model_path, work / "model")
        runs = {}
        for count in (1, args.boards):
            board_map = work / f"bench-{count}.toml"
            board_map.write_text(virtual_map_text([(f"ring-{i}", "ring-nrf52840") for i in range(count)]))
            log(f"default suites on {count} virtual board(s)")
            runs[count] = run_bench(model, board_map, work / f"report-{count}", eval_path=sample.eval_path,
                                    suites=SUITES)
        one, many = runs[1], runs[args.boards]
        accuracy = one.boards[0].metrics().get("accuracy", {})
        ratio = many.wall_s / one.wall_s
        demo = run_demo(work / "demo", _DemoLog())
        summary = {
            "sample": args.sample,
            "one_board": {"wall_s": round(one.wall_s, 2), "passed": one.passed, "summary": one.boards[0].summary()},
            "parallel": {"boards": args.boards, "wall_s": round(many.wall_s, 2), "passed": many.passed,
                         "ratio_vs_one": round(ratio, 2)},
            "agreement": {k: accuracy.get(k) for k in ("samples", "top1_agreement", "exact_samples", "rmse",
                                                        "cosine_similarity", "device_accuracy", "host_accuracy")},
            "bit_exact_vs_host_tflm": one.boards[0].metrics().get("bit_exact_vs_host_tflm"),
            "demo": {"wall_s": round(demo.wall_s, 2), "passed": demo.passed,
                     "timings_s": {k: round(v, 2) for k, v in demo.timings_s.items()}},
            "goals": {"one_board_le_60_s": one.wall_s <= GOAL_ONE_BOARD_S,
                      "parallel_le_1_5x": ratio <= GOAL_PARALLEL_RATIO,
                      "demo_le_90_s": demo.wall_s <= GOAL_DEMO_S},
        }
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
