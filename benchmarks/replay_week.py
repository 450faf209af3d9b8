"""How fast ``netmon alerts replay`` replays a week of a district-size school.

    nice -n 19 .venv/bin/python benchmarks/replay_week.py            # 500 devices, 7 days
    nice -n 19 .venv/bin/python benchmarks/replay_week.py --devices 2000 --days 7
    nice -n 19 .venv/bin/python benchmarks/replay_week.py --keep DIR # write the files there

The school (every device probed every 60 s): a core switch and closet switches (ICMP and
SNMP, 24 ports each), printers behind them (ICMP, SNMP with four supplies, TCP 9100),
servers (ICMP, TCP 22 and 443), two UPSs and lab PCs (ICMP only) that are expected
online mon-fri 07:30-17:00 and are off outside those hours. The week: the PCs go on at
07:20 and off at 17:10 each school day and a few of them stay broken, a closet switch
dies for 20 minutes, toner runs low and is replaced, an uplink port goes down, a PC
flaps, a UPS runs on battery, a lab is silenced for a day and netmon restarts once.

It writes the config and the timeline, then times the replay (load excluded) in this
process and prints the wall time, the probe runs evaluated and skipped, and the
notifications. The target (issue 15): 500 devices x a week in at most 60 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PORTS = 24
SUPPLIES = ("black", "cyan", "magenta", "yellow")
SCHOOL_DAYS = range(5)


def school(devices: int) -> tuple[dict[str, Any], list[str], dict[str, list[str]]]:
    """The config, the closet switches and each closet's printers and PCs."""
    closets = [f"sw-closet-{i:02d}" for i in range(1, max(2, devices // 25))]
    printers = max(2, devices // 12)
    servers, upses = max(1, devices // 50), 2
    pcs = devices - 1 - len(closets) - printers - servers - upses
    labs: dict[str, list[str]] = {c: [] for c in closets}
    groups: list[dict[str, Any]] = [
        {"name": "core", "role": "switch", "targets": [{"name": "sw-core", "address": "10.0.0.1"}]},
        {"name": "closets", "role": "switch", "parent": "sw-core",
         "targets": [{"name": c, "address": f"10.0.1.{i + 1}"} for i, c in enumerate(closets)]},
        {"name": "printers", "role": "printer", "tcp_ports": [9100],
         "targets": [{"name": f"printer-{i:03d}", "address": f"10.0.2.{i + 1}",
                      "parent": closets[i % len(closets)]} for i in range(printers)]},
        {"name": "servers", "role": "server", "probes": ["icmp", "tcp"], "tcp_ports": [22, 443],
         "targets": [{"name": f"server-{i:02d}", "address": f"10.0.3.{i + 1}", "parent": "sw-core"}
                     for i in range(servers)]},
        {"name": "power", "role": "ups",
         "targets": [{"name": f"ups-{i}", "address": f"10.0.4.{i + 1}"} for i in range(upses)]},
    ]  # fmt: skip
    for n in range(pcs):
        closet = closets[n % len(closets)]
        labs[closet].append(f"pc-{n:04d}")
    for i, (closet, names) in enumerate(labs.items()):
        groups.append({
            "name": f"lab-{i + 1:02d}", "role": "lab", "probes": ["icmp"], "parent": closet,
            "expected_online": "school-hours", "labels": {"room": f"lab-{i + 1:02d}"},
            "targets": [{"name": name, "address": f"10.{10 + n // 250}.{n % 250}.{i + 1}"}
                        for n, name in enumerate(names)],
        })  # fmt: skip
    config = {
        "defaults": {"interval": "60s", "labels": {"site": "district-high", "building": "main"},
                     "snmp": {"credentials": "school"}},
        "credentials": {"school": {"version": "2c", "community": "public"}},
        "schedules": {"school-hours": {"days": "mon-fri", "hours": "07:30-17:00",
                                       "timezone": "Europe/London"}},
        "groups": groups,
        "alerts": {
            "receivers": [{"name": "it-team", "email": {"to": ["it@school.example"]}},
                          {"name": "office", "email": {"to": ["office@school.example"]}}],
            "smtp": {"host": "smtp.school.example", "from": "netmon@school.example"},
            "route": {"receiver": "it-team", "group_by": ["building"], "group_wait": "30s",
                      "group_interval": "5m", "repeat_interval": "4h",
                      "routes": [{"match": {"role": "printer"}, "receiver": "office",
                                  "continue": True}]},
        },
    }  # fmt: skip
    return config, closets, labs


def _port(i: int) -> dict[str, str]:
    return {"if_index": str(i), "if_name": f"Gi1/0/{i}"}


def week(config: dict[str, Any], closets: list[str], labs: dict[str, list[str]],
         days: int) -> dict[str, Any]:
    """The timeline (see the module docstring)."""
    printers = [t["name"] for g in config["groups"] if g["name"] == "printers" for t in g["targets"]]
    upses = [t["name"] for g in config["groups"] if g["name"] == "power" for t in g["targets"]]
    pcs = [pc for names in labs.values() for pc in names]
    switch_samples = [
        {"metric": m, "labels": _port(i), "value": v}
        for i in range(1, PORTS + 1)
        for m, v in (("netmon_interface_oper_up", 1), ("netmon_interface_admin_up", 1),
                     ("netmon_interface_speed_bytes", 1.25e8),
                     ("netmon_interface_receive_errors_total", 0),
                     ("netmon_interface_transmit_errors_total", 0))
    ]  # fmt: skip
    supplies = [{"metric": "netmon_printer_supply_level_ratio", "value": 0.7,
                 "labels": {"index": f"1.{k + 1}", "supply": f"{c} toner", "color": c,
                            "class": "consumable"}} for k, c in enumerate(SUPPLIES)]  # fmt: skip
    changes: list[dict[str, Any]] = [
        {"at": "+0", "match": {"role": "switch"}, "probe": "snmp", "samples": switch_samples},
        {"at": "+0", "group": "printers", "probe": "snmp", "samples": supplies},
        {"at": "+0", "group": "power", "probe": "snmp",
         "samples": [{"metric": "netmon_ups_on_battery", "value": 0}]},
        {"at": "+0", "match": {"role": "lab"}, "status": "timeout"},
    ]  # fmt: skip
    broken = pcs[7::40]
    for day in range(days):
        if day % 7 in SCHOOL_DAYS:
            changes += [{"at": f"+{day}d1h20m", "match": {"role": "lab"}, "status": "ok"},
                        {"at": f"+{day}d11h10m", "match": {"role": "lab"}, "status": "timeout"}]
            changes += [{"at": f"+{day}d1h21m", "target": pc, "status": "timeout"} for pc in broken]
    # The closet switch and everything behind it (its printers, its lab's PCs).
    behind = [closets[2], *printers[2 :: len(closets)], *labs[closets[2]]]
    incidents: list[dict[str, Any]] = [
        *({"at": "+1d4h", "target": name, "status": "timeout"} for name in behind),
        *({"at": "+1d4h20m", "target": name, "status": "ok"} for name in behind),
        {"at": "+3d7h", "target": "sw-core", "probe": "snmp",
         "samples": [{"metric": "netmon_interface_oper_up", "labels": _port(5), "value": 0}]},
        {"at": "+3d7h45m", "target": "sw-core", "probe": "snmp",
         "samples": [{"metric": "netmon_interface_oper_up", "labels": _port(5), "value": 1}]},
        {"at": "+4d6h", "target": upses[0], "probe": "snmp",
         "samples": [{"metric": "netmon_ups_on_battery", "value": 1}]},
        {"at": "+4d6h10m", "target": upses[0], "probe": "snmp",
         "samples": [{"metric": "netmon_ups_on_battery", "value": 0}]},
    ]  # fmt: skip
    for k, printer in enumerate(printers[:5]):
        low = {"metric": "netmon_printer_supply_level_ratio", "labels": {"color": SUPPLIES[k % 4]}}
        incidents += [{"at": f"+2d{2 + k}h", "target": printer, "probe": "snmp",
                       "samples": [{**low, "value": 0.05}]},
                      {"at": f"+3d{2 + k}h", "target": printer, "probe": "snmp",
                       "samples": [{**low, "value": 1.0}]}]  # fmt: skip
    flapper = pcs[3]
    for k in range(8):
        incidents.append({"at": f"+2d5h{3 * k}m", "target": flapper,
                          "status": "timeout" if k % 2 == 0 else "ok"})
    changes += [c for c in incidents if _day(c["at"]) < days]
    return {
        "timezone": "Europe/London", "start": "2026-09-07 06:00", "end": f"+{days}d",
        "changes": changes,
        "silences": [{"at": "+3d", "duration": "1d", "matchers": ["room=lab-01"],
                      "comment": "lab re-imaging"}],
        "restarts": [{"at": "+2d8h", "down": "2m"}] if days > 2 else [],
    }  # fmt: skip


def _day(offset: str) -> int:
    return int(offset[1:].split("d")[0]) if "d" in offset else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--keep", metavar="DIR", help="write netmon.yml and week.yml here")
    opts = parser.parse_args()

    from alerts.timeline import load_timeline
    from monitor.cli.replay import build_replay
    from monitor.config import load_config

    with tempfile.TemporaryDirectory(prefix="replay-week-") as tmp:
        where = Path(opts.keep or tmp)
        where.mkdir(parents=True, exist_ok=True)
        config, closets, labs = school(opts.devices)
        (where / "netmon.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        (where / "week.yml").write_text(yaml.safe_dump(week(config, closets, labs, opts.days),
                                                       sort_keys=False, width=120))  # fmt: skip
        cfg = load_config(where / "netmon.yml")
        loaded = load_timeline(where / "week.yml")
        replay = build_replay(cfg, loaded, where / "netmon.yml")
        t0, c0 = time.perf_counter(), time.process_time()
        report = replay.run()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    runs = report.evaluated + report.skipped
    jobs = len(replay.jobs)
    print(f"{len(replay.infos)} devices, {jobs} probe jobs at 60 s, {opts.days} days, "
          f"{len(loaded.timeline.changes)} changes")
    print(f"replayed in {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"({opts.days * 86400 / wall:,.0f}x real time)")
    print(f"probe runs: {report.evaluated:,} evaluated, {report.skipped:,} skipped or only "
          f"observed again (steady), of {jobs * opts.days * 1440:,} scheduled ({runs:,} seen)")
    print(f"notifications: {len(report.notifications)} {report.summary()['notifications']}; "
          f"alerts: {report.summary()['alerts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
