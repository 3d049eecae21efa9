"""The child process of `evaluate.measure_speed`: load one model, prefill a prompt, decode greedily, report.

Reads its request as JSON on stdin and prints one JSON line; peak RSS is this process's own high-water mark.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def _rss_peak_bytes() -> int:
    """This program's peak resident set.

    Linux's VmHWM belongs to the address space that exec made; getrusage's ru_maxrss survives exec, so a child
    forked from a parent holding a 600 MB model would report the parent's size.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux, the fallback elsewhere


def main() -> int:
    request = json.loads(sys.stdin.read())
    from wedge.quantize.lm.session import DecoderSession  # imported before the baseline: onnxruntime counts there

    baseline = _rss_peak_bytes()
    started = time.perf_counter()
    session = DecoderSession(request["model"], threads=request["threads"])
    loaded = time.perf_counter()
    prompt = np.asarray([request["prompt"]], np.int64)
    logits, cache = session.forward(prompt)
    prefilled = time.perf_counter()
    token = int(np.argmax(logits[0, -1]))
    new_tokens = int(request["new_tokens"])
    for _ in range(new_tokens):
        # Every step is timed, end of text or not: the rate is of a fixed amount of work.
        logits, cache = session.forward(np.asarray([[token]], np.int64), cache)
        token = int(np.argmax(logits[0, -1]))
    decoded = time.perf_counter()
    print(json.dumps({"load_s": loaded - started, "prefill_s": prefilled - loaded, "prompt_tokens": prompt.shape[1],
                      "new_tokens": new_tokens, "tokens_per_s": new_tokens / max(decoded - prefilled, 1e-9),
                      "peak_rss_bytes": _rss_peak_bytes(), "baseline_rss_bytes": baseline}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
