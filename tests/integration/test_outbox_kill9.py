"""kill -9 during a burst of notifications (issue 16 item 2): nothing lost, duplicates only
inside the at-least-once window the outbox documents.

A real ``netmon run`` watches 200 services on loopback addresses where nothing listens
(200 targets, each one ``tcp_service_down`` alert and one notification group,
``for: 0s``, ``group_wait: 0s``)
and emails a real aiosmtpd server that takes a while over each message, so the burst
spans many lives of the process. The process is SIGKILLed at random moments while it
sends, started again on the same state file, 30 times; a last life drains the outbox.

Counted by Message-ID (one per outbox row, kept across resends): every group must have
got its notice (none lost), no group two different notices, and the extra copies of a
message are at most one per kill (the message in flight when the process died: the
server had it, the "delivered" commit had not happened).
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.alerting import SmtpRecorder
from tests.ha_lab import NETMON
from tests.waiting import LabError, http_status, wait_until

#: Loopback addresses nothing listens on (127.77.x.y), and the port probed on each.
PORT = 9
TARGET_RE = re.compile(r"(svc-\d+): TCP port")


class SlowSmtp(SmtpRecorder):
    """Records each message when its DATA arrives, then takes ``delay`` s to answer 250."""

    delay: float = 0.1

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = str(await super().handle_DATA(server, session, envelope))
        await asyncio.sleep(self.delay)
        return answer


def targets(n: int) -> list[str]:
    return [f"svc-{i}" for i in range(n)]


def config(smtp_port: int, n: int) -> str:
    return yaml.safe_dump({
        "defaults": {"interval": "2s", "tcp": {"timeout": "1s"}, "labels": {"site": "kill9"}},
        "groups": [{"name": "services", "role": "server", "probes": ["tcp"],
                    "tcp_ports": [PORT],
                    "targets": [{"name": name, "address": f"127.77.{i // 200}.{i % 200 + 1}"}
                                for i, name in enumerate(targets(n))]}],
        "alerts": {
            "rules": {"tcp_service_down": {"for": "0s"}},
            "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                     "from": "netmon@school.example", "timeout": "5s"},
            "receivers": [{"name": "it-team", "email": {"to": ["it@school.example"],
                                                        "send_resolved": False}}],
            "route": {"receiver": "it-team", "group_by": ["target"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": "24h"},
            "retry": {"initial": "1s", "max": "2s"},
            "flapping": {"enabled": False},
        },
    }, sort_keys=False)


@dataclass
class Kill9Result:
    kills: int
    notifications: int
    #: Groups (targets) whose notice never arrived.
    lost: list[str]
    #: Extra copies of a message already received (same Message-ID).
    duplicates: int
    #: Groups that got more than one distinct notice (a second notification, not a resend).
    renotified: list[str]
    #: Kills that hit while messages were still being sent.
    kills_mid_burst: int
    tracebacks: int
    seconds: float


def kill9_run(workdir: Path, *, kills: int = 30, notifications: int = 200,
              smtp_delay: float = 0.1, seed: int = 16, drain_timeout: float = 60) -> Kill9Result:
    """Run the experiment once (see the module docstring) and count."""
    rng = random.Random(seed)
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "netmon.log"
    smtp = SlowSmtp()
    smtp.delay = smtp_delay
    smtp.start()
    try:
        (workdir / "netmon.yml").write_text(config(smtp.port, notifications))
        mid_burst = 0
        for _ in range(kills):
            before = len(smtp.messages)
            proc = _spawn(workdir, log_path)
            # Until this life sends its first message (or shows the burst is over) ...
            def sent(before: int = before, proc: subprocess.Popen[bytes] = proc) -> bool:
                return (len(smtp.messages) > before or proc.poll() is not None
                        or _received(smtp) >= notifications)

            try:
                wait_until(sent, 20, "a delivery", step=0.02)
            except LabError:
                pass
            # ... then a random moment in its sending.
            time.sleep(rng.uniform(0.0, 0.8))
            if _received(smtp) < notifications:
                mid_burst += 1
            proc.kill()
            proc.wait(timeout=10)
        proc = _spawn(workdir, log_path)
        port = _port_of(workdir)
        try:
            wait_until(lambda: _received(smtp) >= notifications and proc.poll() is None,
                       drain_timeout, f"all {notifications} notifications", step=0.2)
            wait_until(lambda: http_status(f"http://127.0.0.1:{port}/-/ready") == 200, 30,
                       "the last life to be ready")
            time.sleep(2 + smtp_delay)  # anything more would show now
        except LabError:
            pass
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        ids = Counter(str(m["Message-ID"]) for m in smtp.messages)
        per_target: dict[str, set[str]] = {}
        for m in smtp.messages:
            body = m.get_body(preferencelist=("plain",))
            text = str(m.get("Subject", "")) + (body.get_content() if body else "")
            for name in set(TARGET_RE.findall(text)):
                per_target.setdefault(name, set()).add(str(m["Message-ID"]))
        tracebacks = log_path.read_text(errors="replace").count("Traceback")
        return Kill9Result(
            kills=kills, notifications=notifications,
            lost=[t for t in targets(notifications) if t not in per_target],
            duplicates=sum(n - 1 for n in ids.values()),
            renotified=sorted(t for t, got in per_target.items() if len(got) > 1),
            kills_mid_burst=mid_burst, tracebacks=tracebacks,
            seconds=time.monotonic() - started,
        )
    finally:
        smtp.stop()


def _spawn(workdir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    port_file = workdir / "port"
    if not port_file.exists():
        from monitor.demo.simlab import free_tcp_port

        port_file.write_text(str(free_tcp_port()))
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [str(NETMON), "run", "-c", str(workdir / "netmon.yml"), "--listen",
             f"127.0.0.1:{port_file.read_text()}"],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)


def _port_of(workdir: Path) -> int:
    return int((workdir / "port").read_text())


def _received(smtp: SmtpRecorder) -> int:
    """Distinct messages received so far."""
    return len(set(smtp.message_ids()))


def test_kill9_during_a_burst_loses_nothing(tmp_path: Path) -> None:
    result = kill9_run(tmp_path, kills=30, notifications=200)
    tail = (tmp_path / "netmon.log").read_text(errors="replace")[-3000:]
    assert result.lost == [], f"{len(result.lost)} notifications lost: {result}\n{tail}"
    assert result.renotified == [], result
    # At-least-once: at most the one message in flight per kill comes twice.
    assert result.duplicates <= result.kills, result
    assert result.kills_mid_burst >= result.kills // 2, (
        f"too few kills hit the burst, the test proves little: {result}")
    assert result.tracebacks == 0, tail
    print(f"\nkill -9 x{result.kills} during {result.notifications} notifications: "
          f"lost {len(result.lost)}, duplicates {result.duplicates}, "
          f"{result.kills_mid_burst} kills mid-burst, {result.seconds:.0f} s")
