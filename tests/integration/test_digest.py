"""The weekly supplies digest: a real history file filled with six weeks of synthetic
printer history, the alert service's real ticker, a real SMTP server (aiosmtpd), the
messages parsed as MIME; once per period across a restart, retried when the mail
server refuses, per building through the routing tree."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from alerts.digest import build_report, last_due
from alerts.rules import RuleSet, TargetInfo
from alerts.service import AlertService
from alerts.settings import AlertsSettings
from monitor.store.history import HistoryStore
from probes.result import Sample
from tests.alerting import SmtpRecorder
from tests.integration.test_notify_webhook_am import wait_for
from tests.unit.test_history import Lab

#: Monday 7 December 2026, 07:30 in London (GMT).
MONDAY_0730 = 1796628600.0
DAY = 86400.0
HOUR = 3600.0

PRINTERS = [
    TargetInfo("staffroom-printer", {"role": "printer", "building": "main", "room": "staffroom"}),
    TargetInfo("library-mfp", {"role": "printer", "building": "main", "room": "library"}),
    TargetInfo("office-copier", {"role": "printer", "building": "annex", "room": "office"}),
    TargetInfo("lab-printer", {"role": "printer", "building": "annex", "room": "204"}),
]


def supply(index: str, description: str, level: float, klass: str = "consumable") -> Sample:
    return Sample.of("netmon_printer_supply_level_ratio", level, supply=description, index=index,
                     type="toner", color="", **{"class": klass})


def readings(name: str, t: float, end: float) -> tuple[list[Sample], bool]:
    """What each printer reports at ``t``, ``(end - t) / DAY`` days before ``end``."""
    ago = (end - t) / DAY
    if name == "staffroom-printer":  # new cartridge 20 days ago, 4 %/day: 8 % left now
        level = 0.08 + 0.04 * ago if ago <= 20 else 0.05 + 0.03 * (ago - 20)
        pages = 300 * (42 - ago)
        return [supply("1.1", "Black Toner Cartridge TN-2420", min(level, 1.0)),
                Sample.of("netmon_printer_pages_total", pages)], True
    if name == "library-mfp":  # cyan 16 days left (not listed), magenta 10, waste 93 % full
        return [supply("1.1", "Cyan Toner C-531", 0.48 + 0.03 * ago),
                supply("1.2", "Magenta Toner M-531", 0.30 + 0.03 * ago),
                supply("1.3", "Waste Toner Box", 0.93 - 0.002 * ago, "receptacle"),
                Sample.of("netmon_printer_pages_total", 1000 + 50 * (42 - ago))], True
    if name == "office-copier":  # answered until 10 days ago
        return [supply("1.1", "Toner", 0.7)] if ago > 10 else [], ago > 10
    return [supply("1.1", "Black Toner", 0.60)], True  # lab-printer: nobody prints


def fill(path: Path, end: float) -> Lab:
    """Six weeks of history up to half an hour before ``end``: one SNMP result per
    printer every 2 hours."""
    start = end - 42 * DAY
    lab = Lab(path, start=start)
    t = start
    while t <= end - 1800:
        for p in PRINTERS:
            samples, ok = readings(p.name, t, end)
            lab.put(t, [Sample.of("netmon_probe_success", 1.0 if ok else 0.0), *samples],
                    ok=ok, target=p.name, probe="snmp", interval=7200)
        if int(t - start) % int(DAY) == 0:
            lab.at(t)
        t += 2 * HOUR
    lab.at(end - 1800)
    return lab


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoryStore]:
    lab = fill(tmp_path_factory.mktemp("history") / "history.db", MONDAY_0730)
    yield lab.store
    lab.store.close()


def test_report_lists_low_soon_empty_full_and_silent(history: HistoryStore) -> None:
    now = MONDAY_0730
    report = build_report(history, PRINTERS, now, days_ahead=14,
                          rules=RuleSet.from_settings(AlertsSettings()))
    rows = {(r.target, r.supply): r for r in report.supplies}
    assert set(rows) == {("staffroom-printer", "Black Toner Cartridge TN-2420"),
                         ("library-mfp", "Magenta Toner M-531")}
    black = rows["staffroom-printer", "Black Toner Cartridge TN-2420"]
    assert black.reason == "low" and black.level == pytest.approx(0.08, abs=0.01)
    assert black.forecast.refilled_at == pytest.approx(now - 20 * DAY, abs=3 * HOUR)
    assert black.forecast.days_left == pytest.approx(2, abs=0.5)
    assert black.pages_last_week == pytest.approx(7 * 300, abs=300)
    magenta = rows["library-mfp", "Magenta Toner M-531"]
    assert magenta.reason == "runs out" and magenta.forecast.days_left == pytest.approx(10, abs=1)
    (waste,) = report.waste
    assert (waste.target, waste.supply, waste.reason) == ("library-mfp", "Waste Toner Box",
                                                          "nearly full")
    assert [p.target for p in report.silent] == ["office-copier"]
    assert report.silent[0].last_answered == pytest.approx(now - 10 * DAY, abs=3 * HOUR)
    everything = build_report(history, PRINTERS, now, everything=True)
    flat = next(r for r in everything.supplies if r.target == "lab-printer")
    assert flat.forecast.words() == "not falling" and flat.reason == ""


SETTINGS = {
    "receivers": [{"name": "main-office", "email": {"to": ["office@main.example"]}},
                  {"name": "annex-office", "email": {"to": ["office@annex.example"]}}],
    "route": {"receiver": "main-office",
              "routes": [{"match": {"building": "annex"}, "receiver": "annex-office"}]},
    "digests": [{"name": "supplies", "days_ahead": 14,
                 "schedule": {"days": "mon", "at": "07:30", "timezone": "Europe/London"}}],
    "retry": {"initial": "1m", "max": "5m"},
}


def by_receiver(messages: list[EmailMessage]) -> dict[str, EmailMessage]:
    return {str(m["To"]): m for m in messages}


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


async def test_digest_sent_once_per_period_across_a_restart(history: HistoryStore,
                                                             tmp_path: Path) -> None:
    assert last_due(AlertsSettings.model_validate(SETTINGS).digests[0].schedule,
                    MONDAY_0730) == ("2026-12-07T07:30", MONDAY_0730)
    with SmtpRecorder() as smtp:
        settings = AlertsSettings.model_validate({
            **SETTINGS, "state_file": str(tmp_path / "state.db"),
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "from": "netmon@school.example"}})
        now = [MONDAY_0730 - 60]

        def service() -> AlertService:
            svc = AlertService(settings, base_dir=tmp_path, schedules={}, clock=lambda: now[0],
                               history=lambda: history)
            svc.set_targets(PRINTERS)
            return svc

        svc = service()
        svc.digests.tick(now[0], svc.rules, PRINTERS)
        await svc.digests.wait()
        assert smtp.messages == []  # 07:29: not yet
        await svc.start()
        now[0] = MONDAY_0730 + 5  # the real ticker sends it
        assert await wait_for(lambda: len(smtp.messages) == 2)
        await svc.stop()

        mails = by_receiver(smtp.messages)
        main, annex = mails["office@main.example"], mails["office@annex.example"]
        assert main["Subject"] == ("Supplies, Mon 07 Dec: 2 to order, "
                                   "1 waste container nearly full")
        text = text_of(main)
        assert "- staffroom-printer (room staffroom): Black Toner Cartridge TN-2420\n" \
               "  level 8 % (low), about 2 days left (" in text
        assert "- library-mfp (room library): Magenta Toner M-531\n  level 30 %, about 10 days" \
               in text
        assert "Cyan" not in text and "office-copier" not in text
        assert "- library-mfp (room library): Waste Toner Box\n  93 % full" in text
        html = main.get_body(("html",))
        assert html is not None and html.get_content().count('class="supply"') == 2
        assert annex["Subject"] == "Supplies, Mon 07 Dec: 1 printer silent all week"
        assert "- office-copier (room office): last answered 2026-11-2" in text_of(annex)
        assert main["Message-ID"] != annex["Message-ID"]

        now[0] = MONDAY_0730 + 1800  # a restart half an hour later: nothing again
        svc = service()
        svc.digests.tick(now[0], svc.rules, PRINTERS)
        await svc.digests.wait()
        assert len(smtp.messages) == 2

        now[0] = MONDAY_0730 + 7 * DAY + 10  # next Monday; the server refuses at first
        smtp.refuse = True
        svc.digests.tick(now[0], svc.rules, PRINTERS)
        await svc.digests.wait()
        assert len(smtp.messages) == 2
        smtp.refuse = False
        now[0] += 30  # within the backoff: not tried again
        svc.digests.tick(now[0], svc.rules, PRINTERS)
        await svc.digests.wait()
        assert len(smtp.messages) == 2
        now[0] += 31
        svc.digests.tick(now[0], svc.rules, PRINTERS)
        await svc.digests.wait()
        assert len(smtp.messages) == 4
        assert {m["Subject"].split(":")[0] for m in smtp.messages[2:]} == {"Supplies, Mon 14 Dec"}
        await svc.stop()


@pytest.mark.parametrize("days, at, now_offset, expected", [
    ("mon", "07:30", -1, "2026-11-30T07:30"),       # a second early: last week's
    ("mon", "07:30", 0, "2026-12-07T07:30"),
    ("mon-fri", "07:30", DAY, "2026-12-08T07:30"),
    ("fri", "16:00", 0, "2026-12-04T16:00"),
])
def test_last_due(days: str, at: str, now_offset: float, expected: str) -> None:
    from alerts.digest import DigestSchedule

    due = last_due(DigestSchedule(days=days, at=at, timezone="Europe/London"),
                   MONDAY_0730 + now_offset)
    assert due is not None and due[0] == expected
    assert not math.isnan(due[1]) and due[1] <= MONDAY_0730 + now_offset


CONFIG = """\
groups:
  - name: printers
    role: printer
    probes: [icmp]
    targets:
      - {name: staffroom-printer, address: 127.0.0.1, labels: {building: main, room: staffroom}}
      - {name: library-mfp, address: 127.0.0.2, labels: {building: main, room: library}}
      - {name: office-copier, address: 127.0.0.3, labels: {building: annex, room: office}}
      - {name: lab-printer, address: 127.0.0.4, labels: {building: annex, room: "204"}}
"""


def test_report_supplies_cli_in_every_format(tmp_path: Path) -> None:
    """``netmon report supplies`` on a real history file (ending now) as JSON, CSV, table."""
    fill(tmp_path / "history.db", time.time()).store.close()
    (tmp_path / "netmon.yml").write_text(CONFIG)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "report", "supplies", "-c",
             str(tmp_path / "netmon.yml"), "--history", str(tmp_path / "history.db"), *args],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 0, done.stderr
        return done.stdout

    data = json.loads(run("--format", "json"))
    assert [(s["target"], s["supply"], s["reason"]) for s in data["supplies"]] == [
        ("library-mfp", "Magenta Toner M-531", "runs out"),
        ("staffroom-printer", "Black Toner Cartridge TN-2420", "low")]
    assert data["waste"][0]["forecast"].endswith("until full (high confidence)")
    assert [p["target"] for p in data["silent"]] == ["office-copier"]
    rows = list(csv.DictReader(io.StringIO(run("--format", "csv", "--all"))))
    kinds = {(r["kind"], r["target"], r["supply"]): r for r in rows}
    assert kinds["consumable", "lab-printer", "Black Toner"]["forecast"] == "not falling"
    assert kinds["consumable", "library-mfp", "Cyan Toner C-531"]["reason"] == ""
    assert kinds["consumable", "lab-printer", "Black Toner"]["pages_last_week"] == ""  # no counter
    assert kinds["silent", "office-copier", ""]["reason"] == "did not answer all week"
    table = run()
    assert "To order (within 14 days)" in table and "Black Toner Cartridge TN-2420" in table
    assert "Printers that did not answer all week" in table and "Cyan" not in table


def test_netmon_run_sends_the_digest(tmp_path: Path) -> None:
    """A real ``netmon run``: its alert service ticks the digest, which reads the
    daemon's history store and mails the catcher (nothing to order for a new printer)."""
    from monitor.demo.simlab import free_tcp_port, stop_process

    with SmtpRecorder() as smtp:
        config = tmp_path / "netmon.yml"
        config.write_text(
            "groups:\n  - name: printers\n    role: printer\n    probes: [icmp]\n"
            "    targets: [{name: lp-1, address: 127.0.0.1, labels: {room: office}}]\n"
            f"alerts:\n  state_file: {tmp_path / 'state.db'}\n"
            f"  smtp: {{host: 127.0.0.1, port: {smtp.port}, from: netmon@school.example}}\n"
            "  receivers: [{name: office, email: {to: [office@school.example]}}]\n"
            "  route: {receiver: office}\n"
            "  digests: [{name: supplies, receiver: office,"
            " schedule: {days: mon-sun, at: '00:00'}}]\n")
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "run", "-c", str(config),
             "--listen", f"127.0.0.1:{free_tcp_port()}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for _ in range(300):
                if smtp.messages or proc.poll() is not None:
                    break
                time.sleep(0.1)
        finally:
            stop_process(proc)
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert len(smtp.messages) == 1, err
        (mail,) = smtp.messages
        assert str(mail["Subject"]).endswith(": nothing to order") and "Traceback" not in err
        assert "Nothing to order" in text_of(mail)
        assert (tmp_path / "state-history.db").exists()  # the history the digest read
