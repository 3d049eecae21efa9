"""Keeps onnxruntime's tools quiet while wedge drives them: the CLI owns the terminal and stdout carries --json.

onnxruntime's quantizers log every node at INFO, advise pre-processing on the root logger, print progress on
stdout and divide all-zero blocks by zero; wedge's own reports say what was done.
"""

from __future__ import annotations

import contextlib
import io
import logging
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
