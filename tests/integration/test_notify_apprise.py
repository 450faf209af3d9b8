"""Chat and push receivers: apprise really posts to loopback aiohttp servers (one that
speaks enough ntfy, one plain JSON endpoint, one that is down until the test starts it)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import pytest
from aiohttp import web

from alerts.db import StateStore
from alerts.model import AlertState
from alerts.notify import Notifier, send_test_notifications
from alerts.notify.settings import NotifySettings
from monitor.demo.simlab import free_tcp_port
from tests.integration.test_notify_email import Clock
from tests.unit.test_notify_dispatch import make_alert

TOKEN = "tok-9f8e7d6c5b4a"
PASSWORD = "chat-pw-31415"


@dataclass
class ChatServer:
    """Records what apprise posts: ntfy (``POST /`` with the topic in the JSON body) and
    apprise's json:// format (``POST /hook/...``)."""

    port: int = field(default_factory=free_tcp_port)
    ntfy: list[dict[str, Any]] = field(default_factory=list)
    json: list[dict[str, Any]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def start(self) -> ChatServer:
        async def ntfy(request: web.Request) -> web.Response:
            self.ntfy.append(await request.json())
            return web.json_response({"id": f"m{len(self.ntfy)}", "event": "message"})

        async def hook(request: web.Request) -> web.Response:
            self.json.append(await request.json())
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/", ntfy)
        app.router.add_post("/hook/{rest:.*}", hook)
        self.runner = web.AppRunner(app, access_log=None)  # its paths hold the test token
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def chat() -> AsyncIterator[ChatServer]:
    server = await ChatServer().start()
    yield server
    await server.stop()


async def test_ntfy_and_json_get_routed_grouped_messages(chat: ChatServer, tmp_path: Path) -> None:
    s = NotifySettings.model_validate({
        "receivers": [
            {"name": "it-chat", "apprise": {"urls": [f"ntfy://127.0.0.1:{chat.port}/netmon-it"]}},
            {"name": "office-chat", "apprise": {
                "urls": [f"json://127.0.0.1:{chat.port}/hook/office"],
                "title": "Office: {{ alerts|length }} to do",
                "template": "{% for a in alerts %}{{ a.target }} in {{ a.room }}: {{ a.state }}\n"
                            "{% endfor %}"}},
        ],
        "route": {"receiver": "it-chat", "group_wait": "0s", "group_interval": "1m",
                  "routes": [{"match": {"role": "printer"}, "receiver": "office-chat"}]},
    })
    clock = Clock()
    n = Notifier(StateStore.open(tmp_path / "state.db"), s, base_dir=tmp_path, clock=clock,
                 external_url="http://netmon.school.example:10190/")
    switches = [make_alert("sw-a", since=clock.t), make_alert("sw-b", since=clock.t)]
    printer = replace(make_alert("staffroom-printer", "printer_supply_empty", role="printer"),
                      annotations={"summary": "staffroom-printer: Black Toner Cartridge is empty"})
    printer.labels["room"] = "staffroom"
    n.update([*switches, printer])
    assert await n.deliver_due() == 2
    (it,) = chat.ntfy
    assert it["topic"] == "netmon-it"
    assert it["title"] == "netmon · Main building, North: 2 firing"
    assert it["message"].splitlines() == [
        "[FIRING] sw-a is down: no reply to 3 pings",
        "[FIRING] sw-b is down: no reply to 3 pings",
        "http://netmon.school.example:10190/device/sw-a",
        "http://netmon.school.example:10190/device/sw-b",
    ]
    (office,) = chat.json
    assert office["title"] == "Office: 1 to do" and office["type"] == "failure"
    assert office["message"] == "staffroom-printer in staffroom: FIRING"

    clock.t += 3600
    n.update([replace(a, state=AlertState.RESOLVED, ends_at=clock.t) for a in switches] + [printer])
    assert await n.deliver_due() == 1
    await n.stop()
    assert len(chat.ntfy) == 2 and len(chat.json) == 1
    assert chat.ntfy[1]["title"] == "netmon · Main building, North: 2 resolved"
    assert "[RESOLVED] sw-a is down: no reply to 3 pings, lasted 1 hour" in chat.ntfy[1]["message"]


class RootLog(logging.Handler):
    """What netmon's own log (handlers on the root logger) gets, at every level (pytest's
    caplog also reads loggers that do not propagate, so it cannot tell)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")

    def __enter__(self) -> Self:
        root = logging.getLogger()
        self.level_before = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger().removeHandler(self)
        logging.getLogger().setLevel(self.level_before)


async def test_down_service_retried_with_backoff_across_a_restart(
        chat: ChatServer, tmp_path: Path) -> None:
    later = ChatServer()  # down: nothing listens on its port yet
    s = NotifySettings.model_validate({
        "receivers": [{"name": "chat", "apprise": {"timeout": "5s", "urls": [
            f"json://127.0.0.1:{chat.port}/hook/{TOKEN}",
            f"json://netmon:{PASSWORD}@127.0.0.1:{later.port}/hook/{TOKEN}"]}}],
        "route": {"receiver": "chat", "group_wait": "0s"},
        "retry": {"initial": "30s", "max": "2m"},
    })
    clock = Clock()
    path = tmp_path / "state.db"
    n = Notifier(StateStore.open(path), s, base_dir=tmp_path, clock=clock)
    log = RootLog().__enter__()
    n.update([make_alert("sw-a")])
    assert await n.deliver_due() == 0
    assert len(chat.json) == 1  # the live service has it; the dead one is retried
    (row,) = n.outbox.due(clock.t + 3600)
    assert row.notification.attempts == 1 and row.notification.next_attempt_at == clock.t + 30
    assert "url 2 (json://)" in row.notification.last_error
    clock.t += 31
    assert await n.deliver_due() == 0
    (row,) = n.outbox.due(clock.t + 3600)
    assert row.notification.next_attempt_at == clock.t + 60  # doubled
    samples = repr(n.samples())
    await n.stop()
    n.outbox.store.close()

    await later.start()
    try:
        n = Notifier(StateStore.open(path), s, base_dir=tmp_path, clock=clock)  # a restart
        clock.t += 59
        assert await n.deliver_due() == 0  # not due yet
        clock.t += 1
        assert await n.deliver_due() == 1
        await n.stop()
        n.outbox.store.close()
    finally:
        await later.stop()
        log.__exit__()
    assert len(later.json) == 1 and later.json[0]["message"].startswith("[FIRING] sw-a")
    assert len(chat.json) == 1  # the service that took it first got no duplicate
    state = path.read_bytes() + Path(f"{path}-wal").read_bytes() if Path(f"{path}-wal").exists() \
        else path.read_bytes()
    for secret in (TOKEN, PASSWORD):
        assert not [line for line in log.lines if secret in line] and secret not in samples
        assert secret.encode() not in state
    assert any("notification to chat (apprise) failed" in line for line in log.lines)


async def test_alerts_test_reaches_every_url(chat: ChatServer, tmp_path: Path) -> None:
    down = free_tcp_port()
    s = NotifySettings.model_validate({"receivers": [
        {"name": "chat", "apprise": {"urls": [f"ntfy://127.0.0.1:{chat.port}/netmon-test"]}},
        {"name": "dead", "apprise": {"urls": [f"json://127.0.0.1:{down}/hook/{TOKEN}"]}}]})
    outcomes = await send_test_notifications(s, base_dir=tmp_path)
    assert outcomes[0] == ("chat", "apprise", None)
    assert outcomes[1][:2] == ("dead", "apprise") and "url 1 (json://)" in str(outcomes[1][2])
    assert TOKEN not in str(outcomes)
    assert chat.ntfy[0]["title"] == "netmon test message for chat"


def test_cli_alerts_test_with_url_from_env(tmp_path: Path) -> None:
    """``netmon alerts test`` reads the URL from {env:}; the failure line hides it."""
    down = free_tcp_port()
    cfg = tmp_path / "netmon.yml"
    cfg.write_text(
        "groups: []\n"
        "alerts:\n"
        "  receivers:\n"
        "    - name: teams\n"
        "      apprise: {urls: [{env: NETMON_TEST_CHAT_URL}], timeout: 3s}\n"
        "  route: {receiver: teams}\n")
    env = {"NETMON_TEST_CHAT_URL": f"json://127.0.0.1:{down}/hook/{TOKEN}", "PATH": "/usr/bin"}
    run = subprocess.run([sys.executable, "-m", "monitor.cli", "alerts", "test", "-c", str(cfg)],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert run.returncode == 1, run.stderr
    assert run.stdout.startswith("teams apprise: FAILED: apprise url 1 (json://)")
    assert TOKEN not in run.stdout + run.stderr
