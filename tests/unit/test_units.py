"""The status page's human units."""

from __future__ import annotations

import math
from typing import Any

import pytest

from monitor.web import units


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "0 B"), (999, "999 B"), (1000, "1 kB"), (4_500_000_000, "4.5 GB"),
     (50_406_584_320, "50.4 GB"), (4_836_524_491_065, "4.84 TB"), (2e18, "2000 PB"),
     (None, "–"), ("12", "–"), (True, "–"), (math.nan, "–")],
)  # fmt: skip
def test_human_size(value: Any, expected: str) -> None:
    assert units.human_size(value) == expected


@pytest.mark.parametrize(
    ("bytes_per_second", "expected"),
    [(1_537_500, "12.3 Mb/s"), (387_500, "3.1 Mb/s"), (125_000_000, "1 Gb/s"), (0, "0 b/s"),
     (12.5, "100 b/s"), (-3, "0 b/s"), (None, "–"), (math.inf, "–")],
)  # fmt: skip
def test_rate_is_in_bits(bytes_per_second: Any, expected: str) -> None:
    assert units.rate(bytes_per_second) == expected


@pytest.mark.parametrize(
    ("per_second", "expected"),
    [(0, "0/min"), (1 / 120, "0.5/min"), (0.2, "12/min"), (None, "–")],
)
def test_per_minute(per_second: Any, expected: str) -> None:
    assert units.per_minute(per_second) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(2, "just now"), (40, "40 s ago"), (180, "3 min ago"), (3 * 3600 + 300, "3 h 5 min ago"),
     (2 * 86400 + 4 * 3600, "2 d 4 h ago"), (3600, "1 h ago"), (86400 + 59, "1 d ago")],
)  # fmt: skip
def test_ago(seconds: float, expected: str) -> None:
    assert units.ago(seconds) == expected


def test_speed_and_latency() -> None:
    assert units.human_speed(1_000_000_000) == "1 Gb/s"
    assert units.human_speed(100_000_000) == "100 Mb/s"
    assert units.latency(0.000215) == "0.215 ms" and units.latency(0.0125) == "12.5 ms"
    assert units.latency(None) == "–"
