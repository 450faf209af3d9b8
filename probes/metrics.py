"""The catalogue of every metric a probe may emit: its type and help text.

Probes emit :class:`probes.result.Sample` objects by name; the exporter turns them into
metric families using this table, and a test checks every emitted name is listed here.
State sets (one series per state, value 1 for the current one) are gauges with a
``state``/``status``/``condition`` label. ``_info`` gauges always have value 1.
``netmon_probe_status`` is deliberately not a state set: it carries only the current
outcome (value 1), because dashboards and rules only ever ask for the current status and
the ten zero series per job were a quarter of all exported series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class MetricDef:
    type: Literal["gauge", "counter"]
    help: str


def _g(help_: str) -> MetricDef:
    return MetricDef("gauge", help_)


def _c(help_: str) -> MetricDef:
    return MetricDef("counter", help_)


METRICS: dict[str, MetricDef] = {
    # --- every probe (added by the runner, not by probes) ---
    "netmon_probe_success": _g("1 if the probe's status is ok or partial, else 0."),
    "netmon_probe_duration_seconds": _g("Wall time the probe run took."),
    "netmon_probe_status": _g(
        "Outcome of the last probe run: one series per job, its status label the outcome "
        "(ok, partial, timeout, unreachable, refused, dns_error, auth_error, protocol_error, "
        "permission_error, config_error, error); value always 1."
    ),
    # --- ICMP ---
    "netmon_icmp_packets_sent": _g("Echo requests sent in the last probe run."),
    "netmon_icmp_packets_received": _g("Echo replies received in the last probe run."),
    "netmon_icmp_packet_loss_ratio": _g("Share of echo requests without a reply in the last probe run (0-1)."),
    "netmon_icmp_rtt_seconds": _g("Round-trip time of the replies in the last probe run, by stat (min, avg, max)."),
    "netmon_icmp_jitter_seconds": _g("Mean absolute difference between consecutive round-trip times."),
    # --- TCP ---
    "netmon_tcp_connect_seconds": _g("Time to complete the TCP handshake."),
    # --- SNMP: system ---
    "netmon_device_info": _g("Identity strings of the device from SNMPv2-MIB system group; value is always 1."),
    "netmon_device_uptime_seconds": _g("Time since the device's SNMP agent (sysUpTime) or host (hrSystemUptime) started."),
    # --- SNMP: interfaces ---
    "netmon_interface_info": _g("Names and type of an interface; value is always 1."),
    "netmon_interface_oper_up": _g("1 if ifOperStatus is up, else 0."),
    "netmon_interface_admin_up": _g("1 if ifAdminStatus is up, else 0."),
    "netmon_interface_oper_status": _g("ifOperStatus as a state set; 1 marks the current state."),
    "netmon_interface_speed_bytes": _g("Interface speed in bytes per second (ifHighSpeed, else ifSpeed)."),
    "netmon_interface_receive_bytes_total": _c("Octets received (ifHCInOctets, else ifInOctets)."),
    "netmon_interface_transmit_bytes_total": _c("Octets sent (ifHCOutOctets, else ifOutOctets)."),
    "netmon_interface_receive_errors_total": _c("Inbound packets with errors (ifInErrors)."),
    "netmon_interface_transmit_errors_total": _c("Outbound packets with errors (ifOutErrors)."),
    "netmon_interface_receive_discards_total": _c("Inbound packets discarded (ifInDiscards)."),
    "netmon_interface_transmit_discards_total": _c("Outbound packets discarded (ifOutDiscards)."),
    # --- SNMP: printer ---
    "netmon_printer_supply_level_ratio": _g("Supply level as a share of its capacity (0-1); for receptacles (waste boxes) the share filled; only when both are known."),
    "netmon_printer_supply_state": _g("Supply state set (ok, low, empty, some_remaining, unknown, unlimited, nearly_full, full)."),
    "netmon_printer_tray_level_ratio": _g("Paper tray level as a share of its capacity (0-1); only when both are known."),
    "netmon_printer_tray_state": _g("Paper tray state set (ok, low, empty, some_remaining, unknown, unlimited)."),
    "netmon_printer_condition": _g("1 for each condition hrPrinterDetectedErrorState reports (no_paper, jammed, door_open, ...)."),
    "netmon_printer_status": _g("hrPrinterStatus as a state set (other, unknown, idle, printing, warmup)."),
    "netmon_printer_alert_info": _g("An active row of the Printer-MIB alert table; value is always 1."),
    "netmon_printer_cover_open": _g("1 if the cover (prtCoverStatus) is open, else 0."),
    "netmon_printer_pages_total": _c("Pages printed over the printer's life (prtMarkerLifeCount)."),
    # --- SNMP: host ---
    "netmon_host_cpu_load_ratio": _g("Average load of one processor over the last minute (hrProcessorLoad, 0-1)."),
    "netmon_host_storage_size_bytes": _g("Size of a storage area (disk, memory) in bytes."),
    "netmon_host_storage_used_bytes": _g("Used space of a storage area in bytes."),
    "netmon_host_processes": _g("Number of processes (hrSystemProcesses)."),
    "netmon_host_users": _g("Number of user sessions (hrSystemNumUsers)."),
    # --- SNMP: UPS ---
    "netmon_ups_on_battery": _g("1 if the UPS is running on battery, else 0."),
    "netmon_ups_battery_status": _g("Battery status as a state set (normal, low, depleted, fault, unknown)."),
    "netmon_ups_battery_charge_ratio": _g("Remaining battery charge (0-1)."),
    "netmon_ups_battery_runtime_seconds": _g("Estimated runtime left on battery."),
    "netmon_ups_battery_replace_needed": _g("1 if the UPS says its battery needs replacing, else 0."),
    "netmon_ups_load_ratio": _g("Output load as a share of the UPS's capacity (0-1)."),
    "netmon_ups_input_voltage_volts": _g("Input line voltage."),
    "netmon_ups_output_voltage_volts": _g("Output voltage."),
    # --- SNMP: topology ---
    "netmon_topology_link_info": _g("A neighbour seen by LLDP or CDP on a port (remote system name, port and chassis ID); value is always 1."),
    "netmon_topology_fdb_entries": _g("MAC addresses the switch has learnt on a port (BRIDGE-MIB / Q-BRIDGE-MIB forwarding tables, all VLANs)."),
    "netmon_topology_table_rows": _g("Rows the device returned for a topology table (lldp, cdp, fdb, qfdb, arp, arp_phys); 0 when it has none."),
    # --- SNMP: the probe itself ---
    "netmon_snmp_varbinds": _g("Variable bindings received in the last SNMP probe run."),
    "netmon_snmp_requests": _g("SNMP requests sent in the last SNMP probe run, including retries."),
    # --- topology (monitor/topology.py, not probes: derived from the switches' tables) ---
    "netmon_interface_uplink": _g("1 for a switch port whose LLDP/CDP neighbour is an inventory switch (interface_down always watches it)."),
    "netmon_interface_quiet": _g("1 for an access port whose only devices are lab machines outside their schedule (interface_down does not watch it)."),
    # --- the daemon itself (monitor/scheduler.py, not probes) ---
    "netmon_scheduler_lag_seconds": _g("Delay between a probe run's scheduled and actual start over the last 1000 runs, by stat (last, p50, p99, max)."),
    "netmon_scheduler_jobs": _g("Scheduled probe jobs (target x probe, one per TCP port)."),
    "netmon_probe_runs_total": _c("Scheduled probe runs finished, by probe kind and status."),
    "netmon_scheduler_skipped_runs_total": _c("Scheduled runs not started: still_running (the previous run of the job had not finished) or missed (started later than the interval)."),
    # --- the process itself (monitor/daemon.py) ---
    "netmon_event_loop_tasks": _g("asyncio tasks alive in netmon's event loop."),
    "netmon_process_open_fds": _g("File descriptors the netmon process has open (sockets, files)."),
    "netmon_config_last_reload_successful": _g("1 if the last config reload (SIGHUP, POST /-/reload) was applied or none was asked for since start-up; 0 if it was rejected and the previous config is still running."),
    "netmon_config_last_reload_success_timestamp_seconds": _g("When the running config was loaded (start-up or the last applied reload), seconds since the epoch."),
    "netmon_config_reloads_total": _c("Config reloads since start-up by result (applied, rejected); requests that came during a reload were folded into the next one and are not counted."),
    # --- the web server (monitor/web/server.py; only with basic_auth_users) ---
    "netmon_web_auth_failures_total": _c("Basic-auth logins whose password bcrypt checked and rejected (a wrong password or an unknown user)."),
    "netmon_web_auth_rate_limited_total": _c("Basic-auth logins answered 429 without a password check: the client's network failed too often (reason=client), or server-wide too many checks were waiting or failed checks had used their CPU share (reason=busy)."),
    # --- alerts (alerts/, not probes) ---
    "netmon_alerts": _g("Alert instances by state (pending, firing), severity and suppression (none, parent_down, out_of_schedule, silenced, flapping)."),
    "netmon_notifications_total": _c("Notifications handed to a receiver, by receiver, integration (email, webhook, alertmanager) and outcome (delivered, failed: will be retried)."),
    "netmon_notifications_pending": _g("Notifications waiting in the outbox (not yet delivered), by receiver and integration."),
    "netmon_state_store_ok": _g("1 while the alert state file (alerts.state_file) takes writes; 0 while it is unusable and alert state and the outbox are kept in memory only."),
    "netmon_state_store_faults_total": _c("Times the alert state file became unusable, by reason (disk_full, read_only, corrupt, locked, deleted, io_error)."),
    # --- the history store (monitor/store/history.py) ---
    "netmon_history_writes_total": _c("Samples written to the history file (history:) since start-up."),
    "netmon_history_dropped_total": _c("Probe results (a full queue) or samples (a failed write) not kept in the history."),
    "netmon_history_errors_total": _c("History writes and trims that failed (disk full, I/O error, locked file); each is logged."),
    "netmon_history_write_seconds_total": _c("Seconds the history writer thread spent turning results into rows and committing them."),
    "netmon_history_size_bytes": _g("Size of the history file on disk, its WAL included (kept under history.max_size)."),
    "netmon_history_queue": _g("Probe results waiting for the history writer."),
}
