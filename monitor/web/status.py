"""The built-in status page: ``/`` (the whole school) and ``/device/{name}`` (one device).

Two layers, like the exporter: pure functions turn the inventory, the result store and
(when configured) the alert service's alerts into view models (:class:`Overview`,
:class:`DeviceView`), and jinja2 templates in ``monitor/templates`` render them as plain
HTML with autoescaping on, so every device-supplied string (sysDescr, supply and alert
descriptions, ifAlias) is inert text. No JavaScript; a meta refresh reloads the page.

A device's state comes from its fresh probe results:

- ``up``: every probe succeeded; ``degraded``: some succeeded, some failed (or a walk
  was partial); ``down``: every probe failed; ``unknown``: no result yet, or only stale
  ones (the store's staleness rule);
- ``suppressed``: down or degraded, but expected: its parent (or the parent's parent) is
  down, or the alert service says it is outside its schedule or behind a down parent;
- ``attention``: up (it answers every probe), but something needs a person: an alert
  is active for it (pending or firing; not silenced, not suppressed) or, with alerting
  off, the printer reports a condition (paper jam, no toner) or an empty or full supply.
  The printer with an empty toner is not a plain green "up".

Interface traffic is shown as rates: from the history store's rate series when
history is on, else from the two latest walks (:class:`InterfaceRates`, a result-store
listener), so the page needs no history to say "12.3 Mb/s in".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import jinja2
from aiohttp import web
from markupsafe import Markup

from alerts.ack import ack_of
from alerts.advice import MEANINGS
from alerts.model import Alert, AlertState, Suppression
from monitor.config import InventoryTarget
from monitor.store.availability import CLASSES as AVAILABILITY_CLASSES
from monitor.store.availability import (
    Availability,
    By,
    Device,
    availability,
    devices_of,
    recent_outages,
)
from monitor.store.history import HistoryStore, Series, parse_long_duration
from monitor.store.results import ResultStore, StoredResult
from monitor.web import charts
from monitor.web.units import (
    ago,
    human_age,
    human_size,
    human_speed,
    latency,
    per_minute,
    percent,
    rate,
)  # fmt: skip
from probes.result import Record, Status

TEMPLATES = Path(__file__).parent / "templates"
#: Seconds between the page's automatic reloads.
REFRESH_SECONDS = 30
#: Defence in depth behind autoescaping: the page needs no script, frame or plugin.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'"
#: Interface types counted as switch ports (IANAifType names as the interfaces module
#: reports them); VLANs, loopbacks, LAGs and tunnels are not ports.
PORT_TYPES = frozenset({"ethernetCsmacd", "fastEther", "fastEtherFX", "gigabitEthernet"})
SUPPLY_WARN = frozenset({"low", "empty", "nearly_full", "full"})
#: Supply states that need a person even with alerting off (the printer cannot print).
SUPPLY_ATTENTION = frozenset({"empty", "full"})
#: Counter columns of an interfaces record, in :class:`Traffic` field order.
COUNTER_KEYS = ("in_octets", "out_octets", "in_errors", "out_errors")


class State(StrEnum):
    UP = "up"
    ATTENTION = "attention"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"
    SUPPRESSED = "suppressed"


#: A state as the page's badges say it.
STATE_WORDS = {State.ATTENTION.value: "needs attention"}
#: States of a device that answers its probes.
ANSWERING = frozenset({State.UP, State.ATTENTION})


ROLE_TITLES = {
    "switch": "Switches", "printer": "Printers", "server": "Servers", "ups": "UPS",
    "lab": "Lab rooms", "other": "Other devices",
}  # fmt: skip


class AlertSource(Protocol):
    """The part of the alert service the page reads."""

    def alerts(self) -> list[Alert]: ...


class StatusBackend(Protocol):
    """The part of :class:`monitor.web.WebBackend` the page reads (``alerts`` optional)."""

    store: ResultStore

    def targets(self) -> list[InventoryTarget]: ...


# --- view models ----------------------------------------------------------------------


@dataclass
class ProbeView:
    """One latest probe result as the device page shows it."""

    name: str
    status: str
    ok: bool
    explanation: str
    meaning: str
    duration_seconds: float
    age: str
    stale: bool
    facts: dict[str, str]
    records: dict[str, list[Record]]


@dataclass
class Ports:
    up: int = 0
    down: int = 0
    disabled: int = 0

    @property
    def total(self) -> int:
        return self.up + self.down + self.disabled


@dataclass(frozen=True, slots=True)
class Traffic:
    """One interface's per-second rates (bytes, errors); None where not known."""

    rx: float | None = None
    tx: float | None = None
    rx_errors: float | None = None
    tx_errors: float | None = None

    @property
    def errors(self) -> float | None:
        known = [e for e in (self.rx_errors, self.tx_errors) if e is not None]
        return sum(known) if known else None

    @property
    def bytes(self) -> float:
        return (self.rx or 0.0) + (self.tx or 0.0)


@dataclass
class PortView:
    """One row of the device page's compact interface table."""

    index: str
    name: str
    alias: str
    type: str
    #: up, down, disabled (administratively down), absent (not present) or unknown.
    state: str
    speed_bps: int | None
    rx_total: int | None
    tx_total: int | None
    traffic: Traffic | None = None

    @property
    def is_port(self) -> bool:
        return self.type in PORT_TYPES


@dataclass
class AlertView:
    name: str
    target: str
    severity: str
    state: str
    summary: str
    since: str
    suppressed_reason: str
    #: For the acknowledge and silence buttons (monitor/web/actions.py).
    fingerprint: str = ""
    #: "alice 5 min ago: on my way" once someone acknowledged it, else "".
    ack: str = ""


@dataclass
class DeviceView:
    """One device: identity, state with its reason, and role-specific highlights."""

    name: str
    address: str
    role: str
    group: str
    labels: dict[str, str]
    parent: str | None
    state: State
    reason: str
    probes: list[ProbeView] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    supplies: list[Record] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    ports: Ports | None = None
    interfaces: list[PortView] = field(default_factory=list)
    alerts: list[AlertView] = field(default_factory=list)
    #: Trend charts (finished HTML from :mod:`monitor.web.charts`), and what to say
    #: when there are none: "history is off", "no history yet".
    charts: list[Markup] = field(default_factory=list)
    history_note: str = ""
    #: 24 h / 7 d / 30 d availability bars of the device and of its room.
    availability: list[Markup] = field(default_factory=list)
    room_availability: list[Markup] = field(default_factory=list)

    @property
    def room(self) -> str:
        return self.labels.get("room", "")

    @property
    def highlight_supplies(self) -> list[Record]:
        """Toners (and any supply needing attention) for the overview; all on the detail."""
        shown = [s for s in self.supplies if _is_toner(s) or s.get("state") in SUPPLY_WARN]
        return shown or self.supplies[:4]


@dataclass
class LabView:
    """A lab room rolled up: "27/30 up" and who is not."""

    room: str
    devices: list[DeviceView]
    #: 24 h / 7 d / 30 d availability bars (with history on).
    availability: list[Markup] = field(default_factory=list)

    @property
    def up(self) -> int:
        """Devices that answer (up, or up but needing attention)."""
        return sum(d.state in ANSWERING for d in self.devices)

    @property
    def total(self) -> int:
        return len(self.devices)

    @property
    def state(self) -> State:
        if self.up == self.total:
            return State.ATTENTION if self.not_up else State.UP
        if all(d.state is State.SUPPRESSED for d in self.devices if d.state not in ANSWERING):
            return State.SUPPRESSED
        if all(d.state is State.UNKNOWN for d in self.devices):
            return State.UNKNOWN
        return State.DOWN if self.up == 0 else State.DEGRADED

    @property
    def not_up(self) -> list[DeviceView]:
        return [d for d in self.devices if d.state is not State.UP]


@dataclass
class Section:
    """The devices of one site and building, by role."""

    site: str
    building: str
    roles: list[tuple[str, list[DeviceView]]]
    labs: list[LabView]

    @property
    def title(self) -> str:
        return " · ".join(p for p in (self.site, self.building) if p) or "Devices"


@dataclass
class Overview:
    devices: list[DeviceView]
    sections: list[Section]
    #: None: no alert service configured.
    alerts: list[AlertView] | None
    generated_at: float

    @property
    def counts(self) -> dict[str, int]:
        return {s.value: sum(d.state is s for d in self.devices) for s in State}


# --- building the views ---------------------------------------------------------------


def store_names(target: InventoryTarget) -> list[str]:
    """The result-store probe names of a target's jobs (as the scheduler plans them)."""
    names: list[str] = []
    for probe in target.probes:
        if probe == "tcp":
            names += [f"tcp-{port}" for port in target.tcp_ports]
        else:
            names.append(probe)
    return names


def probe_view(name: str, stored: StoredResult, now: float) -> ProbeView:
    r = stored.result
    return ProbeView(
        name=name, status=r.status.value, ok=r.status is Status.OK,
        explanation=r.explanation, meaning=MEANINGS.get(r.status, ""),
        duration_seconds=r.duration_seconds, age=human_age(now - stored.finished_at),
        stale=stored.is_stale(now), facts=dict(r.facts), records=dict(r.records),
    )  # fmt: skip


def raw_state(probes: Sequence[ProbeView]) -> tuple[State, str]:
    """State and reason from a device's probe results alone (no parents, no alerts)."""
    fresh = [p for p in probes if not p.stale]
    if not probes:
        return State.UNKNOWN, "no result yet"
    if not fresh:
        return State.UNKNOWN, f"no fresh result (last one {probes[0].age} ago)"
    failed = [p for p in fresh if not Status(p.status).success]
    partial = [p for p in fresh if p.status == Status.PARTIAL]
    if not failed and not partial:
        return State.UP, ""
    if len(failed) == len(fresh):
        return State.DOWN, "; ".join(f"{p.name}: {p.explanation}" for p in failed)
    return State.DEGRADED, "; ".join(f"{p.name}: {p.explanation}" for p in failed + partial)


def device_view(
    target: InventoryTarget, results: Mapping[str, StoredResult | None], now: float
) -> DeviceView:
    """A device's view from its own results; parents and alerts are applied later."""
    probes = [probe_view(n, s, now) for n, s in results.items() if s is not None]
    state, reason = raw_state(probes)
    view = DeviceView(
        name=target.name, address=target.address, role=target.role, group=target.group,
        labels=dict(target.labels), parent=target.parent, state=state, reason=reason,
        probes=probes,
    )  # fmt: skip
    for p in probes:
        if p.stale:
            continue
        for key, value in p.facts.items():
            view.facts.setdefault(key, value)
        view.supplies += p.records.get("supplies", [])
        view.conditions += [str(c.get("description") or c.get("condition"))
                            for c in p.records.get("conditions", [])]  # fmt: skip
        # The printer's own alert table ("Paper jam in tray 2"), unless merely informational.
        view.conditions += [str(a["description"]) for a in p.records.get("alerts", [])
                            if a.get("description") and a.get("severity") != "other"]  # fmt: skip
        if "interfaces" in p.records:
            view.ports = port_counts(p.records["interfaces"])
            view.interfaces = [port_view(i) for i in p.records["interfaces"]]
    return view


def interface_state(record: Record) -> str:
    """What a person calls an interface's state: disabled beats down, absent is apart."""
    if record.get("admin") == "down":
        return "disabled"
    oper = record.get("oper")
    if oper in ("up", "down"):
        return str(oper)
    if oper == "not_present":
        return "absent"
    return "down" if oper in ("lower_layer_down", "dormant") else "unknown"


def port_view(record: Record) -> PortView:
    def count(key: str) -> int | None:
        value = record.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return PortView(
        index=str(record.get("index") or ""), name=str(record.get("name") or record.get("descr") or ""),
        alias=str(record.get("alias") or ""), type=str(record.get("type") or ""),
        state=interface_state(record), speed_bps=count("speed_bps"),
        rx_total=count("in_octets"), tx_total=count("out_octets"),
    )  # fmt: skip


def with_traffic(view: DeviceView, traffic: Mapping[str, Traffic]) -> None:
    """Give the device's interface rows their rates (by interface index)."""
    for port in view.interfaces:
        port.traffic = traffic.get(port.index)


def uplink(view: DeviceView) -> PortView | None:
    """The interface whose traffic the device page charts: one named or described as an
    uplink, else the one moving the most bytes now (or in total, before rates exist)."""
    candidates = [p for p in view.interfaces if p.state == "up" and p.type != "softwareLoopback"]
    named = [p for p in candidates if "uplink" in f"{p.name} {p.alias}".lower()]
    if named:
        return named[0]

    def busy(p: PortView) -> tuple[float, int]:
        return (p.traffic.bytes if p.traffic else 0.0, (p.rx_total or 0) + (p.tx_total or 0))

    return max(candidates, key=busy, default=None)


class InterfaceRates:
    """Per-second interface rates between each target's two latest walks.

    A :class:`ResultStore` listener, so the page shows traffic rates with history off
    (and before history has two points). It runs on the putting thread and keeps two
    walks' counters per target; readers get a dict that is replaced whole, never
    changed. A counter that went backwards (a reset, a reboot) gives no rate.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, dict[str, tuple[Any, ...]]]] = {}
        self._rates: dict[str, dict[str, Traffic]] = {}

    def record(self, stored: StoredResult) -> None:
        rows = stored.result.records.get("interfaces")
        if not rows:
            return
        counters = {str(r.get("index")): tuple(r.get(k) for k in COUNTER_KEYS) for r in rows}
        previous = self._last.get(stored.target)
        self._last[stored.target] = (stored.finished_at, counters)
        if previous is None or stored.finished_at <= previous[0]:
            return
        elapsed = stored.finished_at - previous[0]
        self._rates[stored.target] = {
            index: Traffic(*(_per_second(a, b, elapsed) for a, b in zip(old, new, strict=True)))
            for index, new in counters.items()
            if (old := previous[1].get(index)) is not None
        }

    def rates(self, target: str) -> dict[str, Traffic]:
        return self._rates.get(target, {})

    def forget(self, keep: Iterable[str]) -> None:
        """Drop targets not in ``keep`` (they left the inventory)."""
        names = set(keep)
        for gone in [t for t in self._last if t not in names]:
            self._last.pop(gone, None)
            self._rates.pop(gone, None)


def _per_second(old: Any, new: Any, elapsed: float) -> float | None:
    if not isinstance(old, int) or not isinstance(new, int) or new < old:
        return None
    return (new - old) / elapsed


def port_counts(interfaces: Iterable[Record]) -> Ports:
    """Switch ports up / down / disabled (administratively down); not-present ones skipped."""
    ports = Ports()
    for i in interfaces:
        if i.get("type") not in PORT_TYPES or i.get("oper") == "not_present":
            continue
        if i.get("admin") == "down":
            ports.disabled += 1
        elif i.get("oper") == "up":
            ports.up += 1
        else:
            ports.down += 1
    return ports


def apply_parents(devices: Mapping[str, DeviceView]) -> None:
    """Mark devices that are down or degraded behind a down parent as suppressed."""

    def parent_down(view: DeviceView, seen: set[str]) -> str | None:
        parent = devices.get(view.parent or "")
        if parent is None or parent.name in seen:
            return None
        if parent.state is State.DOWN:
            return parent.name
        if parent.state is State.SUPPRESSED:
            return parent_down(parent, seen | {parent.name}) or parent.name
        return None

    # Parents first, so a grandchild sees its parent already suppressed.
    for view in sorted(devices.values(), key=lambda v: _depth(v, devices)):
        if view.state in (State.DOWN, State.DEGRADED):
            culprit = parent_down(view, {view.name})
            if culprit is not None:
                view.state = State.SUPPRESSED
                view.reason = f"unreachable because parent {culprit} is down"


def _depth(view: DeviceView, devices: Mapping[str, DeviceView]) -> int:
    depth, seen, parent = 0, {view.name}, view.parent
    while parent is not None and parent in devices and parent not in seen:
        seen.add(parent)
        parent = devices[parent].parent
        depth += 1
    return depth


def alert_view(alert: Alert, now: float) -> AlertView:
    since = alert.starts_at if alert.state is AlertState.FIRING else alert.active_since
    return AlertView(
        name=alert.rule, target=alert.target, severity=alert.severity,
        state=alert.state.value, summary=alert.annotations.get("summary", alert.rule),
        since=f"for {human_age(now - since)}" if since else "",
        suppressed_reason=alert.suppressed_reason if alert.suppressed else "",
        fingerprint=alert.fingerprint, ack=_ack_words(alert, now),
    )  # fmt: skip


def _ack_words(alert: Alert, now: float) -> str:
    found = ack_of(alert)
    if found is None:
        return ""
    return f"{found.author} {human_age(now - found.acked_at)} ago" + (
        f": {found.comment}" if found.comment else ""
    )


def apply_alerts(devices: Mapping[str, DeviceView], alerts: Sequence[Alert], now: float) -> None:
    """Attach active alerts to their devices; the engine's parent/schedule suppression wins."""
    for alert in alerts:
        view = devices.get(alert.target)
        if view is None or not alert.is_active:
            continue
        view.alerts.append(alert_view(alert, now))
        expected = alert.suppressed in (Suppression.PARENT_DOWN, Suppression.OUT_OF_SCHEDULE)
        if expected and view.state in (State.DOWN, State.DEGRADED, State.UNKNOWN):
            view.state = State.SUPPRESSED
            view.reason = alert.suppressed_reason or (
                "off-schedule" if alert.suppressed is Suppression.OUT_OF_SCHEDULE
                else "unreachable because its parent is down"
            )  # fmt: skip


def attention_from_alerts(devices: Mapping[str, DeviceView], alerts: Sequence[Alert]) -> None:
    """An answering device with an active alert (pending or firing: the page shows the
    present, the ``for`` delay is there to spare notifications) that nobody silenced or
    expects needs attention."""
    firing: dict[str, list[str]] = {}
    for alert in alerts:
        if alert.is_active and alert.suppressed in (
            Suppression.NONE,
            Suppression.FLAPPING,
        ):
            firing.setdefault(alert.target, []).append(alert.annotations.get("summary", alert.rule))
    for name, summaries in firing.items():
        view = devices.get(name)
        if view is not None and view.state is State.UP:
            view.state, view.reason = State.ATTENTION, "; ".join(summaries)


def attention_from_device(devices: Mapping[str, DeviceView]) -> None:
    """With alerting off, the device's own word: printer conditions, empty or full supplies."""
    for view in devices.values():
        if view.state is not State.UP:
            continue
        words = list(view.conditions) + [
            f"{s.get('description') or s.get('type') or 'supply'}: {s.get('level_text') or s.get('state')}"
            for s in view.supplies if s.get("state") in SUPPLY_ATTENTION
        ]  # fmt: skip
        if words:
            view.state, view.reason = State.ATTENTION, "; ".join(words)


def build_views(
    targets: Sequence[InventoryTarget],
    store: ResultStore,
    alerts: Sequence[Alert] | None,
    now: float,
) -> dict[str, DeviceView]:
    """Every inventory target's view, parents and alerts applied, by name."""
    devices = {
        t.name: device_view(t, {n: store.get(t.name, n) for n in store_names(t)}, now)
        for t in targets
    }
    apply_parents(devices)
    if alerts is not None:
        apply_alerts(devices, alerts, now)
        attention_from_alerts(devices, alerts)
    else:
        attention_from_device(devices)
    return devices


def build_overview(
    targets: Sequence[InventoryTarget],
    store: ResultStore,
    alerts: Sequence[Alert] | None,
    now: float | None = None,
) -> Overview:
    """The front page: devices grouped by site and building, then role; labs by room."""
    at = time.time() if now is None else now
    devices = build_views(targets, store, alerts, at)
    places: dict[tuple[str, str], list[DeviceView]] = {}
    for view in devices.values():
        key = (view.labels.get("site", ""), view.labels.get("building", ""))
        places.setdefault(key, []).append(view)
    sections = []
    for (site, building), views in sorted(places.items()):
        by_role: dict[str, list[DeviceView]] = {}
        rooms: dict[str, list[DeviceView]] = {}
        for v in views:
            if v.role == "lab":
                rooms.setdefault(v.room or v.group, []).append(v)
            else:
                by_role.setdefault(v.role, []).append(v)
        order = list(ROLE_TITLES)
        roles = [
            (ROLE_TITLES.get(role, role.title()), sorted(vs, key=lambda d: d.name))
            for role, vs in sorted(by_role.items(), key=lambda kv: _role_rank(kv[0], order))
        ]
        labs = [
            LabView(room, sorted(vs, key=lambda d: d.name)) for room, vs in sorted(rooms.items())
        ]
        sections.append(Section(site, building, roles, labs))
    active = None
    if alerts is not None:
        shown = sorted(
            (a for a in alerts if a.is_active),
            key=lambda a: (a.suppressed is not Suppression.NONE, a.state is not AlertState.FIRING,
                           a.severity != "critical", -(a.starts_at or a.active_since or 0)),
        )  # fmt: skip
        active = [alert_view(a, at) for a in shown]
    return Overview(list(devices.values()), sections, active, at)


def _role_rank(role: str, order: list[str]) -> tuple[int, str]:
    return (order.index(role) if role in order else len(order), role)


def _supply_colour(supply: Record | None) -> str | None:
    """A toner's own colour for its chart line (None: the palette's)."""
    return charts.SUPPLY_COLOURS.get(str((supply or {}).get("color") or "").lower())


def _is_toner(supply: Record) -> bool:
    words = f"{supply.get('type') or ''} {supply.get('description') or ''}".lower()
    return supply.get("class") != "receptacle" and ("toner" in words or "ink" in words)


# --- history: trend charts and rates ---------------------------------------------------

DAY = 86400.0
#: Interface rate series in :class:`Traffic` field order.
RATE_METRICS = (
    "netmon_interface_receive_bytes_total", "netmon_interface_transmit_bytes_total",
    "netmon_interface_receive_errors_total", "netmon_interface_transmit_errors_total",
)  # fmt: skip
HISTORY_OFF = "History is off (history: enabled: false in the config), so there are no trends."
NO_HISTORY = "No history yet: trends appear after netmon has recorded this device for a while."
#: Points a chart draws at most before a coarser rollup is used (the SVG stays small).
CHART_POINTS = 1500


#: The availability windows shown, with the words for them.
WINDOWS = (("24 h", DAY), ("7 d", 7 * DAY), ("30 d", 30 * DAY))
#: Seconds an availability figure is reused (a page refreshes every 30 s).
AVAILABILITY_TTL = 60.0


def history_of(backend: object) -> HistoryStore | None:
    """The running monitor's history store, or None when history is off."""
    history: HistoryStore | None = getattr(backend, "history", None)
    return history


def availability_devices(backend: StatusBackend) -> list[Device]:
    """The inventory as availability rows, schedules from the running config (the
    targets are resolved already) and parents as the alerting has them (written, or
    inferred by the topology)."""
    schedules = getattr(getattr(backend, "config", None), "schedules", None) or {}
    inferred = getattr(backend, "inferred_parents", None)
    return devices_of(backend.targets(), schedules, inferred() if callable(inferred) else None)


class AvailabilityCache:
    """Availability rows by (by, window), each recomputed at most every
    :data:`AVAILABILITY_TTL` seconds: a 30-day window asks every schedule about each
    of its 43,200 minutes, too much for every refresh of every open page."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, float], tuple[float, dict[str, Availability]]] = {}

    def rows(self, trends: Trends, by: By, seconds: float) -> dict[str, Availability]:
        key = (by, seconds)
        with self._lock:
            hit = self._rows.get(key)
        if hit is not None and self._clock() - hit[0] < AVAILABILITY_TTL:
            return hit[1]
        assert trends.history is not None
        found = availability(trends.history, trends.devices, since=trends.now - seconds,
                             until=trends.now, by=by, base_dir=trends.base_dir)  # fmt: skip
        rows = {a.key: a for a in found}
        with self._lock:
            self._rows[key] = (self._clock(), rows)
        return rows


@dataclass
class Trends:
    """What the pages read from the history at one moment (``history`` None: off)."""

    history: HistoryStore | None
    devices: list[Device]
    cache: AvailabilityCache
    now: float
    base_dir: Path = Path(".")

    def bars(self, by: By, key: str, ident: str) -> list[Markup]:
        """The 24 h / 7 d / 30 d availability bars of one device, room or role."""
        out = []
        for n, (words, seconds) in enumerate(WINDOWS):
            row = self.cache.rows(self, by, seconds).get(key)
            if row is not None and row.unknown < seconds * row.devices:  # something known
                figures = {name: getattr(row, name) for name in AVAILABILITY_CLASSES}
                out.append(charts.availability_bar(f"{ident}-{n}", words, figures, row.devices))
        return out

    def room_of(self, name: str) -> str:
        """A device's room as availability groups it (``building/room``)."""
        return next((d.room for d in self.devices if d.name == name), "")

    def add_to_device(self, view: DeviceView) -> None:
        """Charts, availability bars (the device's and its room's), or the note saying
        why there are none."""
        if self.history is None:
            view.history_note = HISTORY_OFF
            return
        view.charts = device_charts(view, self.history, self.now)
        view.availability = self.bars("device", view.name, "device")
        room = self.room_of(view.name)
        view.room_availability = self.bars("room", room, "room") if room else []
        if not view.charts and not view.availability:
            view.history_note = NO_HISTORY

    def add_to_overview(self, overview: Overview) -> None:
        """Each lab room's availability bars."""
        if self.history is None:
            return
        for n, lab in enumerate(lab for section in overview.sections for lab in section.labs):
            room = self.room_of(lab.devices[0].name) if lab.devices else ""
            lab.availability = self.bars("room", room, f"lab-{n}") if room else []


def trends_of(backend: StatusBackend, cache: AvailabilityCache, now: float) -> Trends:
    history = history_of(backend)
    config_path = getattr(backend, "config_path", None)
    base_dir = Path(config_path).resolve().parent if config_path is not None else Path(".")
    devices = availability_devices(backend) if history is not None else []
    return Trends(history, devices, cache, now, base_dir)


def trend_series(
    history: HistoryStore, target: str, metric: str, since: float, now: float, **match: Any
) -> list[Series]:
    """A target's series over ``since``..``now`` at the finest kept resolution that
    draws at most :data:`CHART_POINTS` points (raw for a day of minutes, hourly for a
    month), falling back to finer ones while the coarse one is still nearly empty."""
    found: list[Series] = []
    for step in (0, 300, 3600):
        if step == 0 and since < now - 2 * DAY:
            continue  # raw points are kept 48 h
        found = history.series(target, metric, since=since, until=now, step=step, **match)
        if found and max(len(s.points) for s in found) <= CHART_POINTS:
            break
    return [s for s in found if s.points]


def history_rates(
    history: HistoryStore, target: str, now: float, within: float
) -> dict[str, Traffic]:
    """Each interface's latest stored rates (by ifindex), if not older than ``within``."""
    latest: dict[str, list[float | None]] = {}
    for n, metric in enumerate(RATE_METRICS):
        for series in history.series(target, metric, since=now - within, until=now + 1, step=0):
            if series.points:
                index = series.labels.get("ifindex", "")
                latest.setdefault(index, [None] * len(RATE_METRICS))[n] = series.points[-1].value
    return {index: Traffic(*values) for index, values in latest.items()}


def device_charts(view: DeviceView, history: HistoryStore, now: float) -> list[Markup]:
    """The device page's trends: latency and loss over 24 h, toner over 30 days, the
    uplink's traffic over 24 h, each only when the history has points for it."""
    name, day = view.name, now - DAY
    out: list[Markup] = []
    rtt = trend_series(history, name, "netmon_icmp_rtt_seconds", day, now, probe="icmp")
    if rtt:
        lines = [charts.Line("latency", rtt[0].points)]
        out.append(charts.line_chart("latency", "Latency (ping round trip), last 24 h", lines,
                                     since=day, until=now, unit=latency))  # fmt: skip
    loss = trend_series(history, name, "netmon_icmp_packet_loss_ratio", day, now, probe="icmp")
    if loss:
        lines = [charts.Line("loss", loss[0].points)]
        out.append(charts.line_chart("loss", "Packet loss, last 24 h", lines, since=day,
                                     until=now, unit=percent, high=1.0))  # fmt: skip
    month = now - 30 * DAY
    # Toners and inks (by the printer's own words); every supply when they are unknown.
    supplies = {str(s.get("index")): s for s in view.supplies}
    toner = [
        s
        for s in trend_series(history, name, "netmon_printer_supply_level_ratio", month, now)
        if (record := supplies.get(s.labels.get("supply", ""))) is None or _is_toner(record)
    ]
    if toner:
        lines = [
            charts.Line(s.labels.get("description") or s.labels.get("supply", "?"), s.points,
                        _supply_colour(supplies.get(s.labels.get("supply", ""))))
            for s in toner
        ]  # fmt: skip
        out.append(charts.line_chart("toner", "Toner level, last 30 days", lines, since=month,
                                     until=now, unit=percent, high=1.0))  # fmt: skip
    port = uplink(view)
    if port is not None:
        match = {"labels": {"ifindex": port.index}}
        rx = trend_series(history, name, RATE_METRICS[0], day, now, **match)
        tx = trend_series(history, name, RATE_METRICS[1], day, now, **match)
        lines = [charts.Line(word, s[0].points) for word, s in (("in", rx), ("out", tx)) if s]
        if lines:
            title = f"Traffic on {port.name}{f' ({port.alias})' if port.alias else ''}, last 24 h"
            out.append(charts.line_chart("traffic", title, lines, since=day, until=now, unit=rate))
    return out


# --- rendering and routes -------------------------------------------------------------


def environment() -> jinja2.Environment:
    """The template environment: autoescape on for everything, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["percent"] = lambda r: f"{round(100 * float(r))}%"
    env.filters["bytes"] = human_size
    env.filters["speed"] = human_speed
    env.filters["rate"] = rate
    env.filters["per_minute"] = per_minute
    env.filters["ago"] = ago
    env.filters["state_word"] = lambda state: STATE_WORDS.get(str(state), str(state))
    env.filters["columns"] = columns
    env.filters["cell"] = cell
    env.filters["clock"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    env.globals["refresh_seconds"] = REFRESH_SECONDS
    return env


def columns(rows: Sequence[Record]) -> list[str]:
    """Every key of a records table, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def cell(value: Any, key: str = "") -> str:
    """One records-table value as text: ratios as percent, byte counts readable."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {cell(v, key)}" for k, v in value.items())
    if isinstance(value, float | int) and key.endswith("ratio"):
        return f"{100 * value:.0f}%"
    if isinstance(value, float | int) and key.endswith("bytes"):
        return human_size(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_overview(env: jinja2.Environment, overview: Overview) -> str:
    return env.get_template("index.html").render(o=overview, generated_at=overview.generated_at)


def render_device(env: jinja2.Environment, device: DeviceView, now: float) -> str:
    return env.get_template("device.html").render(d=device, generated_at=now)


STATUS_BACKEND = web.AppKey("status_backend", StatusBackend)
STATUS_ENV = web.AppKey("status_env", jinja2.Environment)
STATUS_RATES = web.AppKey("status_rates", InterfaceRates)
STATUS_AVAILABILITY = web.AppKey("status_availability", AvailabilityCache)


def add_routes(app: web.Application, backend: StatusBackend) -> None:
    """Serve the status page for ``backend`` (a :class:`monitor.web.WebBackend`) at ``/``."""
    app[STATUS_BACKEND] = backend
    app[STATUS_ENV] = environment()
    app[STATUS_RATES] = rates = InterfaceRates()

    async def follow_results(_: web.Application) -> None:
        backend.store.subscribe(rates.record)  # once the app serves, not when it is built

    app.on_startup.append(follow_results)
    app[STATUS_AVAILABILITY] = AvailabilityCache()
    app.router.add_get("/", _index)
    app.router.add_get("/device/{name}", _device)
    app.router.add_get("/api/history/{name}", _api_history)
    app.router.add_get("/api/availability", _api_availability)


def alerts_of(backend: StatusBackend) -> list[Alert] | None:
    # Read on the event loop: the alert service's SQLite connection belongs to it.
    service: AlertSource | None = getattr(backend, "alerts", None)
    return None if service is None else list(service.alerts())


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8",
        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "no-store"},
    )  # fmt: skip


async def _index(request: web.Request) -> web.Response:
    backend = request.app[STATUS_BACKEND]
    env = request.app[STATUS_ENV]
    targets, alerts = backend.targets(), alerts_of(backend)
    cache = request.app[STATUS_AVAILABILITY]

    def render() -> str:
        overview = build_overview(targets, backend.store, alerts)
        trends_of(backend, cache, overview.generated_at).add_to_overview(overview)
        return render_overview(env, overview)

    # A large school takes a while to render; keep probes running meanwhile.
    return _html(await asyncio.to_thread(render))


async def _device(request: web.Request) -> web.Response:
    backend = request.app[STATUS_BACKEND]
    env = request.app[STATUS_ENV]
    name = request.match_info["name"]
    targets = backend.targets()
    if not any(t.name == name for t in targets):
        page = env.get_template("missing.html").render(name=name, generated_at=time.time())
        return _html(page, status=404)
    now = time.time()
    alerts, history = alerts_of(backend), history_of(backend)
    rates, cache = request.app[STATUS_RATES], request.app[STATUS_AVAILABILITY]

    def render() -> str:
        # Parents need the whole inventory's states; cheap next to rendering.
        views = build_views(targets, backend.store, alerts, now)
        view = views[name]
        rates.forget(views)
        interval = max((t.interval for t in targets if t.name == name), default=60.0)
        stored = history_rates(history, name, now, 3 * interval) if history else {}
        with_traffic(view, stored or rates.rates(name))
        trends_of(backend, cache, now).add_to_device(view)
        return render_device(env, view, now)

    # History reads (SQLite) and rendering off the event loop.
    return _html(await asyncio.to_thread(render))


# --- the JSON API -----------------------------------------------------------------------


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


def parse_since(value: str, now: float) -> float:
    """``since=`` as a duration back from now (``24h``, ``7d``, ``2w``) or a Unix time;
    ValueError says what is accepted."""
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None and number > 1e9:
        return number
    try:
        return now - parse_long_duration(value)
    except ValueError as exc:
        raise ValueError(
            f"since={value!r} is neither a duration (90m, 24h, 7d, 2w) nor a Unix time"
        ) from exc


async def _api_history(request: web.Request) -> web.Response:
    """``/api/history/NAME?metric=&probe=&since=&step=``: a target's stored series (the
    charts' data); without ``metric``, the catalog of what is stored for it."""
    backend = request.app[STATUS_BACKEND]
    name = request.match_info["name"]
    if not any(t.name == name for t in backend.targets()):
        return _error(f"no target named {name!r}", 404)
    history = history_of(backend)
    if history is None:
        return _error("history is off (history: enabled: false in the config)", 503)
    now = time.time()
    query = request.query
    try:
        since = parse_since(query.get("since", "24h"), now)
        step = int(query["step"]) if query.get("step") else None
        if step not in (None, 0, 300, 3600):
            raise ValueError("step is 0 (raw), 300 or 3600")
    except ValueError as exc:
        return _error(str(exc), 400)
    metric, probe = query.get("metric", ""), query.get("probe") or None

    def read() -> dict[str, Any]:
        if not metric:
            kept = history.catalog(name)
            return {"target": name, "series": [
                {"probe": p, "metric": m, "labels": labels} for p, m, labels in kept
                if probe is None or p == probe
            ]}  # fmt: skip
        found = history.series(name, metric, probe=probe, since=since, until=now, step=step)
        return {
            "target": name, "metric": metric, "since": since, "until": now,
            "series": [{"probe": s.probe, "labels": s.labels, "step": s.step,
                        "points": [[p.t, p.value, p.min, p.max] for p in s.points]}
                       for s in found],
        }  # fmt: skip

    return web.json_response(await asyncio.to_thread(read))


async def _api_availability(request: web.Request) -> web.Response:
    """``/api/availability?since=30d&by=device|room|role``: the report's rows (seconds
    up, down, outside the schedule, in maintenance, unknown; ratio up / (up + down))
    and the recent outages."""
    backend = request.app[STATUS_BACKEND]
    history = history_of(backend)
    if history is None:
        return _error("history is off (history: enabled: false in the config)", 503)
    now = time.time()
    by = request.query.get("by", "device")
    if by not in ("device", "room", "role"):
        return _error(f"by={by!r}: use device, room or role", 400)
    try:
        since = parse_since(request.query.get("since", "30d"), now)
    except ValueError as exc:
        return _error(str(exc), 400)
    trends = trends_of(backend, request.app[STATUS_AVAILABILITY], now)

    def read() -> dict[str, Any]:
        rows = availability(history, trends.devices, since=since, until=now, by=by,  # type: ignore[arg-type]
                            base_dir=trends.base_dir)  # fmt: skip
        outages = recent_outages(history, trends.devices, since=since, until=now)
        return {
            "since": since, "until": now, "by": by, "rows": [r.to_json() for r in rows],
            "outages": [{"target": o.target, "start": o.start, "end": o.end,
                         "duration_seconds": o.duration(now), "reason": o.reason}
                        for o in outages],
        }  # fmt: skip

    return web.json_response(await asyncio.to_thread(read))
