"""Routing and grouping, like Alertmanager's dispatcher, as pure-ish logic over the outbox.

``Dispatcher.dispatch(alerts, now)`` looks at the engine's whole alert list and writes the
notifications that are due into the outbox, updating the notification log in the same
transaction: a group's first notice waits ``group_wait``, changes wait ``group_interval``
after the previous notice, an unchanged firing group is repeated every
``repeat_interval`` unless every firing alert in it is acknowledged (:mod:`alerts.ack`),
and a resolved notice goes out only for alerts that were notified. Time comes only from
``now``, so tests drive it without sleeping.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from alerts.ack import Ack, current_acks
from alerts.model import Alert, AlertState, Notification, Suppression
from alerts.notify.outbox import GroupState, Outbox, OutboxRow
from alerts.notify.settings import NotifySettings, RouteSettings

DEFAULT_GROUP_BY = ("site", "building")
DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0


@dataclass(frozen=True, slots=True)
class Route:
    """A routing-tree node with inherited values filled in."""

    id: str
    receiver: str
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    continue_: bool = False
    routes: tuple[Route, ...] = ()

    @classmethod
    def build(cls, s: RouteSettings, parent: Route | None = None, rid: str = "0") -> Route:
        p = parent
        node = cls(
            id=rid,
            receiver=s.receiver if s.receiver is not None else (p.receiver if p else ""),
            group_by=tuple(s.group_by) if s.group_by is not None
            else (p.group_by if p else DEFAULT_GROUP_BY),
            group_wait=_pick(s.group_wait, p.group_wait if p else DEFAULT_GROUP_WAIT),
            group_interval=_pick(s.group_interval,
                                 p.group_interval if p else DEFAULT_GROUP_INTERVAL),
            repeat_interval=_pick(s.repeat_interval,
                                  p.repeat_interval if p else DEFAULT_REPEAT_INTERVAL),
            match=dict(s.match),
            match_re={k: re.compile(v) for k, v in s.match_re.items()},
            continue_=s.continue_,
        )
        children = tuple(cls.build(c, node, f"{rid}.{i}") for i, c in enumerate(s.routes))
        return replace(node, routes=children)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match.items()) and all(
            rx.fullmatch(labels.get(k, "")) for k, rx in self.match_re.items())

    def find(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes an alert with ``labels`` goes to (this node assumed matching)."""
        found: list[Route] = []
        for child in self.routes:
            if child.matches(labels):
                found.extend(child.find(labels))
                if not child.continue_:
                    break
        return found or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if "..." in self.group_by:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if k in labels}


def _pick(own: float | None, inherited: float) -> float:
    return own if own is not None else inherited


def is_notifiable(alert: Alert) -> bool:
    """Firing and not suppressed: the only alerts a firing notice lists."""
    return alert.state is AlertState.FIRING and alert.suppressed is Suppression.NONE


def is_flapping(alert: Alert) -> bool:
    return alert.is_active and alert.suppressed is Suppression.FLAPPING


def _still_firing(alert: Alert | None) -> bool:
    """Notified before and not over yet (firing but suppressed, or flapping)."""
    return alert is not None and (alert.state is AlertState.FIRING or is_flapping(alert))


def _as_resolved(alert: Alert | None, snapshot: dict[str, Any], now: float) -> Alert:
    if alert is not None and alert.state is AlertState.RESOLVED:
        return alert
    base = alert if alert is not None else Alert.from_json(snapshot)
    return replace(base, state=AlertState.RESOLVED, ends_at=base.ends_at or now,
                   suppressed=Suppression.NONE, suppressed_reason="")


class Dispatcher:
    """Turns alert lists into outbox rows; all its memory is in the outbox tables."""

    def __init__(self, outbox: Outbox, settings: NotifySettings, *, mail_domain: str = "localhost",
                 external_url: str = "", alertmanager_ttl_factor: float = 4.0,
                 annotate: Callable[[Alert], Mapping[str, str]] | None = None) -> None:
        self.outbox = outbox
        #: Extra annotations (address, what failed, advice) for each alert a notification
        #: lists, looked up when it is queued, so the outbox keeps them over restarts.
        self.annotate = annotate
        self.settings = settings
        self.root = Route.build(settings.route)
        self.mail_domain = mail_domain
        self._generator_url = external_url
        self.ttl_factor = alertmanager_ttl_factor

    def dispatch(self, alerts: Sequence[Alert], now: float, busy: set[int] | None = None) -> int:
        """Write every notification due at ``now``; returns how many rows were added.
        All in one transaction; the dispatcher keeps no memory of its own, so if the
        state file fails mid-way, the store runs it again on its in-memory copy."""

        def write(conn: sqlite3.Connection) -> int:
            added = self._flapping(alerts, now) if self.settings.receivers else 0
            if self.settings.receivers:
                added += self._groups(alerts, now, current_acks(conn, alerts))
            return added + self._alertmanagers(alerts, now, busy or set())

        return self.outbox.store.write(write)

    # --- receivers ---
    def _route(self, alert: Alert) -> list[tuple[Route, str]]:
        routes = self.root.find(alert.labels) if self.root.receiver else []
        return [(r, _group_key(r, alert.labels)) for r in routes]

    def _groups(self, alerts: Sequence[Alert], now: float, acks: Mapping[str, Ack]) -> int:
        members: dict[str, list[Alert]] = {}
        route_of: dict[str, Route] = {}
        for alert in alerts:
            for route, key in self._route(alert):
                members.setdefault(key, []).append(alert)
                route_of[key] = route
        added = 0
        states = self.outbox.groups()
        for key in set(members) | set(states):
            found = route_of.get(key) or self._route_by_id(key)
            if found is None:  # the route is gone from the config: forget the group
                self.outbox.delete_group(key)
                continue
            added += self._flush(found, key, members.get(key, []), states.get(key), now, acks)
        return added

    def _route_by_id(self, key: str) -> Route | None:
        rid = key.split("|", 1)[0]
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.id == rid:
                return node
            stack.extend(node.routes)
        return None

    def _flush(self, route: Route, key: str, alerts: list[Alert], state: GroupState | None,
               now: float, acks: Mapping[str, Ack]) -> int:
        firing = {a.fingerprint: a for a in alerts if is_notifiable(a)}
        by_fp = {a.fingerprint: a for a in alerts}
        if state is None or state.last_sent_at is None:
            if not firing:
                if state is not None:
                    self.outbox.delete_group(key)
                return 0
            if state is None:
                labels = route.group_labels(next(iter(firing.values())).labels)
                state = GroupState(key, route.receiver, labels, now, None, {}, "")
                self.outbox.save_group(state)
            if now < state.first_seen_at + route.group_wait:
                return 0
            return self._send(route, state, firing, {}, now, acks=acks)
        resolved = {fp: _as_resolved(by_fp.get(fp), snap, now) for fp, snap in state.sent.items()
                    if fp not in firing and not _still_firing(by_fp.get(fp))}
        new = [fp for fp in firing if fp not in state.sent
               or state.sent[fp].get("suppressed") == Suppression.FLAPPING.value]
        if new or resolved:
            if now < state.last_sent_at + route.group_interval:
                return 0
            return self._send(route, state, firing, resolved, now, acks=acks)
        unacknowledged = any(fp not in acks for fp in firing)
        if unacknowledged and now >= state.last_sent_at + route.repeat_interval:
            return self._send(route, state, firing, {}, now, acks=acks)
        return 0

    def _send(self, route: Route, state: GroupState, firing: dict[str, Alert],
              resolved: dict[str, Alert], now: float, kind: str | None = None,
              acks: Mapping[str, Ack] | None = None) -> int:
        kind = kind or ("firing" if firing else "resolved")
        acks = acks or {}
        listed = [_acknowledged(a, acks[fp]) if fp in acks else a for fp, a in firing.items()]
        added = self._enqueue(route.receiver, state, kind, listed, [*resolved.values()], now)
        sent = {fp: snap for fp, snap in state.sent.items() if fp not in resolved}
        sent.update({fp: a.to_json() for fp, a in firing.items()})
        if not sent and kind != "flapping":
            self.outbox.delete_group(state.group_key)  # the incident is over
        else:
            state.sent, state.last_sent_at = sent, now
            self.outbox.save_group(state)
        return added

    def _enqueue(self, receiver_name: str, state: GroupState, kind: str, firing: list[Alert],
                 resolved: list[Alert], now: float) -> int:
        receiver = self.settings.receiver(receiver_name)
        if receiver is None:
            return 0
        message_id = f"<netmon.{uuid.uuid4().hex}@{self.mail_domain}>"
        if not state.thread_id:
            state.thread_id = message_id
        added = 0
        firing, resolved = [self._annotated(a) for a in firing], [self._annotated(a) for a in resolved]
        for integration in receiver.integrations():
            send_resolved = getattr(receiver, integration).send_resolved
            if kind == "resolved" and not send_resolved:
                continue
            listed = firing + (resolved if send_resolved else [])
            data = {"group_labels": state.group_labels, "message_id": message_id,
                    "thread_id": state.thread_id}
            n = Notification(receiver_name, state.group_key, kind, listed, now)
            self.outbox.add(OutboxRow(n, integration, data))
            added += 1
        return added

    def _annotated(self, alert: Alert) -> Alert:
        if self.annotate is None:
            return alert
        return replace(alert, annotations={**alert.annotations, **self.annotate(alert)})

    def _flapping(self, alerts: Sequence[Alert], now: float) -> int:
        """One "flapping" notice per episode, sent at once to the alert's groups."""
        known = self.outbox.flapping()
        flapping = {a.fingerprint: a for a in alerts if is_flapping(a)}
        started = {fp: a for fp, a in flapping.items() if fp not in known}
        self.outbox.set_flapping({fp: now for fp in started}, known - set(flapping))
        per_group: dict[str, tuple[Route, list[Alert]]] = {}
        for alert in started.values():
            for route, key in self._route(alert):
                per_group.setdefault(key, (route, []))[1].append(alert)
        added = 0
        states = self.outbox.groups()
        for key, (route, group_alerts) in per_group.items():
            state = states.get(key) or GroupState(
                key, route.receiver, route.group_labels(group_alerts[0].labels), now, None, {}, "")
            added += self._enqueue(route.receiver, state, "flapping", group_alerts, [], now)
            state.sent.update({a.fingerprint: a.to_json() for a in group_alerts})
            state.last_sent_at = state.last_sent_at if state.last_sent_at is not None else now
            self.outbox.save_group(state)
        return added

    def next_due(self, now: float) -> float:
        """The earliest time after ``now`` at which :meth:`dispatch` of an unchanged alert
        list may queue something (group_wait, group_interval, repeat_interval, an
        Alertmanager resend); ``inf``: none. For a virtual clock (:mod:`alerts.replay`)."""
        due: list[float] = []
        for key, state in self.outbox.groups().items():
            route = self._route_by_id(key)
            if route is None:
                continue
            if state.last_sent_at is None:
                due.append(state.first_seen_at + route.group_wait)
            else:
                due += [state.last_sent_at + route.group_interval,
                        state.last_sent_at + route.repeat_interval]  # fmt: skip
        for am in self.settings.alertmanagers:
            for url in am.urls:
                last = self.outbox.alertmanager_state(url)
                if last is not None:
                    due.append(last[0] + am.resend_every)
        return min((t for t in due if t > now), default=float("inf"))

    # --- Alertmanager ---
    def _alertmanagers(self, alerts: Sequence[Alert], now: float, busy: set[int]) -> int:
        # Flapping alerts are held firing by the engine: Alertmanager gets them once, as
        # firing, and does its own grouping (the one "flapping" email is for receivers).
        fresh = {a.fingerprint: a for a in alerts if is_notifiable(a) or is_flapping(a)}
        by_fp = {a.fingerprint: a for a in alerts}
        added = 0
        for am in self.settings.alertmanagers:
            for url in am.urls:
                last = self.outbox.alertmanager_state(url)
                last_at, told = last if last is not None else (None, {})
                # An alert Alertmanager already has stays there while it is still firing,
                # even if netmon now suppresses it (parent down, silenced): not re-sending
                # it would let it expire at its endsAt and email a false "resolved".
                firing = {**{fp: by_fp[fp] for fp in told
                             if fp in by_fp and _still_firing(by_fp[fp])}, **fresh}
                gone = {fp: _as_resolved(by_fp.get(fp), snap, now) for fp, snap in told.items()
                        if fp not in firing}
                changed = set(firing) != set(told) or gone
                if not changed and (not firing or (last_at is not None
                                                   and now < last_at + am.resend_every)):
                    continue
                items: dict[str, dict[str, Any]] = {}
                for fp, a in firing.items():
                    items[fp] = a.to_alertmanager(self._generator_url)
                    items[fp]["endsAt"] = _iso(now + self.ttl_factor * am.resend_every)
                for fp, a in gone.items():
                    items[fp] = a.to_alertmanager(self._generator_url)
                self.outbox.add_alertmanager(url, items, now, busy)
                self.outbox.save_alertmanager_state(
                    url, now, {fp: a.to_json() for fp, a in firing.items()})
                added += 1
        return added


def _acknowledged(alert: Alert, ack: Ack) -> Alert:
    """A firing alert someone acknowledged, as a notification lists it: "sam: toner
    ordered" in its ``acknowledged`` annotation (it is still sent when a new alert joins
    its group; the email then says who is on it instead of offering the link again)."""
    who = f"{ack.author}: {ack.comment}" if ack.comment else ack.author
    return replace(alert, annotations={**alert.annotations, "acknowledged": who,
                                       "acknowledged_at": f"{ack.acked_at:.0f}"})  # fmt: skip


def _group_key(route: Route, labels: Mapping[str, str]) -> str:
    return f"{route.id}|{route.receiver}|" + json.dumps(
        sorted(route.group_labels(labels).items()), separators=(",", ":"))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
