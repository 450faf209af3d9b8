"""Small trend charts for the status page: server-rendered inline SVG, no JavaScript.

The page's Content-Security-Policy allows no script, so a chart is finished HTML: a
``<figure>`` holding an ``<svg>`` (one ``<polyline>`` per unbroken run of points, drawn
in a fixed ``viewBox`` stretched to the figure's width, strokes not scaled), a caption,
the time axis as text, and its text equivalent: the SVG's ``<title>``/``<desc>`` (what
a screen reader announces) and a ``<details>`` table of the figures by hour or day.

Coordinates come from :class:`Scale`, the one mapping from (time, value) to the
viewBox, so a test can put the stored points through it and find them in the SVG.
Every text that may hold a device string (a supply's description, an interface alias)
goes through :func:`markupsafe.escape`; the charts add nothing a browser would run.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from markupsafe import Markup, escape

from monitor.web.units import human_age

#: The viewBox of a line chart; the figure is as wide as its column.
WIDTH = 600.0
HEIGHT = 120.0
#: Rows of the figures table at most (hours of a day, days of a month).
TABLE_ROWS = 31
#: Line colours, in legend order (dark enough on white for WCAG's 3:1 for graphics).
COLOURS = ("#0b57d0", "#b35c00", "#1a7f37", "#c62828", "#6d28d9", "#4b5563")
#: Printer-MIB colorant names as line colours (yellow darkened to be seen on white).
SUPPLY_COLOURS = {"black": "#222222", "cyan": "#00a3d9", "magenta": "#d6007e",
                  "yellow": "#c9a800"}  # fmt: skip
#: Availability kinds in bar order, with their colours and words.
KINDS: tuple[tuple[str, str, str], ...] = (
    ("up", "#1a7f37", "up"),
    ("down", "#c62828", "down"),
    ("maintenance", "#5b5fc7", "maintenance"),
    ("outside_schedule", "#9ca3af", "outside its schedule"),
    ("unknown", "#e5e7eb", "unknown (netmon not running)"),
)


class PointLike(Protocol):
    """A stored point (``monitor.store.history.Point``): time and value."""

    @property
    def t(self) -> float: ...
    @property
    def value(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a chart: its legend text and its points, oldest first."""

    label: str
    points: Sequence[PointLike]
    #: The line's colour, when its meaning has one (a cyan toner); else the palette's.
    colour: str | None = None

    def stroke(self, n: int) -> str:
        return self.colour or COLOURS[n % len(COLOURS)]


@dataclass(frozen=True, slots=True)
class Scale:
    """(time, value) to viewBox coordinates: ``since``..``until`` left to right,
    ``low``..``high`` bottom to top. Values outside are clamped to the edges."""

    since: float
    until: float
    low: float
    high: float
    width: float = WIDTH
    height: float = HEIGHT

    def x(self, t: float) -> float:
        span = self.until - self.since
        return round(_clamp((t - self.since) / span if span > 0 else 1.0) * self.width, 2)

    def y(self, value: float) -> float:
        span = self.high - self.low
        return round(
            (1.0 - _clamp((value - self.low) / span if span > 0 else 0.0)) * self.height, 2
        )


def _clamp(r: float) -> float:
    return min(1.0, max(0.0, r))


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``value`` (> 0)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power  # pragma: no cover


def segments(points: Sequence[PointLike], gap: float) -> list[list[PointLike]]:
    """Runs of finite points with no two neighbours more than ``gap`` seconds apart:
    a longer silence (netmon stopped, the device was down) breaks the line."""
    runs: list[list[PointLike]] = []
    last: float | None = None
    for p in points:
        if not math.isfinite(p.value):
            last = None
            continue
        if last is None or p.t - last > gap:
            runs.append([])
        runs[-1].append(p)
        last = p.t
    return runs


def typical_gap(points: Sequence[PointLike]) -> float:
    """Three times the median spacing of the points (at least a minute): breaks where
    more than two readings are missing, not at one late poll."""
    steps = [b.t - a.t for a, b in itertools.pairwise(points)]
    positive = [s for s in steps if s > 0]
    return max(60.0, 3 * statistics.median(positive)) if positive else math.inf


def line_chart(
    key: str,
    title: str,
    lines: Sequence[Line],
    *,
    since: float,
    until: float,
    unit: Callable[[float], str],
    high: float | None = None,
    clock: Callable[[float], str] | None = None,
) -> Markup:
    """A finished chart of ``lines`` over ``since``..``until``; ``high`` fixes the top
    (1.0 for ratios), else it is a round number above the highest point."""
    values = [p.value for line in lines for p in line.points if math.isfinite(p.value)]
    top = high if high is not None else nice_ceiling(max(values, default=0.0))
    scale = Scale(since, until, 0.0, top)
    ident = escape(f"chart-{key}")
    shapes: list[str] = [
        f'<line x1="0" y1="{scale.y(v)}" x2="{WIDTH:g}" y2="{scale.y(v)}" stroke="#e1e4e8" '
        'vector-effect="non-scaling-stroke"/>'
        for v in (0.0, top / 2, top)
    ]
    for n, line in enumerate(lines):
        colour = line.stroke(n)
        for run in segments(line.points, typical_gap(line.points)):
            # One point alone is drawn as a dot: a zero-length line with round caps.
            coords = " ".join(
                f"{scale.x(p.t)},{scale.y(p.value)}" for p in (run * 2)[: max(2, len(run))]
            )
            shapes.append(
                f'<polyline data-line="{n}" points="{coords}" fill="none" stroke="{colour}" '
                'stroke-width="2" stroke-linecap="round" stroke-linejoin="round" '
                'vector-effect="non-scaling-stroke"/>'
            )
    when = clock or _clock_for(until - since)
    summary = describe(title, lines, unit, when)
    keys = "".join(
        f'<span class="key"><span class="swatch" style="background:{line.stroke(n)}">'
        f"</span>{escape(line.label)}</span>"
        for n, line in enumerate(lines)
        if len(lines) > 1
    )
    legend = f'<div class="legend">{keys}</div>' if keys else ""
    return Markup(
        f'<figure class="chart" id="{ident}">'
        f'<figcaption><b>{escape(title)}</b> <span class="muted">top of the chart: '
        f"{escape(unit(top))}</span></figcaption>"
        f'<svg viewBox="0 0 {WIDTH:g} {HEIGHT:g}" preserveAspectRatio="none" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" data-since="{since!r}" data-until="{until!r}" '
        f'data-low="0" data-high="{top!r}">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(summary)}</desc>'
        f"{''.join(shapes)}</svg>"
        f'<div class="axis"><span>{escape(human_age(until - since))} ago</span><span>now</span></div>'
        f"{legend}"
        f"{figures_table(lines, since, until, unit, when)}</figure>"
    )


def describe(
    title: str, lines: Sequence[Line], unit: Callable[[float], str], when: Callable[[float], str]
) -> str:
    """The chart in one or two sentences: latest, average and highest of each line."""
    parts = []
    for line in lines:
        finite = [p for p in line.points if math.isfinite(p.value)]
        name = f"{line.label}: " if len(lines) > 1 else ""
        if not finite:
            parts.append(f"{name}no data")
            continue
        peak = max(finite, key=lambda p: p.value)
        mean = statistics.fmean(p.value for p in finite)
        parts.append(
            f"{name}latest {unit(finite[-1].value)}, average {unit(mean)}, "
            f"highest {unit(peak.value)} at {when(peak.t)}"
        )
    return f"{title}. " + "; ".join(parts) + "."


def figures_table(
    lines: Sequence[Line],
    since: float,
    until: float,
    unit: Callable[[float], str],
    when: Callable[[float], str],
) -> str:
    """The figures behind the chart, averaged into at most :data:`TABLE_ROWS` rows."""
    rows = max(1, min(TABLE_ROWS, round((until - since) / 3600)))
    width = (until - since) / rows
    if width <= 0:
        return ""
    sums: list[list[list[float]]] = [[[] for _ in lines] for _ in range(rows)]
    for n, line in enumerate(lines):
        for p in line.points:
            if math.isfinite(p.value) and since <= p.t <= until:
                sums[min(rows - 1, int((p.t - since) / width))][n].append(p.value)
    head = "".join(f"<th>{escape(line.label)}</th>" for line in lines)
    body = "".join(
        f"<tr><td>{escape(when(since + i * width))}</td>"
        + "".join(f"<td>{escape(unit(statistics.fmean(v))) if v else '–'}</td>" for v in cells)
        + "</tr>"
        for i, cells in enumerate(sums)
        if any(cells)
    )
    if not body:
        return ""
    return (
        '<details class="figures"><summary>Figures</summary><table>'
        f"<thead><tr><th>from</th>{head}</tr></thead><tbody>{body}</tbody></table></details>"
    )


def _clock_for(span: float) -> Callable[[float], str]:
    """Times as the span needs them: "14:05" within 12 hours, "Tue 14:05" within two
    days, else "03 Dec 14:05"."""
    fmt = "%H:%M" if span <= 43200 else "%a %H:%M" if span <= 2 * 86400 else "%d %b %H:%M"
    return lambda t: time.strftime(fmt, time.localtime(t))


def availability_bar(
    key: str, title: str, seconds: Mapping[str, float], devices: int = 1
) -> Markup:
    """One window's availability as a stacked bar of :data:`KINDS` (up, down,
    maintenance, outside the schedule, unknown: the classes of
    :mod:`monitor.store.availability`) with the ratio up / (up + down). A room's
    ``seconds`` are device-seconds of its ``devices``; the words say so."""
    total = sum(max(0.0, seconds.get(kind, 0.0)) for kind, _, _ in KINDS)
    up, down = seconds.get("up", 0.0), seconds.get("down", 0.0)
    unknown = seconds.get("unknown", 0.0)
    words = [
        f"{human_age(seconds[kind])} {word}"
        for kind, _, word in KINDS
        if seconds.get(kind, 0.0) > 0
    ]
    if up + down > 0:
        headline = f"{percent(up / (up + down))} available"
        known = f" of {human_age((total - unknown) / devices)} recorded" if unknown > 0 else ""
    else:  # only maintenance, outside the schedule or unknown: nothing to count
        headline = "not counted"
        known = ": " + ", ".join(w for w in words if not w.endswith(KINDS[-1][2])) if words else ""
    across = f" across {devices} devices" if devices > 1 else ""
    summary = f"{title}: {headline}{across}" + (f" ({', '.join(words)})" if words else "")
    ident = escape(f"avail-{key}")
    rects, x = [], 0.0
    for kind, colour, _ in KINDS:
        share = max(0.0, seconds.get(kind, 0.0)) / total if total > 0 else 0.0
        if share <= 0:
            continue
        width = round(share * WIDTH, 2)
        rects.append(
            f'<rect data-kind="{kind}" x="{round(x, 2)}" y="0" width="{width}" height="10" '
            f'fill="{colour}"/>'
        )
        x += share * WIDTH
    return Markup(
        f'<div class="avail" id="{ident}"><span class="avail-title">{escape(title)}</span> '
        f'<b class="avail-ratio">{escape(headline)}</b><span class="muted">{escape(known)}</span>'
        # The words are in the hidden span (read once); the title is the hover tooltip.
        f'<svg viewBox="0 0 {WIDTH:g} 10" preserveAspectRatio="none" aria-hidden="true">'
        f"<title>{escape(summary)}</title>"
        f'{"".join(rects)}</svg><span class="vh">{escape(summary)}</span></div>'
    )


def percent(ratio: float) -> str:
    """Availability as people quote it: "99.95 %" keeps the digits that differ from 100."""
    if ratio >= 1.0:
        return "100 %"
    for digits in range(1, 6):
        text = f"{100 * ratio:.{digits}f}"
        if float(text) < 100.0:
            return f"{text} %"
    return "99.99999 %"  # never rounded up to a perfect score
