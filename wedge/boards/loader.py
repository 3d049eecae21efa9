"""Find board profiles (built-in and in WEDGE_BOARDS_PATH folders) and validate their TOML into `Board` objects.

Every problem becomes a one-line BoardError that names the file and the key.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any, Final

from wedge.ble_spec import ATT_MTU_MAX, ATT_MTU_MIN, CONN_INTERVAL_MAX_MS, CONN_INTERVAL_MIN_MS, CONN_INTERVAL_STEP_MS
from wedge.boards.errors import BoardError
from wedge.boards.profile import (
    BLE_SERVICES,
    BOARD_CLASSES,
    FLASH_PROTOCOLS,
    FRAME_SENSOR_KINDS,
    IMAGE_ROLES,
    IO_CAPABILITIES,
    RUNTIMES,
    SENSOR_KINDS,
    SMP_PERMISSIONS,
    Ble,
    BleSecurity,
    Board,
    Budgets,
    Compute,
    Flashing,
    ImageSlots,
    Memory,
    Sensor,
)

BOARDS_PATH_ENV: Final[str] = "WEDGE_BOARDS_PATH"
BUILTIN_DIR: Final[Path] = Path(__file__).resolve().with_name("profiles")
PROFILE_SUFFIX: Final[str] = ".toml"
# What wedge targets when no board is named (quantize, demo, the virtual board): a health ring.
DEFAULT_BOARD: Final[str] = "ring-nrf52840"
# Language models do not fit a ring: `quantize --task lm` fits the glasses by default.
DEFAULT_LM_BOARD: Final[str] = "glasses-soc"

# Board names are used as file names, CLI arguments and JSON keys: keep them boring.
_NAME_PATTERN: Final[re.Pattern[str]] = re.compile(r"[a-z0-9][a-z0-9-]*")

_TOP_KEYS: Final[frozenset[str]] = frozenset(
    {"name", "title", "board_class", "mcu", "memory", "compute", "budgets", "sensors", "flashing"})
_SENSOR_OPTIONAL_KEYS: Final[frozenset[str]] = frozenset({"frame_width_px", "frame_height_px"})
# A Zephyr board target as `west build -b` takes it (board[@revision][/soc[/cpucluster[/variant]]]).
_ZEPHYR_BOARD_PATTERN: Final[re.Pattern[str]] = re.compile(r"[a-z0-9_]+(@[A-Za-z0-9.]+)?(/[a-z0-9_]+){0,3}")
# MCUboot keeps a primary and a secondary slot per image (swap with rollback, or an OTA A/B pair).
SLOTS_PER_IMAGE: Final[int] = 2


class _Table:
    """One TOML table being validated: knows its file and key prefix so every error can name both."""

    def __init__(self, data: Any, source: Path, prefix: str,
                 required: frozenset[str], optional: frozenset[str] = frozenset()) -> None:
        self.source = source
        self.prefix = prefix
        if not isinstance(data, dict):
            raise self.error("", f"must be a table, got {_describe(data)}")
        self.data: dict[str, Any] = data
        allowed = required | optional
        for key in sorted(data):
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
                hint = f" (did you mean '{self.prefix}{close[0]}'?)" if close else \
                    f" (allowed: {', '.join(sorted(allowed))})"
                raise self.error(key, f"unknown key{hint}")
        for key in sorted(required):
            if key not in data:
                raise self.error(key, "missing key")

    def error(self, key: str, problem: str) -> BoardError:
        where = f"{self.prefix}{key}".rstrip(".") or "(top level)"
        return BoardError(f"{self.source}: {where}: {problem}")

    def text(self, key: str, choices: Collection[str] | None = None) -> str:
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, got {_describe(value)}")
        if choices is not None and value not in choices:
            raise self.error(key, _not_one_of(value, choices))
        return value

    def integer(self, key: str, minimum: int = 1) -> int:
        value = self.data[key]
        # bool is an int in Python; `true` for a size is a mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"must be an integer, got {_describe(value)}")
        if value < minimum:
            wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.error(key, f"must be {wanted}, got {value}")
        return value

    def flag(self, key: str) -> bool:
        value = self.data[key]
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {_describe(value)}")
        return value

    def number(self, key: str) -> float:
        value = self.data[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.error(key, f"must be a number, got {_describe(value)}")
        if not math.isfinite(value) or value <= 0:
            raise self.error(key, f"must be a positive number, got {value}")
        return float(value)

    def optional_number(self, key: str) -> float | None:
        """A positive number when the key is there, else None."""
        return self.number(key) if key in self.data else None

    def texts(self, key: str, choices: Collection[str]) -> tuple[str, ...]:
        value = self.data[key]
        if not isinstance(value, list) or not value:
            raise self.error(key, f"must be a non-empty list of strings, got {_describe(value)}")
        for item in value:
            if not isinstance(item, str):
                raise self.error(key, f"must hold only strings, got {_describe(item)}")
            if item not in choices:
                raise self.error(key, _not_one_of(item, choices))
        if len(set(value)) != len(value):
            raise self.error(key, "lists the same entry twice")
        return tuple(value)


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    kind = next((name for cls, name in kinds.items() if type(value) is cls), type(value).__name__)
    shown = repr(value)
    return kind if len(shown) > 40 or isinstance(value, (list, dict)) else f"{kind} ({shown})"


def _not_one_of(value: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(value, sorted(choices), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"'{value}' is not one of {', '.join(sorted(choices))}{hint}"


def user_folders() -> list[Path]:
    """The folders named by WEDGE_BOARDS_PATH (os.pathsep-separated), in priority order; each must exist."""
    raw = os.environ.get(BOARDS_PATH_ENV, "")
    folders = [Path(part).expanduser().absolute() for part in raw.split(os.pathsep) if part.strip()]
    for folder in folders:
        if not folder.is_dir():
            raise BoardError(f"{BOARDS_PATH_ENV}: {folder} is not a folder")
    return folders


def discover() -> dict[str, Path]:
    """Board name -> profile file. User folders override built-ins; an earlier user folder wins over a later one."""
    found = {path.stem: path for path in sorted(BUILTIN_DIR.glob(f"*{PROFILE_SUFFIX}"))}
    for folder in reversed(user_folders()):
        found.update({path.stem: path for path in sorted(folder.glob(f"*{PROFILE_SUFFIX}")) if path.is_file()})
    return dict(sorted(found.items()))


def origin(board: Board) -> str:
    """Where a profile came from, for people: 'built-in', 'user', or 'user (overrides built-in)'."""
    if Path(board.source).parent == BUILTIN_DIR:
        return "built-in"
    if (BUILTIN_DIR / f"{board.name}{PROFILE_SUFFIX}").is_file():
        return "user (overrides built-in)"
    return "user"


def load(name: str) -> Board:
    """The board profile called `name`; BoardError lists the known boards (and the closest) when it is unknown."""
    profiles = discover()
    path = profiles.get(name)
    if path is None:
        known = sorted(profiles)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise BoardError(f"unknown board '{name}'{hint}; known boards: {', '.join(known) or '(none)'}")
    return load_file(path)


def list_boards() -> list[Board]:
    """Every discoverable profile, validated, sorted by name."""
    return [load_file(path) for _, path in sorted(discover().items())]


def load_file(path: Path) -> Board:
    """Read and validate one profile file; its name must match the file name."""
    path = Path(path).absolute()
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise BoardError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BoardError(f"{path}: not UTF-8 text (TOML files are UTF-8): byte 0x{exc.object[exc.start]:02x} "
                         f"at offset {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None
    return _build(data, path)


def _build(data: dict[str, Any], source: Path) -> Board:
    top = _Table(data, source, "", _TOP_KEYS, frozenset({"ble", "zephyr_boards"}))
    name = top.text("name")
    if not _NAME_PATTERN.fullmatch(name):
        raise top.error("name", f"'{name}' must be lowercase letters, digits and '-'")
    if name != source.stem:
        raise top.error("name", f"'{name}' does not match the file name '{source.name}'")
    title, mcu = top.text("title"), top.text("mcu")
    board_class = top.text("board_class", BOARD_CLASSES)

    memory = _memory(_Table(data["memory"], source, "memory.",
                            frozenset({"flash_bytes", "ram_bytes", "psram_bytes"}),
                            frozenset({"bandwidth_bytes_per_s"})))
    compute = _compute(_Table(data["compute"], source, "compute.",
                              frozenset({"core", "clock_hz", "cycles_per_mac", "runtime"}),
                              frozenset({"active_current_ma", "supply_v"})))
    budgets_table = _Table(data["budgets"], source, "budgets.", frozenset({"model_slot_bytes", "arena_bytes"}),
                           frozenset({"latency_ms"}))
    budgets = Budgets(model_slot_bytes=budgets_table.integer("model_slot_bytes"),
                      arena_bytes=budgets_table.integer("arena_bytes"),
                      latency_ms=budgets_table.optional_number("latency_ms"))
    flashing_table = _Table(data["flashing"], source, "flashing.",
                            frozenset({"protocol", "slot_count", "mcumgr_buf_size", "baud"}),
                            frozenset({"slot_size_bytes", "images"}))
    flashing = _flashing(flashing_table, memory, source)
    zephyr_boards = _zephyr_boards(top) if "zephyr_boards" in data else ()
    sensors = _sensors(data["sensors"], source)
    ble = _ble(_Table(data["ble"], source, "ble.",
                      frozenset({"name_prefix", "services", "att_mtu", "conn_interval_ms"}), frozenset({"security"})),
               source) if "ble" in data else None

    _check_budgets(budgets_table, budgets, memory, flashing)
    _check_slots(flashing_table, flashing, memory)
    return Board(
        name=name,
        title=title,
        board_class=board_class,
        mcu=mcu,
        memory=memory,
        compute=compute,
        budgets=budgets,
        sensors=sensors,
        flashing=flashing,
        ble=ble,
        source=str(source),
        zephyr_boards=zephyr_boards,
    )


def _memory(table: _Table) -> Memory:
    bandwidth = table.integer("bandwidth_bytes_per_s") if "bandwidth_bytes_per_s" in table.data else None
    return Memory(flash_bytes=table.integer("flash_bytes"), ram_bytes=table.integer("ram_bytes"),
                  psram_bytes=table.integer("psram_bytes", minimum=0), bandwidth_bytes_per_s=bandwidth)


def _compute(table: _Table) -> Compute:
    current, supply = table.optional_number("active_current_ma"), table.optional_number("supply_v")
    if (current is None) != (supply is None):
        given, missing = ("active_current_ma", "supply_v") if supply is None else ("supply_v", "active_current_ma")
        raise table.error(missing, f"missing key (a power figure needs both: {given} is given)")
    return Compute(core=table.text("core"), clock_hz=table.integer("clock_hz"),
                   cycles_per_mac=table.number("cycles_per_mac"), runtime=table.text("runtime", RUNTIMES),
                   active_current_ma=current, supply_v=supply)


def _flashing(table: _Table, memory: Memory, source: Path) -> Flashing:
    protocol = table.text("protocol", FLASH_PROTOCOLS)
    # Only SMP devices report an mcumgr buffer; 0 says "not an SMP device" for esptool/adb boards.
    buf_minimum = 1 if protocol == "smp-serial" else 0
    slot_count = table.integer("slot_count")
    if slot_count != SLOTS_PER_IMAGE:
        # Honouring 1 would mean overwrite-only updates without a rollback; nothing in wedge flashes that way.
        raise table.error("slot_count", f"must be {SLOTS_PER_IMAGE} (a primary and a secondary slot per image, "
                                        f"so an update can roll back), got {slot_count}")
    images = _images(table, memory, source) if "images" in table.data else ()
    if protocol == "smp-serial" and not images:
        raise table.error("images", "missing key (an SMP board lists its MCUboot images: [[flashing.images]])")
    if "slot_size_bytes" in table.data:
        slot_size = table.integer("slot_size_bytes")
        model = next((slots for slots in images if slots.role == "model"), None)
        if model is not None and slot_size != model.slot_size_bytes:
            raise table.error("slot_size_bytes", f"{slot_size} is not the model image's slot size "
                                                 f"({model.slot_size_bytes}); leave it out")
    elif images:
        slot_size = next(slots.slot_size_bytes for slots in images if slots.role == "model")
    else:
        raise table.error("slot_size_bytes", "missing key")
    return Flashing(protocol=protocol, slot_count=slot_count, slot_size_bytes=slot_size,
                    mcumgr_buf_size=table.integer("mcumgr_buf_size", minimum=buf_minimum),
                    baud=table.integer("baud"), images=images)


def _images(table: _Table, memory: Memory, source: Path) -> tuple[ImageSlots, ...]:
    value = table.data["images"]
    if not isinstance(value, list) or len(value) != len(IMAGE_ROLES):
        raise table.error("images", f"must be {len(IMAGE_ROLES)} [[flashing.images]] tables (image 0 the "
                                    f"application, image 1 the model), got {_describe(value)}")
    images: list[ImageSlots] = []
    for index, item in enumerate(value):
        entry = _Table(item, source, f"flashing.images[{index}].",
                       frozenset({"role", "primary_offset", "secondary_offset", "slot_size_bytes"}))
        role = entry.text("role", IMAGE_ROLES)
        if role != IMAGE_ROLES[index]:
            raise entry.error("role", f"image {index} is the {IMAGE_ROLES[index]}, not the {role}")
        slots = ImageSlots(number=index, role=role, primary_offset=entry.integer("primary_offset", minimum=0),
                           secondary_offset=entry.integer("secondary_offset", minimum=0),
                           slot_size_bytes=entry.integer("slot_size_bytes"))
        for key, offset in (("primary_offset", slots.primary_offset), ("secondary_offset", slots.secondary_offset)):
            if offset + slots.slot_size_bytes > memory.flash_bytes:
                raise entry.error(key, f"the slot at {offset:#x} + {slots.slot_size_bytes:#x} ends past the flash "
                                       f"(memory.flash_bytes = {memory.flash_bytes:#x})")
        images.append(slots)
    ranges = sorted((offset, offset + slots.slot_size_bytes, f"image {slots.number}")
                    for slots in images for offset in (slots.primary_offset, slots.secondary_offset))
    for (_, end, first), (start, _, second) in zip(ranges, ranges[1:]):
        if start < end:
            raise table.error("images", f"a slot of {second} at {start:#x} overlaps a slot of {first}")
    return tuple(images)


def _zephyr_boards(table: _Table) -> tuple[str, ...]:
    value = table.data["zephyr_boards"]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise table.error("zephyr_boards", f"must be a non-empty list of strings, got {_describe(value)}")
    for item in value:
        if not _ZEPHYR_BOARD_PATTERN.fullmatch(item):
            raise table.error("zephyr_boards", f"'{item}' is not a Zephyr board target (e.g. nrf52840dk/nrf52840)")
    return tuple(value)


def _sensors(value: Any, source: Path) -> tuple[Sensor, ...]:
    if not isinstance(value, list) or not value:
        raise BoardError(f"{source}: sensors: must be a non-empty array of tables ([[sensors]]), "
                         f"got {_describe(value)}")
    sensors: list[Sensor] = []
    for index, item in enumerate(value):
        table = _Table(item, source, f"sensors[{index}].",
                       frozenset({"name", "kind", "rate_hz", "window_s", "channels"}), _SENSOR_OPTIONAL_KEYS)
        sensor = _sensor(table)
        if any(other.name == sensor.name for other in sensors):
            raise table.error("name", f"'{sensor.name}' is used by an earlier sensor")
        sensors.append(sensor)
    return tuple(sensors)


def _sensor(table: _Table) -> Sensor:
    kind = table.text("kind", SENSOR_KINDS)
    if kind in FRAME_SENSOR_KINDS:
        for key in sorted(_SENSOR_OPTIONAL_KEYS):
            if key not in table.data:
                raise table.error(key, f"missing key (a {kind} needs its frame size)")
        width, height = table.integer("frame_width_px"), table.integer("frame_height_px")
    else:
        for key in sorted(_SENSOR_OPTIONAL_KEYS):
            if key in table.data:
                raise table.error(key, f"only {', '.join(sorted(FRAME_SENSOR_KINDS))} sensors have a frame size")
        width = height = 0
    sensor = Sensor(name=table.text("name"), kind=kind, rate_hz=table.number("rate_hz"),
                    window_s=table.number("window_s"), channels=table.integer("channels"),
                    frame_width_px=width, frame_height_px=height)
    if sensor.window_samples < 1:
        raise table.error("window_s", f"{sensor.window_s} s at {sensor.rate_hz} Hz holds no sample")
    return sensor


def _ble(table: _Table, source: Path) -> Ble:
    mtu = table.integer("att_mtu")
    if not ATT_MTU_MIN <= mtu <= ATT_MTU_MAX:
        raise table.error("att_mtu", f"must be {ATT_MTU_MIN}..{ATT_MTU_MAX} (Bluetooth LE), got {mtu}")
    interval = table.number("conn_interval_ms")
    steps = interval / CONN_INTERVAL_STEP_MS
    if not CONN_INTERVAL_MIN_MS <= interval <= CONN_INTERVAL_MAX_MS or not math.isclose(steps, round(steps)):
        raise table.error("conn_interval_ms", f"must be a multiple of {CONN_INTERVAL_STEP_MS} ms in "
                                              f"{CONN_INTERVAL_MIN_MS}..{CONN_INTERVAL_MAX_MS:g} ms, got {interval:g}")
    security = _security(_Table(table.data["security"], source, "ble.security.", frozenset({"required"}),
                                frozenset({"io_capability", "smp_permission", "rpa_timeout_s"}))) \
        if "security" in table.data else BleSecurity()
    return Ble(name_prefix=table.text("name_prefix"), services=table.texts("services", BLE_SERVICES),
               att_mtu=mtu, conn_interval_ms=interval, security=security)


def _security(table: _Table) -> BleSecurity:
    default = BleSecurity()
    security = BleSecurity(
        required=table.flag("required"),
        io_capability=table.text("io_capability", IO_CAPABILITIES) if "io_capability" in table.data
        else default.io_capability,
        smp_permission=table.text("smp_permission", SMP_PERMISSIONS) if "smp_permission" in table.data
        else default.smp_permission,
        rpa_timeout_s=table.number("rpa_timeout_s") if "rpa_timeout_s" in table.data else default.rpa_timeout_s,
    )
    if security.smp_permission == "authenticate" and not security.can_authenticate:
        raise table.error("smp_permission", "'authenticate' can never be met by a device with io_capability "
                                            "'no_input_no_output' (Just Works pairing is never authenticated): "
                                            "use 'encrypt', or give the device a display or keyboard")
    return security


def _check_budgets(table: _Table, budgets: Budgets, memory: Memory, flashing: Flashing) -> None:
    if budgets.model_slot_bytes > memory.flash_bytes:
        raise table.error("model_slot_bytes", f"{budgets.model_slot_bytes} bytes is bigger than the flash "
                                              f"(memory.flash_bytes = {memory.flash_bytes})")
    if budgets.model_slot_bytes > flashing.slot_size_bytes:
        raise table.error("model_slot_bytes", f"{budgets.model_slot_bytes} bytes does not fit one image slot "
                                              f"(flashing.slot_size_bytes = {flashing.slot_size_bytes})")
    ram_total = memory.ram_bytes + memory.psram_bytes
    if budgets.arena_bytes > ram_total:
        raise table.error("arena_bytes", f"{budgets.arena_bytes} bytes is bigger than RAM + PSRAM "
                                         f"({memory.ram_bytes} + {memory.psram_bytes} = {ram_total})")


def _check_slots(table: _Table, flashing: Flashing, memory: Memory) -> None:
    slots_bytes = flashing.slot_count * flashing.slot_size_bytes
    if slots_bytes > memory.flash_bytes:
        raise table.error("slot_size_bytes", f"{flashing.slot_count} slots of {flashing.slot_size_bytes} bytes "
                                             f"need {slots_bytes}, more than the flash "
                                             f"(memory.flash_bytes = {memory.flash_bytes})")
