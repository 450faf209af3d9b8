"""Routing, grouping and timing of notifications, driven by an injected clock (no I/O)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

import pytest

from alerts.db import open_db
from alerts.model import Alert, AlertState, Suppression, fingerprint
from alerts.notify.dispatcher import Dispatcher, Route
from alerts.notify.outbox import Outbox, OutboxRow
from alerts.notify.settings import NotifySettings, RouteSettings

FIRING, RESOLVED, PENDING = AlertState.FIRING, AlertState.RESOLVED, AlertState.PENDING


def make_alert(target: str, rule: str = "device_down", *, state: AlertState = FIRING,
               suppressed: Suppression = Suppression.NONE, building: str = "Main building",
               role: str = "switch", since: float = 0.0) -> Alert:
    labels = {"alertname": rule, "severity": "critical", "target": target, "site": "North",
              "building": building, "role": role}
    return Alert(fingerprint(labels), rule, target, labels,
                 {"summary": f"{target} is down: no reply to 3 pings"}, state, suppressed,
                 active_since=since, starts_at=since,
                 ends_at=None if state is not RESOLVED else since + 100, updated_at=since)


def settings(**route: Any) -> NotifySettings:
    base = {"receiver": "it", "group_wait": "30s", "group_interval": "5m",
            "repeat_interval": "4h", **route}
    return NotifySettings.model_validate({
        "smtp": {"host": "127.0.0.1"},
        "receivers": [{"name": "it", "email": {"to": ["it@school.example"]}},
                      {"name": "office", "email": {"to": ["office@school.example"],
                                                   "send_resolved": False},
                       "webhook": {"url": "http://127.0.0.1:1/hook"}}],
        "route": base,
    })


class Harness:
    def __init__(self, s: NotifySettings, conn: sqlite3.Connection | None = None) -> None:
        self.conn = conn or open_db(":memory:")
        self.outbox = Outbox(self.conn)
        self.d = Dispatcher(self.outbox, s)
        self.seen = 0

    def step(self, alerts: list[Alert], now: float) -> list[OutboxRow]:
        """Dispatch at ``now``; return rows added since the last step (marking them done)."""
        self.d.dispatch(alerts, now)
        rows = self.outbox.due(float("inf"))
        for r in rows:
            assert r.notification.id is not None
            self.outbox.mark_delivered(r.notification.id, now)
        return rows


@pytest.fixture
def h() -> Harness:
    return Harness(settings())


def kinds(rows: list[OutboxRow]) -> list[tuple[str, str, list[str]]]:
    return [(r.notification.kind, r.integration, sorted(a.target for a in r.notification.alerts))
            for r in rows]


def test_group_wait_then_one_notification_for_the_group(h: Harness) -> None:
    a, b = make_alert("sw-closet-b2"), make_alert("library-mfp", "printer_supply_low")
    assert h.step([a], 0) == []                      # new group: waits group_wait
    assert h.step([a, b], 20) == []
    rows = h.step([a, b], 30)
    assert kinds(rows) == [("firing", "email", ["library-mfp", "sw-closet-b2"])]
    assert rows[0].data["group_labels"] == {"site": "North", "building": "Main building"}
    assert h.step([a, b], 31) == []                  # nothing new


def test_group_by_splits_buildings(h: Harness) -> None:
    a, b = make_alert("sw-a"), make_alert("sw-b", building="Science block")
    h.step([a, b], 0)
    rows = h.step([a, b], 30)
    assert sorted(kinds(rows)) == [("firing", "email", ["sw-a"]), ("firing", "email", ["sw-b"])]


def test_group_interval_for_changes_and_repeat_interval(h: Harness) -> None:
    a, b = make_alert("sw-a"), make_alert("sw-b")
    h.step([a], 0)
    assert len(h.step([a], 30)) == 1
    assert h.step([a, b], 100) == []                 # a new alert waits group_interval
    assert kinds(h.step([a, b], 330)) == [("firing", "email", ["sw-a", "sw-b"])]
    assert h.step([a, b], 330 + 3600) == []
    assert kinds(h.step([a, b], 330 + 4 * 3600)) == [("firing", "email", ["sw-a", "sw-b"])]


def test_resolved_notice_only_for_notified_alerts(h: Harness) -> None:
    a = make_alert("sw-a")
    quick = make_alert("sw-quick")
    h.step([a, quick], 0)
    h.step([a], 10)                                   # quick is gone before group_wait
    rows = h.step([a], 30)
    assert kinds(rows) == [("firing", "email", ["sw-a"])]
    gone = replace(a, state=RESOLVED, ends_at=400.0)
    rows = h.step([gone, replace(quick, state=RESOLVED)], 400)
    assert kinds(rows) == [("resolved", "email", ["sw-a"])]
    assert rows[0].notification.resolved[0].ends_at == 400.0
    assert h.step([gone], 2000) == []                 # group finished: no repeats
    assert h.outbox.groups() == {}


def test_alert_vanishing_from_the_list_counts_as_resolved(h: Harness) -> None:
    a = make_alert("sw-a")
    h.step([a], 0)
    h.step([a], 30)
    rows = h.step([], 400)
    assert kinds(rows) == [("resolved", "email", ["sw-a"])]


def test_suppressed_alerts_are_never_notified(h: Harness) -> None:
    for why in (Suppression.PARENT_DOWN, Suppression.OUT_OF_SCHEDULE, Suppression.SILENCED):
        x = make_alert(f"pc-{why.value}", suppressed=why)
        assert h.step([x], 0) == [] and h.step([x], 100) == []
        assert h.step([replace(x, state=RESOLVED, suppressed=Suppression.NONE)], 500) == []


def test_parent_down_keeps_child_and_recovery_is_correct(h: Harness) -> None:
    child = make_alert("pc-1")
    h.step([child], 0)
    assert len(h.step([child], 30)) == 1             # child notified first
    parent = make_alert("sw-closet")
    hidden = replace(child, suppressed=Suppression.PARENT_DOWN)
    rows = h.step([parent, hidden], 400)              # parent new, child now suppressed
    assert kinds(rows) == [("firing", "email", ["sw-closet"])]  # no resolved for the child
    rows = h.step([replace(parent, state=RESOLVED), replace(child, state=RESOLVED)], 800)
    assert kinds(rows) == [("resolved", "email", ["pc-1", "sw-closet"])]


def test_flapping_one_notice_per_episode_then_resolved(h: Harness) -> None:
    a = make_alert("pc-flap")
    flapping = replace(a, suppressed=Suppression.FLAPPING)
    rows = h.step([flapping], 0)
    assert kinds(rows) == [("flapping", "email", ["pc-flap"])]
    for t in range(1, 1000, 50):                      # stays flapping (pending/firing)
        state = PENDING if t % 100 else FIRING
        assert h.step([replace(flapping, state=state)], t) == []
    rows = h.step([replace(a, state=RESOLVED)], 1400)  # settled: one resolved notice
    assert kinds(rows) == [("resolved", "email", ["pc-flap"])]
    assert h.step([flapping], 1500)[0].notification.kind == "flapping"  # a new episode


def test_flapping_that_settles_down_sends_firing(h: Harness) -> None:
    a = make_alert("pc-flap")
    h.step([replace(a, suppressed=Suppression.FLAPPING)], 0)
    assert kinds(h.step([a], 400)) == [("firing", "email", ["pc-flap"])]


def test_child_routes_match_continue_and_send_resolved_off() -> None:
    s = settings(routes=[
        {"match": {"role": "printer"}, "receiver": "office", "continue": True, "group_wait": "0s"},
        {"match_re": {"role": "print.*"}, "receiver": "it"},
    ])
    h = Harness(s)
    p = make_alert("library-mfp", "printer_supply_low", role="printer")
    rows = h.step([p], 0)
    assert kinds(rows) == [("firing", "email", ["library-mfp"]), ("firing", "webhook", ["library-mfp"])]
    assert {r.notification.receiver for r in rows} == {"office"}
    rows = h.step([p], 30)
    assert [(r.notification.receiver, r.notification.kind) for r in rows] == [("it", "firing")]
    rows = h.step([replace(p, state=RESOLVED)], 400)
    # office's email has send_resolved off, its webhook and "it" get the resolved notice
    assert sorted((r.notification.receiver, r.integration) for r in rows) == [
        ("it", "email"), ("office", "webhook")]


def test_route_tree_inherits_and_falls_back_to_parent() -> None:
    root = Route.build(RouteSettings.model_validate(
        {"receiver": "it", "group_by": ["building"], "group_wait": "10s",
         "routes": [{"match": {"role": "printer"}, "receiver": "office",
                     "routes": [{"match": {"severity": "critical"}, "group_wait": "1s"}]}]}))
    leaf = root.find({"role": "printer", "severity": "critical"})
    assert [(r.receiver, r.group_wait, r.group_by) for r in leaf] == [("office", 1.0, ("building",))]
    assert [r.id for r in root.find({"role": "printer"})] == ["0.0"]
    assert [r.id for r in root.find({"role": "switch"})] == ["0"]


def test_restart_keeps_the_notification_log(tmp_path: Any) -> None:
    path = tmp_path / "state.db"
    h1 = Harness(settings(), open_db(path))
    a = make_alert("sw-a")
    h1.step([a], 0)
    assert len(h1.step([a], 30)) == 1
    h1.conn.close()
    h2 = Harness(settings(), open_db(path))           # "restarted" process
    assert h2.step([a], 40) == []                     # not re-sent early
    assert h2.step([a], 3600) == []
    assert kinds(h2.step([replace(a, state=RESOLVED)], 4000)) == [("resolved", "email", ["sw-a"])]


def test_threading_ids_per_incident(h: Harness) -> None:
    a, b = make_alert("sw-a"), make_alert("sw-b")
    h.step([a], 0)
    first = h.step([a], 30)[0].data
    second = h.step([a, b], 400)[0].data
    assert first["thread_id"] == first["message_id"]
    assert second["thread_id"] == first["message_id"] != second["message_id"]


def test_alertmanager_gets_all_firing_resent_and_resolved() -> None:
    s = NotifySettings.model_validate({"alertmanagers": [
        {"urls": ["http://127.0.0.1:1", "http://127.0.0.1:2"], "resend_every": "1m"}]})
    h = Harness(s)
    a, b = make_alert("sw-a"), make_alert("pc-1", suppressed=Suppression.SILENCED)
    rows = h.step([a, b], 0)                           # no group_wait, no routes
    assert sorted(r.notification.receiver for r in rows) == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert all(list(r.data["items"]) == [a.fingerprint] for r in rows)
    assert "endsAt" in rows[0].data["items"][a.fingerprint]   # expires if netmon dies
    assert h.step([a, b], 30) == []
    assert len(h.step([a, b], 60)) == 2               # resend_every
    rows = h.step([replace(a, state=RESOLVED, ends_at=70.0)], 70)
    item = rows[0].data["items"][a.fingerprint]
    assert item["endsAt"].startswith("1970-01-01T00:01:10")
    assert h.step([], 500) == []


def test_alertmanager_outage_merges_into_one_pending_row() -> None:
    s = NotifySettings.model_validate({"alertmanagers": [{"urls": ["http://127.0.0.1:1"],
                                                           "resend_every": "10s"}]})
    conn = open_db(":memory:")
    outbox = Outbox(conn)
    d = Dispatcher(outbox, s)
    a, b = make_alert("sw-a"), make_alert("sw-b")
    d.dispatch([a], 0)
    d.dispatch([a, b], 15)
    d.dispatch([replace(a, state=RESOLVED, ends_at=20.0), b], 20)
    rows = outbox.due(100)
    assert len(rows) == 1                               # never delivered: one merged row
    items = rows[0].data["items"]
    assert set(items) == {a.fingerprint, b.fingerprint}
    assert items[a.fingerprint]["endsAt"].startswith("1970-01-01T00:00:20")


def test_alertmanager_keeps_an_alert_it_has_when_netmon_suppresses_it_later() -> None:
    """Silenced (or parent down) after Alertmanager got it: keep re-sending until it
    really resolves, or Alertmanager would expire it and email a false "resolved"."""
    s = NotifySettings.model_validate({"alertmanagers": [{"urls": ["http://127.0.0.1:1"],
                                                           "resend_every": "1m"}]})
    h = Harness(s)
    a = make_alert("intranet")
    assert [list(r.data["items"]) for r in h.step([a], 0)] == [[a.fingerprint]]
    silenced = replace(a, suppressed=Suppression.SILENCED)
    rows = h.step([silenced], 60)
    assert len(rows) == 1 and "endsAt" in rows[0].data["items"][a.fingerprint]
    assert rows[0].data["items"][a.fingerprint]["endsAt"] > "1970-01-01T00:01:00"  # ahead: still firing
    assert len(h.step([silenced], 120)) == 1          # re-sent every resend_every
    rows = h.step([replace(silenced, state=RESOLVED, ends_at=150.0)], 150)
    assert rows[0].data["items"][a.fingerprint]["endsAt"].startswith("1970-01-01T00:02:30")
    # Suppressed from the start: never posted.
    late = make_alert("pc-9", suppressed=Suppression.PARENT_DOWN)
    assert h.step([late], 200) == []


def test_alertmanager_gets_a_flapping_alert_once_as_firing() -> None:
    s = NotifySettings.model_validate({"alertmanagers": [{"urls": ["http://127.0.0.1:1"],
                                                           "resend_every": "1m"}]})
    h = Harness(s)
    flap = make_alert("pc-3", suppressed=Suppression.FLAPPING)
    rows = h.step([flap], 0)
    assert [list(r.data["items"]) for r in rows] == [[flap.fingerprint]]
    assert h.step([flap], 30) == []                   # no post per change
