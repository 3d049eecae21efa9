"""The language-model quantization report: perplexity, agreement, samples, size, speed, memory, board fit.

Data and JSON only; `wedge.cli.quantize_lm` renders it for people.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wedge.quantize.lm.evaluate import SpeedResult
from wedge.quantize.lm.fit import LmFit


@dataclass(frozen=True)
class Perplexity:
    """fp32 vs quantized on the same held-out tokens."""

    source: str
    tokens: int
    scored_tokens: int
    window: int
    stride: int
    fp32: float
    quantized: float
    top1_agreement_pct: float
    fp32_top1_accuracy_pct: float
    quantized_top1_accuracy_pct: float

    @property
    def change_pct(self) -> float:
        return 100.0 * (self.quantized / self.fp32 - 1.0)


@dataclass(frozen=True)
class Sample:
    """One greedy continuation of a prompt by each model."""

    prompt: str
    fp32: str
    quantized: str


@dataclass(frozen=True)
class Baseline:
    """Plain round-to-nearest int4 with the same blocks and tables, scored in the same run as a calibrated method."""

    scheme: str
    perplexity: float
    change_pct: float
    top1_agreement_pct: float
    quantized_bytes: int
    quantize_s: float


@dataclass(frozen=True)
class Calibration:
    """What AWQ/GPTQ calibrated on, and how much closer their layer outputs stayed than plain rounding's."""

    source: str
    tokens: int
    windows: int
    window: int
    output_error_ratio: float  # calibration output error of the method / of round-to-nearest (lower is better)


@dataclass(frozen=True)
class LmReport:
    """Everything `wedge quantize --task lm` learned."""

    source: str
    output: str
    weights: str
    scheme: str
    model: dict[str, Any]
    perplexity: Perplexity
    samples: tuple[Sample, ...]
    fp32_bytes: int
    quantized_bytes: int
    fp32_speed: SpeedResult | None
    quantized_speed: SpeedResult | None
    fit: LmFit | None
    notes: tuple[str, ...]
    wall_s: float
    versions: dict[str, str] = field(default_factory=dict)
    name: str = ""
    quantize_s: float = 0.0
    baseline: Baseline | None = None
    calibration: Calibration | None = None
    warnings: tuple[str, ...] = ()
    fp32_output: str | None = None  # the fp32 ONNX wedge built, when kept (--keep-fp32)

    @property
    def size_ratio(self) -> float:
        return self.quantized_bytes / self.fp32_bytes if self.fp32_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        speed = None
        if self.fp32_speed is not None and self.quantized_speed is not None:
            speed = {"fp32": self.fp32_speed.to_dict(), "quantized": self.quantized_speed.to_dict(),
                     "tokens_per_s_ratio": _ratio(self.quantized_speed.tokens_per_s, self.fp32_speed.tokens_per_s),
                     "peak_rss_ratio": _ratio(self.quantized_speed.peak_rss_bytes, self.fp32_speed.peak_rss_bytes)}
        return {
            "task": "lm",
            "name": self.name,
            "source": self.source,
            "output": self.output,
            "fp32_output": self.fp32_output,
            "weights": self.weights,
            "scheme": self.scheme,
            "model": self.model,
            "perplexity": {**asdict(self.perplexity), "change_pct": round(self.perplexity.change_pct, 3)},
            "samples": [asdict(s) for s in self.samples],
            "size": {"fp32_bytes": self.fp32_bytes, "quantized_bytes": self.quantized_bytes,
                     "ratio": round(self.size_ratio, 4)},
            "quantize_s": round(self.quantize_s, 2),
            "rtn_baseline": None if self.baseline is None else asdict(self.baseline),
            "calibration": None if self.calibration is None else asdict(self.calibration),
            "speed": speed,
            "board_fit": None if self.fit is None else self.fit.to_dict(),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "wall_s": round(self.wall_s, 3),
            "versions": self.versions,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n", encoding="utf-8")


def _ratio(value: float, reference: float) -> float | None:
    return round(value / reference, 4) if reference else None
