"""Digest settings, their cross-references, which printers go to which receiver, and the
thresholds taken from each printer's rules (pure logic; sending and the history are in
tests/integration/test_digest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from alerts.db import StateStore, open_db
from alerts.digest import DigestRunner, pages_printed, thresholds
from alerts.rules import RuleSet, TargetInfo
from alerts.settings import AlertsSettings, check_references

BASE: dict[str, Any] = {
    "smtp": {"host": "127.0.0.1"},
    "receivers": [{"name": "office", "email": {"to": ["office@school.example"]}},
                  {"name": "annex", "email": {"to": ["annex@school.example"]}},
                  {"name": "chat", "apprise": {"urls": ["json://127.0.0.1:1/"]}}],
    "route": {"receiver": "office", "routes": [
        {"match": {"building": "annex"}, "receiver": "annex"},
        {"match": {"role": "printer"}, "receiver": "chat", "continue": True}]},
}


def problems(**alerts: Any) -> list[str]:
    settings = AlertsSettings.model_validate({**BASE, **alerts})
    return [f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in check_references(
        settings, groups=set(), targets=set(), schedules=set())]


@pytest.mark.parametrize("digests, expected", [
    ([{"name": "s", "receiver": "office"}], []),
    ([{"name": "s"}], []),  # route mode
    ([{"name": "s", "receiver": "nobody"}],
     ["digests.0.receiver: unknown receiver 'nobody' (known: office, annex, chat)"]),
    ([{"name": "s", "receiver": "chat"}],
     ["digests.0.receiver: receiver 'chat' has no email (a digest is an email)"]),
    ([{"name": "s"}, {"name": "s"}], ["digests.1.name: digest 's' is defined twice"]),
])
def test_references(digests: list[dict[str, Any]], expected: list[str]) -> None:
    assert problems(digests=digests) == expected


def test_digest_needs_smtp() -> None:
    settings = AlertsSettings.model_validate({"receivers": [{"name": "x", "webhook": {
        "url": "http://127.0.0.1:1/"}}], "route": {"receiver": "x"}, "digests": [{"name": "s"}]})
    found = check_references(settings, groups=set(), targets=set(), schedules=set())
    assert (("digests", 0), "digests are emails: they need an smtp: section") in found


@pytest.mark.parametrize("schedule, words", [
    ({"at": "7:30"}, 'at is a time of day in quotes, e.g. "07:30"'),
    ({"days": "monday"}, "days are mon..sun"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
])
def test_bad_schedules(schedule: dict[str, str], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        AlertsSettings.model_validate({"digests": [{"name": "s", "schedule": schedule}]})


PRINTERS = [TargetInfo("p-main", {"role": "printer", "building": "main", "group": "printers"}),
            TargetInfo("p-annex", {"role": "printer", "building": "annex", "group": "printers"}),
            TargetInfo("p-lab", {"role": "printer", "building": "main", "group": "lab"})]


def runner(**digest: Any) -> tuple[DigestRunner, Any]:
    settings = AlertsSettings.model_validate({**BASE, "digests": [{"name": "s", **digest}]})
    return DigestRunner(StateStore(open_db(":memory:")), settings, base_dir=None,  # type: ignore[arg-type]
                        history=lambda: None), settings.digests[0]


def test_route_mode_follows_the_tree_and_skips_receivers_without_email() -> None:
    r, digest = runner()
    # As an alert routes: the main building's printers match only the chat route (the
    # root is the fallback when no child matches), and chat has no email.
    assert r._receivers(digest, PRINTERS) == {"annex": {"p-annex"}}
    r.settings = AlertsSettings.model_validate({**BASE, "route": {"receiver": "office", "routes": [
        {"match": {"building": "annex"}, "receiver": "annex"}]}, "digests": [{"name": "s"}]})
    assert r._receivers(digest, PRINTERS) == {"office": {"p-main", "p-lab"}, "annex": {"p-annex"}}
    r, digest = runner(receiver="annex", match={"building": "main"}, match_re={"group": "print.*"})
    assert r._receivers(digest, [p for p in PRINTERS if digest.matches(p.labels)]) == {
        "annex": {"p-main"}}


def test_thresholds_follow_rule_changes_and_overrides() -> None:
    rules = RuleSet.from_settings(AlertsSettings.model_validate({
        "rules": {"printer_supply_low": {"threshold": "15%"}},
        "overrides": [{"group": "lab", "rules": {"printer_waste_nearly_full": {"threshold": "80%"}}}],
    }))
    assert thresholds(rules, PRINTERS[0]) == pytest.approx((0.15, 0.90))
    assert thresholds(rules, PRINTERS[2]) == pytest.approx((0.15, 0.80))
    assert thresholds(None, PRINTERS[0]) == (0.10, 0.90)


def test_pages_printed_ignores_counter_resets() -> None:
    assert pages_printed([(0, 100.0), (1, 150.0), (2, 20.0), (3, 70.0)]) == 100
    assert pages_printed([(0, 5.0)]) == 0
