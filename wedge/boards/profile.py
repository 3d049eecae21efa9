"""The board profile as frozen dataclasses: memory, compute, budgets, sensors, flashing and BLE.

Profiles are data; `wedge.boards.loader` builds these from TOML and checks them, this module only holds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, Final

BOARD_CLASSES: Final[frozenset[str]] = frozenset({"ring", "glasses"})
RUNTIMES: Final[frozenset[str]] = frozenset({"tflm", "onnxruntime", "litert"})
FLASH_PROTOCOLS: Final[frozenset[str]] = frozenset({"smp-serial", "esptool", "adb"})
SENSOR_KINDS: Final[frozenset[str]] = frozenset({
    "ppg", "ecg", "eda", "accelerometer", "gyroscope", "magnetometer",
    "audio", "camera", "temperature", "pressure",
})
# The GATT services wedge knows how to serve or read; their UUIDs live in firmware/protocol.
BLE_SERVICES: Final[frozenset[str]] = frozenset({
    "heart_rate", "battery", "device_information", "wedge_stream", "smp",
})
# The IO capabilities of the Security Manager (Core Spec Vol 3, Part H, 2.3.2), and what each gives when the other
# side (a phone, the bridge) has a keyboard and a display (Table 2.8, LE Secure Connections).
IO_CAPABILITIES: Final[dict[str, str]] = {
    "no_input_no_output": "Just Works: no display and no button, so nothing to compare (encrypted, "
                          "not protected against a man in the middle)",
    "display_only": "passkey entry: the device shows 6 digits, typed on the other side",
    "display_yes_no": "numeric comparison: both sides show 6 digits, confirmed on both",
    "keyboard_only": "passkey entry: the other side shows 6 digits, typed on the device",
    "keyboard_display": "numeric comparison: both sides show 6 digits, confirmed on both",
}
# Zephyr's CONFIG_MCUMGR_TRANSPORT_BT_PERM_RW_ENCRYPT / _RW_AUTHEN for the SMP characteristic.
SMP_PERMISSIONS: Final[tuple[str, ...]] = ("encrypt", "authenticate")
# CONFIG_BT_RPA_TIMEOUT's default: a new resolvable private address every 15 minutes.
DEFAULT_RPA_TIMEOUT_S: Final[float] = 900.0
# Only a camera has a frame; every other sensor gives one value per channel per sample.
FRAME_SENSOR_KINDS: Final[frozenset[str]] = frozenset({"camera"})


@dataclass(frozen=True)
class Sensor:
    """One sensor stream and the window the always-on loop feeds to the model."""

    name: str
    kind: str
    rate_hz: float
    window_s: float
    channels: int
    frame_width_px: int = 0
    frame_height_px: int = 0

    @property
    def window_samples(self) -> int:
        """Samples (or frames, for a camera) in one inference window."""
        return round(self.rate_hz * self.window_s)

    @property
    def window_shape(self) -> tuple[int, ...]:
        """The shape of one window without a batch axis: (samples, channels) or (frames, height, width, channels)."""
        if self.kind in FRAME_SENSOR_KINDS:
            return (self.window_samples, self.frame_height_px, self.frame_width_px, self.channels)
        return (self.window_samples, self.channels)


@dataclass(frozen=True)
class Memory:
    """What the chip (or module) has, before anything is reserved."""

    flash_bytes: int
    ram_bytes: int
    psram_bytes: int
    # Peak bytes/s of the memory the model's weights are read from (DRAM, or PSRAM on a PSRAM board); None when
    # the profile does not say. Decoding a language model reads every weight once per token, so this bounds it.
    bandwidth_bytes_per_s: int | None = None


@dataclass(frozen=True)
class Compute:
    """The core that runs the model and how fast it does multiply-accumulates."""

    core: str
    clock_hz: int
    cycles_per_mac: float
    runtime: str
    # The core's current while it computes and the supply it is quoted at (a datasheet figure, optional):
    # power = current x voltage, energy per inference = power x latency.
    active_current_ma: float | None = None
    supply_v: float | None = None

    @property
    def active_power_mw(self) -> float | None:
        """The core's power while it computes, when the profile has a current and a supply figure."""
        if self.active_current_ma is None or self.supply_v is None:
            return None
        return self.active_current_ma * self.supply_v


@dataclass(frozen=True)
class Budgets:
    """What wedge allows a model: flash for its bytes, RAM for its arena (or, on an app processor, for all of it)."""

    model_slot_bytes: int
    arena_bytes: int
    latency_ms: float | None = None  # how long one inference may take on this board (optional)


# What each MCUboot image holds on a wedge board (CONFIG_UPDATEABLE_IMAGE_NUMBER=2): the application, the model.
IMAGE_ROLES: Final[tuple[str, ...]] = ("application", "model")


@dataclass(frozen=True)
class ImageSlots:
    """One MCUboot image's slot pair: where its primary and secondary slots start in flash, and their size."""

    number: int
    role: str
    primary_offset: int
    secondary_offset: int
    slot_size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "role": self.role, "primary_offset": self.primary_offset,
                "secondary_offset": self.secondary_offset, "slot_size_bytes": self.slot_size_bytes}


@dataclass(frozen=True)
class Flashing:
    """How an image reaches the board; mcumgr_buf_size is 0 on boards that do not speak SMP.

    `images` are the MCUboot images (image 0 the application, image 1 the model) of an SMP board; `slot_size_bytes`
    is then the model's slot.
    """

    protocol: str
    slot_count: int
    slot_size_bytes: int
    mcumgr_buf_size: int
    baud: int
    images: tuple[ImageSlots, ...] = ()

    def image(self, number: int) -> ImageSlots | None:
        return next((slots for slots in self.images if slots.number == number), None)

    @property
    def model_image(self) -> int:
        """The MCUboot image number models are uploaded to."""
        return next((slots.number for slots in self.images if slots.role == "model"), 1)


@dataclass(frozen=True)
class BleSecurity:
    """What the peripheral demands of a central, as a Zephyr build with CONFIG_BT_SMP, CONFIG_BT_SMP_SC_PAIR_ONLY,
    CONFIG_BT_SETTINGS (bonds kept) and CONFIG_BT_PRIVACY would.

    required: the stream, Heart Rate and SMP characteristics need an encrypted link (a bond); off on development
    boards. io_capability picks the pairing method; smp_permission is what the SMP service needs on top.
    """

    required: bool = True
    io_capability: str = "no_input_no_output"
    smp_permission: str = "encrypt"
    rpa_timeout_s: float = DEFAULT_RPA_TIMEOUT_S

    @property
    def can_authenticate(self) -> bool:
        """Whether pairing can be MITM-protected (anything but Just Works)."""
        return self.io_capability != "no_input_no_output"

    @property
    def pairing_method(self) -> str:
        """The pairing method, in words, against a central with a keyboard and a display."""
        return IO_CAPABILITIES[self.io_capability]

    def to_dict(self) -> dict[str, Any]:
        return {"required": self.required, "io_capability": self.io_capability,
                "smp_permission": self.smp_permission, "rpa_timeout_s": self.rpa_timeout_s,
                "pairing": self.pairing_method if self.required else "none (the link is open)"}


@dataclass(frozen=True)
class Ble:
    """The board's BLE peripheral: advertised name, GATT services, link parameters and security."""

    name_prefix: str
    services: tuple[str, ...]
    att_mtu: int
    conn_interval_ms: float
    security: BleSecurity = BleSecurity()


@dataclass(frozen=True)
class Board:
    """One board profile; `source` is the TOML file it was read from."""

    name: str
    title: str
    board_class: str
    mcu: str
    memory: Memory
    compute: Compute
    budgets: Budgets
    sensors: tuple[Sensor, ...]
    flashing: Flashing
    ble: Ble | None
    source: str
    zephyr_boards: tuple[str, ...] = ()

    def sensor_for_values(self, values: int) -> Sensor | None:
        """The sensor whose window holds exactly `values` values: the one the always-on loop feeds an input of
        that size (it matches inputs to windows by size)."""
        return next((s for s in self.sensors if prod(s.window_shape) == values), None)

    def estimate_energy_j(self, latency_s: float) -> float | None:
        """Energy of one inference of `latency_s` at the core's active power; None without a power figure."""
        power_mw = self.compute.active_power_mw
        return None if power_mw is None else power_mw / 1000 * latency_s

    def estimate_latency_s(self, macs: int) -> float:
        """A first-order inference time: MACs x cycles per MAC / clock (the profile's figure carries the overheads)."""
        if macs < 0:
            raise ValueError(f"macs must be >= 0, got {macs}")
        return macs * self.compute.cycles_per_mac / self.compute.clock_hz

    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready data: exact byte counts, lists for tuples, derived window sizes included."""
        return {
            "name": self.name,
            "title": self.title,
            "board_class": self.board_class,
            "mcu": self.mcu,
            "memory": {
                "flash_bytes": self.memory.flash_bytes,
                "ram_bytes": self.memory.ram_bytes,
                "psram_bytes": self.memory.psram_bytes,
                "bandwidth_bytes_per_s": self.memory.bandwidth_bytes_per_s,
            },
            "compute": {
                "core": self.compute.core,
                "clock_hz": self.compute.clock_hz,
                "cycles_per_mac": self.compute.cycles_per_mac,
                "runtime": self.compute.runtime,
                "active_current_ma": self.compute.active_current_ma,
                "supply_v": self.compute.supply_v,
                "active_power_mw": self.compute.active_power_mw,
            },
            "budgets": {
                "model_slot_bytes": self.budgets.model_slot_bytes,
                "arena_bytes": self.budgets.arena_bytes,
                "latency_ms": self.budgets.latency_ms,
            },
            "sensors": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "rate_hz": s.rate_hz,
                    "window_s": s.window_s,
                    "channels": s.channels,
                    "frame_width_px": s.frame_width_px,
                    "frame_height_px": s.frame_height_px,
                    "window_samples": s.window_samples,
                    "window_shape": list(s.window_shape),
                }
                for s in self.sensors
            ],
            "flashing": {
                "protocol": self.flashing.protocol,
                "slot_count": self.flashing.slot_count,
                "slot_size_bytes": self.flashing.slot_size_bytes,
                "mcumgr_buf_size": self.flashing.mcumgr_buf_size,
                "baud": self.flashing.baud,
                "images": [slots.to_dict() for slots in self.flashing.images],
            },
            "ble": None if self.ble is None else {
                "name_prefix": self.ble.name_prefix,
                "services": list(self.ble.services),
                "att_mtu": self.ble.att_mtu,
                "conn_interval_ms": self.ble.conn_interval_ms,
                "security": self.ble.security.to_dict(),
            },
            "zephyr_boards": list(self.zephyr_boards),
            "source": self.source,
        }
