"""interface_down with the topology's port roles (pure logic, hand-built results as the
daemon stores them: the switch's "snmp" result and its "topology-ports" next to it)."""

from __future__ import annotations

from alerts.rules import RuleSet, RulesSettings
from monitor.topology import PORTS
from probes.result import Sample
from tests.unit.test_alert_rules import SWITCH, active, iface, snmp


def _ports(*samples: Sample) -> dict[str, object]:
    return {PORTS: snmp(*samples)}


def test_uplinks_alert_even_if_never_seen_up_and_quiet_lab_ports_do_not() -> None:
    rs = RuleSet.from_settings(RulesSettings())
    uplink = Sample.of("netmon_interface_uplink", 1, if_index="24", if_name="0/24", neighbour="sw-core")
    quiet = Sample.of("netmon_interface_quiet", 1, if_index="1", if_name="0/1")
    up = snmp(*iface("1", "0/1", oper=1), *iface("2", "0/2", oper=1), *iface("24", "0/24", oper=0))
    first = active(rs, SWITCH, {"snmp": up, **_ports(uplink)}, 0)  # type: ignore[dict-item]
    # the uplink never was up in the window: it alerts all the same
    assert [o.labels["if_name"] for o in first["interface_down"]] == ["0/24"]
    down = snmp(*iface("1", "0/1", oper=0), *iface("2", "0/2", oper=0), *iface("24", "0/24", oper=0))
    later = active(rs, SWITCH, {"snmp": down, **_ports(uplink, quiet)}, 60)  # type: ignore[dict-item]
    # 0/1's only device is a lab PC outside its schedule: quiet; 0/2 alerts as before
    assert sorted(o.labels["if_name"] for o in later["interface_down"]) == ["0/2", "0/24"]
    awake = active(rs, SWITCH, {"snmp": down, **_ports(uplink)}, 120)  # type: ignore[dict-item]
    assert sorted(o.labels["if_name"] for o in awake["interface_down"]) == ["0/1", "0/2", "0/24"]
    admin_down = snmp(*iface("24", "0/24", oper=0, admin=0))
    assert "interface_down" not in active(rs, SWITCH, {"snmp": admin_down, **_ports(uplink)}, 180)  # type: ignore[dict-item]


def test_exported_rule_reads_the_same_port_roles() -> None:
    [rule] = [r for r in RuleSet.from_settings(RulesSettings()).export_prometheus()["groups"][0]["rules"]
              if r["alert"] == "interface_down"]  # fmt: skip
    assert "unless on(target, if_index) (netmon_interface_quiet == 1)" in rule["expr"]
    assert "and on(target, if_index) (netmon_interface_uplink == 1)" in rule["expr"]
