"""Nagios plugin logic: threshold syntax, perfdata format, state mapping, reports."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from monitor.cli import nagios
from monitor.cli.nagios import NagiosState, Perf, ThresholdError
from probes.result import ProbeResult, Sample, Status


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [("icmp", "rtt=100,loss=20", {"rtt": 0.1, "loss": 20.0}),
     ("icmp", " rtt = 250ms , loss=5% ", {"rtt": 0.25, "loss": 5.0}),
     ("icmp", "rtt=0.5s", {"rtt": 0.5}),
     ("printer", "supply=20", {"supply": 20.0}),
     ("tcp", "time=200", {"time": 0.2}),
     ("icmp", None, {}), ("icmp", "", {})],
)  # fmt: skip
def test_parse_thresholds(kind: str, text: str | None, expected: dict[str, float]) -> None:
    assert nagios.parse_thresholds(text, kind) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kind", "text", "words"),
    [("icmp", "rtt", "KEY=VALUE"), ("icmp", "jitter=3", "unknown threshold 'jitter'"),
     ("icmp", "loss=120", "0 to 100"), ("icmp", "rtt=fast", "not a time"),
     ("printer", "supply=lots", "not a percentage"), ("snmp", "rtt=1", "none (status only)"),
     ("icmp", "rtt=", "KEY=VALUE")],
)  # fmt: skip
def test_bad_thresholds_say_why(kind: str, text: str, words: str) -> None:
    with pytest.raises(ThresholdError, match=words.replace("(", r"\(").replace(")", r"\)")):
        nagios.parse_thresholds(text, kind)


def test_threshold_order() -> None:
    nagios.check_threshold_order({"rtt": 0.1, "supply": 20}, {"rtt": 0.5, "supply": 5})
    with pytest.raises(ThresholdError, match="less severe"):
        nagios.check_threshold_order({"rtt": 0.5}, {"rtt": 0.1})
    with pytest.raises(ThresholdError, match="less severe"):
        nagios.check_threshold_order({"supply": 5}, {"supply": 20})


@pytest.mark.parametrize(
    ("perf", "expected"),
    [(Perf("rtt", 0.00005, "s", "0.1", "0.5", 0), "rtt=0.000050s;0.1;0.5;0"),
     (Perf("pl", 0, "%", "20", "60", 0, 100), "pl=0%;20;60;0;100"),
     (Perf("Black Cartridge HP CF400X", 63, "%", "20:", "10:", 0, 100), "'Black Cartridge HP CF400X'=63%;20:;10:;0;100"),
     (Perf("it's=odd", 1.5, "c"), "'it''s_odd'=1.5c"),
     (Perf("time", 1.25, "s", min=0), "time=1.250000s;;;0")],
)  # fmt: skip
def test_perfdata_format(perf: Perf, expected: str) -> None:
    assert perf.format() == expected


def test_every_status_maps_to_a_state() -> None:
    assert {s: nagios.state_of(s) for s in Status} == nagios.STATUS_STATE
    assert nagios.state_of(Status.TIMEOUT) is NagiosState.CRITICAL
    assert nagios.state_of(Status.AUTH_ERROR) is NagiosState.CRITICAL
    assert nagios.state_of(Status.PERMISSION_ERROR) is NagiosState.UNKNOWN
    assert nagios.state_of(Status.PARTIAL) is NagiosState.WARNING


def test_worst_ranks_critical_above_unknown() -> None:
    assert nagios.worst([NagiosState.OK, NagiosState.UNKNOWN, NagiosState.CRITICAL]) is NagiosState.CRITICAL
    assert nagios.worst([NagiosState.WARNING, NagiosState.UNKNOWN]) is NagiosState.UNKNOWN
    assert nagios.worst([]) is NagiosState.OK


def ping(target: str, sent: int, received: int, avg: float | None, status: Status = Status.OK) -> ProbeResult:
    samples = [
        Sample.of("netmon_icmp_packets_sent", sent),
        Sample.of("netmon_icmp_packets_received", received),
        Sample.of("netmon_icmp_packet_loss_ratio", 1 - received / sent),
    ]
    if avg is not None:
        samples.append(Sample.of("netmon_icmp_rtt_seconds", avg, stat="avg"))
    r = ProbeResult(status, "explained", samples=samples)
    return r.with_runner_fields(probe="icmp", target=target, duration_seconds=0.1, started_at=0)


WARN = {"rtt": 0.1, "loss": 20.0}
CRIT = {"rtt": 0.5, "loss": 60.0}


def test_icmp_ok_line_matches_the_documented_format() -> None:
    report = nagios.check_icmp([ping("127.0.0.1", 3, 3, 0.00005)], WARN, CRIT)
    assert report.state is NagiosState.OK
    assert report.render("icmp") == (
        "NETMON ICMP OK - 127.0.0.1: 3/3 replies, rtt 0.05 ms | rtt=0.000050s;0.1;0.5;0 pl=0%;20;60;0;100"
    )


@pytest.mark.parametrize(
    ("sent", "received", "avg", "status", "state"),
    [(3, 3, 0.2, Status.OK, NagiosState.WARNING), (3, 3, 0.6, Status.OK, NagiosState.CRITICAL),
     (5, 4, 0.01, Status.PARTIAL, NagiosState.WARNING), (5, 1, 0.01, Status.PARTIAL, NagiosState.CRITICAL),
     (3, 0, None, Status.TIMEOUT, NagiosState.CRITICAL)],
)  # fmt: skip
def test_icmp_thresholds(sent: int, received: int, avg: float | None, status: Status, state: NagiosState) -> None:
    assert nagios.check_icmp([ping("h", sent, received, avg, status)], WARN, CRIT).state is state


def test_icmp_many_hosts_puts_problems_first_and_prefixes_perf_labels() -> None:
    report = nagios.check_icmp(
        [ping("10.0.0.1", 3, 3, 0.001), ping("10.0.0.2", 3, 0, None, Status.TIMEOUT)], WARN, CRIT
    )
    first, *details = report.render("icmp").splitlines()
    assert first.startswith("NETMON ICMP CRITICAL - 2 hosts: 1 OK, 1 CRITICAL; 10.0.0.2: timeout")
    assert "'10.0.0.1 rtt'=0.001000s" in first and "'10.0.0.2 pl'=100%" in first
    assert len(details) == 2


def printer(supplies: list[dict[str, Any]], conditions: list[dict[str, Any]] = (), **facts: str) -> ProbeResult:  # type: ignore[assignment]
    r = ProbeResult(Status.OK, "read", facts={"model": "LJ", **facts},
                    records={"supplies": supplies, "conditions": list(conditions)})  # fmt: skip
    return r.with_runner_fields(probe="snmp", target="p1", duration_seconds=0.1, started_at=0)


_INDEXES = itertools.count(1)


def toner(desc: str, ratio: float | None, state: str = "ok", cls: str = "consumable") -> dict[str, Any]:
    return {"index": f"1.{next(_INDEXES)}", "description": desc, "ratio": ratio, "state": state, "class": cls}


@pytest.mark.parametrize(
    ("supplies", "conditions", "state", "words"),
    [([toner("Black", 0.63), toner("Yellow", 0.36)], [], NagiosState.OK, "supplies ok, lowest Yellow 36%"),
     ([toner("Black", 0.63), toner("Yellow", 0.15)], [], NagiosState.WARNING, "Yellow 15%"),
     ([toner("Black", 0.03)], [], NagiosState.CRITICAL, "Black 3%"),
     ([toner("Drum", None, "empty")], [], NagiosState.CRITICAL, "Drum empty"),
     ([toner("Drum", None, "low")], [], NagiosState.WARNING, "Drum low"),
     ([toner("Drum", None, "some_remaining")], [], NagiosState.OK, ""),
     ([toner("Waste", 1.0, "full", "receptacle")], [], NagiosState.CRITICAL, "Waste 100%"),
     ([toner("Waste", 0.1, "ok", "receptacle")], [], NagiosState.OK, ""),
     ([toner("Black", 0.9)], [{"condition": "jammed", "description": "Paper jam"}], NagiosState.CRITICAL, "Paper jam"),
     ([toner("Black", 0.9)], [{"condition": "low_paper"}], NagiosState.WARNING, "low paper")],
)  # fmt: skip
def test_printer_report(supplies: list[dict[str, Any]], conditions: list[dict[str, Any]], state: NagiosState, words: str) -> None:
    report = nagios.check_printer([printer(supplies, conditions)], {"supply": 20}, {"supply": 5})
    assert report.state is state
    assert words in report.summary


def test_printer_perfdata_uses_lower_bound_ranges_and_quotes_names() -> None:
    report = nagios.check_printer([printer([toner("Black Cartridge", 0.63), toner("Drum", None, "unknown")])],
                                  {"supply": 20}, {"supply": 5})  # fmt: skip
    assert report.render("printer").endswith("| 'Black Cartridge'=63%;20:;5:;0;100")


def test_failed_probe_and_text_safety() -> None:
    r = ProbeResult(Status.AUTH_ERROR, "wrong community | line two\nthree")
    r = r.with_runner_fields(probe="snmp", target="sw1", duration_seconds=1, started_at=0)
    line = nagios.report_for("snmp", [r], {}, {}).render("snmp")
    assert line == "NETMON SNMP CRITICAL - sw1: auth_error - wrong community / line two three"
    assert nagios.report_for("printer", [], {}, {}).state is NagiosState.UNKNOWN


def test_printer_alerts_covers_and_duplicate_supply_names() -> None:
    r = printer([toner("Black", 0.5), toner("Black", 0.4)])
    r.records["alerts"] = [{"severity": "critical", "description": "Fuser error"},
                           {"severity": "other", "description": "Sleeping"}]  # fmt: skip
    r.records["covers"] = [{"name": "Front cover", "open": True}, {"name": "Back", "open": False}]
    r.records["trays"] = [{"name": "Bypass", "state": "empty"}]
    report = nagios.check_printer([r], {}, {})
    assert report.state is NagiosState.CRITICAL
    assert "Fuser error" in report.summary and "Front cover open" in report.summary
    assert "Sleeping" not in report.summary and "Back" not in report.summary and "Bypass" not in report.summary
    labels = [p.label for p in report.perfdata]
    assert len(labels) == len(set(labels)) == 2
