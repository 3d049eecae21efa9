"""Fault knobs of the virtual board: a noisy or cut link, a board that stops answering, slow or cut flash power.

Set from `wedge emulate` flags or at run time through the control socket; counts start when a fault is armed.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final

from wedge.firmware.errors import VirtualBoardError

DEFAULT_CUT_DOWN_S: Final[float] = 0.3


@dataclass(frozen=True)
class FaultSettings:
    """All fault knobs; None or 0 means off.

    corrupt_rate / drop_rate: chance per received byte to flip one bit / to lose it.
    cut_after_bytes: after this many received bytes the port disappears for cut_down_s, then comes back.
    hang_after_bytes: after this many received bytes the board ignores everything (until `unhang`).
    power_cut_after_bytes: the process dies in the flash write or erase that crosses this many bytes.
    slow_flash_ms: added time per flash page write or erase.
    """

    corrupt_rate: float = 0.0
    drop_rate: float = 0.0
    cut_after_bytes: int | None = None
    cut_down_s: float = DEFAULT_CUT_DOWN_S
    hang_after_bytes: int | None = None
    power_cut_after_bytes: int | None = None
    slow_flash_ms: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("corrupt_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise VirtualBoardError(f"{name} must be between 0 and 1, got {value}")
        for name in ("cut_after_bytes", "hang_after_bytes", "power_cut_after_bytes"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise VirtualBoardError(f"{name} must be >= 0, got {value}")
        if self.cut_down_s < 0 or self.slow_flash_ms < 0:
            raise VirtualBoardError("cut_down_s and slow_flash_ms must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> FaultSettings:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise VirtualBoardError(f"unknown fault {unknown[0]!r}; known: {', '.join(sorted(known))}")
        try:
            return replace(self, **dict(changes))
        except TypeError as exc:
            raise VirtualBoardError(f"bad fault settings: {exc}") from exc


@dataclass(frozen=True)
class RxVerdict:
    """What the link does with a piece of received data."""

    data: bytes
    cut: bool
    hung: bool


class LinkFaults:
    """The link's faults as the UART thread applies them to received bytes (the control socket changes them)."""

    def __init__(self, settings: FaultSettings) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(settings.seed)
        self._settings = settings
        self._received = 0
        self._hung = False

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            if settings.seed != self._settings.seed:
                self._rng = random.Random(settings.seed)
            if (settings.cut_after_bytes, settings.hang_after_bytes) != (
                self._settings.cut_after_bytes, self._settings.hang_after_bytes
            ):
                self._received = 0
            self._settings = settings

    def unhang(self) -> None:
        with self._lock:
            self._hung = False
            self._settings = replace(self._settings, hang_after_bytes=None)

    @property
    def cut_down_s(self) -> float:
        return self._settings.cut_down_s

    def on_rx(self, data: bytes) -> RxVerdict:
        with self._lock:
            s = self._settings
            before = self._received
            self._received += len(data)
            cut = s.cut_after_bytes is not None and self._received > s.cut_after_bytes
            if cut:
                data = data[: max(0, s.cut_after_bytes - before)]  # type: ignore[operator]
                # One cut per arming: the link comes back for good.
                self._settings = replace(s, cut_after_bytes=None)
            if self._hung:
                data = b""
            elif s.hang_after_bytes is not None and self._received > s.hang_after_bytes:
                data = data[: max(0, s.hang_after_bytes - before)]
                self._hung = True
            if (s.corrupt_rate or s.drop_rate) and data:
                data = self._noise(data, s)
            return RxVerdict(data, cut, self._hung)

    def _noise(self, data: bytes, s: FaultSettings) -> bytes:
        out = bytearray()
        for byte in data:
            if s.drop_rate and self._rng.random() < s.drop_rate:
                continue
            if s.corrupt_rate and self._rng.random() < s.corrupt_rate:
                byte ^= 1 << self._rng.randrange(8)
            out.append(byte)
        return bytes(out)
