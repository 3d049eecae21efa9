"""`wedge ports`: the serial ports of this machine (pyserial's list_ports: VID/PID, serial number, maker) and
what answers SMP on each — a short probe that changes nothing on the device.

The probe sends what mcumgr tools send first: an OS echo, then (each optional on stock Zephyr) the OS info
`info i` that names the board target, and wedge's own group for the board profile, its firmware and the model it
runs. A port that does not answer the echo within the timeout is "no SMP answer", with how many bytes of other
output it printed (a shell, a log, a modem); a port another program holds is "busy".
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from serial.tools import list_ports
from smpclient.requests.os_management import EchoWrite, OSApplicationInfoRead

from wedge.errors import WedgeError, first_line
from wedge.firmware.flash.session import DeviceSession, LinkLost, board_for_target
from wedge.firmware.protocol.wedge_group import ModelState

DEFAULT_PROBE_TIMEOUT_S: Final[float] = 0.5


@dataclass(frozen=True)
class SerialPort:
    """One port as the OS describes it (USB fields are None on a built-in UART or a pty)."""

    device: str
    description: str | None = None
    hwid: str | None = None
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None

    @property
    def usb_id(self) -> str | None:
        return None if self.vid is None or self.pid is None else f"{self.vid:04x}:{self.pid:04x}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usb_id": self.usb_id}


@dataclass(frozen=True)
class SmpProbe:
    """What answered: `answers` when an SMP server echoed; the rest is what it said of itself, when it did."""

    answers: bool
    detail: str                       # one line for a person: who answered, or why nothing did
    zephyr_board: str | None = None   # `info i` (CONFIG_BOARD)
    board: str | None = None          # the wedge profile: from the wedge group, else from the Zephyr target
    firmware: str | None = None
    model: str | None = None          # the running model, "name version", from the wedge group

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _known(text: str | None) -> str | None:
    """pyserial says "n/a" for a field the OS does not give."""
    return None if text in (None, "", "n/a") else text


def serial_ports(extra: Sequence[str] = ()) -> list[SerialPort]:
    """The ports pyserial lists (symlinks such as /dev/serial/by-id included), then `extra` (a pty, a URL)."""
    listed = [SerialPort(p.device, _known(p.description), _known(p.hwid), p.vid, p.pid,
                         p.serial_number, p.manufacturer, p.product) for p in list_ports.comports()]
    known = {p.device for p in listed}
    return sorted(listed, key=lambda p: p.device) + [SerialPort(d) for d in extra if d not in known]


async def _probe(port: str, timeout_s: float, baud: int) -> SmpProbe:
    session = DeviceSession(port, baud=baud, timeout_s=timeout_s, attempts=1)
    try:
        await session.transport.connect(port, 0.0)
    except WedgeError as exc:
        return SmpProbe(False, first_line(exc))
    try:
        try:
            await session.request(EchoWrite(d="wedge"), attempts=1, allow_unsupported=True)
        except LinkLost:
            seen = len(session.transport.console_text())
            printed = f" (it printed {seen} bytes of other output)" if seen else ""
            return SmpProbe(False, f"no SMP answer within {timeout_s:g} s{printed}")
        info = await session.request(OSApplicationInfoRead(format="i"), allow_unsupported=True)
        target = info.output.strip() if info is not None and isinstance(info.output, str) else None
        board_info = await session.request(session.wedge.board_info(), allow_unsupported=True)
        status = await session.request(session.wedge.model_status(), allow_unsupported=True) \
            if board_info is not None else None
    except (LinkLost, WedgeError) as exc:
        return SmpProbe(True, f"SMP answers, then: {first_line(exc)}")
    finally:
        await session.close()
    profile = board_for_target(target) if target else None
    board = board_info.board if board_info is not None else (profile.name if profile is not None else None)
    model = None
    if status is not None and status.model_name:
        model = f"{status.model_name} {status.model_version or ''}".strip()
        if status.state != ModelState.RUNNING:
            model += f" ({ModelState(status.state).name.lower().replace('_', ' ')})"
    if target is None and board_info is None:
        return SmpProbe(True, "SMP (it says nothing of itself: no OS info, no wedge group; flash with --board)")
    parts = ["SMP"] + [p for p in (target and f"Zephyr {target}", board and f"board {board}",
                                   board_info is not None and f"wedge firmware {board_info.firmware}",
                                   model and f"model {model}") if p]
    return SmpProbe(True, ", ".join(parts), target, board, None if board_info is None else board_info.firmware,
                    model)


async def probe_ports(ports: Sequence[SerialPort], *, timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
                      baud: int = 115_200) -> list[SmpProbe]:
    """Probe each port for an SMP server, all at once (each port is its own device)."""
    return list(await asyncio.gather(*(_probe(p.device, timeout_s, baud) for p in ports)))
