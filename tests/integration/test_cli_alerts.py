"""``netmon alerts list`` and ``netmon silence add|list|expire`` as subprocesses, on a
state file the test prepares (and then reads back) with a real :class:`AlertEngine`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from alerts.db import open_db
from alerts.engine import AlertEngine, EngineSettings
from alerts.model import Observation, Suppression

NETMON = Path(sys.executable).parent / "netmon"

CONFIG = """\
groups:
  - {name: core, role: switch, probes: [icmp], targets: [{name: sw-closet, address: 127.0.0.2}]}
  - name: lab-204
    role: lab
    parent: sw-closet
    labels: {room: "204"}
    targets: [{name: lab-204-pc01, address: 127.0.0.3}, {name: lab-204-pc02, address: 127.0.0.4}]
  - {name: printers, role: printer, probes: [icmp], targets: [{name: mfp, address: 127.0.0.5}]}
alerts:
  state_file: state/netmon-alerts.db
"""


@dataclass(frozen=True)
class Target:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    parent: str | None = None
    expected_online: str | None = None


def netmon(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}  # one table row per line
    return subprocess.run(
        [str(NETMON), *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def obs(target: str, rule: str, *, reachability: bool = True, for_seconds: float = 0.0,
        summary: str = "") -> Observation:  # fmt: skip
    severity = "critical" if reachability else "warning"
    return Observation(
        rule=rule, target=target, labels={"alertname": rule, "severity": severity},
        active=True, value=1.0, summary=summary or f"{target} is down",
        reachability=reachability, for_seconds=for_seconds,
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "netmon.yml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def engine(config: Path) -> Iterator[AlertEngine]:
    """The daemon's engine on the state file the config names."""
    conn = open_db(config.parent / "state" / "netmon-alerts.db")
    eng = AlertEngine(conn, EngineSettings(), schedules={}, base_dir=config.parent)
    eng.set_targets([
        Target("sw-closet", {"group": "core", "role": "switch"}),
        *[Target(f"lab-204-pc0{i}", {"group": "lab-204", "role": "lab", "room": "204"}, "sw-closet")
          for i in (1, 2)],
        Target("mfp", {"group": "printers", "role": "printer"}),
    ])  # fmt: skip
    yield eng
    conn.close()


def test_alerts_list_shows_states_and_reasons(config: Path, engine: AlertEngine) -> None:
    now = time.time()
    engine.observe("sw-closet", [obs("sw-closet", "device_down")], now=now - 600)
    engine.observe("lab-204-pc01", [obs("lab-204-pc01", "device_down")], now=now - 590)
    engine.observe("mfp", [obs("mfp", "printer_supply_low", reachability=False, for_seconds=300,
                               summary="mfp: [bold]black[/] toner at 4%")], now=now - 60)  # fmt: skip

    proc = netmon("alerts", "list", "-c", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {(a["target"], a["rule"]): a for a in json.loads(proc.stdout)}
    assert set(rows) == {
        ("sw-closet", "device_down"), ("lab-204-pc01", "device_down"), ("mfp", "printer_supply_low"),
    }  # fmt: skip
    assert (rows["sw-closet", "device_down"]["state"], rows["sw-closet", "device_down"]["suppressed"]) == ("firing", "")
    child = rows["lab-204-pc01", "device_down"]
    assert (child["state"], child["suppressed"]) == ("firing", "parent_down")
    assert child["suppressed_reason"] == "unreachable because parent sw-closet is down"
    assert child["labels"]["room"] == "204" and child["labels"]["group"] == "lab-204"
    assert rows["mfp", "printer_supply_low"]["state"] == "pending"

    table = netmon("alerts", "list", "-c", str(config))
    assert table.returncode == 0, table.stderr
    assert "3 alerts" in table.stdout
    assert "unreachable because parent sw-closet is down" in table.stdout
    assert "[bold]black[/]" in table.stdout  # device text printed literally, not as markup
    lines = {line.split("│")[4].strip(): line for line in table.stdout.splitlines() if line.count("│") > 4}
    assert "firing" in lines["sw-closet"] and "pending" in lines["mfp"]


def test_alerts_list_without_state_file(config: Path) -> None:
    proc = netmon("alerts", "list", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "No alerts" in proc.stdout and "state/netmon-alerts.db" in proc.stdout
    assert json.loads(netmon("alerts", "list", "-c", str(config), "--json").stdout) == []


def test_silence_add_list_expire_reaches_the_engine(config: Path, engine: AlertEngine) -> None:
    now = time.time()
    engine.observe("lab-204-pc02", [obs("lab-204-pc02", "device_down")], now=now)
    engine.observe("sw-closet", [], now=now)
    engine.tick(now=now)
    [alert] = [a for a in engine.alerts() if a.target == "lab-204-pc02"]
    assert alert.suppressed is Suppression.NONE

    add = netmon("silence", "add", "-c", str(config), "--match", "target=lab-204-pc02",
                 "--match", "alertname=~device_.*", "--duration", "2h", "--author", "ann",
                 "--comment", "re-imaging")  # fmt: skip
    assert add.returncode == 0, add.stderr
    silence_id = add.stdout.split()[0]

    listed = json.loads(netmon("silence", "list", "-c", str(config), "--json").stdout)
    assert [(s["id"], s["matchers"], s["author"], s["comment"]) for s in listed] == [
        (silence_id, ["target=lab-204-pc02", "alertname=~device_.*"], "ann", "re-imaging")
    ]
    assert 7190 <= listed[0]["ends_at"] - listed[0]["starts_at"] <= 7210
    table = netmon("silence", "list", "-c", str(config))
    assert silence_id in table.stdout and "re-imaging" in table.stdout

    engine.tick()
    [alert] = [a for a in engine.alerts() if a.target == "lab-204-pc02"]
    assert alert.suppressed is Suppression.SILENCED
    assert "ann" in alert.suppressed_reason and "re-imaging" in alert.suppressed_reason
    listing = json.loads(netmon("alerts", "list", "-c", str(config), "--json").stdout)
    assert [a["suppressed"] for a in listing] == ["silenced"]

    expire = netmon("silence", "expire", "-c", str(config), silence_id[:5])
    assert expire.returncode == 0, expire.stderr
    assert json.loads(netmon("silence", "list", "-c", str(config), "--json").stdout) == []
    assert [s["id"] for s in json.loads(
        netmon("silence", "list", "-c", str(config), "--json", "--all").stdout)] == [silence_id]  # fmt: skip
    engine.tick()
    [alert] = [a for a in engine.alerts() if a.target == "lab-204-pc02"]
    assert alert.suppressed is Suppression.NONE

    again = netmon("silence", "expire", "-c", str(config), silence_id)
    assert again.returncode == 1 and "no active silence" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["silence", "add", "--match", "target", "--comment", "x"], "is not a matcher"),
        (["silence", "add", "--match", "room=~(", "--comment", "x"], "invalid regular expression"),
    ],
)
def test_silence_add_mistakes(config: Path, args: list[str], message: str) -> None:
    proc = netmon(*args[:2], "-c", str(config), *args[2:])
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert not (config.parent / "state" / "netmon-alerts.db").exists()


def test_config_errors_are_reported_per_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - {name: g, role: lab, targets: [{name: a, adress: 127.0.0.1}]}\n")
    proc = netmon("silence", "list", "-c", str(bad))
    assert proc.returncode == 1
    assert f"{bad}:2:" in proc.stderr and "config error" in proc.stderr


def test_export_rules_writes_a_rule_file(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    proc = netmon("alerts", "export-rules", "-c", str(config), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    rules = yaml.safe_load(out.read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert "device_down" in names


def test_state_file_option_reads_another_instances_file(config: Path, tmp_path: Path) -> None:
    """`netmon run --state-file` (two instances of one config) has a matching option here."""
    other = tmp_path / "second" / "alerts.db"
    conn = open_db(other)
    eng = AlertEngine(conn, EngineSettings(), schedules={}, base_dir=config.parent)
    eng.set_targets([Target("mfp", {"group": "printers", "role": "printer"})])
    eng.observe("mfp", [obs("mfp", "device_down")], now=time.time() - 60)
    conn.close()
    default = json.loads(netmon("alerts", "list", "-c", str(config), "--json").stdout)
    assert default == []
    proc = netmon("alerts", "list", "-c", str(config), "--state-file", str(other), "--json")
    assert proc.returncode == 0, proc.stderr
    assert [(a["target"], a["state"]) for a in json.loads(proc.stdout)] == [("mfp", "firing")]


def test_alerts_test_reaches_every_receiver_and_names_the_one_that_fails(tmp_path: Path) -> None:
    """`netmon alerts test`: a real SMTP server and webhook get a test message each; a
    receiver whose server is down is reported as FAILED and the exit code is 1."""
    from monitor.demo.simlab import free_tcp_port
    from tests.alert_lab import WebhookSink
    from tests.alerting import SmtpRecorder

    hook = WebhookSink()
    try:
        with SmtpRecorder() as smtp:
            path = tmp_path / "netmon.yml"
            section = {
                "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                         "from": "netmon@school.example"},
                "receivers": [{"name": "it-team", "email": {"to": ["it@school.example"]},
                               "webhook": {"url": hook.url}}],
                "route": {"receiver": "it-team"},
            }
            path.write_text(CONFIG.replace("alerts:\n", "alerts:\n" + _indent(yaml.safe_dump(section))))
            proc = netmon("alerts", "test", "-c", str(path))
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "it-team email: sent" in proc.stdout and "it-team webhook: sent" in proc.stdout
            [message] = smtp.messages
            assert message["Subject"].startswith("[TEST]") and message["To"] == "it@school.example"
            assert len(hook.bodies) == 1

            dead = free_tcp_port("127.0.0.1")
            path.write_text(path.read_text().replace(f"port: {smtp.port}", f"port: {dead}"))
            proc = netmon("alerts", "test", "-c", str(path))
            assert proc.returncode == 1
            assert "it-team email: FAILED" in proc.stdout and "it-team webhook: sent" in proc.stdout
            assert len(smtp.messages) == 1
    finally:
        hook.close()


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())
