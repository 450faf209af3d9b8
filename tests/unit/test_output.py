"""Output helpers: human units, bars, device-string safety, tables for odd records."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from monitor.cli import output
from probes.result import ProbeResult, Sample, Status


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (10 * 1024**3, "10 GiB"),
     (123.4 * 1024**2, "123 MiB"), (5 * 1024**6, "5 EiB"), (None, ""), ("junk", ""), (True, "")],
)  # fmt: skip
def test_human_bytes(value: Any, expected: str) -> None:
    assert output.human_bytes(value) == expected


@pytest.mark.parametrize(
    ("bps", "expected"),
    [(1_000_000_000, "1 Gb/s"), (100_000_000, "100 Mb/s"), (10_000_000, "10 Mb/s"),
     (2_500_000_000, "2.5 Gb/s"), (40_000_000_000, "40 Gb/s"), (0, "0 b/s"), (None, "")],
)  # fmt: skip
def test_human_speed(bps: Any, expected: str) -> None:
    assert output.human_speed(bps) == expected


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(0.0, "░░░░░░░░ 0%"), (0.45, "████░░░░ 45%"), (0.5, "████░░░░ 50%"), (1.0, "████████ 100%"),
     (1.7, "████████ 100%"), (-0.2, "░░░░░░░░ 0%"), (0.06, "░░░░░░░░ 6%"), (0.07, "█░░░░░░░ 7%")],
)  # fmt: skip
def test_bar(ratio: float, expected: str) -> None:
    assert output.bar(ratio) == expected


def test_bar_width() -> None:
    assert output.bar(0.25, width=4) == "█░░░ 25%"


@pytest.mark.parametrize(
    ("seconds", "expected"), [(5, "5s"), (65, "1m 5s"), (3700, "1h 1m"), (90061, "1d 1h 1m")]
)
def test_human_duration(seconds: int, expected: str) -> None:
    assert output.human_duration(seconds) == expected


def test_clean_strips_control_characters_and_newlines() -> None:
    assert output.clean("Cisco IOS\r\nVersion 15\x1b[31m red\x00\x07") == "Cisco IOS Version 15[31m red"
    assert output.clean(b"HP\tLaserJet") == "HP LaserJet"
    assert output.clean(None) == ""


@pytest.mark.parametrize(
    ("row", "expected"),
    [({"ratio": 0.45, "state": "ok"}, "████░░░░ 45%"),
     ({"ratio": None, "state": "some_remaining"}, "some remaining"),
     ({"state": "unknown"}, "unknown"), ({"ratio": None, "state": "unlimited"}, "unlimited"),
     ({"state": "weird", "level_text": "12 pages"}, "12 pages"), ({}, "unknown")],
)  # fmt: skip
def test_level_cell_in_words(row: dict[str, Any], expected: str) -> None:
    assert output.level_cell(row).plain == expected


def render_text(kind: str, results: list[ProbeResult]) -> str:
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    output.render(kind, results, console)
    return console.export_text()


def result(**kw: Any) -> ProbeResult:
    r = ProbeResult(kw.pop("status", Status.OK), kw.pop("explanation", "fine"), **kw)
    return r.with_runner_fields(probe="snmp", target="10.0.0.9", duration_seconds=0.2, started_at=1.0)


def test_markup_in_device_strings_prints_literally() -> None:
    r = result(facts={"sys_descr": "[bold red]evil[/] \x1b[2J box", "sys_name": "[link=x]sw"})
    text = render_text("snmp", [r])
    assert "[bold red]evil[/]" in text
    assert "[link=x]sw" in text
    assert "\x1b" not in text


def test_printer_view_shows_supplies_trays_and_conditions_in_words() -> None:
    r = result(
        facts={"model": "LaserJet 9", "serial": "SN123", "printer_status": "idle"},
        records={
            "supplies": [
                {"index": "1.1", "description": "Black Toner", "color": "black", "class": "consumable",
                 "ratio": 0.45, "state": "ok"},
                {"index": "1.2", "description": "Drum", "class": "consumable", "ratio": None,
                 "state": "some_remaining"},
                {"index": "1.3", "description": "Waste Box", "class": "receptacle", "ratio": 0.95,
                 "state": "nearly_full"},
                {"index": "1.4", "description": "Cyan", "class": "consumable", "ratio": 0.0, "state": "empty"},
            ],
            "trays": [{"index": "1.1", "name": "Tray 1", "media": "A4", "ratio": None, "state": "unknown"}],
            "conditions": [{"condition": "jammed", "description": "Paper jam"}, {"condition": "low_toner"}],
        },
    )  # fmt: skip
    text = render_text("printer", [r])
    for expected in ["LaserJet 9", "SN123", "Black Toner", "████░░░░ 45%", "some remaining", "Waste Box",
                     "nearly full", "EMPTY", "Tray 1", "A4", "Paper jam", "Low toner"]:  # fmt: skip
        assert expected in text
    assert text.index("LaserJet 9") < text.index("Black Toner")


def test_unexpected_record_shapes_fall_back_to_a_generic_table() -> None:
    r = result(
        records={
            "interfaces": [{"index": "1", "speed_bps": "fast", "in_octets": [1, 2]}, {"surprise": {"a": 1}}],
            "supplies": ["not a dict", 3],
            "mystery": [{"colour": "teal", "count": 3}, {"shape": None}],
            "empty": [],
        },
    )
    text = render_text("snmp", [r])
    assert "teal" in text and "Mystery" in text
    assert "not a dict" in text and "surprise" in text


def test_interfaces_storage_cpus_and_ups_tables() -> None:
    r = result(
        facts={"sys_descr": "Linux box", "uptime": "3d 4h"},
        records={
            "interfaces": [{"index": "1", "name": "lo", "alias": "", "admin": "up", "oper": "up",
                            "speed_bps": 10_000_000, "in_octets": 1536, "out_octets": 2048,
                            "in_errors": 0, "out_errors": 2}],
            "storage": [{"index": "1", "description": "/", "kind": "disk", "size_bytes": 10 * 1024**3,
                         "used_bytes": 5 * 1024**3, "used_ratio": 0.5}],
            "cpus": [{"index": "196608", "load_ratio": 0.25}],
            "ups": [{"model": "Smart-UPS", "on_battery": False, "charge_ratio": 1.0,
                     "runtime_seconds": 1522, "load_ratio": {"1": 0.378}, "alarms": None}],
        },
    )  # fmt: skip
    text = render_text("snmp", [r])
    for expected in ["lo", "10 Mb/s", "1.5 KiB", "2 KiB", "0/2", "10 GiB", "5 GiB", "50%", "██░░░░░░ 25%",
                     "Smart-UPS", "on battery", "no", "charge", "100%", "runtime", "25m 22s", "1: 38%", "Linux box"]:  # fmt: skip
        assert expected in text, expected


def test_icmp_table_reads_samples_and_tcp_table_connect_time() -> None:
    samples = [
        Sample.of("netmon_icmp_packets_sent", 3), Sample.of("netmon_icmp_packets_received", 2),
        Sample.of("netmon_icmp_packet_loss_ratio", 1 / 3), Sample.of("netmon_icmp_rtt_seconds", 0.0001, stat="min"),
        Sample.of("netmon_icmp_rtt_seconds", 0.0002, stat="avg"), Sample.of("netmon_icmp_rtt_seconds", 0.012, stat="max"),
        Sample.of("netmon_icmp_jitter_seconds", 0.00005),
    ]  # fmt: skip
    down = result(status=Status.TIMEOUT, explanation="no reply within 1s")
    text = render_text("icmp", [result(samples=samples, status=Status.PARTIAL), down])
    assert "3/2" in text and "33%" in text and "0.100/0.200/12.0" in text and "0.050" in text
    assert "timeout" in text and "no reply within 1s" in text
    tcp = result(samples=[Sample.of("netmon_tcp_connect_seconds", 0.0123)])
    assert "12.3" in render_text("tcp", [tcp])


def test_alerts_and_covers_tables() -> None:
    r = result(records={
        "alerts": [{"index": "1.1", "severity": "critical", "group": "marker_supplies", "group_index": 2,
                    "code": "toner_empty", "meaning": "Toner empty", "description": "Replace [black] toner"}],
        "covers": [{"index": "1.1", "name": "Front Door", "status": "open", "open": True}],
    })  # fmt: skip
    text = render_text("printer", [r])
    for expected in ["Printer alerts", "critical", "Replace [black] toner", "marker supplies 2", "Front Door", "open"]:
        assert expected in text, expected


def _printer_text(result: ProbeResult) -> str:
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(output.snmp_view(result, printer=True))
    return console.export_text()


def test_printer_without_error_state_is_not_called_fault_free() -> None:
    silent = ProbeResult(Status.OK, "ok", facts={"model": "Canon LBP6670"})
    reported = ProbeResult(
        Status.OK, "ok",
        samples=[Sample.of("netmon_printer_condition", 0, condition="jammed")],
    )
    assert "does not report error conditions" in _printer_text(silent)
    assert "No active conditions" not in _printer_text(silent)
    assert "No active conditions" in _printer_text(reported)
