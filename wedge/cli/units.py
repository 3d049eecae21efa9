"""Formatting of sizes and rates for tables: people read KiB, JSON keeps bytes.

Shared by every command that prints a table; the formatter itself lives in `wedge.units` (the HTML reports use it).
"""

from __future__ import annotations

from wedge.units import human_bytes

__all__ = ["human_bytes"]
