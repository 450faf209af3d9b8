"""Alert emails with context: the annotations a notification adds (address, what failed,
advice, supply), the links (device page, Grafana, signed acknowledge) and the wording."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from markupsafe import escape

from alerts.ack import check_link_token
from alerts.advice import MEANINGS, RULE_ADVICE
from alerts.model import Alert, Notification
from alerts.notify.email import (
    GRAFANA_BOARDS,
    GRAFANA_DEFAULT,
    EmailRenderer,
    Links,
    alert_annotations,
    in_words,
)
from probes.result import ProbeResult, Status
from tests.unit.test_notify_dispatch import RESOLVED, make_alert

SECRET = b"k" * 32
LINKS = Links("http://netmon.school.example:10190", "http://grafana.school.example", SECRET)
T0 = 1_800_000_000.0
DASHBOARDS = Path(__file__).parents[2] / "dashboards" / "json"


def printer_alert() -> Alert:
    a = make_alert("staffroom-printer", "printer_supply_empty", role="printer", since=T0)
    a.labels.update({"room": "12", "index": "1.1", "supply": "Black Toner"})
    a.annotations["summary"] = "staffroom-printer: Black Toner is empty"
    return a


SNMP_OK = ProbeResult(Status.OK, "answered", probe="snmp", target="staffroom-printer", records={
    "supplies": [{"index": "1.2", "description": "Cyan Toner", "level_text": "80%"},
                 {"index": "1.1", "description": "Black Toner HP 508A CF360A", "level_text": "empty"}]})
ICMP_DOWN = ProbeResult(Status.TIMEOUT, "no reply to 3 pings", probe="icmp", target="sw-b2")


def test_annotations_for_a_printer_supply() -> None:
    notes = alert_annotations(printer_alert(), "10.1.2.20", {"snmp": SNMP_OK})
    assert notes == {"address": "10.1.2.20", "advice": RULE_ADVICE["printer_supply_empty"],
                     "supply_description": "Black Toner HP 508A CF360A", "supply_level": "empty"}


def test_annotations_for_a_device_down_and_a_tcp_port() -> None:
    down = make_alert("sw-b2", since=T0)
    notes = alert_annotations(down, "10.1.0.9", {"icmp": ICMP_DOWN, "snmp": SNMP_OK})
    assert notes == {"address": "10.1.0.9", "failed": "icmp: no reply to 3 pings",
                     "advice": MEANINGS[Status.TIMEOUT]}
    port = make_alert("web", "tcp_service_down", since=T0)
    port.labels["port"] = "443"
    refused = ProbeResult(Status.REFUSED, "connection refused", probe="tcp", target="web")
    notes = alert_annotations(port, "", {"tcp-80": ICMP_DOWN, "tcp-443": refused})
    assert notes == {"failed": "tcp-443: connection refused", "advice": MEANINGS[Status.REFUSED]}
    over = replace(down, state=RESOLVED)
    assert alert_annotations(over, "10.1.0.9", {"icmp": ICMP_DOWN}) == {"address": "10.1.0.9"}


def render(*alerts: Alert, links: Links = LINKS, at: float = T0 + 840) -> tuple[str, str]:
    r = EmailRenderer(links=links).render(Notification("it", "k", "firing", list(alerts), at),
                                          {"building": "Main building"})
    return r.text, r.html


def test_text_and_html_give_the_whole_context() -> None:
    a = printer_alert()
    a.annotations.update(alert_annotations(a, "10.1.2.20", {"snmp": SNMP_OK}))
    text, html = render(a)
    for part, shown in ((text, str), (html, escape)):
        assert "staffroom-printer" in part and "room 12, Main building, North" in part
        assert "10.1.2.20" in part and "Black Toner HP 508A CF360A" in part and "empty" in part
        assert shown(RULE_ADVICE["printer_supply_empty"]) in part
        assert "14 minutes" in part
        assert "http://netmon.school.example:10190/device/staffroom-printer" in part
    assert "Device:  staffroom-printer (printer), room 12" in text


def test_links_grafana_variables_and_a_signed_ack_link() -> None:
    a = printer_alert()
    text, _ = render(a)
    graphs = next(line.split()[-1] for line in text.splitlines() if "Graphs:" in line)
    url = urlsplit(graphs)
    assert url.path == "/d/netmon-printers"
    assert parse_qs(url.query) == {"var-site": ["North"], "var-building": ["Main building"],
                                   "var-target": ["staffroom-printer"]}
    ack_url = next(line.split()[-1] for line in text.splitlines() if "acknowledge" in line)
    assert ack_url.startswith("http://netmon.school.example:10190/ack/")
    token = ack_url.rsplit("/", 1)[1]
    assert check_link_token(SECRET, token, now=T0 + 86400) == a.fingerprint
    odd = replace(make_alert("lab 204/pc#1", role="lab"), labels={"role": "lab", "room": "204"})
    assert LINKS.device("lab 204/pc#1").endswith("/device/lab%20204%2Fpc%231")
    assert LINKS.grafana(odd.labels) == "http://grafana.school.example/d/netmon-labs?var-role=lab&var-room=204"


def test_no_links_without_external_url_and_no_ack_for_resolved() -> None:
    text, html = render(printer_alert(), links=Links())
    assert "http" not in text and "href" not in html
    over = replace(make_alert("sw-b2", since=T0), state=RESOLVED, ends_at=T0 + 840)
    text, html = render(over)
    assert "/ack/" not in text and "/ack/" not in html
    assert "was down 14 minutes" in text and "Was down 14 minutes" in html


def test_device_strings_in_the_context_are_inert_in_html() -> None:
    a = printer_alert()
    a.annotations.update({"supply_description": "<script>x()</script>", "address": "<b>",
                          "failed": "snmp: <img src=x>"})
    _, html = render(a)
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html


def test_grafana_boards_match_the_generated_dashboards() -> None:
    for uid, variables in [*GRAFANA_BOARDS.values(), GRAFANA_DEFAULT]:
        board = json.loads((DASHBOARDS / f"{uid}.json").read_text())
        assert board["uid"] == uid
        names = {v["name"] for v in board["templating"]["list"]}
        assert set(variables) <= names, uid


@pytest.mark.parametrize(("seconds", "words"), [
    (0, "0 seconds"), (1, "1 second"), (59, "59 seconds"), (60, "1 minute"), (840, "14 minutes"),
    (3600, "1 hour"), (3660, "1 hour 1 minute"), (11100, "3 hours 5 minutes"),
    (86400, "1 day"), (187200, "2 days 4 hours"), (-5, "0 seconds"),
])
def test_in_words(seconds: float, words: str) -> None:
    assert in_words(seconds) == words
