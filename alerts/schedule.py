"""When a device is expected online: named schedules from the config's ``schedules:``.

::

    school-hours:
      days: mon-fri                  # ranges and lists: mon-fri, sat,sun, mon,wed-fri
      hours: "07:00-17:00"           # several windows: "07:00-12:00,13:00-16:00"
      timezone: Europe/London        # default: this machine's local time zone
      terms:    [{from: 2026-09-02, to: 2026-12-18}]     # only inside these dates
      holidays: [2026-10-26, {from: 2026-12-21, to: 2027-01-04}]
      ical: holidays.ics             # every event in it is a holiday

Rules (:func:`is_expected_online`):

- Date ranges (terms, holidays) include both ends.
- A window may cross midnight ("22:00-06:00"): it belongs to the day it starts on, so
  ``days: fri`` with ``"22:00-06:00"`` covers Friday 22:00 to Saturday 06:00, and that
  start day's terms and holidays decide.
- iCalendar (``ical:``, relative to the config directory): an all-day event is a holiday
  for its dates (like ``holidays:``); a timed event makes the schedule off for exactly
  its span (e.g. an INSET afternoon). Recurring events are expanded. The parsed file is
  cached until its modification time changes; an unreadable file is logged and ignored,
  so alerts keep working (noise rather than silence).
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from probes.settings import StrictModel

log = logging.getLogger("netmon.alerts.schedule")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _check_days(value: Any) -> str:
    if not isinstance(value, str):
        # ValueError, not TypeError: pydantic reports only ValueErrors as config mistakes
        raise ValueError("days are text such as mon-fri or sat,sun")  # noqa: TRY004
    for part in value.lower().replace(" ", "").split(","):
        ends = part.split("-")
        if len(ends) > 2 or not all(d in DAYS for d in ends):
            raise ValueError("days are mon..sun as a range or list, e.g. mon-fri or mon,wed,fri")
    return value.lower().replace(" ", "")


def _check_hours(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('hours are text in quotes, e.g. "07:00-17:00"')  # noqa: TRY004
    for part in value.replace(" ", "").split(","):
        ends = part.split("-")
        if len(ends) != 2 or not all(_HHMM.match(e) for e in ends) or ends[0] == ends[1]:
            raise ValueError(
                'hours are HH:MM-HH:MM ranges, e.g. "07:00-17:00" or "07:00-12:00,13:00-16:00"'
            )
    return value.replace(" ", "")


def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone; use an IANA name such as Europe/London") from None
    return value


class DateRange(StrictModel):
    """``{from: 2026-09-02, to: 2026-12-18}``, both days included."""

    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError("'to' is before 'from'")
        return self

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


class Schedule(StrictModel):
    """When devices are expected online (see the module docstring)."""

    days: Annotated[str, BeforeValidator(_check_days)] = "mon-sun"
    hours: Annotated[str, BeforeValidator(_check_hours)] = "00:00-24:00"
    #: None: this machine's local time zone.
    timezone: Annotated[str, AfterValidator(_check_timezone)] | None = None
    terms: tuple[DateRange, ...] = ()
    holidays: tuple[date | DateRange, ...] = ()
    #: An iCalendar file of holidays, relative to the config file's directory.
    ical: str | None = None

    def describe(self) -> str:
        """Short human form, e.g. ``mon-fri 07:00-17:00 Europe/London``."""
        return " ".join(p for p in (self.days, self.hours, self.timezone) if p)


def _weekdays(days: str) -> frozenset[int]:
    out: set[int] = set()
    for part in days.split(","):
        first, _, last = part.partition("-")
        a, b = DAYS.index(first), DAYS.index(last or first)
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return frozenset(out)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _windows(hours: str) -> list[tuple[int, int]]:
    return [(_minutes(a), _minutes(b)) for a, b in (p.split("-") for p in hours.split(","))]


def _zone(schedule: Schedule) -> tzinfo | None:
    return zoneinfo.ZoneInfo(schedule.timezone) if schedule.timezone else None


def is_expected_online(schedule: Schedule, when: datetime | float, *, base_dir: Path) -> bool:
    """True when ``when`` (a Unix time or an aware datetime) is inside the schedule."""
    ts = when.timestamp() if isinstance(when, datetime) else float(when)
    local = datetime.fromtimestamp(ts, _zone(schedule))
    if local.tzinfo is None:
        local = local.astimezone()
    if _in_ical_event(schedule, local, base_dir):
        return False
    minute = local.hour * 60 + local.minute
    today, yesterday = local.date(), local.date() - timedelta(days=1)
    for start, end in _windows(schedule.hours):
        if start < end:
            hit = start <= minute < end and _day_on(schedule, today, base_dir)
        else:  # crosses midnight: the window belongs to the day it starts on
            hit = (minute >= start and _day_on(schedule, today, base_dir)) or (
                minute < end and _day_on(schedule, yesterday, base_dir)
            )
        if hit:
            return True
    return False


def next_change(schedule: Schedule, after: float, *, base_dir: Path) -> float:
    """A time after ``after`` by which :func:`is_expected_online` may next change: the
    next window edge or midnight in the schedule's zone, or an iCalendar event's start
    or end (the alert replay ticks only then)."""
    local = datetime.fromtimestamp(after, _zone(schedule))
    zone = local.tzinfo if local.tzinfo is not None else local.astimezone().tzinfo
    edges = {0} | {m for window in _windows(schedule.hours) for m in window}
    found = [
        (datetime.combine(local.date() + timedelta(days=d), time(), zone)
         + timedelta(minutes=m)).timestamp()
        for d in (0, 1)
        for m in edges
    ]  # fmt: skip
    if schedule.ical:
        for d in (0, 1):
            day = _ical_day(base_dir / schedule.ical, local.date() + timedelta(days=d), zone)
            found += [t for span in day.timed for t in span]
    return min(t for t in found if t > after)


def _day_on(schedule: Schedule, day: date, base_dir: Path) -> bool:
    """Is ``day`` a working day: a listed weekday, in a term (if any), not a holiday."""
    if day.weekday() not in _weekdays(schedule.days):
        return False
    if schedule.terms and not any(day in term for term in schedule.terms):
        return False
    if any(day == h if not isinstance(h, DateRange) else day in h for h in schedule.holidays):
        return False
    return not (schedule.ical and _ical_day(base_dir / schedule.ical, day).all_day)


def _in_ical_event(schedule: Schedule, local: datetime, base_dir: Path) -> bool:
    if not schedule.ical:
        return False
    ts = local.timestamp()
    spans = _ical_day(base_dir / schedule.ical, local.date(), local.tzinfo).timed
    return any(start <= ts < end for start, end in spans)


# --- iCalendar ---------------------------------------------------------------------------


@dataclass(slots=True)
class _IcalDay:
    all_day: bool = False
    #: (start, end) Unix times of timed events touching the day.
    timed: list[tuple[float, float]] = field(default_factory=list)


@dataclass(slots=True)
class _IcalFile:
    mtime: float
    calendar: Any
    days: dict[tuple[date, str], _IcalDay] = field(default_factory=dict)


#: Parsed files by path, re-read when the modification time changes.
_ICAL_CACHE: dict[Path, _IcalFile] = {}


def _load_ical(path: Path) -> _IcalFile | None:
    import icalendar

    try:
        mtime = path.stat().st_mtime
        cached = _ICAL_CACHE.get(path)
        if cached is not None and cached.mtime == mtime:
            return cached
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
    except (OSError, ValueError) as exc:
        if path not in _ICAL_CACHE or _ICAL_CACHE[path].calendar is not None:
            log.warning("schedule holidays file %s is unusable, ignored: %s", path, exc)
            _ICAL_CACHE[path] = _IcalFile(-1.0, None)
        return None
    entry = _IcalFile(mtime, calendar)
    _ICAL_CACHE[path] = entry
    return entry


def _ical_day(path: Path, day: date, zone: tzinfo | None = None) -> _IcalDay:
    """The holidays file's events on ``day`` (in ``zone``), cached per file version."""
    import recurring_ical_events  # type: ignore[import-untyped]

    entry = _load_ical(path)
    if entry is None:
        return _IcalDay()
    zone = zone or datetime.now().astimezone().tzinfo
    key = (day, str(zone))
    found = entry.days.get(key)
    if found is not None:
        return found
    start = datetime.combine(day, time(), zone)
    found = _IcalDay()
    try:
        events = recurring_ical_events.of(entry.calendar).between(start, start + timedelta(days=1))
    except Exception as exc:  # noqa: BLE001 - a malformed calendar must not stop alerting
        log.warning("cannot expand events of %s, ignored: %s", path, exc)
        events = []
    for event in events:
        begin = event.get("DTSTART").dt
        if not isinstance(begin, datetime):
            found.all_day = True
            continue
        end_prop = event.get("DTEND")
        end = end_prop.dt if end_prop is not None else begin + event.get("DURATION", _ZERO).dt
        found.timed.append((_aware(begin, zone).timestamp(), _aware(end, zone).timestamp()))
    if len(entry.days) > 256:
        entry.days.clear()
    entry.days[key] = found
    return found


class _Zero:
    dt = timedelta(0)


_ZERO = _Zero()


def _aware(value: datetime, zone: tzinfo | None) -> datetime:
    """Floating (zone-less) iCalendar times are read in the schedule's zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def check_schedules(
    schedules: dict[str, Schedule], *, base_dir: Path
) -> list[tuple[tuple[str | int, ...], str]]:
    """Config check: every ``ical:`` file exists and parses; (location under
    ``schedules``, message) pairs, empty when fine."""
    import icalendar

    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, schedule in schedules.items():
        if not schedule.ical:
            continue
        path = base_dir / schedule.ical
        try:
            icalendar.Calendar.from_ical(path.read_bytes())
        except OSError as exc:
            problems.append(((name, "ical"), f"cannot read {path}: {exc.strerror}"))
        except ValueError:
            problems.append(((name, "ical"), f"{path} is not an iCalendar file"))
    return problems
