"""The default rule pack: on out of the box, each rule overridable by name.

Plain data in the shape of :class:`alerts.rules.Rule` (the same shape users write under
``alerts.custom_rules``), read by both the Python evaluator and the PromQL exporter.
Names are alert names: snake_case and stable (silences, routes and dashboards use them).

Choices worth knowing:

- ``printer_supply_low`` fires on a consumable whose level ratio is at or below the
  threshold (10 %, clears above 15 %). A supply the printer reports only as "some
  remaining" (RFC 3805 level -3: amount unknown) is NOT low by itself: many printers
  report -3 for a full third-party cartridge. It counts as low only while the printer
  itself sets the ``lowToner`` bit of hrPrinterDetectedErrorState.
- Waste receptacles: the probe already turns RFC 3805's "remaining space" level into the
  share filled, so ``printer_waste_nearly_full`` compares that share (90 %, clears below
  85 %), or fires on the state ``full`` when the capacity is unknown.
- ``device_rebooted`` watches sysUpTime, which also goes back when only the SNMP agent
  restarts (and wraps after 497 days); it stays active for the 15 minute window.
- ``interface_down`` watches ports seen up in the last day (so unused ports stay
  quiet), except access ports whose only devices are lab machines outside their
  schedule (``netmon_interface_quiet``: a PC asleep at night takes its port down), and
  always the uplinks: ports with an inventory switch as LLDP/CDP neighbour
  (``netmon_interface_uplink``, from the topology) and those an override lists as
  ``uplinks``; admin-down ports never alert.
- ``snmp_not_responding`` and ``snmp_auth_failure`` read ``netmon_probe_status``, which is
  one series per probe run labelled with its status (not a state set of zeros): the
  ``status="timeout"`` series exists only while the SNMP probe times out. They keep
  ``== 1``, which also holds for an older netmon that served the whole state set.
- ``disk_nearly_full`` skips pseudo and read-only mounts that are always "full"
  (/run, /dev, /sys, /proc, /snap, /media, ISO images).
"""

from __future__ import annotations

from typing import Any

DAY = "24h"

_IF = ["if_index", "if_name"]
_SUPPLY = ["index", "supply"]
_COND = ["device"]


def _condition(name: str) -> dict[str, Any]:
    return {"metric": "netmon_printer_condition", "match": {"condition": name}, "op": "==",
            "threshold": 1}  # fmt: skip


DEFAULT_RULES: list[dict[str, Any]] = [
    # --- reachability ---
    {
        "name": "device_down",
        "metric": "netmon_icmp_packets_sent", "op": ">", "threshold": 0,
        "unless": [{"metric": "netmon_icmp_packets_received", "op": ">", "threshold": 0}],
        "for": "2m", "severity": "critical", "reachability": True,
        "summary": "{target} is down: no reply to {value:.0f} pings",
        "description": "{explanation}",
    },
    {
        "name": "high_packet_loss",
        "metric": "netmon_icmp_packet_loss_ratio", "op": ">", "threshold": 0.25, "recover": 0.1,
        "unless": [{"metric": "netmon_icmp_packets_received", "op": "==", "threshold": 0}],
        "for": "5m", "severity": "warning", "reachability": True,
        "summary": "{target}: {value:.0%} of pings lost",
        "description": "{explanation}",
    },
    {
        "name": "high_latency",
        "metric": "netmon_icmp_rtt_seconds", "match": {"stat": "avg"},
        "op": ">", "threshold": "200ms", "recover": "150ms",
        "for": "5m", "severity": "warning", "reachability": True,
        "summary": "{target}: slow replies ({value:duration} on average)",
        "description": "{explanation}",
    },
    {
        "name": "snmp_not_responding",
        "metric": "netmon_probe_status", "probe": "snmp", "match": {"status": "timeout"},
        "op": "==", "threshold": 1,
        "and": [{"metric": "netmon_probe_success", "probe": "icmp", "op": "==", "threshold": 1}],
        "for": "5m", "severity": "warning", "reachability": True,
        "summary": "{target}: SNMP agent not answering (ping works)",
        "description": "{explanation}",
    },
    {
        "name": "snmp_auth_failure",
        "metric": "netmon_probe_status", "probe": "snmp", "match": {"status": "auth_error"},
        "op": "==", "threshold": 1,
        "for": "2m", "severity": "warning",
        "summary": "{target}: SNMP credentials rejected",
        "description": "{explanation}",
    },
    {
        "name": "tcp_service_down",
        "metric": "netmon_probe_success", "probe": "tcp", "op": "==", "threshold": 0,
        "instance": ["port"],
        "for": "2m", "severity": "warning", "reachability": True,
        "summary": "{target}: TCP port {port} not answering",
        "description": "{explanation}",
    },
    # --- device ---
    {
        "name": "device_rebooted",
        "metric": "netmon_device_uptime_seconds", "match": {"source": "sysUpTime"},
        "fn": "resets", "window": "15m", "op": ">", "threshold": 0,
        "for": "0s", "severity": "warning",
        "summary": "{target} restarted (its uptime went back)",
    },
    # --- interfaces ---
    {
        "name": "interface_down",
        "metric": "netmon_interface_oper_up", "op": "==", "threshold": 0, "instance": _IF,
        "and": [{"metric": "netmon_interface_oper_up", "fn": "max_over_time", "window": DAY,
                 "op": "==", "threshold": 1, "on": ["if_index"]}],
        "unless": [{"metric": "netmon_interface_admin_up", "op": "==", "threshold": 0,
                    "on": ["if_index"]},
                   {"metric": "netmon_interface_quiet", "op": "==", "threshold": 1,
                    "on": ["if_index"]}],
        "or_when": [{
            "metric": "netmon_interface_oper_up", "op": "==", "threshold": 0,
            "and": [{"metric": "netmon_interface_uplink", "op": "==", "threshold": 1,
                     "on": ["if_index"]}],
            "unless": [{"metric": "netmon_interface_admin_up", "op": "==", "threshold": 0,
                        "on": ["if_index"]}],
        }],
        "for": "1m", "severity": "warning",
        "summary": "{target}: port {if_name} is down",
    },
    {
        "name": "interface_errors",
        "metric": ["netmon_interface_receive_errors_total", "netmon_interface_transmit_errors_total"],
        "fn": "rate", "window": "5m", "op": ">", "threshold": 0.1, "recover": 0.02,
        "instance": _IF,
        "for": "10m", "severity": "warning",
        "summary": "{target}: port {if_name} has errors ({value:.2f} per second)",
    },
    {
        "name": "interface_speed_dropped",
        "metric": "netmon_interface_speed_bytes",
        "divide_by": {"metric": "netmon_interface_speed_bytes", "fn": "max_over_time",
                      "window": DAY},
        "op": "<", "threshold": 1, "instance": _IF,
        "and": [{"metric": "netmon_interface_oper_up", "op": "==", "threshold": 1,
                 "on": ["if_index"]}],
        "for": "5m", "severity": "warning",
        "summary": "{target}: port {if_name} runs at {value:.0%} of its usual speed",
    },
    # --- printers ---
    {
        "name": "printer_supply_low",
        "metric": "netmon_printer_supply_level_ratio", "match": {"class": "consumable"},
        "op": "<=", "threshold": 0.10, "recover": 0.15, "instance": _SUPPLY,
        "unless": [{"metric": "netmon_printer_supply_state", "match": {"state": "empty"},
                    "op": "==", "threshold": 1, "on": ["index"]}],
        "or_when": [{
            "metric": "netmon_printer_supply_state",
            "match": {"class": "consumable", "state": "some_remaining"}, "op": "==",
            "threshold": 1,
            "and": [{**_condition("low_toner")}],
            "summary": "{target}: {supply} low (the printer reports low toner)",
        }],
        "for": "5m", "severity": "warning",
        "summary": "{target}: {supply} low ({value:.0%} left)",
    },
    {
        "name": "printer_supply_empty",
        "metric": "netmon_printer_supply_state", "match": {"class": "consumable", "state": "empty"},
        "op": "==", "threshold": 1, "instance": _SUPPLY,
        "for": "5m", "severity": "critical",
        "summary": "{target}: {supply} is empty",
    },
    {
        "name": "printer_waste_nearly_full",
        "metric": "netmon_printer_supply_level_ratio", "match": {"class": "receptacle"},
        "op": ">=", "threshold": 0.90, "recover": 0.85, "instance": _SUPPLY,
        "or_when": [{
            "metric": "netmon_printer_supply_state", "match": {"class": "receptacle", "state": "full"},
            "op": "==", "threshold": 1, "summary": "{target}: {supply} is full",
        }],
        "for": "5m", "severity": "warning",
        "summary": "{target}: {supply} nearly full ({value:.0%} full)",
    },
    {**_condition("no_paper"), "name": "printer_paper_out", "instance": _COND,
     "for": "5m", "severity": "warning", "summary": "{target} is out of paper"},
    {**_condition("jammed"), "name": "printer_jam", "instance": _COND,
     "for": "5m", "severity": "warning", "summary": "{target} has a paper jam"},
    {**_condition("door_open"), "name": "printer_door_open", "instance": _COND,
     "or_when": [{"metric": "netmon_printer_cover_open", "op": "==", "threshold": 1,
                  "summary": "{target}: {cover} is open"}],
     "for": "10m", "severity": "warning", "summary": "{target}: a door is open"},
    {**_condition("service_requested"), "name": "printer_service_requested",
     "instance": _COND, "for": "15m", "severity": "warning",
     "summary": "{target} asks for service"},
    # --- hosts ---
    {
        "name": "disk_nearly_full",
        "metric": "netmon_host_storage_used_bytes", "match": {"kind": "fixed_disk"},
        "exclude": {"storage": "/(run|dev|sys|proc|snap|media|mnt/cdrom)(/.*)?|.*\\.iso"},
        "divide_by": {"metric": "netmon_host_storage_size_bytes"},
        "op": ">", "threshold": 0.90, "recover": 0.85, "instance": ["index", "storage"],
        "for": "15m", "severity": "warning",
        "summary": "{target}: disk {storage} is {value:.0%} full",
    },
    {
        "name": "memory_nearly_full",
        "metric": "netmon_host_storage_used_bytes", "match": {"kind": "ram"},
        "divide_by": {"metric": "netmon_host_storage_size_bytes"},
        "op": ">", "threshold": 0.95, "recover": 0.90, "instance": ["index", "storage"],
        "for": "15m", "severity": "warning",
        "summary": "{target}: memory {value:.0%} used",
    },
    {
        "name": "high_cpu",
        "metric": "netmon_host_cpu_load_ratio", "aggregate": "avg", "instance": [],
        "op": ">", "threshold": 0.90, "recover": 0.80,
        "for": "15m", "severity": "warning",
        "summary": "{target}: CPU {value:.0%} busy",
    },
    # --- UPS ---
    {
        "name": "ups_on_battery",
        "metric": "netmon_ups_on_battery", "op": "==", "threshold": 1,
        "for": "1m", "severity": "critical",
        "summary": "{target} is running on battery (power cut?)",
    },
    {
        "name": "ups_battery_replace",
        "metric": "netmon_ups_battery_replace_needed", "op": "==", "threshold": 1,
        "for": "5m", "severity": "warning",
        "summary": "{target}: the UPS battery needs replacing",
    },
]
