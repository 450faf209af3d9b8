"""NotifySettings validation and cross-reference checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.notify.settings import NotifySettings, check_references

GOOD: dict[str, Any] = {
    "smtp": {"host": "127.0.0.1", "port": 2525, "security": "starttls", "username": "netmon",
             "password": {"env": "NETMON_TEST_SMTP_PASSWORD"}, "from": "netmon@school.example",
             "timeout": "5s"},
    "receivers": [
        {"name": "it-team", "email": {"to": ["it@school.example"]},
         "webhook": {"url": "http://127.0.0.1:8080/hook"}},
        {"name": "office", "email": {"to": ["office@school.example"]}},
    ],
    "route": {"receiver": "it-team", "group_by": ["site", "building"], "group_wait": "30s",
              "routes": [{"match": {"role": "printer"}, "receiver": "office", "continue": False}]},
    "alertmanagers": [{"urls": ["http://127.0.0.1:9093"], "resend_every": "1m"}],
}


def check(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    return check_references(NotifySettings.model_validate(data), groups={"lab-204"},
                            targets={"sw-core"}, schedules=set())


def test_full_example_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETMON_TEST_SMTP_PASSWORD", "hunter2-secret")
    s = NotifySettings.model_validate(GOOD)
    assert s.smtp is not None and s.smtp.from_ == "netmon@school.example"
    assert s.smtp.timeout == 5.0 and s.route.group_wait == 30.0
    assert s.route.routes[0].continue_ is False
    assert "hunter2" not in repr(s) and "hunter2" not in s.model_dump_json()
    assert s.smtp.password is not None and s.smtp.password.get_secret_value() == "hunter2-secret"
    assert check(GOOD) == []


def test_password_from_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    s = NotifySettings.model_validate(
        {"smtp": {"username": "u", "password": {"file": str(tmp_path / "pw")}}})
    assert s.smtp is not None and s.smtp.password is not None
    assert s.smtp.password.get_secret_value() == "from-file"


def test_defaults_everything_optional() -> None:
    s = NotifySettings()
    assert s.receivers == [] and s.alertmanagers == [] and check_references(
        s, groups=set(), targets=set(), schedules=set()) == []
    assert NotifySettings.model_validate({"smtp": {"security": "tls"}}).smtp.effective_port == 465  # type: ignore[union-attr]


@pytest.mark.parametrize("data, fragment", [
    ({"smtp": {"security": "ssl"}}, "security"),
    ({"smtp": {"bogus": 1}}, "bogus"),
    ({"smtp": {"username": "only-user"}}, "username and password"),
    ({"receivers": [{"name": "x", "email": {"to": []}}]}, "to"),
    ({"receivers": [{"name": "x", "webhook": {"url": "ftp://x"}}]}, "http"),
    ({"route": {"match_re": {"role": "("}}}, "regular expression"),
    ({"route": {"group_wait": "soon"}}, "duration"),
    ({"alertmanagers": [{"urls": []}]}, "urls"),
])
def test_invalid_settings(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        NotifySettings.model_validate(data)


def test_reference_errors_have_locations() -> None:
    data = {
        "receivers": [{"name": "it", "email": {"to": ["a@b"]}}, {"name": "it", "webhook": {"url": "http://x"}},
                      {"name": "empty"}],
        "route": {"receiver": "it", "routes": [
            {"match": {"group": "no-such-group", "target": "sw-core"}, "receiver": "nobody"}]},
    }
    errors = dict(check(data))
    assert set(errors) == {("receivers", 1, "name"), ("receivers", 2), ("receivers", 0, "email"),
                           ("route", "routes", 0, "receiver"), ("route", "routes", 0, "match", "group")}
    assert "nobody" in errors[("route", "routes", 0, "receiver")]
    assert check({"receivers": [{"name": "it", "webhook": {"url": "http://x"}}]}) == [
        (("route", "receiver"), "the top-level route needs a receiver")]
