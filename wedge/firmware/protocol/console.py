"""Console text a board prints on the UART it shares with SMP: the boot banner a host waits for after a reset.

Zephyr's kernel prints `*** Booting Zephyr OS build <version> ***` when it starts (kernel/banner.c); so does the
virtual board.
"""

from __future__ import annotations

from typing import Final

BOOT_BANNER_PREFIX: Final[bytes] = b"*** Booting "


ZEPHYR_BUILD: Final[str] = "v4.4.0"


def boot_banner(build: str = ZEPHYR_BUILD) -> bytes:
    """The line Zephyr prints once the kernel is up (the application answers SMP right after)."""
    return BOOT_BANNER_PREFIX + f"Zephyr OS build {build} ***\r\n".encode()


def console_line(text: str) -> bytes:
    """A log line on the console, as Zephyr's logger ends them."""
    return text.encode(errors="replace") + b"\r\n"
