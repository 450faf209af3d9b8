"""Email delivery through real aiosmtpd servers: plain, STARTTLS with auth, implicit TLS,
SMTP down then up, and a restart mid-incident. Time is an injected clock; only the
sockets are real."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from alerts.db import open_db
from alerts.model import AlertState
from alerts.notify import Notifier, send_test_notifications
from alerts.notify.settings import NotifySettings
from tests.alerting import SelfSignedCert, SmtpRecorder
from tests.unit.test_notify_dispatch import make_alert

PASSWORD = "smtp-secret-4711"
# aiosmtpd warns about AUTH without STARTTLS even when the connection is implicit TLS.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def notify_settings(smtp: SmtpRecorder, **smtp_extra: Any) -> NotifySettings:
    return NotifySettings.model_validate({
        "smtp": {"host": "127.0.0.1", "port": smtp.port, "from": "netmon@school.example",
                 "timeout": "5s", **smtp_extra},
        "receivers": [{"name": "it-team", "email": {"to": ["it@school.example"]}}],
        "route": {"receiver": "it-team", "group_wait": "30s", "group_interval": "5m"},
        "retry": {"initial": "10s", "max": "40s"},
    })


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    with SmtpRecorder() as server:
        yield server


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCert:
    return SelfSignedCert.create(tmp_path_factory.mktemp("cert"))


def subject(msg: Any) -> str:
    """The Subject, unfolded (a folded long header parses with a leading space)."""
    return str(msg["Subject"]).strip()


def counts(n: Notifier) -> dict[tuple[str, ...], float]:
    return {tuple(v for _, v in s.labels) + (s.metric,): s.value for s in n.samples()}


async def test_plain_smtp_group_notification_and_thread(smtp: SmtpRecorder, tmp_path: Path) -> None:
    clock = Clock()
    n = Notifier(open_db(tmp_path / "s.db"), notify_settings(smtp), base_dir=tmp_path, clock=clock)
    a, b = make_alert("sw-closet-b2"), make_alert("library-mfp")
    n.update([a, b])
    assert await n.deliver_due() == 0 and smtp.messages == []   # group_wait
    clock.t += 30
    n.update([a, b])
    assert await n.deliver_due() == 1
    clock.t += 400
    n.update([replace(a, state=AlertState.RESOLVED, ends_at=clock.t), b])
    assert await n.deliver_due() == 1
    await n.stop()
    first, second = smtp.messages
    assert subject(first).startswith("[FIRING] 2 problems in Main building, North:")
    assert smtp.envelopes[0] == ("netmon@school.example", ["it@school.example"])
    assert subject(second).startswith("[FIRING] 1 problem in Main building, North (1 resolved)")
    assert second["In-Reply-To"] == first["Message-ID"] == second["References"]
    html = first.get_body(("html",))
    assert html is not None and "sw-closet-b2 is down" in html.get_content()
    assert counts(n)[("it-team", "email", "delivered", "netmon_notifications_total")] == 2
    assert counts(n)[("it-team", "email", "netmon_notifications_pending")] == 0


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_with_auth(security: str, cert: SelfSignedCert, tmp_path: Path,
                             caplog: pytest.LogCaptureFixture) -> None:
    with SmtpRecorder(security=security, cert=cert, login=("netmon", PASSWORD)) as server:  # type: ignore[arg-type]
        good = notify_settings(server, security=security, username="netmon", password=PASSWORD,
                               ca_file=str(cert.cert_file))
        results = await send_test_notifications(good, base_dir=tmp_path)
        assert results == [("it-team", "email", None)]
        assert subject(server.messages[0]) == "[TEST] netmon test message for it-team"

        bad = notify_settings(server, security=security, username="netmon",
                              password="wrong-" + PASSWORD, ca_file=str(cert.cert_file))
        clock = Clock()
        n = Notifier(open_db(":memory:"), bad, base_dir=tmp_path, clock=clock)
        n.update([make_alert("sw-a")])
        clock.t += 30
        n.update([make_alert("sw-a")])
        with caplog.at_level(logging.WARNING):
            assert await n.deliver_due() == 0
        assert "it-team" in caplog.text and "535" in caplog.text
        assert PASSWORD not in caplog.text
        assert counts(n)[("it-team", "email", "failed", "netmon_notifications_total")] == 1
        assert counts(n)[("it-team", "email", "netmon_notifications_pending")] == 1

        untrusted = notify_settings(server, security=security, username="netmon", password=PASSWORD)
        [(_, _, error)] = await send_test_notifications(untrusted, base_dir=tmp_path)
        assert error is not None and "certificate" in error.lower()
        assert len(server.messages) == 1


async def test_smtp_down_then_up_each_notification_exactly_once(tmp_path: Path) -> None:
    smtp = SmtpRecorder()  # not started: connection refused
    clock = Clock()
    n = Notifier(open_db(tmp_path / "s.db"), notify_settings(smtp), base_dir=tmp_path, clock=clock)
    targets = ["sw-a", "sw-b", "sw-c"]
    alerts = []
    for i, t in enumerate(targets):  # three changes, each one notification
        alerts.append(make_alert(t))
        n.update(alerts)
        clock.t += 30 if i == 0 else 0
        n.update(alerts)
        assert await n.deliver_due() == 0
        clock.t += 301
    n.update(alerts)
    assert counts(n)[("it-team", "email", "netmon_notifications_pending")] == 3
    smtp.start()
    smtp.refuse = True                                     # up, but answering 451
    clock.t += 60
    assert await n.deliver_due() == 0
    smtp.refuse = False
    assert await n.deliver_due() == 0                      # still backing off
    clock.t += 40                                          # the cap
    assert await n.deliver_due() == 3
    clock.t += 100
    assert await n.deliver_due() == 0
    smtp.stop()
    ids = smtp.message_ids()
    assert len(ids) == 3 == len(set(ids))
    assert [subject(m).split(":")[0] for m in smtp.messages] == [
        "[FIRING] 1 problem in Main building, North", "[FIRING] 2 problems in Main building, North",
        "[FIRING] 3 problems in Main building, North"]
    c = counts(n)
    assert c[("it-team", "email", "delivered", "netmon_notifications_total")] == 3
    assert c[("it-team", "email", "failed", "netmon_notifications_total")] >= 2
    assert c[("it-team", "email", "netmon_notifications_pending")] == 0


async def test_restart_mid_incident_no_duplicate_no_loss(smtp: SmtpRecorder, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    clock = Clock()
    a, b = make_alert("sw-a"), make_alert("sw-b")
    first = Notifier(open_db(path), notify_settings(smtp), base_dir=tmp_path, clock=clock)
    first.update([a])
    clock.t += 30
    first.update([a])
    assert await first.deliver_due() == 1
    clock.t += 301
    smtp.refuse = True
    first.update([a, b])                                   # queued, not delivered
    assert await first.deliver_due() == 0
    await first.stop()
    first.outbox.conn.close()
    smtp.refuse = False

    clock.t += 5
    second = Notifier(open_db(path), notify_settings(smtp), base_dir=tmp_path, clock=clock)
    second.update([a, b])                                  # the same incident: nothing new
    clock.t += 60
    assert await second.deliver_due() == 1                 # the queued update, once
    second.update([a, b])
    assert await second.deliver_due() == 0
    clock.t += 301
    resolved = [replace(x, state=AlertState.RESOLVED, ends_at=clock.t) for x in (a, b)]
    second.update(resolved)
    assert await second.deliver_due() == 1
    subjects = [subject(m).split(":")[0] for m in smtp.messages]
    assert subjects == ["[FIRING] 1 problem in Main building, North",
                        "[FIRING] 2 problems in Main building, North",
                        "[RESOLVED] 2 problems in Main building, North"]
    assert len(set(smtp.message_ids())) == 3


async def test_delivery_loop_runs_by_itself(smtp: SmtpRecorder, tmp_path: Path) -> None:
    s = notify_settings(smtp).model_copy(update={"route": notify_settings(smtp).route.model_copy(
        update={"group_wait": 0.0})})
    n = Notifier(open_db(":memory:"), s, base_dir=tmp_path, poll_interval=0.05)
    await n.start()
    try:
        n.update([make_alert("sw-a")])
        for _ in range(100):
            if smtp.messages:
                break
            await asyncio.sleep(0.05)
    finally:
        await n.stop()
    assert len(smtp.messages) == 1
