"""Serial ports named by path or pyserial URL: opening one exclusively, and what a failed open means.

Flashing (SMP) and the HIL's DUT client open ports the same way, so a missing, busy or forbidden port reads the
same in both.
"""

from __future__ import annotations

import errno
from typing import Final

import serial

_RFC2217: Final[str] = "rfc2217://"
_BUSY_ERRNOS: Final[frozenset[int]] = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY})


def is_url(address: str) -> bool:
    return "://" in address


def open_failure(address: str, exc: BaseException) -> str:
    """One line saying why `address` could not be opened: missing, busy, no permission, or the OS's words."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT:
        return f"serial port {address} does not exist"
    if code == errno.EACCES:
        return f"no permission to open serial port {address} (add yourself to its group, e.g. dialout)"
    # pyserial's exclusive open reports a held lock as an errno-less SerialException naming the flock failure.
    text = str(exc)
    if code in _BUSY_ERRNOS or "Could not exclusively lock port" in text:
        return f"serial port {address} is busy: another program has it open"
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"cannot open serial port {address}: {first}"


def open_serial(address: str, baud: int, *, timeout_s: float | None, write_timeout_s: float | None = None
                ) -> serial.SerialBase:
    """Open `address` exclusively; OSError-family errors propagate for `open_failure` to describe."""
    if address.startswith(_RFC2217):
        # pyserial's RFC 2217 client raises NotImplementedError for a write timeout; its writes go to a TCP socket.
        write_timeout_s = None
    port = serial.serial_for_url(address, baudrate=baud, timeout=timeout_s, write_timeout=write_timeout_s,
                                 exclusive=True, do_not_open=True)
    port.open()
    return port
