"""HOST[:PORT] parsing, durations and the Status vocabulary (pure logic)."""

from __future__ import annotations

import pytest

from probes.errors import TargetSyntaxError
from probes.result import Sample, Status
from probes.settings import parse_duration
from probes.target import Target, parse_host_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("printer-1", ("printer-1", None)),
        ("10.1.2.20", ("10.1.2.20", None)),
        ("10.1.2.20:1161", ("10.1.2.20", 1161)),
        ("sw-core.school.example:161", ("sw-core.school.example", 161)),
        ("::1", ("::1", None)),
        ("2001:db8::5", ("2001:db8::5", None)),
        ("[::1]:1161", ("::1", 1161)),
        ("[2001:db8::5]", ("2001:db8::5", None)),
        ("  127.0.0.1:9100 ", ("127.0.0.1", 9100)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty host"),
        (":161", "empty host"),
        ("host:0", "port must be a number from 1 to 65535"),
        ("host:65536", "port must be a number from 1 to 65535"),
        ("host:http", "port must be a number from 1 to 65535"),
        ("[::1", "missing ']'"),
        ("[::1]161", "expected ':PORT'"),
        ("[not-v6]:161", "not a valid IPv6 address"),
    ],
)
def test_parse_host_port_errors(text: str, message: str) -> None:
    with pytest.raises(TargetSyntaxError, match=message.replace("[", r"\[")):
        parse_host_port(text)


def test_default_port_applies_only_without_port() -> None:
    assert parse_host_port("printer", 161) == ("printer", 161)
    assert parse_host_port("printer:1161", 161) == ("printer", 1161)


def test_target_display_brackets_ipv6() -> None:
    assert Target("x", "::1", 1161).display == "[::1]:1161"
    assert Target("x", "127.0.0.1", 161).display == "127.0.0.1:161"
    assert Target("x", "printer").display == "printer"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(2, 2.0), (0.5, 0.5), ("500ms", 0.5), ("2s", 2.0), ("5m", 300.0), ("1h", 3600.0), ("1.5", 1.5)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["fast", "-1s", "2 days", True, None, "5x"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_success_means_trustworthy_data() -> None:
    assert {s for s in Status if s.success} == {Status.OK, Status.PARTIAL}


def test_sample_of_drops_none_labels_and_stringifies() -> None:
    s = Sample.of("netmon_probe_success", 1, cpu=3, alias=None)
    assert s.labels == (("cpu", "3"),) and s.value == 1.0
