"""Console text a board prints on the UART it shares with SMP: the boot banner a host waits for after a reset.

Zephyr prints `*** Booting Zephyr OS ... ***` when it starts; the virtual board prints a banner in that style.
"""

from __future__ import annotations

from typing import Final

BOOT_BANNER_PREFIX: Final[bytes] = b"*** Booting "


def boot_banner(board: str, model: str) -> bytes:
    """The line a board prints once it has booted and can answer SMP."""
    return BOOT_BANNER_PREFIX + f"wedge virtual board {board}: {model} ***\r\n".encode()


def console_line(text: str) -> bytes:
    """A log line on the console, as Zephyr's logger ends them."""
    return text.encode(errors="replace") + b"\r\n"
