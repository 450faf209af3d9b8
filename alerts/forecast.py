"""When will a printer supply run out? A robust fit of its level history (pure logic).

Supply levels are noisy and lumpy: some printers report in 10 % steps, a reading can
jump down and back for one poll, a school prints nothing for two weeks at Easter, and a
new cartridge puts the level back up. So:

1. the history is cut at the last **refill**: a rise of at least :data:`REFILL_RISE`
   of the medians of :data:`SMOOTH` readings, from the two before to the two after (so
   a few odd readings are neither a refill nor hide one); only the stretch since then
   is fitted;
2. that stretch is reduced to at most :data:`MAX_BUCKETS` medians of equal time
   buckets (Theil–Sen looks at every pair; this bounds the work and the weight of
   periods polled more often);
3. the slope is **Theil–Sen**'s (the median of all pairwise slopes), which a few wild
   readings cannot tilt, and flat stretches simply lower it;
4. a supply whose fitted drop over the stretch is under :data:`FLAT_DROP` is
   **not falling** (said plainly: no made-up date); otherwise the days left are the
   latest level over the daily use;
5. the confidence words say how much to trust the number: the length of the stretch,
   the number of buckets, and how far the readings stray from the line.

Waste containers fill instead of emptying: :func:`forecast` with ``rising=True``
forecasts the days until full (an emptied box is a "refill" the other way round).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DAY = 86400.0
#: A rise of the (smoothed) level of at least this much is a new cartridge.
REFILL_RISE = 0.15
#: Readings per median when looking for refills.
SMOOTH = 3
#: Theil–Sen is O(n²): the stretch is cut into at most this many buckets.
MAX_BUCKETS = 60
#: Below this fitted drop over the whole stretch, the supply is "not falling".
FLAT_DROP = 0.02
#: Less history than this since the last refill cannot give a forecast.
MIN_SPAN = DAY
MIN_BUCKETS = 4

Trend = Literal["falling", "not falling", "too little data"]
Confidence = Literal["high", "medium", "low", ""]


@dataclass(frozen=True, slots=True)
class Forecast:
    """What the history says about one supply."""

    #: The latest level (ratio 0-1; for ``rising``: the share filled), None with no data.
    level: float | None
    trend: Trend
    #: Days until empty (``rising``: full), when falling; 0 once there.
    days_left: float | None = None
    #: Level change per day (negative when used up; ``rising``: positive when filling).
    per_day: float | None = None
    confidence: Confidence = ""
    #: The start of the fitted stretch (the last refill, or the oldest reading).
    since: float | None = None
    #: When the last refill was detected, if any.
    refilled_at: float | None = None
    #: A waste container (``days_left``: until full).
    rising: bool = False

    def words(self) -> str:
        """``"about 12 days left (high confidence)"`` (a waste container: ``"... until
        full"``), ``"not falling"`` (``"not filling"``), ``"too little data"``."""
        if self.trend != "falling" or self.days_left is None:
            return "not filling" if self.rising and self.trend == "not falling" else self.trend
        if self.days_left <= 0:
            when = "full now" if self.rising else "empty now"
        elif self.days_left < 1:
            when = "less than a day left"
        else:
            when = f"about {self.days_left:.0f} days {'until full' if self.rising else 'left'}"
        return f"{when} ({self.confidence} confidence)"


def _medians(points: Sequence[tuple[float, float]], size: int) -> list[tuple[float, float]]:
    """Median time and value of each run of ``size`` consecutive readings."""
    return [(statistics.median(t for t, _ in chunk), statistics.median(v for _, v in chunk))
            for chunk in (points[i:i + size] for i in range(0, len(points), size))]


def last_refill(points: Sequence[tuple[float, float]], rise: float = REFILL_RISE) -> int:
    """Index in ``points`` (sorted by time) where the stretch since the last refill starts:
    0 when there was none. The jump is looked for between medians of :data:`SMOOTH`
    readings, then placed at the first reading of the new cartridge."""
    smooth = [v for _, v in _medians(points, SMOOTH)]
    for k in range(len(smooth) - 1, 0, -1):
        # Up from both medians before and staying up in both after: a run of glitches
        # (two low readings in one median) is not taken for a refill.
        before = max(smooth[max(0, k - 2):k])
        if min(smooth[k:k + 2]) - before >= rise:
            lo, hi = (k - 1) * SMOOTH, min(len(points), (k + 1) * SMOOTH)
            # The first reading of the window that is clearly up from the old level.
            return next(i for i in range(lo, hi) if points[i][1] - before >= rise / 2)
    return 0


def _buckets(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most :data:`MAX_BUCKETS` medians over equal time spans (empty spans dropped)."""
    start, end = points[0][0], points[-1][0]
    width = max((end - start) / MAX_BUCKETS, 1e-9)
    groups: dict[int, list[tuple[float, float]]] = {}
    for t, v in points:
        groups.setdefault(min(int((t - start) / width), MAX_BUCKETS - 1), []).append((t, v))
    return [(statistics.median(t for t, _ in g), statistics.median(v for _, v in g))
            for _, g in sorted(groups.items())]


def theil_sen(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(slope, intercept): the median of all pairwise slopes, and the median intercept."""
    slopes = [(v2 - v1) / (t2 - t1) for i, (t1, v1) in enumerate(points)
              for t2, v2 in points[i + 1:] if t2 > t1]
    slope = statistics.median(slopes) if slopes else 0.0
    intercept = statistics.median(v - slope * t for t, v in points)
    return slope, intercept


def _confidence(span: float, n: int, spread: float, drop: float) -> Confidence:
    """Long, dense and close to the line: high; short or scattered: low."""
    noisy = spread > 0.25 * drop
    if span >= 14 * DAY and n >= 10 and not noisy:
        return "high"
    if span >= 5 * DAY and n >= 5 and spread <= 0.5 * drop:
        return "medium"
    return "low"


def forecast(points: Sequence[tuple[float, float]], now: float, *,
             rising: bool = False) -> Forecast:
    """Forecast one supply from ``(time, level)`` readings (any order; NaN ignored).

    ``rising``: a waste container, whose level is the share filled: the days left are
    until full."""
    clean = sorted((t, 1.0 - v if rising else v) for t, v in points if not math.isnan(v))
    if not clean:
        return Forecast(None, "too little data", rising=rising)
    level = clean[-1][1]
    shown = 1.0 - level if rising else level
    start = last_refill(clean)
    stretch = clean[start:]
    refilled_at = stretch[0][0] if start else None
    since = stretch[0][0]
    span = stretch[-1][0] - since
    buckets = _buckets(stretch) if len(stretch) > 1 else stretch
    if span < MIN_SPAN or len(buckets) < MIN_BUCKETS:
        return Forecast(shown, "too little data", since=since, refilled_at=refilled_at,
                        rising=rising)
    slope, intercept = theil_sen(buckets)
    per_day = slope * DAY
    drop = -slope * span
    sign = -1.0 if rising else 1.0
    if drop < FLAT_DROP:
        return Forecast(shown, "not falling", per_day=sign * per_day, since=since,
                        refilled_at=refilled_at, rising=rising)
    spread = statistics.median(abs(v - (intercept + slope * t)) for t, v in buckets)
    # Counted from the latest reading, or from the line if that reading is an outlier.
    last_t = clean[-1][0]
    fitted = intercept + slope * last_t
    base = level if abs(level - fitted) <= max(3 * spread, 0.05) else fitted
    left = max(0.0, base) / -per_day - (now - last_t) / DAY
    return Forecast(shown, "falling", days_left=max(0.0, left), per_day=sign * per_day,
                    confidence=_confidence(span, len(buckets), spread, drop), since=since,
                    refilled_at=refilled_at, rising=rising)
