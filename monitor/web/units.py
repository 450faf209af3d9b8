"""Human units for the status page: "1 Gb/s", "12.3 Mb/s", "4.5 GB", "3 min ago".

The terminal output (:mod:`monitor.cli.output`) already knows speeds and significant
digits; the page reuses them. Two differences are deliberate: traffic totals and disk
sizes are decimal (GB, as network gear and disk labels print them), and ages are
spelled "3 h 5 min" because the page has room for the words.
"""

from __future__ import annotations

import math
from typing import Any

from monitor.cli.output import human_speed, milliseconds, percent, significant

__all__ = [
    "ago", "human_age", "human_size", "human_speed", "latency", "per_minute", "percent", "rate"
]  # fmt: skip


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def human_age(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"3 h 5 min"``, ``"2 d 4 h"``, ``"1 d"`` (no zero
    second part; negative counts as 0)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    big, small = (s // 3600, s % 3600 // 60) if s < 86400 else (s // 86400, s % 86400 // 3600)
    units = ("h", "min") if s < 86400 else ("d", "h")
    return f"{big} {units[0]} {small} {units[1]}" if small else f"{big} {units[0]}"


def ago(seconds: float) -> str:
    """``"3 min ago"``; under 5 s is ``"just now"`` (the page refreshes every 30 s)."""
    return "just now" if seconds < 5 else f"{human_age(seconds)} ago"


def human_size(n: Any) -> str:
    """Bytes in decimal units: ``4_500_000_000`` -> ``"4.5 GB"``; ``"–"`` when unknown."""
    value = _finite(n)
    if value is None:
        return "–"
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(value) < 1000 or unit == "PB":
            return f"{value:.0f} B" if unit == "B" else f"{significant(value)} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def rate(bytes_per_second: Any) -> str:
    """A traffic rate in bits per second, as link speeds are given: ``"12.3 Mb/s"``."""
    value = _finite(bytes_per_second)
    return "–" if value is None else human_speed(max(0.0, value) * 8)


def per_minute(per_second: Any) -> str:
    """An error rate: ``"0/min"``, ``"0.5/min"``, ``"12/min"``."""
    value = _finite(per_second)
    return "–" if value is None else f"{significant(max(0.0, value) * 60)}/min"


def latency(seconds: Any) -> str:
    """A round-trip time in milliseconds: ``"0.215 ms"``, ``"12.5 ms"``."""
    value = _finite(seconds)
    return "–" if value is None else f"{milliseconds(value)} ms"
