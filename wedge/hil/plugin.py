"""wedge's pytest plugin (`pytest11` entry point): options --board-map/--board/--model/--eval/--labgrid and fixtures
`board`, `dut`, `ble`, `flashed`, `hil_model`, `hil_eval`, `hil_record`; with --hil-json, a JSON record of every test
(its readable title, outcome, the failure's message alone, and what it recorded).

Fixtures skip with a reason when no board map is given, so the plugin is harmless in unrelated test runs.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from wedge.errors import WedgeError, first_line

DEFAULT_SAMPLES: Final[int] = 32
BASE_VERSION: Final[str] = "1.0.0"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wedge-hil", "wedge hardware-in-the-loop bench")
    group.addoption("--board-map", metavar="BENCH.toml", help="board map (bench.toml) of the boards to test on")
    group.addoption("--bench-board", "--hil-board", dest="hil_board", metavar="NAME",
                    help="board of the map to use, by its entry name (default: the first one)")
    group.addoption("--model", "--hil-model", dest="hil_model", metavar="MODEL.tflite", help="int8 .tflite model to bench")
    group.addoption("--eval", "--hil-eval", dest="hil_eval", metavar="EVAL.npz", help="eval set (.npz, inputs + labels)")
    group.addoption("--hil-samples", type=int, default=DEFAULT_SAMPLES, help="eval samples to run on the device")
    group.addoption("--hil-json", metavar="PATH", help="write every test's outcome and recorded metrics here")
    group.addoption("--hil-work", metavar="DIR", help="folder for keys, images and virtual boards (default: a temp dir)")
    group.addoption("--labgrid", dest="hil_labgrid", metavar="HOST:PORT",
                    help="labgrid coordinator of the map's places (default: the map's, then LG_COORDINATOR)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: a hardware-in-the-loop test (needs --board-map)")
    path = config.getoption("hil_json", None)
    if path:
        config.pluginmanager.register(_Recorder(Path(path)), "wedge-hil-recorder")


@dataclass(frozen=True)
class HilOptions:
    board_map: Path
    board: str | None
    model: Path | None
    eval_path: Path | None
    samples: int
    work: Path
    coordinator: str | None = None


@pytest.fixture(scope="session")
def hil_options(request: pytest.FixtureRequest) -> Iterator[HilOptions]:
    config = request.config
    board_map = config.getoption("board_map")
    if not board_map:
        pytest.skip("no --board-map given: HIL tests need a bench.toml")
    given = config.getoption("hil_work")
    # pytest's temp folders are too deep for a Unix control socket path (108 bytes): a short one of our own.
    work = Path(given) if given else Path(tempfile.mkdtemp(prefix="wedge-hil-"))
    model, eval_path = config.getoption("hil_model"), config.getoption("hil_eval")
    yield HilOptions(
        board_map=Path(board_map), board=config.getoption("hil_board"),
        model=Path(model) if model else None, eval_path=Path(eval_path) if eval_path else None,
        samples=config.getoption("hil_samples"), work=work, coordinator=config.getoption("hil_labgrid"),
    )
    if not given:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def board(hil_options: HilOptions) -> Iterator[Any]:
    """The board under test, started (a virtual one is a new process) and stopped after the session."""
    from wedge.hil.board_map import load_board_map

    board_map = load_board_map(hil_options.board_map)
    entry = board_map.get(hil_options.board) if hil_options.board else board_map.boards[0]
    from wedge.hil.bench import BoardHandle  # after the map checks: it pulls in the flashing stack

    handle = BoardHandle(entry, hil_options.work / entry.name,
                         coordinator=hil_options.coordinator or board_map.coordinator)
    try:
        handle.start()
    except Exception:
        handle.stop()
        raise
    yield handle
    handle.stop()


@pytest.fixture
def dut(board: Any) -> Iterator[Any]:
    """A DutClient on the board's port, open for this test."""
    from wedge.hil.dut_client import DutClient

    with DutClient(board.dut_port, baud=board.baud, max_command_bytes=board.entry.dut_command_bytes) as client:
        yield client


@pytest.fixture(scope="session")
def ble(board: Any) -> str:
    """The board's BLE name from the map; a virtual board without one advertises as `wedge-<board>`."""
    if board.entry.ble:
        return str(board.entry.ble)
    if board.virtual:
        return f"wedge-{board.name}"
    pytest.skip(f"board {board.name} has no ble name in the map")


@pytest.fixture(scope="session")
def hil_model(hil_options: HilOptions) -> Path:
    if hil_options.model is None:
        pytest.skip("no --model given")
    if not hil_options.model.is_file():
        raise FileNotFoundError(f"model not found: {hil_options.model}")
    return hil_options.model


@pytest.fixture(scope="session")
def hil_eval(hil_options: HilOptions) -> Path:
    if hil_options.eval_path is None:
        pytest.skip("no --eval given")
    return hil_options.eval_path


@pytest.fixture(scope="session")
def pack_version(board: Any, hil_model: Path) -> Callable[[str], Any]:
    """Signs the model for the board at a given version (its arena measured once); fails when it cannot hold it."""
    from wedge.hil.flashing import model_arena_bytes, pack_model

    if board.signing_key is None:
        pytest.fail(f"board {board.name} has no key in the map: images cannot be signed for it")
    arena = model_arena_bytes(hil_model)

    def pack(version: str) -> Any:
        return pack_model(hil_model, board.entry.profile, board.signing_key, version, arena_bytes=arena)

    return pack


@pytest.fixture(scope="session")
def base_image(pack_version: Callable[[str], Any]) -> Any:
    """The model signed for the board at BASE_VERSION."""
    return pack_version(BASE_VERSION)


@pytest.fixture(scope="session")
def flashed(board: Any, base_image: Any) -> Any:
    """The model flashed and confirmed on the board (once per session); its FlashReport."""
    from wedge.firmware.flash.flasher import flash_image

    return flash_image(board.port, base_image, base_image.manifest.model_name, board.flash_options)


class JsonProperty(str):
    """A recorded value as JSON text: JUnit's <property value> reads as JSON, and the JSON report decodes it."""


@pytest.fixture
def hil_record(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    """Record a metric of this test: it lands in the JUnit properties (as JSON) and the --hil-json report."""

    def record(name: str, value: Any) -> None:
        request.node.user_properties.append((name, JsonProperty(json.dumps(value, default=str))))

    return record


def readable_title(item: pytest.Item) -> str:
    """A test as a person reads it: its docstring's first line, else its name as a sentence
    (`test_device_agrees_with_the_host_reference[ring]` -> "Device agrees with the host reference (ring)")."""
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    if doc and doc.strip():
        return doc.strip().splitlines()[0].rstrip(".")
    name, _, param = item.name.partition("[")
    words = name.removeprefix("test_").replace("_", " ").strip() or name
    sentence = words[0].upper() + words[1:]
    return f"{sentence} ({param.rstrip(']')})" if param else sentence


# "wedge.hil.errors.HilError: board ring: ..." as pytest words a crash: the class path goes, the message stays.
_EXCEPTION_PREFIX: Final = re.compile(r"^(?:[A-Za-z_]\w*\.)*\w*(?:Error|Exception|Failed|Failure|Timeout)"
                                      r"(?:\[\w.]*\])?: ")


def _exception_message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """What went wrong in words: the message alone for wedge's errors, assertions and pytest.fail; other
    exceptions (a bug in a test) keep their type name, since "3" alone says nothing of a KeyError."""
    value = excinfo.value
    if isinstance(value, pytest.fail.Exception | pytest.skip.Exception):
        text = str(getattr(value, "msg", "") or value)
    else:
        text = str(value)
    text = first_line(Exception(text)) if text.strip() else ""
    if isinstance(value, WedgeError | AssertionError | pytest.fail.Exception | pytest.skip.Exception) and text:
        return text
    return f"{type(value).__name__}: {text}" if text else type(value).__name__


def _message(report: pytest.TestReport) -> str | None:
    if report.passed:
        return None
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return _EXCEPTION_PREFIX.sub("", first_line(Exception(crash.message))) if crash.message else None
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else None


class _Recorder:
    """Collects every test's title, outcome and recorded metrics, and writes them as JSON at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: dict[str, dict[str, Any]] = {}
        self._titles: dict[str, str] = {}
        self._messages: dict[tuple[str, str], str] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        self._titles.setdefault(item.nodeid, readable_title(item))
        if call.excinfo is not None:
            self._messages[(item.nodeid, call.when)] = _exception_message(call.excinfo)
        yield

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(report.nodeid, {
            "nodeid": report.nodeid, "name": report.nodeid.split("::")[-1],
            "title": self._titles.get(report.nodeid, report.nodeid.split("::")[-1]), "outcome": "passed",
            "message": None, "duration_s": 0.0, "properties": {},
        })
        entry["duration_s"] += report.duration
        entry["properties"].update({name: json.loads(value) if isinstance(value, JsonProperty) else value
                                    for name, value in report.user_properties})
        if report.failed or (report.skipped and entry["outcome"] == "passed"):
            entry["outcome"] = "error" if report.failed and report.when != "call" else report.outcome
            message = self._messages.get((report.nodeid, report.when)) if report.failed else None
            entry["message"] = message or _message(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"tests": list(self.tests.values())}, indent=2, default=str))
