"""Webhook delivery to a real aiohttp server, and alerts posted to a real Alertmanager
(which then emails a real aiosmtpd through its own route)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from alerts.db import open_db
from alerts.model import AlertState, Suppression
from alerts.notify import Notifier, send_test_notifications
from alerts.notify.settings import NotifySettings
from monitor.demo.simlab import free_tcp_port
from tests.alerting import (
    AlertmanagerServer,
    SmtpRecorder,
    alertmanager_available,
    start_alertmanager,
)
from tests.conftest import need
from tests.integration.test_notify_email import Clock
from tests.unit.test_notify_dispatch import make_alert


@dataclass
class Hook:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    #: Status codes to answer with, in order; 200 once used up.
    answers: list[int] = field(default_factory=list)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    port = free_tcp_port()
    rec = Hook(f"http://127.0.0.1:{port}/hook")

    async def handle(request: web.Request) -> web.Response:
        status = rec.answers.pop(0) if rec.answers else 200
        if status == 200:
            rec.bodies.append(await request.json())
            rec.auth.append(request.headers.get("Authorization"))
        return web.Response(status=status, text="busy" if status != 200 else "ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield rec
    await runner.cleanup()


async def test_webhook_body_retry_on_non_2xx_and_basic_auth(hook: Hook, tmp_path: Path) -> None:
    s = NotifySettings.model_validate({
        "receivers": [{"name": "ops", "webhook": {"url": hook.url, "username": "netmon",
                                                   "password": "hook-pw"}}],
        "route": {"receiver": "ops", "group_wait": "0s", "group_interval": "1m"},
        "retry": {"initial": "5s", "max": "5s"},
    })
    clock = Clock()
    n = Notifier(open_db(":memory:"), s, base_dir=tmp_path, clock=clock)
    hook.answers = [503]
    a = make_alert("sw-a")
    n.update([a])
    assert await n.deliver_due() == 0 and hook.bodies == []     # 503: retried later
    clock.t += 5
    assert await n.deliver_due() == 1
    clock.t += 60
    n.update([replace(a, state=AlertState.RESOLVED, ends_at=clock.t)])
    assert await n.deliver_due() == 1
    await n.stop()
    firing, resolved = hook.bodies
    assert firing["status"] == "firing" and firing["receiver"] == "ops"
    assert firing["groupLabels"] == {"site": "North", "building": "Main building"}
    assert firing["alerts"][0]["labels"]["target"] == "sw-a"
    assert firing["alerts"][0]["fingerprint"] == a.fingerprint
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["status"] == "resolved"
    assert hook.auth[0] is not None and hook.auth[0].startswith("Basic ")
    assert base64.b64decode(hook.auth[0][6:]) == b"netmon:hook-pw"
    totals = {tuple(v for _, v in x.labels): x.value for x in n.samples()
              if x.metric == "netmon_notifications_total"}
    assert totals == {("ops", "webhook", "delivered"): 2, ("ops", "webhook", "failed"): 1}


AM_CONFIG = """
global:
  smtp_smarthost: '127.0.0.1:{port}'
  smtp_from: alertmanager@school.example
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: mail
    email_configs: [{{to: it@school.example, send_resolved: true}}]
"""


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    with SmtpRecorder() as server:
        yield server


@pytest.fixture
def alertmanager(smtp: SmtpRecorder) -> Iterator[AlertmanagerServer]:
    need(alertmanager_available())
    server = start_alertmanager(AM_CONFIG.format(port=smtp.port))
    yield server
    server.stop()


async def wait_for(check: Any, seconds: float = 20.0) -> Any:
    """Poll ``check()`` until it returns something truthy (bounded)."""
    for _ in range(int(seconds / 0.1)):
        if result := check():
            return result
        await asyncio.sleep(0.1)
    return check()


async def test_alertmanager_receives_alerts_and_emails(alertmanager: AlertmanagerServer,
                                                       smtp: SmtpRecorder, tmp_path: Path) -> None:
    down = free_tcp_port()  # nothing listens here: an Alertmanager that is down
    s = NotifySettings.model_validate({"alertmanagers": [
        {"urls": [alertmanager.url, f"http://127.0.0.1:{down}"], "resend_every": "1m",
         "timeout": "2s"}], "retry": {"initial": "1s", "max": "2s"}})
    n = Notifier(open_db(":memory:"), s, base_dir=tmp_path, external_url="http://netmon.test")
    a = make_alert("sw-closet-b2")
    silenced = make_alert("pc-1", suppressed=Suppression.SILENCED)
    n.update([a, silenced])
    assert await n.deliver_due() == 1                  # the live one; the down one is retried
    got = await wait_for(alertmanager.alerts)
    assert [x["labels"]["target"] for x in got] == ["sw-closet-b2"]
    assert got[0]["annotations"]["summary"] == a.annotations["summary"]
    assert got[0]["generatorURL"] == "http://netmon.test"
    mail = await wait_for(lambda: smtp.messages)
    body = mail[0].get_body(("plain", "html"))
    assert body is not None and "sw-closet-b2" in body.get_content()
    pending = {x.label_dict["receiver"]: x.value for x in n.samples()
               if x.metric == "netmon_notifications_pending"}
    assert pending == {alertmanager.url: 0, f"http://127.0.0.1:{down}": 1}

    n.update([replace(a, state=AlertState.RESOLVED, ends_at=n.clock() - 1)])
    await n.deliver_due()
    assert await wait_for(lambda: not alertmanager.alerts())
    await wait_for(lambda: len(smtp.messages) >= 2)
    await n.stop()
    assert len(smtp.messages) == 2 and "RESOLVED" in str(smtp.messages[1]["Subject"]).upper()


async def test_send_test_notifications_reports_each(hook: Hook, tmp_path: Path) -> None:
    down = free_tcp_port()
    s = NotifySettings.model_validate({
        "smtp": {"host": "127.0.0.1", "port": down, "timeout": "2s"},
        "receivers": [{"name": "it", "email": {"to": ["it@x.example"]}, "webhook": {"url": hook.url}}],
        "route": {"receiver": "it"},
        "alertmanagers": [{"urls": [f"http://127.0.0.1:{down}"], "timeout": "2s"}],
    })
    results = await send_test_notifications(s, base_dir=tmp_path)
    assert [(r, i, e is None) for r, i, e in results] == [
        ("it", "email", False), ("it", "webhook", True),
        (f"http://127.0.0.1:{down}", "alertmanager", False)]
    assert "connect" in (results[0][2] or "").lower()
    assert hook.bodies[0]["netmonKind"] == "test"
    assert json.dumps(hook.bodies[0])  # plain JSON


async def test_two_netmons_to_an_alertmanager_cluster_send_one_email(
        smtp: SmtpRecorder, tmp_path: Path) -> None:
    """High availability: two netmon instances, same alerts, a two-peer Alertmanager
    cluster gossiping on loopback: one email for the incident, also with one peer dead."""
    need(alertmanager_available())
    config = AM_CONFIG.format(port=smtp.port)
    first = start_alertmanager(config, cluster=True)
    second = start_alertmanager(config, peers=[first.cluster])
    try:
        s = NotifySettings.model_validate({"alertmanagers": [
            {"urls": [first.url, second.url], "resend_every": "1m"}]})
        netmons = [Notifier(open_db(tmp_path / f"n{i}.db"), s, base_dir=tmp_path) for i in (1, 2)]
        a = make_alert("sw-closet-b2")
        for n in netmons:
            n.update([a])
            assert await n.deliver_due() == 2
        await wait_for(lambda: smtp.messages)
        await asyncio.sleep(3)  # longer than the peers' dedup wait: a duplicate would be here
        assert len(smtp.messages) == 1

        first.stop()  # one Alertmanager dies: the other still tells us about a new incident
        b = make_alert("library-mfp", "printer_supply_low")
        for n in netmons:
            n.update([a, b])
            await n.deliver_due()
        await wait_for(lambda: len(smtp.messages) >= 2)
        await asyncio.sleep(3)
        assert len(smtp.messages) == 2
        body = smtp.messages[1].get_body(("plain", "html"))
        assert body is not None and "library-mfp" in body.get_content()
        for n in netmons:
            await n.stop()
    finally:
        first.stop()
        second.stop()


async def test_an_alertmanager_url_password_is_not_a_metric_label(tmp_path: Path) -> None:
    """The receiver label of an Alertmanager is its url; ``user:password@`` in it is
    masked on /metrics (the delivery fails: nothing listens)."""
    down = free_tcp_port()
    url = f"http://netmon:am-s3cret-pass@127.0.0.1:{down}"
    s = NotifySettings.model_validate({"alertmanagers": [{"urls": [url], "timeout": "1s"}],
                                       "retry": {"initial": "1s", "max": "2s"}})
    n = Notifier(open_db(":memory:"), s, base_dir=tmp_path)
    n.update([make_alert("sw-closet-b2")])
    await n.deliver_due()
    await n.stop()
    samples = n.samples()
    receivers = {x.label_dict["receiver"] for x in samples}
    assert receivers == {f"http://netmon:****@127.0.0.1:{down}"}, receivers
    assert {x.metric for x in samples} == {"netmon_notifications_total", "netmon_notifications_pending"}
    assert not any("am-s3cret-pass" in v for x in samples for _, v in x.labels)
