"""Supply forecasts on synthetic histories: steady use, refills, noise, outliers, flat
stretches (holidays), printers that report in 10 % steps, waste containers."""

from __future__ import annotations

import math
import random

import pytest

from alerts.forecast import DAY, forecast, last_refill, theil_sen

NOW = 1_800_000_000.0
HOUR = 3600.0


def history(days: float, level_at: object, *, every: float = HOUR,
            end: float = NOW) -> list[tuple[float, float]]:
    """Readings every ``every`` seconds for ``days`` up to ``end``; ``level_at(day)``
    gives the level ``day`` days before ``end`` (may return NaN: no reading)."""
    out = []
    n = int(days * DAY / every)
    for i in range(n + 1):
        t = end - (n - i) * every
        v = level_at((end - t) / DAY)  # type: ignore[operator]
        if not math.isnan(v):
            out.append((t, v))
    return out


def test_steady_use_gives_days_left_with_high_confidence() -> None:
    # 2 % a day, 40 % left: 20 days.
    f = forecast(history(30, lambda ago: 0.40 + 0.02 * ago), NOW)
    assert f.trend == "falling" and f.confidence == "high"
    assert f.days_left == pytest.approx(20, abs=0.5)
    assert f.per_day == pytest.approx(-0.02, abs=0.001)
    assert f.level == pytest.approx(0.40) and f.refilled_at is None
    assert f.words() == "about 20 days left (high confidence)"


def test_refill_cuts_the_history() -> None:
    # Old cartridge ran out 10 days ago at 4 %/day; the new one uses 1 %/day.
    def level(ago: float) -> float:
        return 0.05 + 0.04 * (ago - 10) if ago > 10 else 0.90 - 0.01 * (10 - ago)

    points = history(40, level)
    f = forecast(points, NOW)
    assert f.refilled_at == pytest.approx(NOW - 10 * DAY, abs=2 * HOUR)
    assert f.since == f.refilled_at
    assert f.per_day == pytest.approx(-0.01, abs=0.001)  # the old, faster use is not mixed in
    assert f.days_left == pytest.approx(80, abs=2)
    assert f.confidence == "medium"  # 10 days of the new cartridge only


def test_noise_and_outliers_do_not_tilt_the_fit() -> None:
    rng = random.Random(7)

    def level(ago: float) -> float:
        v = 0.50 + 0.01 * ago + rng.gauss(0, 0.01)
        return 0.0 if rng.random() < 0.03 else v  # 3 % of polls read 0 (a glitch)

    f = forecast(history(28, level), NOW)
    assert f.trend == "falling" and f.refilled_at is None
    assert f.days_left == pytest.approx(50, rel=0.1)
    assert f.confidence in ("high", "medium")


def test_a_single_high_reading_is_not_a_refill() -> None:
    points = history(20, lambda ago: 0.30 + 0.01 * ago)
    t, _ = points[-48]
    points[-48] = (t, 0.95)
    assert last_refill(points) == 0
    assert forecast(points, NOW).days_left == pytest.approx(30, abs=1)


def test_holidays_flat_stretch_slows_but_does_not_stop_the_forecast() -> None:
    # Used 2 %/day, except 14 days of holiday (ago 7..21) with no printing.
    def level(ago: float) -> float:
        used_days = min(ago, 7) + max(0.0, ago - 21)
        return 0.30 + 0.02 * used_days

    f = forecast(history(42, level), NOW)
    assert f.trend == "falling"
    assert 10 < (f.days_left or 0) < 40  # between the raw and the working-day rate


@pytest.mark.parametrize("level", [
    lambda ago: 0.62,                                   # nobody prints
    lambda ago: 0.62 + (0.01 if int(ago) % 2 else 0.0),  # wobbles, does not fall
    lambda ago: 0.40 - 0.002 * ago,                     # creeps up (a sensor drift)
])
def test_not_falling_is_said_plainly(level: object) -> None:
    f = forecast(history(21, level), NOW)
    assert f.trend == "not falling" and f.days_left is None
    assert f.words() == "not falling"


def test_ten_percent_steps() -> None:
    # Reports 100, 90, ... : 10 % every 5 days; 60 % now, dropped to 60 two days ago.
    f = forecast(history(40, lambda ago: math.ceil((0.60 + (ago - 2) / 50) * 10) / 10
                         if ago > 2 else 0.60), NOW)
    assert f.trend == "falling" and f.days_left == pytest.approx(28, abs=4)


def test_too_little_data() -> None:
    assert forecast([], NOW).trend == "too little data" and forecast([], NOW).level is None
    f = forecast(history(0.5, lambda ago: 0.5 + ago), NOW)
    assert f.trend == "too little data" and f.level == pytest.approx(0.5)
    # A refill yesterday: the old cartridge's history does not count.
    f = forecast(history(30, lambda ago: 0.9 if ago < 0.8 else 0.1 + 0.01 * ago), NOW)
    assert f.trend == "too little data" and f.refilled_at is not None


def test_gaps_and_stale_readings_count_from_the_last_reading() -> None:
    # Readings stop 3 days ago (printer switched off); the days left count from then.
    f = forecast(history(30, lambda ago: 0.20 + 0.01 * ago, end=NOW - 3 * DAY), NOW)
    assert f.days_left == pytest.approx(17, abs=0.5)
    empty = forecast(history(30, lambda ago: 0.01 + 0.01 * ago, end=NOW - 3 * DAY), NOW)
    assert empty.days_left == 0 and empty.words() == "empty now (high confidence)"


def test_waste_container_fills_up() -> None:
    # 80 % full, +1 %/day: full in 20 days; emptied 25 days ago (a "refill" downwards).
    f = forecast(history(40, lambda ago: 0.80 - 0.01 * ago if ago < 25 else 0.95), NOW,
                 rising=True)
    assert f.level == pytest.approx(0.80)
    assert f.per_day == pytest.approx(0.01, abs=0.001)
    assert f.days_left == pytest.approx(20, abs=1)
    assert f.refilled_at == pytest.approx(NOW - 25 * DAY, abs=2 * HOUR)
    assert f.words() == "about 20 days until full (high confidence)"
    assert forecast(history(20, lambda ago: 0.5), NOW, rising=True).words() == "not filling"


def test_theil_sen_ignores_a_minority_of_outliers() -> None:
    points = [(float(x), 2.0 * x + 1) for x in range(20)]
    points[3] = (3.0, 100.0)
    points[11] = (11.0, -50.0)
    slope, intercept = theil_sen(points)
    assert slope == pytest.approx(2.0) and intercept == pytest.approx(1.0)
