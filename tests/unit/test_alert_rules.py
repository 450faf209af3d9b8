"""The alert rules on hand-built probe results: every default rule fires and clears at
its threshold, hysteresis, memory (rates, resets, "was up before"), overrides, custom
rules and validation."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.model import Observation
from alerts.rules import (
    Rule,
    RuleSet,
    RulesSettings,
    TargetInfo,
    check_references,
    default_rules,
    go_template,
)
from alerts.rules_default import DEFAULT_RULES
from probes.registry import runner_samples
from probes.result import ProbeResult, Sample, Status

SWITCH = TargetInfo("sw-closet-b2", {"role": "switch", "group": "closets", "site": "main"})
PRINTER = TargetInfo("library-mfp", {"role": "printer", "group": "printers", "room": "lib"})
HOST = TargetInfo("srv-1", {"role": "server", "group": "servers"})


def result(status: Status, *samples: Sample, explanation: str = "") -> ProbeResult:
    r = ProbeResult(status, explanation or status.value, list(samples))
    r.samples += runner_samples(r)
    return r


def icmp(sent: int, received: int, avg: float = 0.001) -> ProbeResult:
    samples = [
        Sample.of("netmon_icmp_packets_sent", sent),
        Sample.of("netmon_icmp_packets_received", received),
        Sample.of("netmon_icmp_packet_loss_ratio", 1 - received / sent),
    ]
    if received:
        samples.append(Sample.of("netmon_icmp_rtt_seconds", avg, stat="avg"))
    status = Status.OK if received == sent else Status.PARTIAL if received else Status.TIMEOUT
    return result(status, *samples, explanation=f"{received} of {sent} echo replies")


def snmp(*samples: Sample) -> ProbeResult:
    return result(Status.OK, *samples)


def rules(settings: dict[str, Any] | None = None) -> RuleSet:
    return RuleSet.from_settings(RulesSettings.model_validate(settings or {}))


def active(
    rs: RuleSet, target: TargetInfo, results: dict[str, ProbeResult], now: float = 1000.0
) -> dict[str, list[Observation]]:
    out: dict[str, list[Observation]] = {}
    for o in rs.evaluate(target, results, now):
        assert o.active
        out.setdefault(o.rule, []).append(o)
    return out


def iface(index: str, name: str, *, oper: int, admin: int = 1, speed: float = 125e6,
          errors: float | None = None) -> list[Sample]:  # fmt: skip
    labels = {"if_index": index, "if_name": name, "if_alias": "", "if_descr": name}
    out = [
        Sample.of("netmon_interface_oper_up", oper, **labels),
        Sample.of("netmon_interface_admin_up", admin, **labels),
        Sample.of("netmon_interface_speed_bytes", speed, **labels),
    ]
    if errors is not None:
        out += [Sample.of("netmon_interface_receive_errors_total", errors, **labels),
                Sample.of("netmon_interface_transmit_errors_total", 0, **labels)]  # fmt: skip
    return out


def supply(index: str, name: str, ratio: float | None, state: str, klass: str = "consumable") -> list[Sample]:
    labels = {"supply": name, "index": index, "type": "toner", "color": "black", "class": klass}
    states = ("ok", "low", "empty", "some_remaining", "unknown", "unlimited", "nearly_full", "full")
    out = [Sample.of("netmon_printer_supply_state", s == state, **labels, state=s) for s in states]
    if ratio is not None:
        out.append(Sample.of("netmon_printer_supply_level_ratio", ratio, **labels))
    return out


def condition(*on: str) -> list[Sample]:
    names = ("low_toner", "no_paper", "jammed", "door_open", "service_requested")
    return [Sample.of("netmon_printer_condition", n in on, condition=n) for n in names]


# --- the default pack ---------------------------------------------------------------


def test_default_pack_is_valid_and_named_snake_case() -> None:
    names = [r.name for r in default_rules()]
    assert len(names) == len(set(names)) == len(DEFAULT_RULES)
    for required in ("device_down", "high_packet_loss", "high_latency", "snmp_not_responding",
                     "snmp_auth_failure", "device_rebooted", "interface_down", "interface_errors",
                     "interface_speed_dropped", "printer_supply_low", "printer_supply_empty",
                     "printer_waste_nearly_full", "printer_paper_out", "printer_jam",
                     "printer_door_open", "printer_service_requested", "disk_nearly_full",
                     "memory_nearly_full", "high_cpu", "ups_on_battery", "ups_battery_replace",
                     "tcp_service_down"):  # fmt: skip
        assert required in names
    reach = {r.name for r in default_rules() if r.reachability}
    assert reach == {"device_down", "high_packet_loss", "high_latency", "snmp_not_responding",
                     "tcp_service_down"}  # fmt: skip


def test_device_down_fires_when_every_ping_is_lost() -> None:
    rs = rules()
    got = active(rs, SWITCH, {"icmp": icmp(3, 0)})
    (obs,) = got["device_down"]
    assert obs.summary == "sw-closet-b2 is down: no reply to 3 pings"
    assert obs.description == "0 of 3 echo replies"
    assert obs.reachability and obs.for_seconds == 120
    assert obs.labels == {"alertname": "device_down", "severity": "critical",
                          "target": "sw-closet-b2", "group": "closets", "role": "switch",
                          "site": "main"}  # fmt: skip
    assert "high_packet_loss" not in got  # all lost is "down", not "loss"
    assert "device_down" not in active(rs, SWITCH, {"icmp": icmp(3, 1)})


def test_packet_loss_threshold_and_recover() -> None:
    rs = rules()
    assert "high_packet_loss" not in active(rs, SWITCH, {"icmp": icmp(10, 8)}, 1)  # 20 %
    assert "high_packet_loss" in active(rs, SWITCH, {"icmp": icmp(10, 7)}, 2)  # 30 %
    # between recover (10 %) and threshold (25 %): stays active once active
    (obs,) = active(rs, SWITCH, {"icmp": icmp(10, 8)}, 3)["high_packet_loss"]
    assert obs.summary == "sw-closet-b2: 20% of pings lost"
    assert "high_packet_loss" in active(rs, SWITCH, {"icmp": icmp(10, 8)}, 4)
    assert "high_packet_loss" not in active(rs, SWITCH, {"icmp": icmp(10, 9)}, 5)  # 10 %
    assert "high_packet_loss" not in active(rs, SWITCH, {"icmp": icmp(10, 8)}, 6)


def test_high_latency_threshold_accepts_durations() -> None:
    rs = rules({"rules": {"high_latency": {"threshold": "150ms", "recover": "100ms"}}})
    assert "high_latency" not in active(rs, SWITCH, {"icmp": icmp(3, 3, 0.149)}, 1)
    (obs,) = active(rs, SWITCH, {"icmp": icmp(3, 3, 0.151)}, 2)["high_latency"]
    assert obs.summary == "sw-closet-b2: slow replies (151ms on average)"
    assert "high_latency" in active(rs, SWITCH, {"icmp": icmp(3, 3, 0.12)}, 3)
    assert "high_latency" not in active(rs, SWITCH, {"icmp": icmp(3, 3, 0.09)}, 4)


def test_snmp_not_responding_only_while_ping_works() -> None:
    rs = rules()
    silent = result(Status.TIMEOUT, explanation="no answer within 2s")
    got = active(rs, SWITCH, {"icmp": icmp(3, 3), "snmp": silent})
    assert got["snmp_not_responding"][0].description == "no answer within 2s"
    assert "snmp_not_responding" not in active(rs, SWITCH, {"icmp": icmp(3, 0), "snmp": silent})
    assert "snmp_not_responding" not in active(rs, SWITCH, {"icmp": icmp(3, 3), "snmp": snmp()})


def test_snmp_auth_failure() -> None:
    rs = rules()
    bad = result(Status.AUTH_ERROR, explanation="wrong community")
    (obs,) = active(rs, SWITCH, {"icmp": icmp(3, 3), "snmp": bad})["snmp_auth_failure"]
    assert obs.summary == "sw-closet-b2: SNMP credentials rejected"
    assert "snmp_not_responding" not in active(rs, SWITCH, {"icmp": icmp(3, 3), "snmp": bad})


def test_tcp_service_down_per_port() -> None:
    rs = rules()
    got = active(rs, PRINTER, {
        "tcp-9100": result(Status.REFUSED, explanation="port 9100 refused"),
        "tcp-80": result(Status.OK, Sample.of("netmon_tcp_connect_seconds", 0.001, port=80)),
    })  # fmt: skip
    (obs,) = got["tcp_service_down"]
    assert obs.labels["port"] == "9100" and obs.reachability
    assert obs.summary == "library-mfp: TCP port 9100 not answering"


def test_device_rebooted_when_uptime_goes_back_for_the_window() -> None:
    rs = rules()

    def up(seconds: float) -> dict[str, ProbeResult]:
        return {"snmp": snmp(Sample.of("netmon_device_uptime_seconds", seconds, source="sysUpTime"))}

    assert "device_rebooted" not in active(rs, SWITCH, up(5000), 0)
    assert "device_rebooted" not in active(rs, SWITCH, up(5060), 60)
    (obs,) = active(rs, SWITCH, up(30), 120)["device_rebooted"]
    assert obs.summary == "sw-closet-b2 restarted (its uptime went back)"
    assert "device_rebooted" in active(rs, SWITCH, up(90), 180)
    assert "device_rebooted" not in active(rs, SWITCH, up(1050), 120 + 16 * 60)


def test_interface_down_only_for_ports_seen_up_and_never_admin_down() -> None:
    rs = rules()
    first = snmp(*iface("1", "Gi0/1", oper=1), *iface("2", "Gi0/2", oper=0),
                 *iface("3", "Gi0/3", oper=1))  # fmt: skip
    assert "interface_down" not in active(rs, SWITCH, {"snmp": first}, 0)
    later = snmp(*iface("1", "Gi0/1", oper=0), *iface("2", "Gi0/2", oper=0),
                 *iface("3", "Gi0/3", oper=0, admin=0))  # fmt: skip
    (obs,) = active(rs, SWITCH, {"snmp": later}, 60)["interface_down"]
    assert obs.labels["if_name"] == "Gi0/1" and obs.labels["if_index"] == "1"
    assert obs.summary == "sw-closet-b2: port Gi0/1 is down"
    back = snmp(*iface("1", "Gi0/1", oper=1), *iface("2", "Gi0/2", oper=0))
    assert "interface_down" not in active(rs, SWITCH, {"snmp": back}, 120)


def test_interface_down_for_listed_uplinks_even_if_never_up() -> None:
    rs = rules({"overrides": [{"target": "sw-closet-b2",
                               "rules": {"interface_down": {"uplinks": ["Gi0/2"]}}}]})  # fmt: skip
    down = snmp(*iface("1", "Gi0/1", oper=0), *iface("2", "Gi0/2", oper=0))
    got = active(rs, SWITCH, {"snmp": down}, 0)
    assert [o.labels["if_name"] for o in got["interface_down"]] == ["Gi0/2"]
    assert "interface_down" not in active(rs, PRINTER, {"snmp": down}, 0)


def test_interface_errors_rate_from_remembered_counters() -> None:
    rs = rules()
    t0 = snmp(*iface("1", "Gi0/1", oper=1, errors=1000))
    assert "interface_errors" not in active(rs, SWITCH, {"snmp": t0}, 0)  # one point: no rate
    t1 = snmp(*iface("1", "Gi0/1", oper=1, errors=1003))  # 0.05/s
    assert "interface_errors" not in active(rs, SWITCH, {"snmp": t1}, 60)
    t2 = snmp(*iface("1", "Gi0/1", oper=1, errors=1100))  # 100 in 120 s over the window
    (obs,) = active(rs, SWITCH, {"snmp": t2}, 120)["interface_errors"]
    assert obs.value == pytest.approx(100 / 120)
    assert obs.summary == "sw-closet-b2: port Gi0/1 has errors (0.83 per second)"
    # a counter reset (device reboot) is not a negative rate
    t3 = snmp(*iface("1", "Gi0/1", oper=1, errors=0))
    assert active(rs, SWITCH, {"snmp": t3}, 180)["interface_errors"][0].value == pytest.approx(100 / 180)


def test_interface_speed_dropped() -> None:
    rs = rules()
    assert "interface_speed_dropped" not in active(
        rs, SWITCH, {"snmp": snmp(*iface("1", "Gi0/1", oper=1, speed=125e6))}, 0)
    got = active(rs, SWITCH, {"snmp": snmp(*iface("1", "Gi0/1", oper=1, speed=12.5e6))}, 60)
    assert got["interface_speed_dropped"][0].summary == "sw-closet-b2: port Gi0/1 runs at 10% of its usual speed"
    # down ports are interface_down's business, not a speed drop
    got = active(rs, SWITCH, {"snmp": snmp(*iface("1", "Gi0/1", oper=0, speed=1.25e6))}, 120)
    assert "interface_speed_dropped" not in got and "interface_down" in got


# --- printers -----------------------------------------------------------------------


def test_printer_supply_low_and_empty() -> None:
    rs = rules()
    got = active(rs, PRINTER, {"snmp": snmp(*supply("1.1", "Black Toner", 0.08, "low"),
                                            *supply("1.2", "Cyan Toner", 0.5, "ok"),
                                            *supply("1.3", "Yellow Toner", 0.0, "empty"))}, 0)  # fmt: skip
    (low,) = got["printer_supply_low"]
    assert low.summary == "library-mfp: Black Toner low (8% left)"
    assert low.labels["supply"] == "Black Toner" and low.labels["index"] == "1.1"
    (empty,) = got["printer_supply_empty"]
    assert empty.labels["supply"] == "Yellow Toner" and empty.labels["severity"] == "critical"
    # hysteresis: 12 % is above the threshold (10 %) but below recover (15 %)
    assert "printer_supply_low" in active(rs, PRINTER, {"snmp": snmp(*supply("1.1", "Black Toner", 0.12, "ok"))}, 60)
    assert "printer_supply_low" not in active(rs, PRINTER, {"snmp": snmp(*supply("1.1", "Black Toner", 0.9, "ok"))}, 120)
    assert "printer_supply_low" not in active(rs, PRINTER, {"snmp": snmp(*supply("1.1", "Black Toner", 0.12, "ok"))}, 180)


def test_some_remaining_is_low_only_when_the_printer_says_toner_low() -> None:
    rs = rules()
    quiet = snmp(*supply("1.1", "Black Toner", None, "some_remaining"), *condition())
    assert "printer_supply_low" not in active(rs, PRINTER, {"snmp": quiet}, 0)
    warned = snmp(*supply("1.1", "Black Toner", None, "some_remaining"), *condition("low_toner"))
    (obs,) = active(rs, PRINTER, {"snmp": warned}, 60)["printer_supply_low"]
    assert obs.summary == "library-mfp: Black Toner low (the printer reports low toner)"


def test_waste_receptacle_nearly_full_or_full() -> None:
    rs = rules()
    box = "Waste Toner Box"
    assert "printer_waste_nearly_full" not in active(
        rs, PRINTER, {"snmp": snmp(*supply("1.5", box, 0.5, "ok", "receptacle"))}, 0)
    (obs,) = active(rs, PRINTER, {"snmp": snmp(*supply("1.5", box, 0.93, "nearly_full", "receptacle"))}, 60)[
        "printer_waste_nearly_full"]
    assert obs.summary == "library-mfp: Waste Toner Box nearly full (93% full)"
    (obs,) = active(rs, PRINTER, {"snmp": snmp(*supply("1.5", box, None, "full", "receptacle"))}, 120)[
        "printer_waste_nearly_full"]
    assert obs.summary == "library-mfp: Waste Toner Box is full"
    # a receptacle is never "supply low", however low its ratio
    assert "printer_supply_low" not in active(rs, PRINTER, {"snmp": snmp(*supply("1.5", box, 0.0, "ok", "receptacle"))}, 180)


@pytest.mark.parametrize(("bit", "rule", "summary"), [
    ("no_paper", "printer_paper_out", "library-mfp is out of paper"),
    ("jammed", "printer_jam", "library-mfp has a paper jam"),
    ("door_open", "printer_door_open", "library-mfp: a door is open"),
    ("service_requested", "printer_service_requested", "library-mfp asks for service"),
])  # fmt: skip
def test_printer_conditions(bit: str, rule: str, summary: str) -> None:
    rs = rules()
    (obs,) = active(rs, PRINTER, {"snmp": snmp(*condition(bit))})[rule]
    assert obs.summary == summary
    assert rule not in active(rs, PRINTER, {"snmp": snmp(*condition())}, 2000)


def test_printer_cover_open_is_a_door_open() -> None:
    got = active(rules(), PRINTER, {"snmp": snmp(
        *condition(), Sample.of("netmon_printer_cover_open", 1, cover="Front Cover", index="1.1"))})
    assert got["printer_door_open"][0].summary == "library-mfp: Front Cover is open"


def test_snmp_rules_keep_their_verdict_while_snmp_fails() -> None:
    rs = rules()
    low = {"snmp": snmp(*supply("1.1", "Black Toner", 0.05, "low"))}
    assert "printer_supply_low" in active(rs, PRINTER, low, 0)
    asleep = {"icmp": icmp(3, 3), "snmp": result(Status.TIMEOUT)}
    got = active(rs, PRINTER, asleep, 60)
    assert "printer_supply_low" in got and "snmp_not_responding" in got
    assert "printer_supply_low" not in active(rs, PRINTER, {"snmp": snmp(*supply("1.1", "Black Toner", 1.0, "ok"))}, 120)


# --- hosts and UPS ------------------------------------------------------------------


def storage(index: str, name: str, kind: str, size: float, used: float) -> list[Sample]:
    labels = {"index": index, "storage": name, "kind": kind}
    return [Sample.of("netmon_host_storage_size_bytes", size, **labels),
            Sample.of("netmon_host_storage_used_bytes", used, **labels)]  # fmt: skip


def test_disk_memory_and_cpu() -> None:
    rs = rules()
    got = active(rs, HOST, {"snmp": snmp(
        *storage("1", "Physical memory", "ram", 100, 97),
        *storage("31", "/", "fixed_disk", 100, 95),
        *storage("32", "/home", "fixed_disk", 100, 50),
        *storage("66", "/media/iso", "fixed_disk", 100, 100),
        *storage("35", "/run", "fixed_disk", 100, 100),
        Sample.of("netmon_host_cpu_load_ratio", 1.0, cpu="1"),
        Sample.of("netmon_host_cpu_load_ratio", 0.9, cpu="2"),
    )})  # fmt: skip
    assert [o.labels["storage"] for o in got["disk_nearly_full"]] == ["/"]
    assert got["disk_nearly_full"][0].summary == "srv-1: disk / is 95% full"
    assert got["memory_nearly_full"][0].summary == "srv-1: memory 97% used"
    (cpu,) = got["high_cpu"]
    assert cpu.value == pytest.approx(0.95) and "cpu" not in cpu.labels
    calm = active(rs, HOST, {"snmp": snmp(*storage("31", "/", "fixed_disk", 100, 80),
                                          Sample.of("netmon_host_cpu_load_ratio", 0.5, cpu="1"))}, 2000)  # fmt: skip
    assert not calm


def test_ups_rules() -> None:
    rs = rules()
    ups = TargetInfo("ups-1", {"role": "ups"})
    got = active(rs, ups, {"snmp": snmp(Sample.of("netmon_ups_on_battery", 1),
                                        Sample.of("netmon_ups_battery_replace_needed", 1))})  # fmt: skip
    assert got["ups_on_battery"][0].labels["severity"] == "critical"
    assert "ups_battery_replace" in got
    assert not active(rs, ups, {"snmp": snmp(Sample.of("netmon_ups_on_battery", 0),
                                             Sample.of("netmon_ups_battery_replace_needed", 0))}, 2000)  # fmt: skip


# --- settings -----------------------------------------------------------------------


def threshold_for(rs: RuleSet, target: TargetInfo) -> float:
    role, group = target.labels.get("role", ""), target.labels.get("group", "")
    return next(r.threshold for r in rs.effective(role, group, target.name) if r.name == "printer_supply_low")


def test_override_precedence_target_group_role_rules_default() -> None:
    rs = rules({
        "rules": {"printer_supply_low": {"threshold": 0.2}},
        "overrides": [
            {"target": "library-mfp", "rules": {"printer_supply_low": {"threshold": 0.05}}},
            {"role": "printer", "rules": {"printer_supply_low": {"threshold": 0.3, "for": "1h"}}},
            {"group": "printers", "rules": {"printer_supply_low": {"threshold": 0.15}}},
        ],
    })  # fmt: skip
    assert threshold_for(rs, PRINTER) == 0.05
    other = TargetInfo("office-mfp", {"role": "printer", "group": "printers"})
    assert threshold_for(rs, other) == 0.15
    elsewhere = TargetInfo("staff-mfp", {"role": "printer", "group": "staff"})
    assert threshold_for(rs, elsewhere) == 0.3
    assert threshold_for(rs, TargetInfo("x", {"role": "switch"})) == 0.2
    assert threshold_for(rules(), PRINTER) == 0.1
    # fields merge: the group's threshold, the role's `for`
    eff = next(r for r in rs.effective("printer", "printers", "office-mfp") if r.name == "printer_supply_low")
    assert eff.for_ == 3600
    # and the verdicts follow: 7 % is not low at 5 % (target), low at 15 % (group)
    low = {"snmp": snmp(*supply("1.1", "Black Toner", 0.07, "low"))}
    assert "printer_supply_low" not in active(rs, PRINTER, low)
    assert "printer_supply_low" in active(rs, other, low)


def test_disabled_rule_and_disabled_per_group() -> None:
    down = {"icmp": icmp(3, 0)}
    assert "device_down" not in active(rules({"rules": {"device_down": {"enabled": False}}}), SWITCH, down)
    rs = rules({"overrides": [{"group": "closets", "rules": {"device_down": {"enabled": False}}}]})
    assert "device_down" not in active(rs, SWITCH, down)
    assert "device_down" in active(rs, PRINTER, down)


def test_recover_on_the_wrong_side_after_an_override_is_clamped() -> None:
    rs = rules({"rules": {"printer_supply_low": {"threshold": 0.3}}})
    eff = next(r for r in rs.rules if r.name == "printer_supply_low")
    assert eff.recover == 0.3


def test_custom_rule() -> None:
    rs = rules({"custom_rules": [{
        "name": "busy_printer", "metric": "netmon_printer_pages_total", "match": {},
        "op": ">", "threshold": 100000, "for": "0s", "severity": "info",
        "summary": "{target} has printed {value:.0f} pages",
    }]})  # fmt: skip
    (obs,) = active(rs, PRINTER, {"snmp": snmp(Sample.of("netmon_printer_pages_total", 123456))})["busy_printer"]
    assert obs.summary == "library-mfp has printed 123456 pages"
    assert obs.labels["severity"] == "info" and obs.for_seconds == 0
    assert "busy_printer" not in active(rs, PRINTER, {"snmp": snmp(Sample.of("netmon_printer_pages_total", 5))}, 2000)


@pytest.mark.parametrize(("custom", "words"), [
    ({"metric": "netmon_no_such_metric"}, "unknown metric"),
    ({"threshold": "lots"}, "not a duration"),
    ({"op": "=>"}, "op"),
    ({"name": "Busy-Printer"}, "snake_case"),
    ({"name": "device_down"}, "already used"),
    ({"colour": "red"}, "colour"),
    ({"summary": "{target"}, "bad template"),
])  # fmt: skip
def test_custom_rule_validation(custom: dict[str, Any], words: str) -> None:
    rule = {"name": "busy", "metric": "netmon_printer_pages_total", "op": ">", "threshold": 1,
            "summary": "{target}", **custom}  # fmt: skip
    with pytest.raises(ValidationError, match=words):
        RulesSettings.model_validate({"custom_rules": [rule]})


def test_threshold_spellings() -> None:
    s = RulesSettings.model_validate({"rules": {"printer_supply_low": {"threshold": "15%"},
                                                "high_latency": {"threshold": "150ms"}}})  # fmt: skip
    assert s.rules["printer_supply_low"].threshold == pytest.approx(0.15)
    assert s.rules["high_latency"].threshold == pytest.approx(0.15)
    with pytest.raises(ValidationError, match="exactly one"):
        RulesSettings.model_validate({"overrides": [{"target": "a", "group": "b", "rules": {}}]})
    with pytest.raises(ValidationError):
        RulesSettings.model_validate({"rules": {"device_down": {"treshold": 1}}})


def test_check_references() -> None:
    s = RulesSettings.model_validate({
        "rules": {"no_such_rule": {"enabled": False}},
        "overrides": [
            {"group": "ghosts", "rules": {"device_down": {"for": "5m"}}},
            {"target": "sw-core", "rules": {"interface_dwn": {"uplinks": ["Gi1/0/48"]}}},
        ],
    })  # fmt: skip
    issues = check_references(s, groups={"closets"}, targets={"sw-core"}, schedules=set())
    assert issues == [
        (("rules", "no_such_rule"), "unknown rule 'no_such_rule'; see `netmon alerts export-rules`"),
        (("overrides", 0, "group"), "unknown group 'ghosts'"),
        (("overrides", 1, "rules", "interface_dwn"),
         "unknown rule 'interface_dwn'; see `netmon alerts export-rules`"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no_such_rule"):
        RuleSet.from_settings(s)
    assert check_references(RulesSettings(), groups=set(), targets=set(), schedules=set()) == []


def test_go_template_translation() -> None:
    assert go_template("{target}: {supply} low ({value:.0%} left)") == (
        "{{ $labels.target }}: {{ $labels.supply }} low ({{ $value | humanizePercentage }} left)")
    assert go_template("{value:duration} / {value:.2f} / {value}") == (
        '{{ $value | humanizeDuration }} / {{ printf "%.2f" $value }} / {{ $value }}')


def test_rule_model_is_shared_by_custom_rules() -> None:
    """Custom rules are plain :class:`Rule` objects, the same model as the pack."""
    s = RulesSettings.model_validate({"custom_rules": [dict(DEFAULT_RULES[0], name="my_down")]})
    assert isinstance(s.custom_rules[0], Rule)
    got = active(rules({"custom_rules": [dict(DEFAULT_RULES[0], name="my_down")]}), SWITCH,
                 {"icmp": icmp(3, 0)})  # fmt: skip
    assert {"device_down", "my_down"} <= set(got)


def test_a_new_ping_does_not_recompute_snmp_rules_but_a_new_walk_does() -> None:
    """A switch's ping result arrives without a new SNMP walk: SNMP rules keep their
    verdict (and their rate memory is not fed the same walk twice); a new walk counts."""
    rs = rules()

    def run(r: ProbeResult, at: float) -> ProbeResult:
        return dataclasses.replace(r, started_at=at, duration_seconds=0.5)

    low = run(snmp(*supply("1.1", "Black Toner", 0.05, "low")), 100.0)
    got = active(rs, PRINTER, {"icmp": run(icmp(3, 3), 100.0), "snmp": low}, 101)
    assert "printer_supply_low" in got
    got = active(rs, PRINTER, {"icmp": run(icmp(3, 0), 160.0), "snmp": low}, 161)
    assert "printer_supply_low" in got and "device_down" in got  # the ping is re-evaluated
    refilled = run(snmp(*supply("1.1", "Black Toner", 0.9, "ok")), 220.0)
    got = active(rs, PRINTER, {"icmp": run(icmp(3, 3), 220.0), "snmp": refilled}, 221)
    assert "printer_supply_low" not in got and "device_down" not in got


# --- memory -------------------------------------------------------------------------


def test_a_series_unseen_for_its_window_plus_an_hour_is_forgotten() -> None:
    """Memory of a series outlives its window by an hour (a port or disk that comes
    back continues), then it is forgotten at the next evaluation of the target."""

    def up(seconds: float) -> dict[str, ProbeResult]:
        uptime = Sample.of("netmon_device_uptime_seconds", seconds, source="sysUpTime")
        return {"snmp": snmp(uptime)}

    window_and_hour = 15 * 60 + 3600
    for gap, remembered in ((window_and_hour - 60, True), (window_and_hour + 60, False)):
        rs = rules()
        assert "device_rebooted" not in active(rs, SWITCH, up(5000), 0)
        # only pings in between: the uptime series is not seen
        assert "device_rebooted" not in active(rs, SWITCH, {"icmp": icmp(3, 3)}, gap)
        got = active(rs, SWITCH, up(30), gap + 30)  # lower than the remembered 5000
        assert ("device_rebooted" in got) is remembered, gap


def test_rule_memory_per_switch_port_is_small() -> None:
    """What the rules keep per interface (four series with memory: two rates, two
    max_over_time) stays a few hundred bytes: flat arrays, not objects per series."""
    import gc
    import tracemalloc

    rs = rules()
    switches = [TargetInfo(f"sw-{i}", {"role": "switch", "group": "closets"}) for i in range(20)]

    def walk(t: float) -> ProbeResult:
        samples: list[Sample] = []
        for k in range(1, 49):
            errors = t // 60 * (k % 2)  # slowly moving counters: no alert
            samples += iface(str(10100 + k), f"Gi1/0/{k}", oper=int(k < 40), errors=errors)
        return dataclasses.replace(snmp(*samples), started_at=t, duration_seconds=0.5)

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for t in (0.0, 60.0, 120.0, 180.0):
            for sw in switches:
                rs.evaluate(sw, {"snmp": walk(t)}, t + 1)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    per_port = kept / (len(switches) * 48)
    assert per_port < 1000, f"{per_port:.0f} bytes per port"  # ~2,900 with objects per series


def test_the_stores_compact_results_give_the_same_verdicts() -> None:
    """The daemon hands the rules the store's compact results (read through ``series()``,
    without Sample objects): same observations as the probe's own results."""
    from monitor.store.results import CompactResult

    plain, compact = rules(), rules()
    for t, (oper, errors) in enumerate([(1, 0.0), (1, 600.0), (0, 1800.0)]):
        at = 60.0 * t
        results = {
            "icmp": dataclasses.replace(icmp(3, 3), started_at=at, duration_seconds=0.5),
            "snmp": dataclasses.replace(snmp(*iface("1", "Gi0/1", oper=oper, errors=errors)),
                                        started_at=at, duration_seconds=0.5),
        }  # fmt: skip
        want = plain.evaluate(SWITCH, results, at + 1)
        got = compact.evaluate(SWITCH, {k: CompactResult.of(r) for k, r in results.items()}, at + 1)
        assert got == want
    assert {o.rule for o in want} == {"interface_down", "interface_errors"}
