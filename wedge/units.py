"""Sizes for people: reports and tables read KiB, JSON keeps bytes.

A leaf: the CLI's tables and the HTML report pages format with the same function.
"""

from __future__ import annotations


def human_bytes(size_bytes: int | float) -> str:
    """1536 -> '1.5 KiB'; sizes below 1 KiB stay in bytes."""
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
