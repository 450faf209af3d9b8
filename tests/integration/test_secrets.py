"""Secrets against the real running pieces (issue 16, items 4 and 5).

- ``netmon probe`` with short and common communities ("x", "a", "public", "snmp", and
  ones equal to JSON keys or values) prints exactly what it prints with any other
  community: same JSON keys, same device strings, same table and Nagios line.
- ``netmon run`` with every secret kind (v2c community, SNMPv3 auth and priv passwords,
  SMTP password, webhook basic auth and a password written into a webhook URL), each used
  for real (snmpd, aiosmtpd over TLS with AUTH, an HTTP server checking basic auth): no
  secret in its log, ``/metrics``, ``/probe``, ``/api/*``, the status pages, the emails,
  the webhook bodies, the state file, or the CLI's ``--json``/``--debug`` output.
- Commands that need no secrets work with none of them set, and say so on stderr.

Everything listens on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.demo import simlab
from tests.alerting import SelfSignedCert, SmtpRecorder
from tests.conftest import need
from tests.ha_lab import NetmonProcess
from tests.waiting import http_status, wait_until

NETMON = Path(sys.executable).parent / "netmon"
ROOT = Path(__file__).resolve().parents[2]
# aiosmtpd warns about AUTH without STARTTLS even when the connection is implicit TLS.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

#: Communities that are words of netmon's own output, or JSON keys and values in it.
SHORT = ["x", "a", "public", "snmp", "explanation", "status", "timeout", "ok"]
NEUTRAL = "neutral-community-16"
#: Device strings that contain the communities above inside longer words (and in
#: another case), never as a word of their own: masking them would be mangling.
SYS_DESCR = "SNMP agent snmpd, publicly explained statuses of a box (timeouts: okay)"
SYS_LOCATION = "x-ray room, Status board"

V3_USER = "netmon16"
SECRETS = {
    "NETMON_T16_COMMUNITY": "c0mmunity-Leak-71",
    "NETMON_T16_WRONG_COMMUNITY": "wr0ng-Community-72",
    "NETMON_T16_AUTH": "auth-Leak-Pass-73",
    "NETMON_T16_SMTP": "smtp-Leak-Pass-76",
    "NETMON_T16_HOOK": "hook-Leak-Pass-77",
}
PRIV = "priv-Leak-Pass-74"  # from a {file:} secret
WRONG_AUTH = "wr0ng-Auth-Pass-75"  # inline in the config
URL_PASSWORD = "url-Leak-Pass-78"  # written into a webhook URL
ALL_SECRETS = [*SECRETS.values(), PRIV, WRONG_AUTH, URL_PASSWORD]


def netmon(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("NETMON_", "FORCE_COLOR"))}
    full_env.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run([str(NETMON), *args], capture_output=True, text=True, timeout=60,
                          env=full_env, cwd=cwd, check=False)  # fmt: skip


def assert_no_secret(where: str, text: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text, f"{secret!r} leaked in {where}: ...{_around(text, secret)}..."


def _around(text: str, secret: str) -> str:
    i = text.find(secret)
    return text[max(0, i - 120) : i + len(secret) + 120]


# --- short and common communities ------------------------------------------------------------


@pytest.fixture(scope="module")
def word_agent() -> Iterator[simlab.Agent]:
    """snmpd answering every community of SHORT (and NEUTRAL) with the same tricky strings."""
    need(simlab.snmpd_available())
    with simlab.start_snmpd(communities=[NEUTRAL, *SHORT],
                            extra_config=[f"sysdescr {SYS_DESCR}", f"syslocation {SYS_LOCATION}"]) as agent:  # fmt: skip
        yield agent


def _normal(value: Any) -> Any:
    """Output with what changes between two runs (durations, uptimes, times) zeroed
    (no community of SHORT has a digit)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if k not in ("duration_seconds", "started_at")}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"\d+(\.\d+)?", "0", value)
    if isinstance(value, float | int) and not isinstance(value, bool):
        return 0
    return value


def test_short_and_common_communities_never_change_the_output(word_agent: simlab.Agent) -> None:
    args = ["probe", "snmp", word_agent.endpoint, "--module", "system"]

    def run(community: str, mode: str) -> Any:
        proc = netmon(*args, "--community", community, *{"json": ["--json", "--debug"], "table": [],
                                                           "nagios": ["--nagios"]}[mode])  # fmt: skip
        assert proc.returncode == 0, (community, mode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        return _normal(json.loads(proc.stdout) if mode == "json" else proc.stdout)

    reference = {mode: run(NEUTRAL, mode) for mode in ("json", "table", "nagios")}
    [result] = reference["json"]
    assert result["status"] == "ok" and result["facts"]["sys_descr"] == SYS_DESCR
    assert result["facts"]["location"] == SYS_LOCATION
    for community in SHORT:
        for mode, expected in reference.items():
            # an output can only change where the community occurs in it (as any substring)
            if mode == "json" or community in expected:
                assert run(community, mode) == expected, (community, mode)


# --- commands that need no secrets ------------------------------------------------------------


NO_SECRETS_CONFIG = """\
credentials:
  school: {version: 2c, community: {env: NETMON_T16_COMMUNITY}}
  network:
    version: 3
    user: netmon16
    auth: {protocol: SHA256, password: {file: secrets/auth-password}}
    priv: {protocol: AES, password: {env: NETMON_T16_PRIV}}
groups:
  - {name: core, role: switch, credentials: network, targets: [{name: sw-core, address: 192.0.2.2}]}
  - {name: printers, role: printer, credentials: school, targets: [{name: library-mfp, address: 192.0.2.20}]}
alerts:
  state_file: alerts.db
  smtp: {host: 127.0.0.1, username: netmon, password: {env: NETMON_T16_SMTP}}
  receivers:
    - name: it-team
      email: {to: [it@school.example]}
      webhook: {url: "http://127.0.0.1:9/hook", username: netmon, password: {env: NETMON_T16_HOOK}}
  route: {receiver: it-team}
"""
NO_SECRET_COMMANDS = [
    ["alerts", "export-rules"], ["inventory", "list"], ["inventory", "list", "--json"],
    ["inventory", "export-sd"], ["check-config", "--no-secrets"], ["alerts", "list", "--json"],
    ["silence", "list"],
]


@pytest.mark.parametrize(("config", "secrets"), [("example", 4), ("own", 5)])
def test_commands_that_need_no_secrets_work_without_them(config: str, secrets: int, tmp_path: Path) -> None:
    if config == "example":
        path = tmp_path / "netmon.yml"  # the example's state file is /var/lib/netmon/...
        path.write_text((ROOT / "examples" / "netmon.yml").read_text().replace(
            "/var/lib/netmon/alerts.db", "alerts.db"))
    else:
        path = tmp_path / "netmon.yml"
        path.write_text(NO_SECRETS_CONFIG)
    for command in NO_SECRET_COMMANDS:
        proc = netmon(*command, "-c", str(path), cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
        [note] = proc.stderr.splitlines()
        assert note.startswith("note: secrets not checked ({env:}/{file:} secrets are not read; "), note
    rules = netmon("alerts", "export-rules", "-c", str(path), "-o", str(tmp_path / "rules.yml"), cwd=tmp_path)
    assert rules.returncode == 0 and "device_down" in (tmp_path / "rules.yml").read_text()
    listing = netmon("inventory", "list", "--json", "-c", str(path), cwd=tmp_path)
    assert any(row["name"] == "sw-core" for row in json.loads(listing.stdout))
    check = netmon("check-config", "--no-secrets", "-c", str(path), cwd=tmp_path)
    assert check.stdout.startswith("config OK (secrets not checked): ")
    # the dashboards need no config at all
    dashboards = netmon("dashboards", "build", "-o", str(tmp_path / "dashboards"))
    assert dashboards.returncode == 0 and list((tmp_path / "dashboards").glob("*.json"))

    # without the flag, check-config still reports each missing secret as file:line: field
    full = netmon("check-config", "-c", str(path), cwd=tmp_path)
    assert full.returncode == 1, full.stdout + full.stderr
    problems = full.stderr.splitlines()[:-1]
    assert len(problems) == secrets and all(re.match(rf"{re.escape(str(path))}:\d+: \S+\.(community|password): ", p)
                                      for p in problems), problems  # fmt: skip
    assert full.stderr.splitlines()[-1] == f"config error in {path}: {secrets} problems"


def test_no_secret_commands_never_print_secrets_and_still_check_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "netmon.yml"
    path.write_text(NO_SECRETS_CONFIG)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "auth-password").write_text(f"{SECRETS['NETMON_T16_AUTH']}\n")
    env = {**SECRETS, "NETMON_T16_PRIV": PRIV}
    for command in [*NO_SECRET_COMMANDS, ["check-config"], ["alerts", "test"]]:
        proc = netmon(*command, "-c", str(path), env=env, cwd=tmp_path)
        assert "Traceback" not in proc.stderr, (command, proc.stderr)
        assert_no_secret(" ".join(command), proc.stdout + proc.stderr)
    assert netmon("check-config", "-c", str(path), env=env, cwd=tmp_path).returncode == 0

    # --no-secrets checks everything else: a mistake elsewhere, and a malformed secret
    bad = tmp_path / "bad.yml"
    bad.write_text(NO_SECRETS_CONFIG.replace("role: printer", "role: printr").replace(
        "{env: NETMON_T16_SMTP}", "{env: NETMON_T16_SMTP, file: smtp-password}"))
    proc = netmon("check-config", "--no-secrets", "-c", str(bad), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("note: secrets not checked")  # then the problems
    assert any(ln.startswith(f"{bad}:10: groups[1].role: ") for ln in lines), lines
    assert any(ln.startswith(f"{bad}:13: alerts.smtp.password: a secret is a string") for ln in lines), lines
    assert "Traceback" not in proc.stderr


# --- netmon run with every secret kind ----------------------------------------------------------


class HookServer:
    """HTTP on 127.0.0.1 that accepts a POST only with the right basic auth, and keeps
    each request's Authorization header and body."""

    def __init__(self, username: str, password: str) -> None:
        expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.requests: list[tuple[str, Any]] = []
        lock = self._lock = threading.Lock()
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization", "")
                with lock:
                    requests.append((auth, json.loads(body or b"null")))
                self.send_response(200 if auth == expected else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.expected = expected
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def accepted(self) -> list[Any]:
        with self._lock:
            return [body for auth, body in self.requests if auth == self.expected]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def closed_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return str(resp.read().decode("utf-8", "replace"))


TARGETS = {"sw-v2": "v2", "sw-v3": "v3", "sw-wrong-community": "v2-wrong", "sw-wrong-auth": "v3-wrong"}


def run_config(ports: dict[str, int], smtp: SmtpRecorder, cert: SelfSignedCert, hook: HookServer,
               broken_port: int) -> str:  # fmt: skip
    v3 = {"version": 3, "user": V3_USER, "auth": {"protocol": "SHA256", "password": {"env": "NETMON_T16_AUTH"}},
          "priv": {"protocol": "AES", "password": {"file": "priv-password"}}}  # fmt: skip
    doc = {
        "defaults": {"interval": "1s", "snmp": {"timeout": "500ms", "retries": 0}},
        "credentials": {
            "v2": {"version": "2c", "community": {"env": "NETMON_T16_COMMUNITY"}},
            "v2-wrong": {"version": "2c", "community": {"env": "NETMON_T16_WRONG_COMMUNITY"}},
            "v3": v3,
            "v3-wrong": {**v3, "auth": {"protocol": "SHA256", "password": WRONG_AUTH}},
        },
        "groups": [{"name": "switches", "role": "switch", "probes": ["snmp"], "modules": ["system"],
                    "targets": [{"name": name, "address": "127.0.0.1", "port": ports[name], "credentials": cred}
                                for name, cred in TARGETS.items()]}],
        "alerts": {
            "state_file": "alerts.db",
            "rules": {"snmp_auth_failure": {"for": "0s"}},
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "tls", "username": "netmon",
                     "password": {"env": "NETMON_T16_SMTP"}, "ca_file": str(cert.cert_file),
                     "from": "netmon@school.example", "timeout": "5s"},
            "receivers": [
                {"name": "it-team", "email": {"to": ["it@school.example"]},
                 "webhook": {"url": hook.url, "username": "netmon", "password": {"env": "NETMON_T16_HOOK"}}},
                {"name": "broken-hook",
                 "webhook": {"url": f"http://hook:{URL_PASSWORD}@127.0.0.1:{broken_port}/hook", "timeout": "2s"}},
            ],
            "route": {"receiver": "it-team", "group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h",
                      "routes": [{"receiver": "it-team", "continue": True}, {"receiver": "broken-hook"}]},
            "retry": {"initial": "1s", "max": "2s"},
        },
    }
    return yaml.safe_dump(doc, sort_keys=False, width=200)


def test_no_secret_leaks_from_netmon_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need(simlab.snmpd_available())
    users = [simlab.V3User(V3_USER, "SHA-256", SECRETS["NETMON_T16_AUTH"], "AES", PRIV)]
    cert = SelfSignedCert.create(tmp_path)
    with ExitStack() as stack:
        # one agent per target: a target is one address and port
        agents = {name: stack.enter_context(simlab.start_snmpd(
                      communities=[SECRETS["NETMON_T16_COMMUNITY"]], users=users))
                  for name in TARGETS}  # fmt: skip
        smtp = stack.enter_context(SmtpRecorder(security="tls", cert=cert,
                                                login=("netmon", SECRETS["NETMON_T16_SMTP"])))  # fmt: skip
        hook = HookServer("netmon", SECRETS["NETMON_T16_HOOK"])
        stack.callback(hook.close)
        for name, value in SECRETS.items():
            monkeypatch.setenv(name, value)
        workdir = tmp_path / "netmon"
        workdir.mkdir()
        (workdir / "priv-password").write_text(PRIV + "\n")
        text = run_config({n: a.port for n, a in agents.items()}, smtp, cert, hook, closed_tcp_port())
        assert_no_secret("the test's own config", text.replace(WRONG_AUTH, "").replace(URL_PASSWORD, ""))
        proc = NetmonProcess("netmon", text, workdir)
        stack.callback(proc.stop)
        proc.start()

        # every secret is used for real: the right ones work, the wrong ones fail as such
        def statuses() -> dict[str, str]:
            found = {}
            for line in fetch(f"{proc.url}/metrics").splitlines():
                if m := re.match(r'netmon_probe_status\{.*?status="(\w+)".*?target="([\w-]+)"', line):
                    found[m[2]] = m[1]
            return found

        wait_until(lambda: len(statuses()) == len(TARGETS), 30, "a result for every target")
        # (snmpd ignores a wrong community; netmon then finds the agent answers SNMPv3)
        assert statuses() == {"sw-v2": "ok", "sw-v3": "ok", "sw-wrong-community": "auth_error",
                              "sw-wrong-auth": "auth_error"}, statuses()
        wait_until(lambda: smtp.messages and hook.accepted(), 30, "the email and the webhook")
        wait_until(lambda: "****@127.0.0.1" in proc.log_tail(100_000), 30,
                   "the failed webhook with a password in its URL, logged")

        texts: dict[str, str] = {"log": proc.log_tail(10_000_000)}
        for path in ["/metrics", "/api/targets", "/api/alerts", "/"]:
            texts[path] = fetch(proc.url + path)
        for name in TARGETS:
            for path in [f"/api/targets/{name}", f"/device/{name}", f"/probe?target={name}"]:
                texts[path] = fetch(proc.url + path)
        assert http_status(f"{proc.url}/device/sw-wrong-auth") == 200
        assert "sw-wrong-auth" in texts["/api/alerts"]
        texts["emails"] = "\n".join(m.as_string() for m in smtp.messages)
        assert "sw-wrong-auth" in texts["emails"]
        texts["webhook bodies"] = json.dumps([body for _, body in hook.requests])
        env = {**SECRETS}
        for args in [["alerts", "list", "--json"], ["inventory", "list", "--json"], ["check-config"],
                     ["alerts", "test"]]:  # fmt: skip
            cli = netmon(*args, "-c", str(proc.config), env=env, cwd=workdir)
            texts[" ".join(args)] = cli.stdout + cli.stderr
        assert "FAILED: POST http://hook:****@127.0.0.1:" in texts["alerts test"], texts["alerts test"]
        for name in TARGETS:
            cli = netmon("probe", "snmp", name, "-c", str(proc.config), "--json", "--debug", env=env, cwd=workdir)
            assert "Traceback" not in cli.stderr
            texts[f"probe {name}"] = cli.stdout + cli.stderr
        proc.stop()
        state = b"".join(p.read_bytes() for p in workdir.glob("alerts.db*"))
        texts["state file"] = state.decode("utf-8", "replace")
        assert "****@127.0.0.1" in texts["state file"]  # the outbox kept the failure, masked
    assert "Traceback" not in texts["log"], texts["log"][-3000:]
    for where, body in texts.items():
        assert_no_secret(where, body)
