"""The replay timeline: what the devices of a config do over a scripted week.

``netmon alerts replay TIMELINE.yml -c netmon.yml`` (:mod:`alerts.replay`) runs the real
rules, engine and routing of ``netmon run`` over such a file under a virtual clock::

    timezone: Europe/London          # for times without an offset, and for the output
    start: 2026-09-07 06:00          # every probe starts "ok" with no extra samples
    end: +7d                         # or a time; default: a day after the last event
    changes:                         # each holds from its time on, until changed again
      - at: +2h30m                   # an offset from the start (d, h, m, s) or a time
        target: library-mfp          # or group: printers, or match: {role: lab}
        probe: snmp                  # icmp, snmp, tcp, tcp-9100; default: all of them
        status: ok                   # ok, partial, timeout, auth_error, refused, ...
        samples:                     # values by metric name and labels
          - {metric: netmon_printer_supply_level_ratio, value: 0.04,
             labels: {index: "1.1", supply: Black Toner, class: consumable}}
    silences:                        # `netmon silence add` at that time
      - {at: +1d, duration: 8h, matchers: ["target=~lab-.*"], comment: open day}
    restarts:                        # netmon stopped at ``at``, started ``down`` later
      - {at: +3d, down: 2m}

A change's ``samples`` set every sample of that metric whose labels include the given
ones (a new sample with exactly those labels when none has them); ``value: null``
removes them; ``rate`` makes the value grow per second from the change on (a counter,
an uptime). Samples are what the probe's module would report; the runner's
``netmon_probe_*`` series come from the status, and the ICMP probe's packet counts,
loss and round-trip times are built the way the ICMP probe builds them (a
``netmon_icmp_packet_loss_ratio`` or ``netmon_icmp_rtt_seconds{stat=avg}`` sample sets
the loss or the replies' time).

Mistakes are reported all at once as ``file:line: field.path: what is wrong``.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from alerts.schedule import _check_timezone
from alerts.silences import Matcher
from probes.errors import ConfigError
from probes.metrics import METRICS
from probes.result import Status
from probes.settings import StrictModel

_SPAN = re.compile(r"^\+?\s*((?:\d+(?:\.\d+)?\s*(?:ms|d|h|m|s)\s*)+)$")
_NUMBER = re.compile(r"^\+?\d+(?:\.\d+)?$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
PROBE_NAME = re.compile(r"^(icmp|snmp|tcp)(-\d{1,5})?$")


def parse_span(value: Any) -> float:
    """``90``, ``"90s"``, ``"2h30m"``, ``"+1d2h"``: seconds (days allowed, unlike the
    config's durations: a timeline spans weeks)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 2h30m or 1d")  # noqa: TRY004
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value.strip().lstrip("+"))
    if isinstance(value, str) and (m := _SPAN.match(value.strip())):
        return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(m.group(1)))
    raise ValueError(f"{value!r} is not a duration; use e.g. 90s, 2h30m or 1d")


def _when(value: Any) -> float | datetime:
    """An offset (``+2h``, seconds as a number) or a time (a YAML timestamp or an ISO
    text such as ``2026-09-07 08:00`` or ``2026-09-07T08:00:00+01:00``)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str) and not value.strip().startswith("+"):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    try:
        return parse_span(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an offset from the start (+90s, +2h30m, +1d) nor a time "
            "(2026-09-07 08:00)"
        ) from None


When = Annotated[float | datetime, BeforeValidator(_when)]
Span = Annotated[float, BeforeValidator(parse_span)]


def _check_metric(value: str) -> str:
    if value not in METRICS:
        raise ValueError(f"unknown metric '{value}' (see METRICS.md)")
    return value


def _check_probe(value: str) -> str:
    if not PROBE_NAME.match(value):
        raise ValueError("a probe is icmp, snmp, tcp (every TCP port) or tcp-PORT")
    return value


def _check_matcher(value: str) -> str:
    Matcher.parse(value)
    return value


class SampleSetting(StrictModel):
    """One sample value a change sets (see the module docstring)."""

    metric: Annotated[str, AfterValidator(_check_metric)]
    labels: dict[str, str] = Field(default_factory=dict)
    #: ``null`` removes the matching samples.
    value: float | None
    #: Growth per second from the change on (counters, uptimes).
    rate: float = 0.0


class Change(StrictModel):
    """From ``at`` on, a probe of some targets has this status and these samples."""

    at: When
    target: str | None = None
    group: str | None = None
    #: Target labels that must all match (role, group, room, building, site, ...).
    match: dict[str, str] | None = None
    probe: Annotated[str, AfterValidator(_check_probe)] | None = None
    status: Status | None = None
    #: The probe's one-line explanation (default: one made from the status).
    explanation: str | None = None
    samples: list[SampleSetting] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_selector(self) -> Change:
        if sum(x is not None for x in (self.target, self.group, self.match)) != 1:
            raise ValueError("a change names exactly one of target, group or match")
        return self


class SilenceSetting(StrictModel):
    """``netmon silence add`` at ``at`` for ``duration``."""

    at: When
    duration: Span
    matchers: list[Annotated[str, AfterValidator(_check_matcher)]] = Field(min_length=1)
    author: str = "replay"
    comment: str = "from the replay timeline"


class RestartSetting(StrictModel):
    """netmon stops at ``at`` and starts again ``down`` later (same state file)."""

    at: When
    down: Span = 10.0


class Timeline(StrictModel):
    """A whole timeline file (see the module docstring)."""

    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    start: When
    end: When | None = None
    changes: list[Change] = Field(default_factory=list)
    silences: list[SilenceSetting] = Field(default_factory=list)
    restarts: list[RestartSetting] = Field(default_factory=list)

    @field_validator("start")
    @classmethod
    def _absolute_start(cls, value: float | datetime) -> float | datetime:
        if not isinstance(value, datetime):
            raise ValueError("the start is a time, e.g. 2026-09-07 06:00")  # noqa: TRY004
        return value

    @property
    def zone(self) -> tzinfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def seconds(self, when: float | datetime) -> float:
        """A Unix time for an offset or a time (times without an offset are in ``timezone``)."""
        if isinstance(when, datetime):
            aware = when if when.tzinfo is not None else when.replace(tzinfo=self.zone)
            return aware.timestamp()
        return self.seconds(self.start) + when

    @property
    def start_ts(self) -> float:
        return self.seconds(self.start)

    def end_ts(self) -> float:
        """``end``, or a day after the last change, silence or restart."""
        if self.end is not None:
            return self.seconds(self.end)
        events = [self.seconds(c.at) for c in self.changes]
        events += [self.seconds(s.at) + s.duration for s in self.silences]
        events += [self.seconds(r.at) + r.down for r in self.restarts]
        return max([self.start_ts, *events]) + 86400.0


# --- loading ----------------------------------------------------------------------------

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class LoadedTimeline:
    """A valid timeline and where each of its fields is in the file (for later checks
    against the config, which report ``file:line`` too)."""

    timeline: Timeline
    path: Path
    lines: Callable[[Loc], int | None]

    def problem(self, loc: Loc, message: str) -> str:
        return _problem(self.path, self.lines(loc), loc, message)


class TimelineError(ConfigError):
    """The timeline file has mistakes; ``problems`` lists each as one line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _problem(path: Path, line: int | None, loc: Loc, message: str) -> str:
    where = f"{path}:{line}" if line is not None else str(path)
    field = ""
    for part in loc:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return f"{where}: {field}: {message}" if field else f"{where}: {message}"


def _node_lines(node: yaml.Node, loc: Loc = ()) -> Iterator[tuple[Loc, int]]:
    """The locations inside a composed YAML node with the line each starts on (a
    mapping's entries at their key)."""
    if isinstance(node, yaml.MappingNode):
        children = [((*loc, str(k.value)), k, v) for k, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = [((*loc, i), item, item) for i, item in enumerate(node.value)]
    else:
        return
    for child_loc, start, child in children:
        yield child_loc, start.start_mark.line + 1
        yield from _node_lines(child, child_loc)


def _line_finder(root: yaml.Node | None) -> Callable[[Loc], int | None]:
    found = {(): root.start_mark.line + 1, **dict(_node_lines(root))} if root else {}

    def line(loc: Loc) -> int | None:
        for n in range(len(loc), -1, -1):  # the deepest known part of the location
            if loc[:n] in found:
                return found[loc[:n]]
        return None

    return line


def load_timeline(path: Path) -> LoadedTimeline:
    """Read and validate a timeline; raise :class:`TimelineError` with every mistake."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TimelineError([f"{path}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise TimelineError([f"{path}: not UTF-8 text"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise TimelineError([f"{where}: YAML syntax error: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise TimelineError([f"{path}: not valid YAML: {exc}"]) from None
    lines = _line_finder(root)
    if not isinstance(data, dict):
        raise TimelineError([_problem(path, lines(()), (), "a timeline is a mapping with start "
                                      "and changes (see `netmon alerts replay --help`)")])
    try:
        timeline = Timeline.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key '{loc[-1]}'"
            elif err["type"] == "missing":
                msg = "required but missing"
            problems.append((lines(loc) or 0, _problem(path, lines(loc), loc, msg)))
        raise TimelineError([p for _, p in sorted(problems)]) from None
    return LoadedTimeline(timeline, Path(path), lines)
