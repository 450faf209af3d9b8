"""Acknowledgements: storage per alert episode, the dispatcher's repeat rule, link and
CSRF tokens, the secret file, and a state file from before acknowledgements existed."""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts import ack
from alerts.db import StateStore, open_db
from alerts.engine import AlertEngine, EngineSettings
from monitor.web import actions
from tests.unit.test_notify_dispatch import RESOLVED, Harness, kinds, make_alert, settings

SECRET = b"s" * 32


def test_ack_holds_for_one_episode_only() -> None:
    conn = open_db(":memory:")
    a = make_alert("library-mfp", since=100.0)
    [done] = ack.acknowledge(conn, [a], author="alice", comment="toner ordered", via="cli", now=200.0)
    assert done is a
    assert ack.acknowledge(conn, [a], author="bob", comment="", via="page", now=210.0) == []
    found = ack.current_acks(conn, [a])[a.fingerprint]
    assert (found.author, found.comment, found.acked_at, found.via) == ("alice", "toner ordered", 200.0, "cli")
    again = replace(a, active_since=900.0, starts_at=900.0)  # resolved, then fired anew
    assert ack.current_acks(conn, [again]) == {}
    assert ack.current_acks(conn, [replace(a, state=RESOLVED)]) == {}  # over: not shown
    assert ack.unacknowledge(conn, [a]) == [a] and ack.current_acks(conn, [a]) == {}


def test_only_active_alerts_are_acknowledged_and_json_shows_it() -> None:
    conn = open_db(":memory:")
    firing, over = make_alert("sw-a"), make_alert("sw-b", state=RESOLVED)
    assert ack.acknowledge(conn, [firing, over], author="al", comment="", via="cli", now=5.0) == [firing]
    shown = ack.with_acks([firing, over], ack.current_acks(conn, [firing, over]))
    assert ack.alert_json(shown[0])["ack"] == {"author": "al", "comment": "", "acked_at": 5.0, "via": "cli"}
    assert ack.alert_json(shown[1])["ack"] is None


def test_acknowledged_group_sends_no_repeat_but_new_alerts_and_resolved_go_out() -> None:
    h = Harness(settings())
    a, b = make_alert("sw-a"), make_alert("sw-b")
    h.step([a], 0)
    assert len(h.step([a], 30)) == 1
    ack.acknowledge(h.conn, [a], author="alice", comment="", via="cli", now=60)
    assert h.step([a], 30 + 4 * 3600) == []                       # no repeat
    rows = h.step([a, b], 30 + 5 * 3600)                           # a new alert: notified
    assert kinds(rows) == [("firing", "email", ["sw-a", "sw-b"])]
    ack.acknowledge(h.conn, [b], author="alice", comment="", via="cli", now=60)
    assert h.step([a, b], 30 + 10 * 3600) == []                    # both acknowledged
    rows = h.step([replace(a, state=RESOLVED, ends_at=1.0), b], 30 + 11 * 3600)
    assert [(r.notification.kind, [x.state.value for x in r.notification.alerts]) for r in rows] == [
        ("firing", ["firing", "resolved"])]                        # the resolved notice


def test_a_notice_says_who_is_on_an_acknowledged_alert() -> None:
    """When a new alert joins an acknowledged one's group, the email lists both and says
    who acknowledged the first, instead of offering its link again."""
    from alerts.notify.email import EmailRenderer, Links

    h = Harness(settings())
    a, b = make_alert("sw-a"), make_alert("sw-b")
    h.step([a], 0)
    h.step([a], 30)
    ack.acknowledge(h.conn, [a], author="alice", comment="toner ordered", via="cli", now=60)
    [row] = h.step([a, b], 30 + 5 * 3600)
    listed = {x.target: x for x in row.notification.alerts}
    assert listed["sw-a"].annotations["acknowledged"] == "alice: toner ordered"
    assert "acknowledged" not in listed["sw-b"].annotations
    links = Links("http://netmon.school.example", "", SECRET)
    mail = EmailRenderer(links=links).render(row.notification, {})
    assert "Acknowledged by alice: toner ordered" in mail.text
    assert "<b>Acknowledged</b> by alice: toner ordered" in mail.html
    assert mail.text.count("I'm on it (acknowledge)") == 1  # sw-b's only


def test_unacknowledged_alert_in_group_keeps_repeats() -> None:
    h = Harness(settings())
    a, b = make_alert("sw-a"), make_alert("sw-b")
    h.step([a, b], 0)
    h.step([a, b], 30)
    ack.acknowledge(h.conn, [a], author="alice", comment="", via="cli", now=60)
    assert kinds(h.step([a, b], 30 + 4 * 3600)) == [("firing", "email", ["sw-a", "sw-b"])]


def test_link_token_is_bound_to_alert_and_expires() -> None:
    token = ack.link_token(SECRET, "0123456789abcdef", now=1000.0, valid=60.0)
    assert ack.check_link_token(SECRET, token, now=1059.0) == "0123456789abcdef"
    with pytest.raises(ack.TokenError) as exc:
        ack.check_link_token(SECRET, token, now=1060.0)
    assert exc.value.reason == "expired"
    fp, expires, sig = token.split(".")
    forged = [f"fedcba9876543210.{expires}.{sig}", f"{fp}.{int(expires) + 10**6}.{sig}",
              ack.link_token(b"x" * 32, fp, now=1000.0), token[:-2], "", "a.b", f"{fp}..{sig}"]
    for bad in forged:
        with pytest.raises(ack.TokenError) as exc:
            ack.check_link_token(SECRET, bad, now=1001.0)
        assert exc.value.reason == "invalid", bad


def test_csrf_token_is_bound_to_user_and_time() -> None:
    token = ack.csrf_token(SECRET, "alice", now=1000.0)
    ack.check_csrf_token(SECRET, token, "alice", now=1000.0 + ack.CSRF_SECONDS - 1)
    for user, at, reason in (("bob", 1000.0, "invalid"), ("alice", 1000.0 + ack.CSRF_SECONDS, "expired"),
                             ("alice", 900.0, "expired")):
        with pytest.raises(ack.TokenError) as exc:
            ack.check_csrf_token(SECRET, token, user, now=at)
        assert exc.value.reason == reason
    for bad in ("", "1000", "1000.", "x.y", token + "A"):
        with pytest.raises(ack.TokenError):
            ack.check_csrf_token(SECRET, bad, "alice", now=1000.0)


def test_secret_file_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / ack.SECRET_FILE
    first = ack.load_secret(path)
    assert len(first) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ack.load_secret(path) == first                      # a restart keeps links valid
    path.write_bytes(b"short")                                  # damaged: made anew
    assert ack.load_secret(path) != first and len(path.read_bytes()) == 32


def test_state_file_from_before_acks_gets_the_table_and_keeps_its_alerts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = open_db(path)
    engine = AlertEngine(old, EngineSettings(), schedules={}, base_dir=tmp_path)
    engine.add_silence(["target=sw-a"], ends_at=engine.clock() + 3600, author="t", comment="c")
    old.close()
    store = StateStore.open(path)
    store.ensure_schema("acks", 1, ack.ACK_SCHEMA)
    versions = dict(store.conn.execute("SELECT part, version FROM schema_versions").fetchall())
    assert versions["acks"] == 1 and versions["engine"] == 1 and versions["silences"] == 1
    assert store.conn.execute("SELECT COUNT(*) FROM silences").fetchone()[0] == 1
    store.close()


def test_acks_made_in_a_shell_while_the_file_was_faulty_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = StateStore.open(path, retry_seconds=0.0)
    store.ensure_schema("acks", 1, ack.ACK_SCHEMA)
    store._enter("io_error", "test")                            # now in memory
    shell = sqlite3.connect(path)
    shell.row_factory = sqlite3.Row
    a = make_alert("sw-a")
    ack.acknowledge(shell, [a], author="alice", comment="", via="cli", now=1.0)
    shell.close()
    store.check()                                               # the file works again
    assert store.ok
    assert a.fingerprint in store.read(lambda conn: ack.current_acks(conn, [a]))
    store.close()


@pytest.mark.parametrize(("local", "expected", "words"), [
    ("2026-12-03 16:30", "2026-12-04 07:00", "until tomorrow 07:00"),
    ("2026-12-04 02:10", "2026-12-04 07:00", "until today 07:00"),
    ("2026-12-04 07:00", "2026-12-05 07:00", "until tomorrow 07:00"),
    ("2026-03-28 20:00", "2026-03-29 07:00", "until tomorrow 07:00"),  # clocks go forward
])
def test_silence_until_the_morning_in_the_schedules_zone(local: str, expected: str, words: str) -> None:
    zone = ZoneInfo("Europe/London")
    now = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=zone).timestamp()
    morning = actions._next_morning(now, zone)
    assert morning.strftime("%Y-%m-%d %H:%M") == expected and morning.tzinfo is zone
    assert actions._morning_words(now, zone) == words
    assert actions._next_morning(now, None).astimezone().hour == 7  # the server's zone
