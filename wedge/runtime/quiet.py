"""Keeps runtimes quiet while wedge drives them: the CLI owns the terminal and stdout carries --json.

onnxruntime's quantizers log every node at INFO, advise pre-processing on the root logger, print progress on
stdout and divide all-zero blocks by zero; wedge's own reports say what was done.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Final

import numpy as np

_LOGGERS: Final[tuple[str, ...]] = ("", "onnxruntime", "onnxruntime.quantization.matmul_nbits_quantizer")


@contextlib.contextmanager
def quiet_onnxruntime() -> Iterator[None]:
    """Within the block: onnxruntime's Python loggers at ERROR, stdout swallowed, numeric RuntimeWarnings off."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# Lines native runtimes print on fd 2 that say nothing a user can act on.
_NATIVE_NOISE: Final[tuple[str, ...]] = ("INFO: Created TensorFlow Lite XNNPACK delegate",)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Within the block, what native code writes to fd 2 is held back; afterwards every line but the known
    INFO noise (LiteRT's XNNPACK banner) is passed on, so real warnings still reach the terminal."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (an embedding host): nothing to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(keepends=True)
                    if not line.startswith(_NATIVE_NOISE)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
