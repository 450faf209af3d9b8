"""The six netmon dashboards. Every query uses only netmon's own metrics
(probes/metrics.py, monitor/exporter.py), which carry the target's static labels, so
no query needs a join with another job's series."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders import (
    bargauge,
    stat,
    statetimeline,
    statushistory,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.kit import (
    HIGH_IS_BAD,
    LOW_IS_BAD,
    SHARE_UP,
    UP_DOWN,
    Board,
    label_var,
    q,
    sel,
    steps,
    value_map,
)

PLACE = ("site", "building", "role")
#: Per-device health: 1 when every probe of the target succeeds, else 0.
DEVICE_UP = "min by (target, site, building, role, room) (netmon_probe_success{%s})"
DAY = 86400
LAB, AVG, DISK = 'role="lab"', 'stat="avg"', 'kind="fixed_disk"'
CONSUMABLE, RECEPTACLE = 'class="consumable"', 'class="receptacle"'
#: Supply states, worst first, as words and colours for tables.
SUPPLY_STATES = value_map({
    "ok": ("ok", "green"), "low": ("low", "orange"), "empty": ("empty", "red"),
    "nearly_full": ("nearly full", "orange"), "full": ("full", "red"),
    "some_remaining": ("some left (level not reported)", "blue"),
    "unknown": ("unknown", "text"), "unlimited": ("unlimited", "green"),
})  # fmt: skip


def _stat(title: str, unit: str = "none", description: str = "") -> stat.Panel:
    return stat.Panel().title(title).description(description).unit(unit).graph_mode(
        common.BigValueGraphMode.AREA
    )


def _bars(title: str, unit: str, thresholds: object, description: str = "") -> bargauge.Panel:
    return (
        bargauge.Panel().title(title).description(description).unit(unit).min(0)
        .thresholds(thresholds).display_mode(common.BarGaugeDisplayMode.GRADIENT)  # type: ignore[arg-type]
        .orientation(common.VizOrientation.HORIZONTAL)
    )  # fmt: skip


def _table(title: str, description: str = "", *transformations: dm.DataTransformerConfig) -> table.Panel:
    panel = table.Panel().title(title).description(description)
    for transformation in transformations:
        panel = panel.with_transformation(transformation)
    return panel


def _series(title: str, unit: str, description: str = "") -> timeseries.Panel:
    return timeseries.Panel().title(title).description(description).unit(unit).fill_opacity(10)


def _state_column(name: str, mapping: list[dm.ValueMapping]) -> list[dm.DynamicConfigValue]:
    return [dm.DynamicConfigValue("mappings", mapping),
            dm.DynamicConfigValue("custom.cellOptions", {"type": "color-background"})]


HIDE_TIME = dm.DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}})
#: For state sets and _info series, whose value (always 1) says nothing.
LABELS_ONLY = dm.DataTransformerConfig(
    id_val="organize", options={"excludeByName": {"Time": True, "Value": True}}
)
MERGE = dm.DataTransformerConfig(id_val="merge", options={})


def _up_total(filters: str, by: str) -> tuple[str, str]:
    """Devices up and devices in total per ``by`` label."""
    per_device = DEVICE_UP % filters
    return f"sum by ({by}) ({per_device})", f"count by ({by}) ({per_device})"


def overview() -> Board:
    f = sel(by=PLACE)
    devices = DEVICE_UP % f
    board = Board("netmon-overview", "netmon / School overview",
                  "Which devices are up, what is firing, where the network is slow.")
    board.variables(
        label_var("site", "Site", "netmon_probe_success"),
        label_var("building", "Building", "netmon_probe_success", after=["site"]),
        label_var("role", "Role", "netmon_probe_success", after=["site", "building"]),
    )
    board.row("Devices")
    board.add(_stat("Devices up").thresholds(steps((None, "green"))),
              q(f"count({devices} == 1) or vector(0)", instant=True), w=4, h=4)
    board.add(_stat("Devices down", description="A device is down when any of its probes fails.")
              .thresholds(steps((None, "green"), (1, "red"))),
              q(f"count({devices} == 0) or vector(0)", instant=True), w=4, h=4)
    board.add(_stat("Active alerts", description="Firing alerts that are not suppressed.")
              .thresholds(steps((None, "green"), (1, "red"))),
              q('sum(netmon_alerts{state="firing",suppressed="none"}) or vector(0)', instant=True), w=4, h=4)
    board.add(_stat("Share of devices up", "percentunit").thresholds(SHARE_UP),
              q(f"avg({devices})", instant=True), w=4, h=4)
    board.add(_stat("Lab machines up", "percentunit").thresholds(SHARE_UP),
              q(f"avg({DEVICE_UP % sel(LAB, by=('site', 'building'))})", instant=True),
              w=4, h=4)
    board.add(_stat("Slowest reply (avg RTT)", "s").thresholds(steps((None, "green"), (0.05, "orange"), (0.2, "red"))),
              q(f'max(netmon_icmp_rtt_seconds{{{sel(AVG, by=PLACE)}}})', instant=True), w=4, h=4)
    for label in PLACE:
        up, total = _up_total(f, label)
        board.add(_bars(f"Devices up by {label}", "percentunit", SHARE_UP).max(1),
                  q(f"{up} / {total}", f"{{{{{label}}}}}", instant=True), w=8, h=7)
    board.add(_table("Devices down", "Devices with a failing probe; the device page says why.", LABELS_ONLY),
              q(f"{devices} == 0", table=True), w=12)
    board.add(_table("Active alerts", "Alert instances by state, severity and suppression reason.", HIDE_TIME)
              .override_by_name("Value", [dm.DynamicConfigValue("displayName", "instances")]),
              q("sum by (state, severity, suppressed) (netmon_alerts) > 0", table=True), w=12)
    board.row("Network quality")
    board.add(_bars("Worst packet loss", "percentunit", steps((None, "green"), (0.01, "orange"), (0.05, "red"))).max(1),
              q(f"topk(10, netmon_icmp_packet_loss_ratio{{{f}}})", "{{target}}", instant=True))
    board.add(_bars("Worst latency (avg RTT)", "s", steps((None, "green"), (0.05, "orange"), (0.2, "red"))),
              q(f'topk(10, netmon_icmp_rtt_seconds{{{sel(AVG, by=PLACE)}}})', "{{target}}", instant=True))
    board.add(_series("Loss over time (worst 5)", "percentunit"),
              q(f"topk(5, netmon_icmp_packet_loss_ratio{{{f}}})", "{{target}}"))
    board.add(_series("Latency over time (worst 5, avg RTT)", "s"),
              q(f'topk(5, netmon_icmp_rtt_seconds{{{sel(AVG, by=PLACE)}}})', "{{target}}"))
    board.row("Lab rooms")
    up, total = _up_total(sel(LAB, by=("site", "building")), "room")
    board.add(_table("Lab rooms: machines up", "Machines answering their probes, of all machines in the room.",
                     MERGE, dm.DataTransformerConfig(id_val="organize", options={
                         "excludeByName": {"Time": True},
                         "renameByName": {"Value #A": "up", "Value #B": "machines"}}))
              .override_by_name("up", [dm.DynamicConfigValue("custom.cellOptions", {"type": "color-text"})]),
              q(up, table=True), q(total, table=True), w=12)
    board.add(_bars("Lab rooms: share up", "percentunit", SHARE_UP).max(1),
              q(f"{up} / {total}", "room {{room}}", instant=True), w=12)
    return board


def printers() -> Board:
    f = sel(by=("site", "building", "target"))
    consumable = f'netmon_printer_supply_level_ratio{{{sel(CONSUMABLE, by=("site", "building", "target"))}}}'
    board = Board("netmon-printers", "netmon / Printers", "Supplies, trays, errors and page counts.")
    board.variables(
        label_var("site", "Site", "netmon_printer_supply_state"),
        label_var("building", "Building", "netmon_printer_supply_state", after=["site"]),
        label_var("target", "Printer", "netmon_printer_supply_state", after=["site", "building"]),
    )
    board.row("Supplies")
    board.add(_bars("Toner and ink levels", "percentunit", LOW_IS_BAD,
                    "Consumables whose level the printer reports as a share of capacity.").max(1),
              q(consumable, "{{target}} · {{supply}}", instant=True), w=12, h=10)
    board.add(_bars("Waste containers", "percentunit", HIGH_IS_BAD, "Receptacles: how full they are.").max(1),
              q(f'netmon_printer_supply_level_ratio{{{sel(RECEPTACLE, by=("site", "building", "target"))}}}',
                "{{target}} · {{supply}}", instant=True), w=12, h=10)
    board.add(_table("Supply states", "Every supply's state; 'some left' means the printer only says it is not empty.",
                     LABELS_ONLY).override_by_name("state", _state_column("state", SUPPLY_STATES)),
              q(f"max by (target, room, supply, color, class, state) (netmon_printer_supply_state{{{f}}} == 1)",
                table=True), w=12, h=10)
    board.add(
        _bars("Days of toner left (estimate)", "d", steps((None, "red"), (7, "orange"), (21, "green")),
              "Level divided by the average fall per day over the last 7 days (linear fit, deriv). "
              "Assumes printing continues as in that week; a fresh cartridge spoils the estimate "
              "for up to 7 days. Shown as 365 when the level is not falling.").max(365)
        .mappings([dm.RangeMap(dm.DashboardRangeMapOptions(
            from_val=365, result=dm.ValueMappingResult(text="not falling", color="green")))]),
        q(f"clamp_max({consumable} / clamp_min(-deriv({consumable}[7d]), 1e-12) / {DAY}, 365)",
          "{{target}} · {{supply}}", instant=True), w=12, h=10)
    board.row("Paper and errors")
    board.add(_table("Paper trays", "", LABELS_ONLY).override_by_name("state", _state_column("state", SUPPLY_STATES)),
              q(f"max by (target, room, tray, state) (netmon_printer_tray_state{{{f}}} == 1)", table=True), w=12)
    board.add(_bars("Tray levels", "percentunit", LOW_IS_BAD).max(1),
              q(f"netmon_printer_tray_level_ratio{{{f}}}", "{{target}} · {{tray}}", instant=True), w=12)
    board.add(_table("Error conditions now", "What hrPrinterDetectedErrorState reports (jammed, no paper, ...).",
                     LABELS_ONLY), q(f"max by (target, room, condition) (netmon_printer_condition{{{f}}} == 1)", table=True), w=12)
    board.add(statetimeline.Panel().title("Printers with an error condition").mappings(
                  value_map({"0": ("fine", "green"), "1": ("error", "red")})),
              q(f"max by (target) (netmon_printer_condition{{{f}}})", "{{target}}"), w=12)
    board.add(_table("Printer alert table", "Active rows of the Printer-MIB alert table.", LABELS_ONLY),
              q(f"netmon_printer_alert_info{{{f}}}", table=True), w=24)
    board.row("Pages")
    board.add(_bars("Page count", "short", steps((None, "blue"))),
              q(f"netmon_printer_pages_total{{{f}}}", "{{target}}", instant=True), w=12)
    board.add(_series("Pages per hour", "short"),
              q(f"rate(netmon_printer_pages_total{{{f}}}[$__rate_interval]) * 3600", "{{target}}"), w=12)
    return board


def switches() -> Board:
    f = sel(by=("site", "building", "role", "target"))
    board = Board("netmon-switches", "netmon / Switches", "Ports, traffic, errors and uplinks.")
    board.variables(
        label_var("site", "Site", "netmon_interface_oper_up"),
        label_var("building", "Building", "netmon_interface_oper_up", after=["site"]),
        label_var("role", "Role", "netmon_interface_oper_up", after=["site", "building"], default="switch"),
        label_var("target", "Device", "netmon_interface_oper_up", after=["site", "building", "role"]),
    )
    board.row("Ports")
    board.add(_stat("Ports up").thresholds(steps((None, "green"))),
              q(f"sum(netmon_interface_oper_up{{{f}}})", instant=True), w=6, h=4)
    board.add(_stat("Ports down (enabled)", description="Administratively up but not operationally up.")
              .thresholds(steps((None, "green"), (1, "orange"))),
              q(f"count((netmon_interface_admin_up{{{f}}} == 1) and (netmon_interface_oper_up{{{f}}} == 0)) or vector(0)",
                instant=True), w=6, h=4)
    board.add(_stat("Ports disabled").thresholds(steps((None, "text"))),
              q(f"count(netmon_interface_admin_up{{{f}}} == 0) or vector(0)", instant=True), w=6, h=4)
    board.add(_stat("Errors per second", "pps").thresholds(steps((None, "green"), (1, "red"))),
              q(f"sum(rate(netmon_interface_receive_errors_total{{{f}}}[$__rate_interval])"
                f" + rate(netmon_interface_transmit_errors_total{{{f}}}[$__rate_interval]))", instant=True), w=6, h=4)
    board.add(statushistory.Panel().title("Port status").description(
                  "up = link up; down = enabled but no link; disabled = shut down by an admin.")
              .mappings(value_map({"2": ("up", "green"), "1": ("down", "red"), "0": ("disabled", "gray")})),
              q(f"netmon_interface_oper_up{{{f}}} + netmon_interface_admin_up{{{f}}}", "{{target}} {{if_name}}"),
              w=24, h=14)
    board.row("Traffic")
    board.add(_series("Received", "Bps"),
              q(f"rate(netmon_interface_receive_bytes_total{{{f}}}[$__rate_interval])", "{{target}} {{if_name}}"))
    board.add(_series("Sent", "Bps"),
              q(f"rate(netmon_interface_transmit_bytes_total{{{f}}}[$__rate_interval])", "{{target}} {{if_name}}"))
    board.add(_series("Errors and discards", "pps"),
              q(f"rate(netmon_interface_receive_errors_total{{{f}}}[$__rate_interval]) > 0", "{{target}} {{if_name}} in errors"),
              q(f"rate(netmon_interface_transmit_errors_total{{{f}}}[$__rate_interval]) > 0", "{{target}} {{if_name}} out errors"),
              q(f"rate(netmon_interface_receive_discards_total{{{f}}}[$__rate_interval]) > 0", "{{target}} {{if_name}} in discards"),
              q(f"rate(netmon_interface_transmit_discards_total{{{f}}}[$__rate_interval]) > 0", "{{target}} {{if_name}} out discards"))
    board.add(_table("Error counters", "Total errors and discards since the device started, ports with any.", HIDE_TIME),
              q(f"netmon_interface_receive_errors_total{{{f}}} + netmon_interface_transmit_errors_total{{{f}}}"
                f" + netmon_interface_receive_discards_total{{{f}}} + netmon_interface_transmit_discards_total{{{f}}}",
                table=True))
    board.row("Speed and uplinks")
    board.add(_table("Link speed of ports that are up", "", HIDE_TIME)
              .override_by_name("Value", [dm.DynamicConfigValue("unit", "bps"), dm.DynamicConfigValue("displayName", "speed")]),
              q(f"(netmon_interface_speed_bytes{{{f}}} * 8) and (netmon_interface_oper_up{{{f}}} == 1)", table=True))
    board.add(_bars("Busiest ports (likely uplinks)", "percentunit", HIGH_IS_BAD,
                    "Traffic in plus out as a share of the port's speed; uplinks usually top this list.").max(1),
              q(f"topk(10, (rate(netmon_interface_receive_bytes_total{{{f}}}[$__rate_interval])"
                f" + rate(netmon_interface_transmit_bytes_total{{{f}}}[$__rate_interval]))"
                f" / (netmon_interface_speed_bytes{{{f}}} > 0))", "{{target}} {{if_name}}", instant=True))
    board.add(_series("Fastest ports' traffic (uplinks)", "Bps",
                      "Traffic of each device's fastest ports that are up, in and out."),
              q(f"(rate(netmon_interface_receive_bytes_total{{{f}}}[$__rate_interval])"
                f" + rate(netmon_interface_transmit_bytes_total{{{f}}}[$__rate_interval]))"
                f" and on (target, if_index) (netmon_interface_speed_bytes{{{f}}}"
                f" == on (target) group_left max by (target) (netmon_interface_speed_bytes{{{f}}}"
                f" and on (target, if_index) netmon_interface_oper_up{{{f}}} == 1))",
                "{{target}} {{if_name}}"), w=24)
    return board


def labs() -> Board:
    place = ("site", "building", "role", "room")
    f = sel(by=place)
    board = Board("netmon-labs", "netmon / Lab rooms", "Machines up per room, their CPU and disks.")
    board.variables(
        label_var("site", "Site", "netmon_probe_success"),
        label_var("building", "Building", "netmon_probe_success", after=["site"]),
        label_var("role", "Role", "netmon_probe_success", after=["site", "building"], default="lab"),
        label_var("room", "Room", "netmon_probe_success", after=["site", "building", "role"]),
    )
    up, total = _up_total(f, "room")
    board.add(_bars("Machines up by room", "short", steps((None, "green"))),
              q(up, "room {{room}} up", instant=True), q(total, "room {{room}} machines", instant=True), w=12)
    board.add(_series("Machines up over time", "short"), q(up, "room {{room}}"), w=12)
    board.add(statushistory.Panel().title("Machines").mappings(UP_DOWN),
              q(DEVICE_UP % f, "{{room}} {{target}}"), w=24, h=12)
    board.add(_bars("CPU load (busiest machines)", "percentunit", HIGH_IS_BAD).max(1),
              q(f"topk(15, avg by (target) (netmon_host_cpu_load_ratio{{{f}}}))", "{{target}}", instant=True))
    board.add(_series("CPU load", "percentunit"),
              q(f"avg by (room, target) (netmon_host_cpu_load_ratio{{{f}}})", "{{target}}"))
    disk = sel(DISK, by=place)
    board.add(_bars("Disk used (fullest)", "percentunit", HIGH_IS_BAD).max(1),
              q(f"topk(15, netmon_host_storage_used_bytes{{{disk}}} / (netmon_host_storage_size_bytes{{{disk}}} > 0))",
                "{{target}} {{storage}}", instant=True))
    board.add(_table("Disk space", "", HIDE_TIME)
              .override_by_name("Value", [dm.DynamicConfigValue("unit", "bytes"), dm.DynamicConfigValue("displayName", "free")]),
              q(f"netmon_host_storage_size_bytes{{{disk}}} - netmon_host_storage_used_bytes{{{disk}}}", table=True))
    return board


def device() -> Board:
    t = 'target="$target"'
    board = Board("netmon-device", "netmon / Device detail", "Everything netmon knows about one device.")
    board.variables(
        label_var("site", "Site", "netmon_probe_success"),
        label_var("role", "Role", "netmon_probe_success", after=["site"]),
        label_var("target", "Device", "netmon_probe_success", after=["site", "role"], multi=False),
    )
    board.row("Reachability")
    board.add(_stat("Status", description="up when every probe succeeds").mappings(UP_DOWN)
              .thresholds(steps((None, "red"), (1, "green"))),
              q(f"min(netmon_probe_success{{{t}}})", instant=True), w=4, h=5)
    board.add(_stat("Uptime", "s").thresholds(steps((None, "orange"), (3600, "green"))),
              q(f"max by (source) (netmon_device_uptime_seconds{{{t}}})", "{{source}}", instant=True), w=6, h=5)
    board.add(_stat("Reboots in range", description="Drops of the uptime counter (resets()); sysUpTime "
                    "also wraps after 497 days.").thresholds(steps((None, "green"), (1, "orange"))),
              q(f"max(resets(netmon_device_uptime_seconds{{{t}}}[$__range]))", instant=True), w=4, h=5)
    board.add(_table("Probe status", "The outcome of each probe's last run.", LABELS_ONLY),
              q(f"max by (probe, status) (netmon_probe_status{{{t}}})", table=True), w=10, h=5)
    board.add(statetimeline.Panel().title("Probes over time").mappings(UP_DOWN),
              q(f"netmon_probe_success{{{t}}}", "{{probe}}"), w=24, h=5)
    board.add(_series("Round-trip time", "s"), q(f"netmon_icmp_rtt_seconds{{{t}}}", "{{stat}}"),
              q(f"netmon_icmp_jitter_seconds{{{t}}}", "jitter"), w=8)
    board.add(_series("Packet loss", "percentunit").max(1), q(f"netmon_icmp_packet_loss_ratio{{{t}}}", "loss"), w=8)
    board.add(_series("TCP connect time", "s"), q(f"netmon_tcp_connect_seconds{{{t}}}", "port {{port}}"), w=8)
    board.add(_table("Identity", "", LABELS_ONLY), q(f"max by (sys_name, sys_descr, sys_object_id, location, contact) (netmon_device_info{{{t}}})", table=True), w=24, h=4)
    board.row("Interfaces")
    board.add(statushistory.Panel().title("Ports").mappings(
                  value_map({"2": ("up", "green"), "1": ("down", "red"), "0": ("disabled", "gray")})),
              q(f"netmon_interface_oper_up{{{t}}} + netmon_interface_admin_up{{{t}}}", "{{if_name}}"), w=24, h=10)
    board.add(_series("Traffic", "Bps"),
              q(f"rate(netmon_interface_receive_bytes_total{{{t}}}[$__rate_interval])", "{{if_name}} in"),
              q(f"-rate(netmon_interface_transmit_bytes_total{{{t}}}[$__rate_interval])", "{{if_name}} out"))
    board.add(_series("Errors and discards", "pps"),
              q(f"rate(netmon_interface_receive_errors_total{{{t}}}[$__rate_interval])"
                f" + rate(netmon_interface_transmit_errors_total{{{t}}}[$__rate_interval])", "{{if_name}} errors"),
              q(f"rate(netmon_interface_receive_discards_total{{{t}}}[$__rate_interval])"
                f" + rate(netmon_interface_transmit_discards_total{{{t}}}[$__rate_interval])", "{{if_name}} discards"))
    board.row("Printer")
    board.add(_bars("Supplies", "percentunit", LOW_IS_BAD).max(1),
              q(f'netmon_printer_supply_level_ratio{{{t},class="consumable"}}', "{{supply}}", instant=True))
    board.add(_table("Supply, tray and error states", "", LABELS_ONLY)
              .override_by_name("state", _state_column("state", SUPPLY_STATES)),
              q(f"netmon_printer_supply_state{{{t}}} == 1", table=True),
              q(f"netmon_printer_tray_state{{{t}}} == 1", table=True),
              q(f"netmon_printer_condition{{{t}}} == 1", table=True))
    board.add(_series("Pages printed", "short"), q(f"netmon_printer_pages_total{{{t}}}", "{{marker}}"), w=24, h=6)
    board.row("Host")
    board.add(_series("CPU load", "percentunit").max(1), q(f"netmon_host_cpu_load_ratio{{{t}}}", "cpu {{cpu}}"), w=8)
    board.add(_bars("Storage used", "percentunit", HIGH_IS_BAD).max(1),
              q(f"netmon_host_storage_used_bytes{{{t}}} / (netmon_host_storage_size_bytes{{{t}}} > 0)", "{{storage}}",
                instant=True), w=8)
    board.add(_series("Processes and users", "short"), q(f"netmon_host_processes{{{t}}}", "processes"),
              q(f"netmon_host_users{{{t}}}", "users"), w=8)
    board.row("UPS")
    board.add(_stat("On battery").mappings(value_map({"0": ("mains", "green"), "1": ("ON BATTERY", "red")})),
              q(f"netmon_ups_on_battery{{{t}}}", instant=True), w=4, h=5)
    board.add(_stat("Battery charge", "percentunit").thresholds(LOW_IS_BAD),
              q(f"netmon_ups_battery_charge_ratio{{{t}}}", instant=True), w=4, h=5)
    board.add(_stat("Runtime left", "s").thresholds(steps((None, "red"), (300, "orange"), (900, "green"))),
              q(f"netmon_ups_battery_runtime_seconds{{{t}}}", instant=True), w=4, h=5)
    board.add(_stat("Replace battery").mappings(value_map({"0": ("no", "green"), "1": ("REPLACE", "red")})),
              q(f"netmon_ups_battery_replace_needed{{{t}}}", instant=True), w=4, h=5)
    board.add(_series("Load", "percentunit").max(1), q(f"netmon_ups_load_ratio{{{t}}}", "line {{line}}"), w=8, h=5)
    board.add(_series("Voltage", "volt"), q(f"netmon_ups_input_voltage_volts{{{t}}}", "in {{line}}"),
              q(f"netmon_ups_output_voltage_volts{{{t}}}", "out {{line}}"), w=24, h=6)
    board.row("SNMP")
    board.add(_series("Probe duration", "s"), q(f"netmon_probe_duration_seconds{{{t}}}", "{{probe}}"))
    board.add(_series("SNMP requests and varbinds", "short"), q(f"netmon_snmp_requests{{{t}}}", "requests"),
              q(f"netmon_snmp_varbinds{{{t}}}", "varbinds"))
    return board


def netmon_self() -> Board:
    board = Board("netmon-self", "netmon / netmon itself", "Is the monitor keeping up, and are notifications going out?")
    board.row("Probing")
    board.add(_stat("Scheduled jobs").thresholds(steps((None, "blue"))),
              q("sum by (probe) (netmon_scheduler_jobs)", "{{probe}}", instant=True), w=6, h=5)
    board.add(_stat("Scheduler lag p99", "s").thresholds(steps((None, "green"), (1, "orange"), (5, "red"))),
              q('max(netmon_scheduler_lag_seconds{stat="p99"})', instant=True), w=6, h=5)
    board.add(_stat("Failed probe runs per minute").thresholds(steps((None, "green"), (1, "orange"))),
              q('sum(rate(netmon_probe_runs_total{status!~"ok|partial"}[$__rate_interval])) * 60', instant=True), w=6, h=5)
    board.add(_stat("Oldest result", "s", "Time since the least recently probed target's last run.")
              .thresholds(steps((None, "green"), (300, "orange"), (900, "red"))),
              q("time() - min(netmon_probe_last_run_timestamp_seconds)", instant=True), w=6, h=5)
    board.add(_series("Scheduler lag", "s", "Delay between a run's scheduled and actual start."),
              q("netmon_scheduler_lag_seconds", "{{stat}}"))
    board.add(_series("Probe duration by kind", "s"),
              q("max by (probe) (netmon_probe_duration_seconds)", "{{probe}} max"),
              q("avg by (probe) (netmon_probe_duration_seconds)", "{{probe}} avg"))
    board.add(_series("Probe runs by status", "ops").stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL)),
              q("sum by (probe, status) (rate(netmon_probe_runs_total[$__rate_interval])) > 0", "{{probe}} {{status}}"))
    board.add(_series("Skipped runs", "ops", "still_running: the last run had not finished; missed: started too late."),
              q("sum by (probe, reason) (rate(netmon_scheduler_skipped_runs_total[$__rate_interval]))", "{{probe}} {{reason}}"))
    board.add(_bars("Slowest targets", "s", steps((None, "green"), (2, "orange"), (10, "red"))),
              q("topk(10, netmon_probe_duration_seconds)", "{{target}} {{probe}}", instant=True))
    board.add(_table("Version", "", LABELS_ONLY), q("netmon_build_info", table=True))
    board.row("Alerts and notifications")
    board.add(_series("Alerts by state", "short"),
              q("sum by (state, severity, suppressed) (netmon_alerts)", "{{state}} {{severity}} {{suppressed}}"))
    board.add(_series("Notifications", "ops"),
              q("sum by (receiver, integration, outcome) (rate(netmon_notifications_total[$__rate_interval]))",
                "{{receiver}} {{integration}} {{outcome}}"))
    board.add(_stat("Notifications waiting").thresholds(steps((None, "green"), (1, "orange"), (20, "red"))),
              q("sum(netmon_notifications_pending) or vector(0)", instant=True), w=6, h=5)
    board.add(_series("Outbox by receiver", "short"),
              q("sum by (receiver, integration) (netmon_notifications_pending)", "{{receiver}} {{integration}}"), w=18, h=5)
    return board


#: file name (under dashboards/json/) -> dashboard factory.
DASHBOARDS: dict[str, Callable[[], Board]] = {
    "netmon-overview.json": overview,
    "netmon-printers.json": printers,
    "netmon-switches.json": switches,
    "netmon-labs.json": labs,
    "netmon-device.json": device,
    "netmon-self.json": netmon_self,
}
