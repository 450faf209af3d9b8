"""Availability from the history's rows: per device, room or role, exact on intervals.

Every second of a report's window ``[since, until)`` falls in exactly one class, in this
order of precedence:

1. **unknown**: netmon was not running (no running period covers it), or the device had
   no result yet (before its first recorded status);
2. **outside schedule**: outside the device's ``expected_online`` schedule (a lab PC
   switched off at night is not down);
3. **maintenance**: a silence that would silence the device's ``device_down`` alert
   was in force, or one of its parents (transitively) was down (the closet switch,
   not the PC, is the outage);
4. **down**: inside an outage row of the device (every fresh probe failed);
5. **up**: the rest.

Availability is ``up / (up + down)``: unknown, out-of-schedule and maintenance time are
reported apart and count neither way. A room or role adds up its devices' seconds (so
a lab of 30 PCs down for an hour each is 30 device-hours down).

The intervals are the history's own timestamps (outages, running periods, silences,
first results) and the schedule's minute edges, so the arithmetic is exact: no sampling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from alerts.schedule import Schedule, is_expected_online, next_change
from alerts.silences import Matcher
from monitor.store.history import HistoryStore, Outage

if TYPE_CHECKING:
    from monitor.config import InventoryTarget, NetmonConfig

Intervals = list[tuple[float, float]]
By = Literal["device", "room", "role"]
#: The alert whose silences count as maintenance of a device.
DOWN_ALERT = {"alertname": "device_down", "severity": "critical"}
CLASSES = ("up", "down", "outside_schedule", "maintenance", "unknown")


# --- interval arithmetic (sorted, disjoint, half-open [a, b)) ------------------------


def union(spans: Iterable[tuple[float, float]]) -> Intervals:
    out: Intervals = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def intersect(xs: Intervals, ys: Intervals) -> Intervals:
    out: Intervals = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if b > a:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(xs: Intervals, ys: Intervals) -> Intervals:
    out: Intervals = []
    j = 0
    for a, b in xs:
        while j < len(ys) and ys[j][1] <= a:
            j += 1
        k, start = j, a
        while k < len(ys) and ys[k][0] < b:
            if ys[k][0] > start:
                out.append((start, ys[k][0]))
            start = max(start, ys[k][1])
            k += 1
        if start < b:
            out.append((start, b))
    return out


def total(xs: Intervals) -> float:
    return sum(b - a for a, b in xs)


# --- the devices ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Device:
    """What availability needs of an inventory target."""

    name: str
    role: str = "other"
    #: Static labels (room, building, ...) and ``group``.
    labels: Mapping[str, str] = field(default_factory=dict)
    parent: str | None = None
    schedule: Schedule | None = None

    @property
    def room(self) -> str:
        """``building/room``, the room alone, or "" (no room label)."""
        room, building = self.labels.get("room", ""), self.labels.get("building", "")
        return f"{building}/{room}" if building and room else room

    def silence_labels(self) -> dict[str, str]:
        return {**self.labels, "target": self.name, "role": self.role, **DOWN_ALERT}


def devices_of(
    targets: Iterable[InventoryTarget],
    schedules: Mapping[str, Schedule],
    inferred: Mapping[str, str] | None = None,
) -> list[Device]:
    """Inventory targets as :class:`Device` rows: schedules looked up, parents as the
    alerting uses them (a written ``parent:``, else the one the topology inferred for a
    target left at ``parent: auto``). Today's parents and schedules apply to the whole
    period, like the config's rules do."""
    from monitor.topology import effective_parents

    targets = list(targets)
    parents = effective_parents(targets, inferred or {})
    return [
        Device(
            t.name,
            t.role,
            {"group": t.group, **t.labels},
            parents[t.name][0] if t.name in parents else None,
            schedules.get(t.expected_online) if t.expected_online else None,
        )
        for t in targets
    ]


def devices_from_config(cfg: NetmonConfig, config_path: Path | None = None) -> list[Device]:
    """The config's targets as :class:`Device` rows; with ``config_path``, parents the
    topology of that config's ``netmon run`` inferred count too."""
    from monitor.config import resolve_targets
    from monitor.topology import for_config

    inferred = for_config(cfg, config_path).inferred_parents() if config_path else {}
    return devices_of(resolve_targets(cfg), cfg.schedules, inferred)


def schedule_intervals(
    schedule: Schedule, since: float, until: float, *, base_dir: Path
) -> Intervals:
    """When ``schedule`` expects devices online within ``[since, until)``: asked once
    per stretch between the schedule's edges (window starts and ends, midnights,
    iCalendar events; :func:`alerts.schedule.next_change`, as the alert replay does),
    not once per minute of a 30-day window."""
    spans: Intervals = []
    t = since
    while t < until:
        edge = min(next_change(schedule, t, base_dir=base_dir), until)
        if is_expected_online(schedule, t, base_dir=base_dir):
            spans.append((t, edge))
        t = edge
    return union(spans)


# --- the figures ---------------------------------------------------------------------


@dataclass(slots=True)
class Availability:
    """Seconds per class (see the module docstring) of one device, room or role."""

    key: str
    up: float = 0.0
    down: float = 0.0
    outside_schedule: float = 0.0
    maintenance: float = 0.0
    unknown: float = 0.0
    devices: int = 0
    outages: int = 0

    @property
    def ratio(self) -> float | None:
        """up / (up + down); None when there is no such time at all."""
        counted = self.up + self.down
        return self.up / counted if counted > 0 else None

    def add(self, other: Availability) -> None:
        for name in CLASSES:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.devices += other.devices
        self.outages += other.outages

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key, "availability": self.ratio, "devices": self.devices,
            "outages": self.outages, **{f"{name}_seconds": getattr(self, name) for name in CLASSES},
        }  # fmt: skip


class _Window:
    """One report's reads of the history, shared by every device in it."""

    def __init__(self, history: HistoryStore, since: float, until: float, base_dir: Path) -> None:
        self.since, self.until, self.base_dir = since, until, base_dir
        self.running = union(history.running(since, until))
        self.first_seen = history.first_seen()
        self.down: dict[str, Intervals] = {}
        self.counts: dict[str, int] = {}
        for o in history.outages(since=since, until=until):
            end = o.end if o.end is not None else until
            self.down.setdefault(o.target, []).append((max(o.start, since), min(end, until)))
            self.counts[o.target] = self.counts.get(o.target, 0) + 1
        self.down = {k: union(v) for k, v in self.down.items()}
        self.silences = [
            (s, [Matcher.parse(m) for m in s.matchers if m]) for s in history.silences(since, until)
        ]
        self._schedules: dict[int, Intervals] = {}

    def scheduled(self, schedule: Schedule | None) -> Intervals:
        if schedule is None:
            return [(self.since, self.until)]
        key = id(schedule)
        if key not in self._schedules:
            self._schedules[key] = schedule_intervals(
                schedule, self.since, self.until, base_dir=self.base_dir
            )
        return self._schedules[key]

    def silenced(self, device: Device) -> Intervals:
        labels = device.silence_labels()
        return union(
            (max(s.starts_at, self.since), min(s.ends_at, self.until))
            for s, matchers in self.silences
            if matchers and all(m.matches(labels) for m in matchers)
        )

    def parents_down(self, device: Device, by_name: Mapping[str, Device]) -> Intervals:
        spans: Intervals = []
        seen = {device.name}
        parent = device.parent
        while parent is not None and parent not in seen:  # config forbids cycles; be safe
            seen.add(parent)
            spans += self.down.get(parent, [])
            parent = by_name[parent].parent if parent in by_name else None
        return union(spans)


def _device(window: _Window, device: Device, by_name: Mapping[str, Device]) -> Availability:
    w = window
    whole = [(w.since, w.until)]
    first = w.first_seen.get(device.name)
    seen = [(max(first, w.since), w.until)] if first is not None and first < w.until else []
    known = intersect(w.running, seen)
    expected = intersect(known, w.scheduled(device.schedule))
    excused = union([*w.silenced(device), *w.parents_down(device, by_name)])
    maintenance = intersect(expected, excused)
    counted = subtract(expected, excused)
    down = intersect(counted, w.down.get(device.name, []))
    return Availability(
        device.name,
        up=total(counted) - total(down),
        down=total(down),
        outside_schedule=total(known) - total(expected),
        maintenance=total(maintenance),
        unknown=total(whole) - total(known),
        devices=1,
        outages=w.counts.get(device.name, 0),
    )


def availability(
    history: HistoryStore,
    devices: Sequence[Device],
    *,
    since: float,
    until: float,
    by: By = "device",
    base_dir: Path = Path("."),
) -> list[Availability]:
    """Availability of each device (``by="device"``), room or role in ``[since, until)``,
    sorted worst first (then by name); devices without a room are left out of
    ``by="room"``."""
    window = _Window(history, since, until, base_dir)
    by_name = {d.name: d for d in devices}
    rows: dict[str, Availability] = {}
    for device in devices:
        key = {"device": device.name, "room": device.room, "role": device.role}[by]
        if not key:
            continue
        one = _device(window, device, by_name)
        rows.setdefault(key, Availability(key)).add(one)
    return sorted(rows.values(), key=lambda a: (a.ratio if a.ratio is not None else 2.0, a.key))


def recent_outages(
    history: HistoryStore,
    devices: Sequence[Device] | None = None,
    *,
    since: float,
    until: float,
    limit: int = 20,
) -> list[Outage]:
    """The latest outages overlapping ``[since, until)`` (of ``devices`` if given),
    newest first, at most ``limit``."""
    names = {d.name for d in devices} if devices is not None else None
    found = [
        o for o in history.outages(since=since, until=until) if names is None or o.target in names
    ]
    return sorted(found, key=lambda o: o.start, reverse=True)[:limit]
