"""Email rendering: subjects, escaping of device strings, threading headers, overrides."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from alerts.model import AlertState, Notification
from alerts.notify.email import EmailRenderer, build_message
from alerts.notify.webhook import webhook_body
from tests.unit.test_notify_dispatch import make_alert

WHERE = {"site": "North", "building": "Main building"}


def test_subject_counts_location_and_summaries() -> None:
    alerts = [make_alert(t) for t in ("sw-closet-b2", "library-mfp", "pc-1", "pc-2")]
    n = Notification("it", "k", "firing", alerts, 0.0)
    r = EmailRenderer().render(n, WHERE)
    assert r.subject == ("[FIRING] 4 problems in Main building, North: sw-closet-b2 is down, "
                         "library-mfp is down, pc-1 is down, …")
    assert "sw-closet-b2 is down: no reply to 3 pings" in r.text and "Since:" in r.text


def test_subject_is_truncated_and_single_line() -> None:
    a = make_alert("x" * 300)
    r = EmailRenderer().render(Notification("it", "k", "firing", [a], 0.0), {})
    assert len(r.subject) <= 140 and r.subject.endswith("…") and "\n" not in r.subject
    assert r.subject.startswith("[FIRING] 1 problem: xxx")


def test_mixed_and_resolved_subjects() -> None:
    a, b = make_alert("sw-a"), make_alert("sw-b", state=AlertState.RESOLVED)
    r = EmailRenderer().render(Notification("it", "k", "firing", [a, b], 0.0), WHERE)
    assert r.subject.startswith("[FIRING] 1 problem in Main building, North (1 resolved): sw-a")
    assert "RESOLVED (1)" in r.text and "Resolved (1)" in r.html
    r = EmailRenderer().render(Notification("it", "k", "resolved", [b], 0.0), WHERE)
    assert r.subject == "[RESOLVED] 1 problem in Main building, North: sw-b is down"


def test_device_strings_are_inert_in_html() -> None:
    evil = make_alert("mfp")
    evil = replace(evil, annotations={"summary": "mfp says <script>alert(1)</script>",
                                      "description": "<img src=x onerror=alert(2)>"})
    r = EmailRenderer().render(Notification("it", "k", "firing", [evil], 0.0), WHERE)
    assert "<script>" not in r.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.html
    assert "<img" not in r.html and "&lt;img" in r.html
    assert "<script>alert(1)</script>" in r.text  # plain text stays readable


def test_message_headers_thread_an_incident() -> None:
    r = EmailRenderer().render(Notification("it", "k", "firing", [make_alert("a")], 0.0), WHERE)
    first = build_message(r, sender="n@s", to=["it@s"], message_id="<1@s>", thread_id="<1@s>")
    later = build_message(r, sender="n@s", to=["it@s"], message_id="<2@s>", thread_id="<1@s>")
    assert first["Message-ID"] == "<1@s>" and first["In-Reply-To"] is None
    assert later["In-Reply-To"] == "<1@s>" and later["References"] == "<1@s>"
    assert {p.get_content_type() for p in later.iter_parts()} == {"text/plain", "text/html"}


def test_user_templates_override_packaged(tmp_path: Path) -> None:
    (tmp_path / "email.subject.j2").write_text("ALERT {{ count }} at {{ location }}")
    r = EmailRenderer(tmp_path).render(Notification("it", "k", "firing", [make_alert("a")], 0.0), WHERE)
    assert r.subject == "ALERT 1 at Main building, North"
    assert "<html>" in r.html  # the rest still comes from the package


def test_test_message_renders() -> None:
    r = EmailRenderer().render(Notification("it-team", "test", "test", [make_alert("a")], 0.0), {})
    assert r.subject == "[TEST] netmon test message for it-team" and "test message" in r.text


def test_webhook_body_like_alertmanager() -> None:
    a, b = make_alert("sw-a"), make_alert("sw-b", state=AlertState.RESOLVED)
    body = webhook_body(Notification("it", "key", "firing", [a, b], 0.0), WHERE, "http://netmon")
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "it"
    assert body["groupLabels"] == WHERE and body["commonLabels"]["building"] == "Main building"
    assert "target" not in body["commonLabels"]
    assert [x["status"] for x in body["alerts"]] == ["firing", "resolved"]
    assert body["alerts"][0]["fingerprint"] == a.fingerprint
    assert body["alerts"][1]["endsAt"].startswith("1970-01-01T00:01:40")


def test_subject_keeps_what_follows_a_bare_device_name() -> None:
    """Printer summaries start with the device name ("mfp: black toner low"): the
    subject must say what is wrong, not just name the printer."""
    toner = replace(make_alert("staffroom-printer"),
                    annotations={"summary": "staffroom-printer: Black Toner Cartridge is empty"})  # fmt: skip
    r = EmailRenderer().render(Notification("it", "k", "firing", [toner, make_alert("sw-a")], 0.0), WHERE)
    assert r.subject == ("[FIRING] 2 problems in Main building, North: "
                         "staffroom-printer: Black Toner Cartridge is empty, sw-a is down")
