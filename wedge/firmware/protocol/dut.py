"""The MLPerf Tiny (EEMBC runner) DUT protocol: ASCII commands ending `%`, replies `m-…`/`e-[…]` lines, `m-ready` last.

The one definition of its text layout, for the virtual board (server side) and the HIL client: commands
`name%`, `profile%`, `db load N%`, `db <hex>%`, `infer N W%`, `results%`, `timestamp%`, as mlcommons/tiny's
api/internally_implemented.c parses them and prints its replies (EE_MSG_* formats, `\\r\\n` line ends).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from wedge.firmware.errors import FirmwareError

TERMINATOR: Final[bytes] = b"%"
LINE_END: Final[bytes] = b"\r\n"
# EE_CMD_SIZE of the reference firmware: a longer command is cut short there, so the host keeps to it.
REFERENCE_COMMAND_BYTES: Final[int] = 80
READY: Final[str] = "m-ready"
INIT_DONE: Final[str] = "m-init-done"
LOAD_DONE: Final[str] = "m-load-done"
WARMUP_DONE: Final[str] = "m-warmup-done"
INFER_DONE: Final[str] = "m-infer-done"
# The reference firmware runs 10 warm-up inferences when `infer N` gives no W.
DEFAULT_WARMUP_RUNS: Final[int] = 10
INT32_MIN: Final[int] = -(1 << 31)
INT32_MAX: Final[int] = (1 << 31) - 1


class DutProtocolError(FirmwareError):
    """A DUT command or reply line that does not follow the MLPerf Tiny protocol."""


# -- commands (host -> device) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    pass


@dataclass(frozen=True)
class Profile:
    pass


@dataclass(frozen=True)
class Timestamp:
    pass


@dataclass(frozen=True)
class Results:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class DbPrint:
    """Print the input buffer as `m-buffer-` lines of 8 hex bytes."""


@dataclass(frozen=True)
class Empty:
    """A bare `%`: the reference parser answers it with `m-ready` alone."""


@dataclass(frozen=True)
class DbLoad:
    """Announce `size_bytes` of input to come; resets the buffer position."""

    size_bytes: int


@dataclass(frozen=True)
class DbData:
    """A piece of the input buffer, sent as hex digits."""

    data: bytes


@dataclass(frozen=True)
class Infer:
    """Run `warmup_runs` untimed inferences, then `runs` between two timestamps, then print the results."""

    runs: int
    warmup_runs: int = DEFAULT_WARMUP_RUNS


Command = Name | Profile | Timestamp | Results | DbLoad | DbData | Infer | Help | DbPrint | Empty
TIMESTAMP_MODE: Final[str] = "m-timestamp-mode-performance"  # th_timestamp_initialize in performance mode


def encode_command(command: Command) -> bytes:
    """The bytes the host writes for `command` (terminator included, no newline: the firmware needs none)."""
    if isinstance(command, Name):
        text = "name"
    elif isinstance(command, Profile):
        text = "profile"
    elif isinstance(command, Timestamp):
        text = "timestamp"
    elif isinstance(command, Results):
        text = "results"
    elif isinstance(command, Help):
        text = "help"
    elif isinstance(command, DbPrint):
        text = "db print"
    elif isinstance(command, Empty):
        text = ""
    elif isinstance(command, DbLoad):
        text = f"db load {command.size_bytes}"
    elif isinstance(command, DbData):
        text = f"db {command.data.hex()}"
    else:
        text = f"infer {command.runs} {command.warmup_runs}"
    return text.encode("ascii") + TERMINATOR


def _int(token: str, what: str) -> int:
    if not re.fullmatch(r"-?[0-9]+", token):
        raise DutProtocolError(f"{what} must be an integer, got {token!r}")
    value = int(token)
    # The reference reads numbers with atoi into an int: a firmware holds 32 bits, and says so past them.
    if not INT32_MIN <= value <= INT32_MAX:
        raise DutProtocolError(f"{what} does not fit in 32 bits, got {token!r}")
    return value


def parse_command(text: str) -> Command:
    """A command from its text without the `%` (whitespace-separated tokens, as strtok splits them)."""
    tokens = text.split()
    if not tokens:
        return Empty()
    head, rest = tokens[0], tokens[1:]
    simple: dict[str, Command] = {"name": Name(), "profile": Profile(), "timestamp": Timestamp(), "results": Results(),
                                  "help": Help()}
    if head in simple:
        return simple[head]
    if head == "db":
        if not rest:
            raise DutProtocolError("Command 'db' requires a subcommand")
        if rest[0] == "print":
            return DbPrint()
        if rest[0] == "load":
            if len(rest) < 2:
                raise DutProtocolError("Command 'db load' requires the # of bytes")
            size = _int(rest[1], "db load")
            if size <= 0:
                raise DutProtocolError("Command 'db load' must be >0 bytes")
            return DbLoad(size)
        digits = rest[0]
        if len(digits) % 2:
            raise DutProtocolError("Insufficent number of hex digits")
        for start in range(0, len(digits), 2):
            pair = digits[start : start + 2]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", pair):
                raise DutProtocolError(f"Invalid hex digit '{pair}'")  # the reference names the bad pair
        return DbData(bytes.fromhex(digits))
    if head == "infer":
        runs = _int(rest[0], "infer N") if rest else 1
        if runs <= 0:
            raise DutProtocolError("Inference iterations must be >0")
        warmup = _int(rest[1], "infer W") if len(rest) > 1 else DEFAULT_WARMUP_RUNS
        if warmup < 0:
            raise DutProtocolError("Inference warmup must be >=0")
        return Infer(runs, warmup)
    raise DutProtocolError(f"Unknown command: {head}")


def help_lines(firmware: str) -> list[str]:
    """`help%` as the reference's ee_profile_parse prints it."""
    return [firmware, "", "help         : Print this information", "name         : Print the name of the device",
            "timestsamp   : Generate a timetsamp", "db SUBCMD    : Manipulate a generic byte buffer",
            "  load N     : Allocate N bytes and set load counter", "  db HH[HH]* : Load 8-bit hex byte(s) until N bytes",
            "  print [N=16] [offset=0]", "             : Print N bytes at offset as hex",
            "infer N [W=0]: Load input, execute N inferences after W warmup loops",
            "results      : Return the result fp32 vector"]


def buffer_lines(data: bytes, per_line: int = 8) -> list[str]:
    """`db print%`: `m-buffer-` then the bytes as hex joined by `-`, 8 a line."""
    return ["m-buffer-" + "-".join(f"{b:02x}" for b in data[i : i + per_line]) for i in range(0, len(data), per_line)]


def db_commands(data: bytes, max_command_bytes: int = REFERENCE_COMMAND_BYTES) -> Iterator[DbData]:
    """`data` cut into `db <hex>%` commands that each fit a firmware command buffer of `max_command_bytes`."""
    per_command = (max_command_bytes - len("db ") - len(TERMINATOR)) // 2
    if per_command <= 0:
        raise DutProtocolError(f"a {max_command_bytes}-byte command buffer cannot hold a db command")
    for start in range(0, len(data), per_command):
        yield DbData(data[start : start + per_command])


# -- reply lines (device -> host) --------------------------------------------------------------------------


def line(text: str) -> bytes:
    return text.encode("ascii", errors="replace") + LINE_END


def name_line(device: str, vendor: str) -> str:
    return f"m-name-{device}-[{vendor}]"  # EE_MSG_NAME


def profile_lines(firmware: str, model: str) -> tuple[str, str]:
    return f"m-profile-[{firmware}]", f"m-model-[{model}]"


def expecting_line(size_bytes: int) -> str:
    return f"m-[Expecting {size_bytes} bytes]"


def warmup_start_line(runs: int) -> str:
    return f"m-warmup-start-{runs}"


def infer_start_line(runs: int) -> str:
    return f"m-infer-start-{runs}"


def lap_line(time_us: int) -> str:
    return f"m-lap-us-{time_us}"  # EE_MSG_TIMESTAMP


def format_value(value: float) -> str:
    # The reference prints %0.3f; nine significant digits give back every float32 exactly, so a host can
    # check the board bit for bit, and the runner's `m-results-\[([^]]+)\]` float parse still reads it.
    return f"{value:.9g}"


def results_line(values: Sequence[float]) -> str:
    return "m-results-[" + ",".join(format_value(float(v)) for v in values) + "]"


def error_line(text: str) -> str:
    return f"e-[{text}]"


def timer_line(source: str) -> str:
    """Where the device's `m-lap-us` times come from (a wedge addition after `profile%`; real firmware omits it)."""
    return f"m-timer-[{source}]"


def host_wall_line(time_us: int) -> str:
    """The host time a virtual board spent in the timed runs (a wedge addition; real firmware omits it)."""
    return f"m-host-wall-us-{time_us}"


# -- parsing replies ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One reply line: `kind` names it (ready, name, profile, model, expecting, load-done, warmup-start,
    warmup-done, infer-start, lap, host-wall, timer, infer-done, results, error, init-done, other); `value` carries its datum."""

    kind: str
    text: str
    value: object = None


_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("name", re.compile(r"^m-name-(.*)-\[(.*)\]$")),
    ("profile", re.compile(r"^m-profile-\[(.*)\]$")),
    ("model", re.compile(r"^m-model-\[(.*)\]$")),
    ("expecting", re.compile(r"^m-\[Expecting ([0-9]+) bytes\]$")),
    ("warmup-start", re.compile(r"^m-warmup-start-([0-9]+)$")),
    ("infer-start", re.compile(r"^m-infer-start-([0-9]+)$")),
    ("lap", re.compile(r"^m-lap-us-([0-9]+)$")),
    ("host-wall", re.compile(r"^m-host-wall-us-([0-9]+)$")),
    ("timer", re.compile(r"^m-timer-\[(.*)\]$")),
    ("results", re.compile(r"^m-results-\[(.*)\]$")),
    ("error", re.compile(r"^e-\[(.*)\]$")),
)
_FIXED: Final[dict[str, str]] = {
    READY: "ready", INIT_DONE: "init-done", LOAD_DONE: "load-done", WARMUP_DONE: "warmup-done",
    INFER_DONE: "infer-done",
}


def _results(body: str, text: str) -> tuple[float, ...]:
    values = []
    for token in body.split(","):
        try:
            value = float(token)
        except ValueError:
            raise DutProtocolError(f"results line with a non-number {token.strip()[:20]!r}: {text[:80]}") from None
        if not math.isfinite(value):
            raise DutProtocolError(f"results line with a non-finite value: {text[:80]}")
        values.append(value)
    return tuple(values)


def parse_reply(text: str) -> Reply:
    """Read one reply line (without its line end); unknown lines are kind `other` (firmware may log freely)."""
    text = text.strip()
    if text in _FIXED:
        return Reply(_FIXED[text], text)
    for kind, pattern in _PATTERNS:
        match = pattern.match(text)
        if match is None:
            continue
        if kind == "name":
            return Reply(kind, text, (match.group(1), match.group(2)))
        if kind in ("expecting", "warmup-start", "infer-start", "lap", "host-wall"):
            return Reply(kind, text, int(match.group(1)))
        if kind == "results":
            return Reply(kind, text, _results(match.group(1), text))
        return Reply(kind, text, match.group(1))
    return Reply("other", text)


class LineSplitter:
    """Cuts a byte stream into text lines at `\\n` (a `\\r` before it is dropped), fed in any pieces."""

    def __init__(self, max_line_bytes: int = 1 << 20) -> None:
        self._buffer = bytearray()
        self._max_line_bytes = max_line_bytes

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        lines = []
        while (end := self._buffer.find(b"\n")) != -1:
            raw = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            lines.append(raw.decode("ascii", errors="replace"))
        if len(self._buffer) > self._max_line_bytes:
            raise DutProtocolError(f"a reply line longer than {self._max_line_bytes} bytes: the device sends garbage")
        return lines

    @property
    def pending(self) -> bytes:
        return bytes(self._buffer)
