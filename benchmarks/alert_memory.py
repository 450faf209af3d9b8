"""Memory and CPU of the alert rules and the alert engine at district scale.

    .venv/bin/python benchmarks/alert_memory.py                  # 1,000 switches x 48 ports
    .venv/bin/python benchmarks/alert_memory.py --icmp 10000     # plus 10,000 ICMP-only hosts
    .venv/bin/python benchmarks/alert_memory.py --quick          # 100 switches, 4 polls
    .venv/bin/python benchmarks/alert_memory.py --before DIR     # and an older tree, side by side
    .venv/bin/python benchmarks/alert_memory.py --before benchmarks/results/alert_memory-X.json

No network and no daemon: the real :class:`alerts.service.AlertService` (the default rule
pack, the engine on a SQLite file in a temp dir, the notifier without receivers) is fed
what the daemon's store listener feeds it. Every poll (``--interval``, 60 s of simulated
time) each switch yields an ICMP result (``probes.icmp.icmp_samples``) and an SNMP result
built by the real ``system`` and ``interfaces`` converters from a synthetic walk (so
the samples, labels and their sharing are the probe's own: ``netmon_interface_*`` with
if_index / if_name / if_alias / if_descr, oper/admin status, the oper_status state set,
speed and six moving counters), both with the runner's ``netmon_probe_*`` samples
(``probes.registry.runner_samples``). After each result the target's rules are evaluated
on its latest results (``AlertService.evaluate``); the engine ticks once per simulated
second, as the daemon does. ``--icmp N`` adds N ICMP-only hosts behind the switches.

Faults, so that there are alert instances to keep: on every switch ports 1-4 go down
halfway through (``interface_down``), ports 5-6 count 10 errors/s (``interface_errors``);
every 10th switch's port 7 drops from 1 Gb/s to 100 Mb/s, every 20th switch reboots,
every 50th loses 40 % of its pings, every 100th (offset 1) stops answering SNMP halfway;
ports 41-48 are never up (47-48 admin down). 1 % of the ICMP hosts are down.

Measured, in two fresh interpreters per tree:

* retained memory (``tracemalloc``): after the last poll the rules' state is replaced by
  a fresh ``RuleSet`` (same settings), then the notifier's alert list is dropped, then
  the engine; the traced bytes freed at each step are that part's retained memory
  (what only it holds: label strings it shares with the latest results count for the
  results, strings only it keeps count for it). "Per series" divides the rules' memory
  by the series that need memory (counted from the rule model and the last results:
  every distinct metric x label set x fn x window a ``rate``, ``resets`` or
  ``max_over_time`` reads: 4 per port, 1 per switch); "per instance" divides the
  engine's by its alert instances (pending, firing, resolved).
* RSS (``/proc/self/status`` VmRSS and VmHWM) without tracemalloc, minus the RSS of the
  same run without the alert service (the results alone); and CPU (``time.process_time``)
  of ``evaluate`` per result and of ``tick`` per tick, over the polls after the first.

Results go to ``benchmarks/results/alert_memory-<time>.json`` (``--no-save``: not).
``--before DIR`` runs the same measurement against another tree (e.g. ``git archive
HEAD | tar -x -C DIR``) through ``PYTHONPATH`` and prints both columns; given a results
file instead, it shows that run's figures as "before" (same arguments assumed).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PORTS_DOWN = range(1, 5)
PORTS_ERRORS = (5, 6)
PORT_SPEED = 7


# --- the fleet ------------------------------------------------------------------------


def switch_name(s: int) -> str:
    return f"sw-{s:04d}"


def host_name(h: int) -> str:
    return f"pc-{h:05d}"


def target_infos(switches: int, hosts: int) -> list[Any]:
    from alerts.rules import TargetInfo

    out = [
        TargetInfo(switch_name(s), {"role": "switch", "group": f"closets-{s % 40}",
                                    "site": f"school-{s % 25}", "building": f"b{s % 3}"})
        for s in range(switches)
    ]  # fmt: skip
    out += [
        TargetInfo(host_name(h), {"role": "lab", "group": f"lab-{h % 200}",
                                  "site": f"school-{h % 25}"},
                   parent=switch_name(h % switches) if switches else None)
        for h in range(hosts)
    ]  # fmt: skip
    return out


def switch_walk(s: int, ports: int, poll: int, interval: float, half: int) -> dict[Any, Any]:
    """What a walk of the system group, ifTable and ifXTable returns (fresh strings)."""
    from probes.snmp.modules import interfaces as ifm
    from probes.snmp.modules import system as sysm

    t = poll * interval
    rebooted = s % 20 == 0 and poll >= half
    uptime = (t - half * interval + 30) if rebooted else (86400 * 40 + s + t)
    walked: dict[Any, Any] = {
        sysm.SYS_DESCR: f"Cisco IOS Software, C2960X Software, Version 15.2(7)E{s % 9}".encode(),
        sysm.SYS_OBJECT_ID: "1.3.6.1.4.1.9.1.1208",
        sysm.SYS_UPTIME: int(uptime * 100),
        sysm.SYS_CONTACT: b"it@school.example",
        sysm.SYS_NAME: switch_name(s).encode(),
        sysm.SYS_LOCATION: f"School {s % 25}, closet {s}".encode(),
    }
    for k in range(1, ports + 1):
        index = 10100 + k
        up = k <= 40 and not (k in PORTS_DOWN and poll >= half)
        admin_up = k < 47
        mbps = 100 if (k == PORT_SPEED and s % 10 == 0 and poll >= half) else 1000
        octets = (s * 7919 + k * 104729) % 2**40 + int(t) * (k * 1000 + s) * up
        errors = int(t) * 10 if k in PORTS_ERRORS else 0
        cols = {
            (ifm.IF_ENTRY, 2): f"GigabitEthernet1/0/{k}".encode(), (ifm.IF_ENTRY, 3): 6,
            (ifm.IF_ENTRY, 5): min(mbps * 1_000_000, 4294967295),
            (ifm.IF_ENTRY, 7): 1 if admin_up else 2, (ifm.IF_ENTRY, 8): 1 if up else 2,
            (ifm.IF_ENTRY, 10): octets % 2**32, (ifm.IF_ENTRY, 13): 0, (ifm.IF_ENTRY, 14): errors,
            (ifm.IF_ENTRY, 16): (octets // 3) % 2**32, (ifm.IF_ENTRY, 19): 0,
            (ifm.IF_ENTRY, 20): 0,
            (ifm.IFX_ENTRY, 1): f"Gi1/0/{k}".encode(), (ifm.IFX_ENTRY, 6): octets,
            (ifm.IFX_ENTRY, 10): octets // 3, (ifm.IFX_ENTRY, 15): mbps,
            (ifm.IFX_ENTRY, 18): (f"room {s % 100}-{k}" if k % 2 else "").encode(),
        }  # fmt: skip
        for (entry, column), value in cols.items():
            walked[(*entry, column, index)] = value
    return walked


def snmp_result(s: int, ports: int, poll: int, interval: float, half: int, at: float) -> Any:
    from probes.registry import runner_samples
    from probes.result import ProbeResult, Sample, Status
    from probes.snmp.modules import interfaces as ifm
    from probes.snmp.modules import system as sysm
    from probes.snmp.modules.base import ModuleOutput

    if s % 100 == 1 and poll >= half:
        result = ProbeResult(Status.TIMEOUT, "no answer from the SNMP agent within 2s (2 tries)")
    else:
        walked = switch_walk(s, ports, poll, interval, half)
        out = ModuleOutput()
        for module in (sysm, ifm):
            out.extend(module.convert(walked))
        out.samples += [Sample.of("netmon_snmp_varbinds", len(walked)),
                        Sample.of("netmon_snmp_requests", 16)]  # fmt: skip
        result = ProbeResult(Status.OK, f"v2c, 2 modules, {len(walked)} values in 16 requests",
                             out.samples, out.facts, out.records)  # fmt: skip
    result = result.with_runner_fields(
        probe="snmp", target=switch_name(s), duration_seconds=0.35, started_at=at
    )
    result.samples.extend(runner_samples(result))
    return result


def icmp_result(name: str, sent: int, received: int, at: float) -> Any:
    from probes.icmp import icmp_samples
    from probes.icmp_engine import PingStats
    from probes.registry import runner_samples
    from probes.result import ProbeResult, Status

    rtts = [0.0004 + 0.0001 * i for i in range(received)]
    stats = PingStats("127.0.0.1", sent=sent, received=received, rtts=rtts)
    if received == sent:
        status, text = Status.OK, f"{received} of {sent} echo replies, avg 0.50 ms"
    elif received:
        loss = 1 - received / sent
        status, text = Status.PARTIAL, f"{received} of {sent} echo replies ({loss:.0%} loss)"
    else:
        status, text = Status.TIMEOUT, f"no reply to {sent} echo requests within 1s"
    result = ProbeResult(status, text, icmp_samples(stats)).with_runner_fields(
        probe="icmp", target=name, duration_seconds=0.004, started_at=at
    )
    result.samples.extend(runner_samples(result))
    return result


# --- one measured run (a child process) -------------------------------------------------


def remembered_series(service: Any, infos: list[Any], latest: dict[str, dict[str, Any]]) -> int:
    """Distinct (target, metric, labels, fn, window) the rules need memory for, from the
    rule model alone (so the count does not depend on how the evaluator stores them)."""
    found: set[tuple[Any, ...]] = set()
    for info in infos:
        results = latest.get(info.name, {})
        rules = service.rules.effective(
            info.labels.get("role", ""), info.labels.get("group", ""), info.name
        )
        for rule in rules:
            series: list[Any] = []
            for clause in rule.clauses:
                series += [clause, *clause.and_, *clause.unless]
                if clause.divide_by is not None:
                    series.append(clause.divide_by)
            for item in series:
                if item.fn == "value":
                    continue
                for key, result in results.items():
                    kind = item.probe
                    if kind is not None and not (key == kind or key.startswith(f"{kind}-")):
                        continue
                    for smp in result.samples:
                        if smp.metric not in item.metrics:
                            continue
                        labels = dict(smp.labels)
                        if any(labels.get(k, "") != v for k, v in item.match.items()):
                            continue
                        if any(re.fullmatch(p, labels.get(k, "")) for k, p in item.exclude.items()):
                            continue
                        found.add((info.name, smp.metric, key, smp.labels, item.fn, item.window))
    return len(found)


def rss_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) in KB (1,024 bytes, as /proc counts)."""
    fields: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def child(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """``trace`` (tracemalloc deltas), ``rss`` (RSS and CPU) or ``control`` (no service)."""
    from alerts.settings import AlertsSettings

    if mode == "trace":
        tracemalloc.start()
    infos = target_infos(args.switches, args.icmp)
    workdir = Path(tempfile.mkdtemp(prefix="netmon-alert-mem-"))
    clock = [0.0]
    service: Any = None
    settings = AlertsSettings()
    if mode != "control":
        from alerts.service import AlertService

        service = AlertService(settings, base_dir=workdir, schedules={}, clock=lambda: clock[0])
        service.set_targets(infos)
    rss_before = rss_kb()[0]
    half = max(1, args.polls // 2)
    latest: dict[str, dict[str, Any]] = {}
    eval_cpu = tick_cpu = 0.0
    evals = ticks = 0
    # (target, switch number, host number); results arrive spread over the interval
    events: list[tuple[str, int | None, int | None]] = [
        (switch_name(s), s, None) for s in range(args.switches)
    ]
    events += [(host_name(h), None, h) for h in range(args.icmp)]
    events.sort(key=lambda e: zlib.crc32(e[0].encode()))
    step = args.interval / max(1, len(events))
    started = time.time()
    for poll in range(args.polls):
        base = poll * args.interval
        next_tick = base + 1.0
        for n, (name, s, h) in enumerate(events):
            now = base + n * step
            arrivals: list[tuple[str, Any]] = []
            if s is not None:
                received = 6 if s % 50 == 0 else 10
                arrivals.append(("icmp", icmp_result(name, 10, received, now)))
                walk = snmp_result(s, args.ports, poll, args.interval, half, now)
                arrivals.append(("snmp", walk))
            else:
                assert h is not None
                arrivals.append(("icmp", icmp_result(name, 3, 0 if h % 100 == 0 else 3, now)))
            for key, result in arrivals:
                latest.setdefault(name, {})[key] = result
                if service is None:
                    continue
                clock[0] = now + 0.4
                t0 = time.process_time()
                service.evaluate(name, dict(latest[name]), clock[0])
                if poll:
                    eval_cpu += time.process_time() - t0
                    evals += 1
            while service is not None and next_tick <= now:
                clock[0] = next_tick
                t0 = time.process_time()
                service.tick(next_tick)
                if poll:
                    tick_cpu += time.process_time() - t0
                    ticks += 1
                next_tick += 1.0
        print(f"  [{mode}] poll {poll + 1}/{args.polls} done ({time.time() - started:.0f}s)",
              file=sys.stderr, flush=True)  # fmt: skip
    out: dict[str, Any] = {"mode": mode}
    if service is not None:
        service.tick(clock[0] + 1.0)
        alerts = service.alerts()
        out["instances"] = len(alerts)
        out["by_rule"] = {}
        for a in alerts:
            out["by_rule"][a.rule] = out["by_rule"].get(a.rule, 0) + 1
        out["series"] = remembered_series(service, infos, latest)
    out["rss_kb"], out["hwm_kb"] = rss_kb()
    out["rss_before_kb"] = rss_before
    out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["eval_cpu_us"] = eval_cpu / evals * 1e6 if evals else 0.0
    out["tick_cpu_ms"] = tick_cpu / ticks * 1e3 if ticks else 0.0
    out["evals"], out["ticks"] = evals, ticks
    if mode == "trace" and service is not None:
        from alerts.rules import RuleSet

        total = traced()
        service.rules = RuleSet.from_settings(settings)
        after_rules = traced()
        notifier = service.notifier
        if hasattr(notifier, "_alerts"):
            notifier._alerts = []
        after_notifier = traced()
        service.engine = None
        after_engine = traced()
        out["rules_bytes"] = total - after_rules
        out["notifier_bytes"] = after_rules - after_notifier
        out["engine_bytes"] = after_notifier - after_engine
    return out


# --- the parent: run children, print ------------------------------------------------------


def run_tree(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    common = ["--switches", str(args.switches), "--ports", str(args.ports),
              "--polls", str(args.polls), "--icmp", str(args.icmp),
              "--interval", str(args.interval)]  # fmt: skip
    found: dict[str, Any] = {}
    for mode in ("trace", "rss", "control"):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", mode, *common], env=env, cwd="/",
            check=True, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        found[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    t, r, c = found["trace"], found["rss"], found["control"]
    return {
        "tree": str(tree),
        "instances": t["instances"],
        "by_rule": t["by_rule"],
        "series": t["series"],
        "rules_mb": t["rules_bytes"] / 1e6,
        "rules_bytes_per_series": t["rules_bytes"] / max(1, t["series"]),
        "rules_bytes_per_port": t["rules_bytes"] / max(1, args.switches * args.ports),
        "engine_mb": t["engine_bytes"] / 1e6,
        "engine_bytes_per_instance": t["engine_bytes"] / max(1, t["instances"]),
        "notifier_mb": t["notifier_bytes"] / 1e6,
        "notifier_bytes_per_instance": t["notifier_bytes"] / max(1, t["instances"]),
        "rss_mb": r["rss_kb"] / 1024,
        "rss_control_mb": c["rss_kb"] / 1024,
        "rss_service_mb": (r["rss_kb"] - c["rss_kb"]) / 1024,
        "hwm_mb": r["hwm_kb"] / 1024,
        "hwm_control_mb": c["hwm_kb"] / 1024,
        "eval_cpu_us_per_result": r["eval_cpu_us"],
        "tick_cpu_ms": r["tick_cpu_ms"],
        "evals": r["evals"],
        "ticks": r["ticks"],
    }


ROWS = [
    ("series with memory (rate/resets/max_over_time)", "series", "{:,.0f}"),
    ("alert instances (pending/firing/resolved)", "instances", "{:,.0f}"),
    ("rules' state, MB (tracemalloc)", "rules_mb", "{:.1f}"),
    ("  bytes per series", "rules_bytes_per_series", "{:,.0f}"),
    ("  bytes per port", "rules_bytes_per_port", "{:,.0f}"),
    ("engine's instances, MB (tracemalloc)", "engine_mb", "{:.1f}"),
    ("  bytes per instance", "engine_bytes_per_instance", "{:,.0f}"),
    ("notifier's alert list, MB", "notifier_mb", "{:.1f}"),
    ("  bytes per instance", "notifier_bytes_per_instance", "{:,.0f}"),
    ("RSS with alerting, MB", "rss_mb", "{:.0f}"),
    ("RSS of the results alone, MB", "rss_control_mb", "{:.0f}"),
    ("RSS of the alert service, MB", "rss_service_mb", "{:.0f}"),
    ("peak RSS (VmHWM) with / without alerting, MB", "hwm", "{}"),
    ("evaluate CPU per result, µs", "eval_cpu_us_per_result", "{:,.0f}"),
    ("tick CPU per tick, ms", "tick_cpu_ms", "{:.2f}"),
]


def show(columns: list[tuple[str, dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"\n{args.switches:,} switches x {args.ports} ports, {args.icmp:,} ICMP-only hosts, "
          f"{args.polls} polls every {args.interval:g}s (simulated)\n")  # fmt: skip
    head = "| figure | " + " | ".join(name for name, _ in columns) + " |"
    print(head)
    print("|---|" + "---:|" * len(columns))
    for label, key, fmt in ROWS:
        cells = []
        for _, col in columns:
            if key == "hwm":
                cells.append(f"{col['hwm_mb']:.0f} / {col['hwm_control_mb']:.0f}")
            else:
                cells.append(fmt.format(col[key]))
        print(f"| {label} | " + " | ".join(cells) + " |")
    for name, col in columns:
        rules = ", ".join(f"{k} {v:,}" for k, v in sorted(col["by_rule"].items()))
        print(f"\n{name}: instances by rule: {rules}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=1000)
    parser.add_argument("--ports", type=int, default=48)
    parser.add_argument("--icmp", type=int, default=0, help="ICMP-only hosts")
    parser.add_argument("--polls", type=int, default=8)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="100 switches, 4 polls")
    parser.add_argument("--before", type=Path,
                        help="an older tree to measure too, or a results JSON")  # fmt: skip
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--child", choices=("trace", "rss", "control"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.switches, args.polls = 100, 4
    if args.polls < 2:
        parser.error("at least 2 polls (rates need two)")
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    columns: list[tuple[str, dict[str, Any]]] = []
    if args.before is not None and args.before.suffix == ".json":  # an earlier run's file
        saved = json.loads(args.before.read_text())["columns"]
        columns.append(("before", saved.get("this tree") or saved["after"]))
    elif args.before is not None:
        columns.append(("before", run_tree(args.before.resolve(), args)))
    columns.append(("this tree" if args.before is None else "after", run_tree(ROOT, args)))
    show(columns, args)
    if not args.no_save:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = ROOT / "benchmarks" / "results" / f"alert_memory-{stamp}.json"
        out.parent.mkdir(exist_ok=True)
        payload = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   "columns": dict(columns)}  # fmt: skip
        out.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwritten: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
