"""The weekly supplies digest: one "what to order" email per receiver, from the history.

Toner is not an emergency page. Once a week (``alerts.digests``) the office gets a list:

- every supply at or below its low threshold (the ``printer_supply_low`` rule's, with
  the target's overrides) or forecast (:mod:`alerts.forecast`) to run out within
  ``days_ahead`` days: printer, room, supply description, level, days left, pages
  printed in the last 7 days;
- waste containers nearly full (``printer_waste_nearly_full``'s threshold) or
  forecast to be full within ``days_ahead``;
- printers that did not answer all week (no successful probe in 7 days while netmon
  was running for at least a day of them).

::

    alerts:
      digests:
        - name: supplies
          schedule: {days: mon, at: "07:30", timezone: Europe/London}
          receiver: office          # or leave it out: each printer's alerts route decides
          match: {building: main}   # which printers (label equality; match_re: regexes)
          days_ahead: 14

Without ``receiver`` the digest follows the routing tree (``alerts.route``) as an alert
``alertname=supplies_digest`` with the printer's labels would, so per-building routes
give per-building digests; receivers without ``email`` are skipped.

Once per period, across restarts: the period is the latest scheduled time (a digest
netmon was not running for is sent late, up to :data:`CATCH_UP_SECONDS`, then
skipped); the last period sent to each receiver is kept in the alert state file
(``notify_digests``), and marked right after the mail server took the message (the
Message-ID is the same for one period, so the at-least-once window shows as one mail).
A failed send is retried with the notifier's backoff (``alerts.retry``).

The report itself (:func:`build_report`) reads a :class:`HistoryReader` (netmon's
history store) and is also what ``netmon report supplies`` prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BeforeValidator, Field

from alerts.db import StateStore
from alerts.forecast import DAY, Forecast, forecast
from alerts.notify.dispatcher import Route
from alerts.notify.email import (
    DeliveryError,
    EmailRenderer,
    RenderedEmail,
    build_message,
    send_email,
)
from alerts.notify.settings import NotifySettings, Regexes
from alerts.rules import RuleSet, TargetInfo
from alerts.schedule import _check_days, _check_timezone, _weekdays
from probes.settings import StrictModel

log = logging.getLogger("netmon.alerts.digest")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS notify_digests (
        name TEXT NOT NULL, receiver TEXT NOT NULL, period TEXT NOT NULL, sent_at REAL NOT NULL,
        PRIMARY KEY (name, receiver))""",
)
#: A period netmon missed (not running at the scheduled time) is still sent this late.
CATCH_UP_SECONDS = 24 * 3600.0
#: History the forecast looks at (hourly rollups; the stretch since the last refill).
LOOKBACK_SECONDS = 8 * 7 * DAY
WEEK = 7 * DAY
#: Thresholds when a printer's rules are unknown or disabled (the default rules').
DEFAULT_LOW, DEFAULT_FULL = 0.10, 0.90
LOW_RULE, WASTE_RULE = "printer_supply_low", "printer_waste_nearly_full"
#: The pseudo alert name digests are routed as.
ROUTE_ALERTNAME = "supplies_digest"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

SUPPLY = "netmon_printer_supply_level_ratio"
PAGES = "netmon_printer_pages_total"
SUCCESS = "netmon_probe_success"


# --- settings -------------------------------------------------------------------------


def _check_at(value: Any) -> str:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError('at is a time of day in quotes, e.g. "07:30"')
    return value


class DigestSchedule(StrictModel):
    """When a digest goes out: on these days at this local time."""

    days: Annotated[str, BeforeValidator(_check_days)] = "mon"
    at: Annotated[str, BeforeValidator(_check_at)] = "07:30"
    #: None: this machine's local time zone.
    timezone: Annotated[str, AfterValidator(_check_timezone)] | None = None


class DigestSettings(StrictModel):
    name: str = Field(min_length=1)
    schedule: DigestSchedule = Field(default_factory=DigestSchedule)
    #: A receiver with ``email``; None: route each printer through ``alerts.route``.
    receiver: str | None = None
    #: Which printers: label equality and regex (whole value) matchers, all must hold.
    match: dict[str, str] = Field(default_factory=dict)
    match_re: Regexes = Field(default_factory=dict)
    #: List supplies forecast to run out (waste: to be full) within this many days.
    days_ahead: int = Field(default=14, ge=1, le=365)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match.items()) and all(
            re.fullmatch(p, labels.get(k, "")) for k, p in self.match_re.items())


class DigestsSettings(StrictModel):
    """``alerts.digests`` (composed into :class:`alerts.settings.AlertsSettings`)."""

    digests: list[DigestSettings] = Field(default_factory=list)


def check_references(settings: Any, *, groups: set[str], targets: set[str],
                     schedules: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
    """Digest names are unique; a named receiver exists and has ``email``; route mode
    needs a route and an smtp section. ``settings`` is the whole ``alerts:`` section."""
    del groups, targets, schedules
    errors: list[tuple[tuple[str | int, ...], str]] = []
    names = [d.name for d in settings.digests]
    for i, digest in enumerate(settings.digests):
        loc: tuple[str | int, ...] = ("digests", i)
        if names.index(digest.name) != i:
            errors.append(((*loc, "name"), f"digest {digest.name!r} is defined twice"))
        if settings.smtp is None:
            errors.append((loc, "digests are emails: they need an smtp: section"))
        if digest.receiver is None:
            if settings.route.receiver is None:
                errors.append(((*loc, "receiver"), "give a receiver, or an alerts.route to follow"))
            continue
        receiver = settings.receiver(digest.receiver)
        if receiver is None:
            known = ", ".join(r.name for r in settings.receivers) or "none defined"
            errors.append(((*loc, "receiver"),
                           f"unknown receiver {digest.receiver!r} (known: {known})"))
        elif receiver.email is None:
            errors.append(((*loc, "receiver"),
                           f"receiver {digest.receiver!r} has no email (a digest is an email)"))
    return errors


# --- the schedule ---------------------------------------------------------------------


def last_due(schedule: DigestSchedule, now: float) -> tuple[str, float] | None:
    """The latest scheduled time at or before ``now`` (within a week): (period key,
    Unix time). The key is the local date and time, e.g. ``2026-12-07T07:30``."""
    zone = zoneinfo.ZoneInfo(schedule.timezone) if schedule.timezone else None
    local = datetime.fromtimestamp(now, zone)
    at = dtime.fromisoformat(schedule.at)
    days = _weekdays(schedule.days)
    for back in range(8):
        day = local.date() - timedelta(days=back)
        if day.weekday() not in days:
            continue
        when = datetime.combine(day, at, local.tzinfo)
        ts = when.timestamp()
        if ts <= now:
            return when.strftime("%Y-%m-%dT%H:%M"), ts
    return None


# --- the report -----------------------------------------------------------------------


class HistoryReader(Protocol):
    """What the report reads of netmon's history store (``monitor.store.history``)."""

    def series(self, target: str, metric: str, *, probe: str | None = None,
               labels: Mapping[str, str] | None = None, since: float,
               until: float | None = None, step: int | None = None) -> list[Any]: ...

    def running(self, since: float, until: float) -> list[tuple[float, float]]: ...

    def targets(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class SupplyRow:
    """One supply of one printer, with its forecast and why it is listed."""

    target: str
    room: str
    building: str
    supply: str
    #: ``consumable`` or ``waste``.
    kind: str
    level: float | None
    forecast: Forecast
    #: None: the printer reports no page counter.
    pages_last_week: int | None
    #: ``low``, ``runs out`` (consumables), ``nearly full``, ``fills up`` (waste); "" not due.
    reason: str

    def to_json(self) -> dict[str, Any]:
        f = self.forecast
        return {
            "target": self.target, "room": self.room, "building": self.building,
            "supply": self.supply, "kind": self.kind, "level": self.level,
            "trend": f.trend, "days_left": None if f.days_left is None else round(f.days_left, 1),
            "confidence": f.confidence, "forecast": f.words(),
            "pages_last_week": self.pages_last_week, "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class SilentPrinter:
    target: str
    room: str
    building: str
    #: When it last answered a probe (within the lookback), None: not in 8 weeks.
    last_answered: float | None


@dataclass(slots=True)
class SuppliesReport:
    generated_at: float
    days_ahead: int
    supplies: list[SupplyRow] = field(default_factory=list)
    waste: list[SupplyRow] = field(default_factory=list)
    silent: list[SilentPrinter] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.supplies or self.waste or self.silent)

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at, "days_ahead": self.days_ahead,
            "supplies": [r.to_json() for r in self.supplies],
            "waste": [r.to_json() for r in self.waste],
            "silent": [asdict(p) for p in self.silent],
        }

    def only(self, targets: set[str]) -> SuppliesReport:
        """The part of the report about ``targets`` (one receiver's printers)."""
        return SuppliesReport(
            self.generated_at, self.days_ahead,
            [r for r in self.supplies if r.target in targets],
            [r for r in self.waste if r.target in targets],
            [p for p in self.silent if p.target in targets])


def thresholds(rules: RuleSet | None, info: TargetInfo) -> tuple[float, float]:
    """(low, nearly full) for one printer: its effective rules' thresholds."""
    low, full = DEFAULT_LOW, DEFAULT_FULL
    if rules is not None:
        labels = info.labels
        for rule in rules.effective(labels.get("role", ""), labels.get("group", ""), info.name):
            if rule.name == LOW_RULE:
                low = rule.threshold
            elif rule.name == WASTE_RULE:
                full = rule.threshold
    return low, full


def is_waste(labels: Mapping[str, str]) -> bool:
    """A waste container (its level is the share filled): Printer-MIB class receptacle,
    (the history keeps the class), or "waste" in its description (files written before
    the class was kept)."""
    return labels.get("class") == "receptacle" or "waste" in labels.get("description", "").lower()


def _points(history: HistoryReader, target: str, metric: str, now: float,
            since: float) -> dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]:
    """Per label set: hourly averages from ``since``, then the raw points of the hour
    not rolled up yet (the hourly tier only has complete hours)."""
    out: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for s in history.series(target, metric, since=since, until=now + 1, step=3600):
        out.setdefault(tuple(sorted(s.labels.items())), []).extend((p.t, p.value) for p in s.points)
    for s in history.series(target, metric, since=now - 2 * 3600, until=now + 1, step=0):
        pts = out.setdefault(tuple(sorted(s.labels.items())), [])
        last = pts[-1][0] + 3600 if pts else -1.0
        pts.extend((p.t, p.value) for p in s.points if p.t >= last)
    return out


def pages_printed(points: Sequence[tuple[float, float]]) -> int:
    """Pages between the first and last reading: the sum of increases (a counter that
    went back, a reset or a new controller board, adds nothing)."""
    return int(sum(max(0.0, b - a) for (_, a), (_, b) in pairwise(points)))


def build_report(history: HistoryReader, printers: Iterable[TargetInfo], now: float, *,
                 days_ahead: int = 14, rules: RuleSet | None = None,
                 everything: bool = False) -> SuppliesReport:
    """The digest's list for ``printers`` (targets with role printer, or any target
    whose history has supply levels). ``everything``: every supply, due or not."""
    report = SuppliesReport(now, days_ahead)
    ran = sum(b - a for a, b in history.running(now - WEEK, now))
    for info in sorted(printers, key=lambda i: i.name):
        room, building = info.labels.get("room", ""), info.labels.get("building", "")
        levels = _points(history, info.name, SUPPLY, now, now - LOOKBACK_SECONDS)
        if not levels and info.labels.get("role") != "printer":
            continue
        low, full = thresholds(rules, info)
        counters = _points(history, info.name, PAGES, now, now - WEEK).values()
        pages = sum(pages_printed(sorted(p)) for p in counters) if counters else None
        for key, points in sorted(levels.items(), key=lambda kv: dict(kv[0]).get("supply", "")):
            labels = dict(key)
            waste = is_waste(labels)
            f = forecast(points, now, rising=waste)
            reason = _reason(f, waste, low, full, days_ahead)
            if reason or everything:
                row = SupplyRow(info.name, room, building,
                                labels.get("description") or labels.get("supply", "?"),
                                "waste" if waste else "consumable", f.level, f, pages, reason)
                (report.waste if waste else report.supplies).append(row)
        answered = [p.t for s in history.series(info.name, SUCCESS, since=now - LOOKBACK_SECONDS,
                                                until=now + 1, step=3600)
                    for p in s.points if p.max >= 1]
        if ran >= DAY and not any(t >= now - WEEK for t in answered):
            report.silent.append(SilentPrinter(info.name, room, building,
                                               max(answered) if answered else None))
    return report


def _reason(f: Forecast, waste: bool, low: float, full: float, days_ahead: int) -> str:
    if f.level is None:
        return ""
    soon = f.trend == "falling" and f.days_left is not None and f.days_left <= days_ahead
    if waste:
        return "nearly full" if f.level >= full else "fills up" if soon else ""
    return "low" if f.level <= low else "runs out" if soon else ""


def render_report(renderer: EmailRenderer, report: SuppliesReport, *, name: str,
                  receiver: str, external_url: str = "") -> RenderedEmail:
    """The digest email (templates ``digest.{subject,txt,html}.j2``, overridable like
    the alert emails')."""
    ctx = {"report": report, "name": name, "receiver": receiver, "external_url": external_url,
           "when": datetime.fromtimestamp(report.generated_at).astimezone()}
    env = renderer.env
    subject = " ".join(env.get_template("digest.subject.j2").render(ctx).split())
    ctx["subject"] = subject
    return RenderedEmail(subject, env.get_template("digest.txt.j2").render(ctx),
                         env.get_template("digest.html.j2").render(ctx))


# --- running inside netmon run --------------------------------------------------------


class DigestRunner:
    """Sends due digests from the alert service's tick (see the module docstring)."""

    def __init__(self, store: StateStore, settings: Any, *, base_dir: Path,
                 history: Callable[[], HistoryReader | None], external_url: str = "") -> None:
        self.store = store
        self._settings = settings
        self.base_dir = base_dir
        self.history = history
        self.external_url = external_url
        store.ensure_schema("digests", 1, SCHEMA)
        self._task: asyncio.Task[None] | None = None
        self._next_try: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        #: digest -> the period every receiver has (so a tick skips it without a query).
        self._complete: dict[str, str] = {}

    @property
    def settings(self) -> Any:
        """The ``alerts:`` settings (digests, receivers, route, smtp, retry)."""
        return self._settings

    @settings.setter
    def settings(self, settings: Any) -> None:
        """A reload: receivers or routes may have changed, so look at this period again."""
        self._settings = settings
        self._complete.clear()

    def sent(self) -> dict[tuple[str, str], str]:
        """(digest, receiver) -> the last period sent."""
        rows = self.store.read(lambda conn: conn.execute(
            "SELECT name, receiver, period FROM notify_digests").fetchall())
        return {(r[0], r[1]): r[2] for r in rows}

    def tick(self, now: float, rules: RuleSet | None, targets: Iterable[TargetInfo]) -> None:
        """Start sending the first due digest (one at a time, in the background)."""
        if self._task is not None and not self._task.done():
            return
        for digest in self.settings.digests:
            due = last_due(digest.schedule, now)
            if due is None or now - due[1] > CATCH_UP_SECONDS:
                continue
            if self._complete.get(digest.name) == due[0] or now < self._next_try.get(digest.name, 0.0):
                continue
            printers = [t for t in targets if digest.matches(t.labels)]
            plan = self._receivers(digest, printers)
            sent = self.sent()
            todo = {r: ts for r, ts in plan.items() if sent.get((digest.name, r)) != due[0]}
            if not todo:
                if not plan and printers:
                    log.warning("digest %s: no receiver with email for its printers (the route "
                                "sends them elsewhere?); set receiver:", digest.name)
                self._complete[digest.name] = due[0]
                continue
            self._task = asyncio.get_running_loop().create_task(
                self._send(digest, due[0], todo, printers, rules, now),
                name=f"netmon-digest-{digest.name}")
            return

    def _receivers(self, digest: DigestSettings, printers: Sequence[TargetInfo]) -> dict[str, set[str]]:
        """receiver -> the printers it gets (route mode: as the routing tree sends them)."""
        if digest.receiver is not None:
            return {digest.receiver: {p.name for p in printers}}
        notify: NotifySettings = self.settings
        if notify.route.receiver is None:
            return {}
        root = Route.build(notify.route)
        out: dict[str, set[str]] = {}
        for p in printers:
            labels = {**p.labels, "target": p.name, "alertname": ROUTE_ALERTNAME}
            for route in root.find(labels):
                receiver = notify.receiver(route.receiver)
                if receiver is not None and receiver.email is not None:
                    out.setdefault(route.receiver, set()).add(p.name)
        return out

    async def _send(self, digest: DigestSettings, period: str, todo: dict[str, set[str]],
                    printers: list[TargetInfo], rules: RuleSet | None, now: float) -> None:
        history = self.history()
        if history is None:
            log.warning("digest %s: no history store (history.enabled?), not sent", digest.name)
            self._retry_later(digest.name, now)
            return
        try:
            report = await asyncio.to_thread(build_report, history, printers, now,
                                             days_ahead=digest.days_ahead, rules=rules)
        except (sqlite3.Error, OSError) as exc:
            log.warning("digest %s: cannot read the history (retried): %s", digest.name, exc)
            self._retry_later(digest.name, now)
            return
        notify: NotifySettings = self.settings
        renderer = EmailRenderer(self.base_dir / notify.templates if notify.templates else None)
        failed = False
        for name, targets in sorted(todo.items()):
            receiver = notify.receiver(name)
            if receiver is None or receiver.email is None or notify.smtp is None:
                continue
            rendered = render_report(renderer, report.only(targets), name=digest.name,
                                     receiver=name, external_url=self.external_url)
            domain = notify.smtp.from_.rpartition("@")[2] or "localhost"
            msg = build_message(rendered, sender=notify.smtp.from_, to=receiver.email.to,
                                message_id=f"<netmon.digest.{digest.name}.{name}.{period}@{domain}>")
            try:
                await send_email(msg, notify.smtp, receiver.email, self.base_dir)
            except DeliveryError as exc:
                failed = True
                log.warning("digest %s to %s failed (retried): %s", digest.name, name, exc)
                continue
            self.store.write(lambda conn, n=name: conn.execute(
                "INSERT OR REPLACE INTO notify_digests VALUES (?, ?, ?, ?)",
                (digest.name, n, period, now)))
            log.info("digest %s (%s) sent to %s", digest.name, period, name)
        if failed:
            self._retry_later(digest.name, now)
        else:
            self._failures.pop(digest.name, None)
            self._next_try.pop(digest.name, None)
            self._complete[digest.name] = period

    def _retry_later(self, name: str, now: float) -> None:
        n = self._failures.get(name, 0)
        self._failures[name] = n + 1
        retry = self.settings.retry
        self._next_try[name] = now + min(retry.max, retry.initial * 2**n)

    async def wait(self) -> None:
        """Wait for a send in progress (tests, stop)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        await self.wait()
        self._task = None
