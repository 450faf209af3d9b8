"""``netmon alerts replay`` end to end: the command (text, --json, the same output under
any hash seed, file:line errors without a traceback) and a real ``netmon run`` against
loopback TCP services agreeing with the replay of what the test did to them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.demo.simlab import free_tcp_port
from tests.alert_lab import resolved, scenario_config, subjects
from tests.ha_lab import NETMON, NetmonProcess, wait_until

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"


def _netmon(*args: str, seed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run([str(NETMON), *args], capture_output=True, text=True, timeout=120,
                          env=env, check=False)  # fmt: skip


def test_replay_prints_what_would_be_sent_the_same_every_time() -> None:
    args = ("alerts", "replay", str(EXAMPLES / "replay-toner.yml"), "-c", str(EXAMPLES / "netmon.yml"))
    first, second = _netmon(*args, "--json", seed="1"), _netmon(*args, "--json", seed="2")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # deterministic, whatever the hash seed
    doc = json.loads(first.stdout)
    assert set(doc) == {"start", "end", "notifications", "summary"}
    sent = doc["notifications"]
    assert {n["receiver"] for n in sent} == {"office"}  # lab PCs off at night: nothing
    assert sent[0]["subject"].startswith("[FIRING] 1 problem in main: library-mfp: Black Toner low")
    assert sent[0]["alerts"] == [{"alertname": "printer_supply_low", "target": "library-mfp",
                                  "status": "firing"}]  # fmt: skip
    assert sent[-1]["kind"] == "resolved"
    assert doc["summary"]["notifications"] == {"office": len(sent)}
    assert doc["summary"]["alerts"]["suppressed"]["out_of_schedule"] > 0
    text = _netmon(*args)
    assert text.returncode == 0
    assert "office  [FIRING] 1 problem in main: library-mfp: Black Toner low (12% left)" in text.stdout
    assert text.stdout.rstrip().splitlines()[-1].startswith(f"summary: {len(sent)} notifications")


def test_replay_from_history_without_a_history_says_so(tmp_path: Path) -> None:
    config = tmp_path / "netmon.yml"
    config.write_text((EXAMPLES / "netmon.yml").read_text().replace(
        "state_file: /var/lib/netmon/alerts.db", f"state_file: {tmp_path}/alerts.db"))
    done = _netmon("alerts", "replay", "--from-history", "7d", "-c", str(config))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"netmon: {tmp_path}/alerts-history.db: no history file" in done.stderr, done.stderr
    config.write_text(config.read_text() + "history: {enabled: false}\n")
    done = _netmon("alerts", "replay", "--from-history", "7d", "-c", str(config))
    assert done.returncode == 1
    assert "history.enabled is false: there is no recorded history to replay" in done.stderr
    done = _netmon("alerts", "replay", "-c", str(config))
    assert done.returncode == 2 and "give a TIMELINE.yml or --from-history SINCE" in done.stderr


def test_replay_mistakes_are_file_line_field(tmp_path: Path) -> None:
    timeline = tmp_path / "week.yml"
    timeline.write_text("start: 2026-09-07 06:00\nchanges:\n  - {at: +1h, target: no-such-printer}\n"
                        "  - {at: +2h, group: printers, probe: tcp-22, status: refused}\n"
                        "  - {at: +3h, target: library-mfp, status: melted}\n")  # fmt: skip
    done = _netmon("alerts", "replay", str(timeline), "-c", str(EXAMPLES / "netmon.yml"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{timeline}:5: changes[2].status: Input should be" in done.stderr, done.stderr
    timeline.write_text("start: 2026-09-07 06:00\nchanges:\n  - {at: +1h, target: no-such-printer}\n"
                        "  - {at: +2h, group: printers, probe: tcp-22, status: refused}\n")  # fmt: skip
    done = _netmon("alerts", "replay", str(timeline), "-c", str(EXAMPLES / "netmon.yml"))
    lines = [line for line in done.stderr.splitlines() if line.startswith(str(timeline))]
    assert lines == [
        f"{timeline}:3: changes[0].target: no target of the config matches 'no-such-printer'",
        f"{timeline}:4: changes[1].probe: the selected targets have no tcp-22 probe in the config",
    ], done.stderr


# --- a real run and its replay ----------------------------------------------------------


class Service:
    """A TCP listener on 127.0.0.1 that the test closes (refused) and opens again."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self._sock: socket.socket | None = None
        self.open()

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@pytest.fixture
def mail() -> Iterator[Any]:
    from tests.alerting import SmtpRecorder

    with SmtpRecorder() as recorder:
        yield recorder


def _messages(mail: Any) -> list[Any]:
    with mail._lock:
        return list(mail.messages)


def test_a_real_run_and_its_replay_send_the_same(mail: Any, tmp_path: Path) -> None:
    """`netmon run` probes two loopback TCP services; the test stops one, then the other,
    then starts them again one after the other, and notes when. Replaying those moments through the same
    config must give the same notifications (their subjects name each alert), times
    aside."""
    web, print_port = Service(), Service()
    config = scenario_config(
        smtp_port=mail.port,
        groups=[{"name": "servers", "role": "server", "probes": ["tcp"],
                 "tcp_ports": [web.port, print_port.port], "labels": {"building": "main"},
                 "targets": [{"name": "nas", "address": "127.0.0.1"}]}],
        rules={"tcp_service_down": {"for": "2s"}},
        alerts={"route": {"receiver": "it-team", "group_by": ["building"], "group_wait": "1s",
                          "group_interval": "3s", "repeat_interval": "1h"}},
    )  # fmt: skip
    nm = NetmonProcess("netmon", config, tmp_path / "run")
    started = time.time()
    nm.start()
    moments: list[tuple[float, Service, str]] = []
    try:
        def act(service: Service, up: bool) -> None:
            (service.open if up else service.close)()
            moments.append((time.time() - started, service, "ok" if up else "refused"))

        time.sleep(3)  # a few rounds of both services answering
        act(web, up=False)
        wait_until(lambda: len(_messages(mail)) >= 1, 30, "the first email")
        # Each state holds a few seconds past the email it caused: the replay places probe
        # runs on the schedule's phases, which a loaded machine's real runs lag by a second
        # or two; the comparison is of what is sent, not of that lag.
        time.sleep(3)
        act(print_port, up=False)
        wait_until(lambda: len(_messages(mail)) >= 2, 30, "the email adding the second port")
        time.sleep(3)
        act(web, up=True)
        wait_until(lambda: len(_messages(mail)) >= 3, 30, "the email resolving the first port")
        time.sleep(3)  # apart by more than group_interval: two notices in both worlds
        act(print_port, up=True)
        wait_until(lambda: resolved(_messages(mail)), 30, "the resolved email")
        time.sleep(4)  # past group_interval: anything more would have been sent
        end = time.time() - started
    finally:
        nm.stop()
        web.close()
        print_port.close()
        print(nm.log_tail())
    real = subjects(_messages(mail))

    timeline = {
        "start": _iso(started), "end": f"+{end:.1f}s",
        "changes": [{"at": f"+{at:.3f}s", "target": "nas", "probe": f"tcp-{svc.port}", "status": status}
                    for at, svc, status in moments],
    }  # fmt: skip
    (tmp_path / "timeline.yml").write_text(yaml.safe_dump(timeline))
    done = _netmon("alerts", "replay", str(tmp_path / "timeline.yml"), "-c", str(nm.config), "--json")
    assert done.returncode == 0, done.stderr
    replayed = [n["subject"] for n in json.loads(done.stdout)["notifications"]]
    assert replayed == real
    assert [s.split("]")[0] for s in real] == ["[FIRING", "[FIRING", "[FIRING", "[RESOLVED"], real

    # The same from what the run recorded in its history store, through the same config ...
    since, until = _iso(started - 1), _iso(started + end)
    done = _netmon("alerts", "replay", "--from-history", since, "--until", until,
                   "-c", str(nm.config), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [n["subject"] for n in json.loads(done.stdout)["notifications"]] == real
    # ... and through a changed one: the web port no longer alerts.
    changed = yaml.safe_load(nm.config.read_text())
    changed["alerts"]["overrides"] = [{"target": "nas", "rules": {"tcp_service_down": {"for": "1h"}}}]
    (tmp_path / "changed.yml").write_text(yaml.safe_dump(changed))
    done = _netmon("alerts", "replay", "--from-history", since, "--until", until,
                   "--history", str(nm.workdir / "netmon-history.db"),
                   "-c", str(tmp_path / "changed.yml"), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["notifications"] == []


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


if sys.platform != "linux":  # pragma: no cover - netmon run's tests are Linux-only
    pytestmark = pytest.mark.skip("Linux only")
