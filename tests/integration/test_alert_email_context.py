"""The alert email a school IT person reads on a phone, end to end: a real ``netmon run``
probes a simulated printer (snmpsim, its black toner empty) and a TCP service that is
down, and emails a real SMTP server (aiosmtpd). The test parses the MIME message (both
parts), follows its device link into the running netmon, and renders the HTML part in
headless Chromium at phone width (no horizontal scroll; ``NETMON_WRITE_SCREENSHOT=1``
copies the screenshot to docs/alert-email.png)."""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml
from markupsafe import escape

from alerts.advice import MEANINGS, RULE_ADVICE
from monitor.demo import simlab
from probes.result import Status
from tests.alerting import SmtpRecorder
from tests.conftest import need
from tests.ha_lab import NetmonProcess
from tests.integration.test_status_page import CHROMIUM, REPO, chromium, png_size
from tests.waiting import wait_until

PRINTER = "staffroom-printer"
RECORDING = "printer/brother-hl-5370dw"  # its black toner cartridge reports empty
GRAFANA = "http://grafana.school.test:3000"


def config(snmp_port: int, smtp_port: int, closed_port: int, url: str) -> str:
    doc = {
        "defaults": {"interval": "2s", "labels": {"site": "test-school"},
                     "snmp": {"timeout": "1s", "retries": 0}},
        "credentials": {"brother": {"version": "2c", "community": RECORDING}},
        "groups": [
            {"name": "printers", "role": "printer", "probes": ["snmp"], "modules": ["system", "printer"],
             "labels": {"building": "main", "room": "staffroom"},
             "targets": [{"name": PRINTER, "address": "127.0.0.1", "port": snmp_port,
                          "credentials": "brother"}]},
            {"name": "web", "role": "server", "probes": ["tcp"], "tcp_ports": [closed_port],
             "labels": {"building": "annex", "room": "server-room"},
             "targets": [{"name": "intranet", "address": "127.0.0.1"}]},
        ],
        "alerts": {
            "rules": {"printer_supply_empty": {"for": "0s"}, "tcp_service_down": {"for": "0s"}},
            "smtp": {"host": "127.0.0.1", "port": smtp_port, "from": "netmon@school.test"},
            "receivers": [{"name": "it", "email": {"to": ["it@school.test"]}}],
            "route": {"receiver": "it", "group_by": ["target"], "group_wait": "1s",
                      "group_interval": "2s", "repeat_interval": "1h"},
        },
        "server": {"external_url": url},
        "dashboards": {"grafana_url": GRAFANA},
    }  # fmt: skip
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def mail(snmpsim: simlab.Agent, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[EmailMessage]]:
    """The first firing email about each of the two devices, from a real netmon run."""
    with SmtpRecorder() as smtp:
        netmon = NetmonProcess("netmon", "", tmp_path_factory.mktemp("netmon"))
        netmon.config_text = config(snmpsim.port, smtp.port, simlab.free_tcp_port(), netmon.url)
        try:
            netmon.start()

            def both() -> bool:
                text = " ".join(str(m["Subject"]) for m in smtp.messages)
                return PRINTER in text and "intranet" in text

            wait_until(both, 60, "an email about each device")
            by_device = {t: next(m for m in smtp.messages if t in str(m["Subject"]))
                         for t in (PRINTER, "intranet")}  # fmt: skip
            # The device link must work against the running netmon.
            plain = by_device[PRINTER].get_body(("plain",))
            assert plain is not None
            link = re.search(r"Status:\s+(\S+)", plain.get_content())
            assert link is not None and link.group(1) == f"{netmon.url}/device/{PRINTER}"
            with urllib.request.urlopen(link.group(1), timeout=10) as resp:
                page = resp.read().decode()
                assert resp.status == 200 and f'data-device="{PRINTER}"' in page
            yield [by_device[PRINTER], by_device["intranet"]]
        finally:
            netmon.stop()


def parts(message: EmailMessage) -> tuple[str, str]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def test_printer_email_has_room_address_supply_advice_and_links(mail: list[EmailMessage]) -> None:
    printer, _ = mail
    assert str(printer["Subject"]) == (f"[FIRING] 1 problem in {PRINTER}: "
                                       f"{PRINTER}: Black Toner Cartridge is empty")
    text, html = parts(printer)
    for part, shown in ((text, str), (html, escape)):
        assert "room staffroom, main, test-school" in part
        assert "127.0.0.1" in part and "Black Toner Cartridge" in part and "empty" in part
        assert shown(RULE_ADVICE["printer_supply_empty"]) in part
        assert shown(f"{GRAFANA}/d/netmon-printers?var-site=test-school&var-building=main"
                     f"&var-target={PRINTER}") in part
        assert re.search(r"http://127\.0\.0\.1:\d+/ack/[0-9a-f]{16}\.\d+\.[\w-]+", part)
    assert f"Device:  {PRINTER} (printer), room staffroom" in text


def test_service_email_says_what_failed_and_what_to_check(mail: list[EmailMessage]) -> None:
    _, service = mail
    text, html = parts(service)
    failed = re.search(r"Failed:\s+(tcp-\d+: .+)", text)
    assert failed is not None and "refused" in failed.group(1).lower()
    assert f"Check:   {MEANINGS[Status.REFUSED]}" in text
    assert str(escape(MEANINGS[Status.REFUSED])) in html
    assert "room server-room, annex, test-school" in text
    assert "/d/netmon-device?var-site=test-school&var-role=server&var-target=intranet" in text


def test_html_part_fits_a_phone(mail: list[EmailMessage], tmp_path: Path) -> None:
    need(None if Path(CHROMIUM).exists() else "needs Chromium (Debian package chromium)")
    _, html = parts(mail[0])
    page = tmp_path / "email.html"
    page.write_text(html)
    shot = tmp_path / "alert-email.png"
    chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=390,640")
    assert shot.exists() and png_size(shot) == (390, 640)
    assert shot.stat().st_size > 20_000, "the screenshot looks blank"
    # The widest element against the viewport, measured by the page itself.
    probe = tmp_path / "measure.html"
    probe.write_text(html.replace("</body>", "<script>document.title = 'W' + "
                                  "document.documentElement.scrollWidth + 'x' + innerWidth;"
                                  "</script></body>"))
    dom = chromium(tmp_path, probe.as_uri(), "--window-size=390,640", "--dump-dom").stdout
    found = re.search(r"<title>W(\d+)x(\d+)</title>", dom)
    assert found is not None, dom[:300]
    assert int(found.group(1)) <= int(found.group(2)), "the email scrolls sideways on a phone"
    if os.environ.get("NETMON_WRITE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "alert-email.png")
