"""Acknowledge and silence round trips against a real ``netmon run`` (basic-auth users in
its web config) and a real SMTP server: three TCP services on 127.0.0.1 are down.

- CLI: ``netmon alerts ack`` stops the repeat notifications (which came every 2 s
  before), the API and ``alerts list`` show who and when, and the resolved notice still
  comes when the service is back;
- the page: its POST forms act only with the user's CSRF token, never on GET, never
  without a login; "silence 1 h" makes a silence of that alert;
- the email link: confirm page -> POST -> acknowledged; used again, forged or expired,
  it says so plainly.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import bcrypt
import pytest
import yaml

from alerts import ack
from tests.alerting import SmtpRecorder
from tests.ha_lab import NetmonProcess, TcpService
from tests.waiting import wait_until

USERS = {"alice": "alice-pass", "bob": "bob-pass"}
REPEAT = 2.0


class Lab:
    def __init__(self, netmon: NetmonProcess, smtp: SmtpRecorder, services: dict[str, TcpService]):
        self.netmon, self.smtp, self.services = netmon, smtp, services

    def request(self, method: str, path: str, user: str | None = "alice",
                form: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.netmon.port, timeout=10)
        headers = {}
        if user is not None:
            raw = f"{user}:{USERS[user]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(), dict(resp.getheaders())
        finally:
            conn.close()

    def alerts(self) -> dict[str, dict[str, Any]]:
        status, text, _ = self.request("GET", "/api/alerts")
        assert status == 200, text
        return {a["target"]: a for a in json.loads(text) if a["state"] == "firing"}

    def mails(self, target: str, kind: str = "[FIRING]") -> list[Any]:
        return [m for m in list(self.smtp.messages)
                if str(m["Subject"]).startswith(kind) and target in str(m["Subject"])]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("netmon")
    users = {u: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode() for u, p in USERS.items()}
    (workdir / "web.yml").write_text(yaml.safe_dump({"basic_auth_users": users}))
    services = {name: TcpService() for name in ("svc-a", "svc-b", "svc-c")}  # all down
    with SmtpRecorder() as smtp:
        netmon = NetmonProcess("netmon", "", workdir, ready_path="/-/healthy")
        doc = {
            "defaults": {"interval": "1s", "labels": {"site": "test-school"}},
            "groups": [{"name": n, "role": "server", "probes": ["tcp"], "tcp_ports": [s.port],
                        "labels": {"building": "main"}, "targets": [{"name": n, "address": f"127.0.0.{i}"}]}
                       for i, (n, s) in enumerate(services.items(), 1)],  # svc-a on 127.0.0.1
            "alerts": {
                "rules": {"tcp_service_down": {"for": "0s"}},
                "smtp": {"host": "127.0.0.1", "port": smtp.port, "from": "netmon@school.test"},
                "receivers": [{"name": "it", "email": {"to": ["it@school.test"]}}],
                "route": {"receiver": "it", "group_by": ["target"], "group_wait": "1s",
                          "group_interval": "1s", "repeat_interval": f"{REPEAT:g}s"},
            },
            "server": {"external_url": netmon.url, "web_config": "web.yml"},
        }  # fmt: skip
        netmon.config_text = yaml.safe_dump(doc, sort_keys=False)
        lab = Lab(netmon, smtp, services)
        try:
            netmon.start()
            wait_until(lambda: all(lab.mails(n) for n in services), 60, "a firing email per service")
            yield lab
        finally:
            netmon.stop()
            for s in services.values():
                s.down()


def test_cli_ack_stops_repeats_and_the_resolved_notice_still_comes(lab: Lab) -> None:
    wait_until(lambda: len(lab.mails("svc-a")) >= 2, 30, "a repeat notification")  # repeats do come
    fp = lab.alerts()["svc-a"]["fingerprint"]
    proc = lab.netmon.cli("alerts", "ack", fp[:6], "--author", "bob", "--comment", "replacing the NIC")
    assert proc.returncode == 0 and f"{fp[:8]} acknowledged" in proc.stdout, proc.stderr
    wait_until(lambda: lab.alerts()["svc-a"]["ack"] is not None, 10, "the daemon to see the ack")
    shown = lab.alerts()["svc-a"]["ack"]
    assert (shown["author"], shown["comment"], shown["via"]) == ("bob", "replacing the NIC", "cli")
    listing = lab.netmon.cli("alerts", "list")
    assert "bob, " in listing.stdout and "replacing the" in listing.stdout  # folded to fit
    time.sleep(1.5)  # a repeat queued before the daemon saw the ack may still be delivered
    before = len(lab.mails("svc-a"))
    time.sleep(3 * REPEAT)
    assert len(lab.mails("svc-a")) == before, "repeat notifications despite the acknowledgement"
    assert len(lab.mails("svc-b")) > 1  # the others still repeat
    again = lab.netmon.cli("alerts", "ack", fp[:6])
    assert "already acknowledged" in again.stdout
    lab.services["svc-a"].up()
    wait_until(lambda: lab.mails("svc-a", "[RESOLVED]"), 30, "the resolved notice")
    missing = lab.netmon.cli("alerts", "ack", "--match", "target=svc-a")
    assert missing.returncode == 1 and "no active alert" in missing.stderr


def form_fields(page: str) -> list[dict[str, str]]:
    forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page, re.DOTALL)
    return [{"action": action, **dict(re.findall(r'name="([^"]+)" value="([^"]*)"', inner))}
            for action, inner in forms]


def test_page_forms_need_login_csrf_and_post(lab: Lab) -> None:
    status, page, _ = lab.request("GET", "/device/svc-c")
    assert status == 200
    forms = {f["action"] + f.get("for", ""): f for f in form_fields(page)}
    assert set(forms) == {"/actions/ack", "/actions/silence1h", "/actions/silencemorning"}
    good = {k: v for k, v in forms["/actions/ack"].items() if k != "action"}
    assert good["fingerprint"] == lab.alerts()["svc-c"]["fingerprint"]
    assert lab.request("GET", "/actions/ack?" + urlencode(good))[0] == 405
    assert lab.request("POST", "/actions/ack", user=None, form=good)[0] == 401
    assert lab.request("POST", "/actions/ack", form={**good, "csrf": ""})[0] == 403
    assert lab.request("POST", "/actions/ack", user="bob", form=good)[0] == 403  # alice's token
    assert lab.alerts()["svc-c"]["ack"] is None
    status, _, headers = lab.request("POST", "/actions/ack", form={**good, "comment": "on my way"})
    assert status == 303 and headers["Location"] == "/device/svc-c"
    shown = lab.alerts()["svc-c"]["ack"]
    assert (shown["author"], shown["comment"], shown["via"]) == ("alice", "on my way", "page")
    page = lab.request("GET", "/device/svc-c")[1]
    assert "acknowledged by alice" in page and 'action="/actions/ack"' not in page

    hour = {k: v for k, v in forms["/actions/silence1h"].items() if k != "action"}
    assert lab.request("POST", "/actions/silence", form={**hour, "csrf": "1.x"})[0] == 403
    assert lab.request("POST", "/actions/silence", form=hour)[0] == 303
    silences = json.loads(lab.netmon.cli("silence", "list", "--json").stdout)
    [made] = [s for s in silences if "target=svc-c" in s["matchers"]]
    assert made["author"] == "alice" and 3590 < made["ends_at"] - made["starts_at"] <= 3600
    wait_until(lambda: lab.alerts()["svc-c"]["suppressed"] == "silenced", 10, "the silence to apply")


def test_email_link_confirm_then_ack_and_bad_links(lab: Lab) -> None:
    text = lab.mails("svc-b")[0].get_body(("plain",)).get_content()
    link = re.search(r"acknowledge\): (\S+)", text)
    assert link is not None
    path = urlsplit(link.group(1)).path
    assert lab.request("GET", path, user=None)[0] == 401  # the login comes first
    status, page, _ = lab.request("GET", path)
    assert status == 200 and "Acknowledge this alert?" in page
    assert lab.alerts()["svc-b"]["ack"] is None  # a GET never acts
    [confirm] = re.findall(r'name="csrf" value="([^"]+)"', page)
    assert lab.request("POST", path, form={"comment": "x"})[0] == 403
    status, page, _ = lab.request("POST", path, form={"csrf": confirm, "comment": "swapping it"})
    assert status == 200 and "Acknowledged" in page
    shown = lab.alerts()["svc-b"]["ack"]
    assert (shown["author"], shown["comment"], shown["via"]) == ("alice", "swapping it", "email")
    status, page, _ = lab.request("GET", path)
    assert status == 409 and "alice acknowledged this alert" in page  # the link was used

    fp, expires, signature = path.rsplit("/", 1)[1].split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    status, page, _ = lab.request("GET", f"/ack/{fp}.{expires}.{flipped}")
    assert status == 400 and "not valid" in page
    secret = (Path(lab.netmon.workdir) / ack.SECRET_FILE).read_bytes()
    old = ack.link_token(secret, lab.alerts()["svc-c"]["fingerprint"], now=time.time() - 8 * 86400)
    status, page, _ = lab.request("GET", f"/ack/{old}")
    assert status == 410 and "expired" in page
