"""netmon against a fleet where a lot goes wrong: the chaos fleet (issue 16).

    .venv/bin/python benchmarks/chaos_fleet.py            # 1,000 SNMP + 2,000 ICMP, 30 s, ~3 min
    .venv/bin/python benchmarks/chaos_fleet.py --quick    # 50 + 40 at 10 s, ~1 min
    .venv/bin/python benchmarks/chaos_fleet.py --devices 200 --icmp 400 --seconds 60

Runs the real ``netmon run`` (its own generated inventory, work dir and alert state
file) against SNMP devices in the issue's mix: 55 % healthy (switch and printer
recordings on benchmarks/fast_agent.py), 20 % that never answer, 10 % slow (1-3 s per
request), 2.5 % garbage, 2.5 % truncated BER, 5 % wrong community and 5 % SNMPv3 with a
wrong password (net-snmp snmpd), plus ICMP targets of which 20 % are dead (routed into
a network namespace made here, so root is needed). tests/chaos_fleet_lab.py builds the
fleet and says which status each kind must get; tests/integration/test_chaos_fleet.py
runs the same checks small.

Timeline: agents, then netmon until ``/-/healthy``; one interval of warm-up (every job
fires once); then ``--seconds`` measured, ``/metrics`` scraped every ``--scrape-every``
seconds (a third of the interval by default, so no run is missed between scrapes).
Printed:

* healthy devices: the share probed in every interval of the window (each fire time of
  the job, from the scheduler's phases, has a run finishing before the next one) and
  the scheduler's lag p99 (``netmon_scheduler_lag_seconds``, the worst scrape);
* each kind of fault: the statuses netmon gave (every observation of every device, from
  ``netmon_probe_status``), the one expected, whether every device got it, and whether
  its explanation (``/api/targets`` at the end) names the fault;
* tracebacks, pyasn1 lines and Rust panics in netmon's log (must be 0);
* netmon's RSS when healthy and at the end (and its peak, VmHWM), netmon's CPU as a
  share of one core over the window, and each agent process's CPU apart.

Everything runs on 127.0.0.0/8 and in the namespace; everything started is stopped at
the end; the run is bounded by the start-up timeouts + one interval + 2 x ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.daemon_scale import Sampler, memory_kb
from tests import chaos_fleet_lab as lab
from tests import netns as nn

RESULTS = REPO / "benchmarks" / "results"


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="netmon-bench-chaos-"))
    bound = 120 + args.interval + 2 * args.seconds + 120
    sampler: Sampler | None = None
    netmon: lab.NetmonRun | None = None
    try:
        print(f"starting the fleet: {args.devices} SNMP devices, {args.icmp} ICMP targets",
              flush=True)  # fmt: skip
        with lab.fleet(args.devices, args.icmp, args.interval, workdir, bound,
                       fast_processes=args.fast_processes) as fl:  # fmt: skip
            counts = lab.split(args.devices, lab.SNMP_SHARES)
            print(f"agents on UDP port {fl.agents.port}: {counts}; ICMP {len(fl.live)} live, "
                  f"{len(fl.dead)} dead", flush=True)  # fmt: skip
            netmon = lab.NetmonRun(fl, workdir)
            healthy_s = netmon.start()
            assert netmon.process is not None
            agent_pids = fl.agents.pids
            flat = [p for pids in agent_pids.values() for p in pids]
            sampler = Sampler(netmon.process.pid, flat)
            sampler.start()
            sampler.sample()
            rss_start = memory_kb(netmon.process.pid).get("VmRSS", 0)
            t_healthy = time.time()
            print(f"healthy after {healthy_s:.1f} s; warm-up {args.interval:g} s, then "
                  f"{args.seconds:g} s measured", flush=True)  # fmt: skip
            window = (t_healthy + args.interval, t_healthy + args.interval + args.seconds)
            regular = {(j.target.name, j.store_name) for j in lab.regular_jobs(fl)}

            def all_seen(scrapes: list[lab.Scrape]) -> bool:
                return regular <= set(scrapes[-1].status)

            scrapes = lab.observe(netmon, args.interval + args.seconds, args.scrape_every,
                                  until=all_seen)  # fmt: skip
            sampler.sample()
            rss_end = memory_kb(netmon.process.pid).get("VmRSS", 0)
            peak = memory_kb(netmon.process.pid).get("VmHWM", 0)
            targets = netmon.targets()
            sampler.stop()
            netmon.stop()
            log_text = netmon.log_path.read_text(errors="replace")
            fig = lab.evaluate(fl, scrapes, targets, log_text, window)
            rows = sampler.window(*window)
            if len(rows) < 2:
                rows = sampler.rows
            wall = rows[-1].at - rows[0].at
            cpu = (rows[-1].cpu - rows[0].cpu) / wall
            agents_cpu: dict[str, float] = {}
            i = 0
            for name, pids in agent_pids.items():
                used = sum(rows[-1].agents[i + k] - rows[0].agents[i + k] for k in range(len(pids)))
                agents_cpu[name] = round(used / wall, 4)
                i += len(pids)
            if args.keep:
                shutil.copy(fl.config, workdir / "netmon-kept.yml")
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join([".venv/bin/python", "benchmarks/chaos_fleet.py", *sys.argv[1:]]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "kernel": platform.release(), "nice": os.nice(0),
                        "loadavg_at_end": os.getloadavg()},
            "params": {"snmp_devices": args.devices, "icmp_targets": args.icmp,
                       "interval_s": args.interval, "measured_s": args.seconds,
                       "scrape_every_s": args.scrape_every, "kinds": counts,
                       "snmp_timeout_s": lab.SNMP_TIMEOUT, "snmp_retries": lab.SNMP_RETRIES},
            "healthy_s": round(healthy_s, 2),
            "figures": asdict(fig),
            "table": lab.table(fig),
            "rss_mb": {"at_healthy": round(rss_start / 1024, 1), "at_end": round(rss_end / 1024, 1),
                       "peak_vmhwm": round(peak / 1024, 1)},
            "netmon_cpu_share": round(cpu, 4),
            "agents_cpu_share": agents_cpu,
            "cpu_window_s": round(wall, 1),
        }  # fmt: skip
    finally:
        if sampler is not None:
            sampler.stop()
        if netmon is not None:
            netmon.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def report(r: dict[str, Any]) -> str:
    p, rss = r["params"], r["rss_mb"]
    agents = ", ".join(f"{name} {share:.1%}" for name, share in r["agents_cpu_share"].items())
    head = (f"{p['snmp_devices']:,} SNMP devices {p['kinds']} + {p['icmp_targets']:,} ICMP "
            f"targets (20 % dead), every {p['interval_s']:g} s, SNMP timeout "
            f"{p['snmp_timeout_s']:g} s x {p['snmp_retries'] + 1} tries; "
            f"{r['machine']['cpus']} CPUs, nice {r['machine']['nice']}")  # fmt: skip
    resources = [
        "",
        "| resources | measured |",
        "|---|---|",
        f"| netmon RSS when healthy / at the end / peak (VmHWM) | {rss['at_healthy']:.0f} / "
        + f"{rss['at_end']:.0f} / {rss['peak_vmhwm']:.0f} MB |",
        f"| netmon CPU, share of one core ({r['cpu_window_s']:.0f} s window) | "
        + f"{r['netmon_cpu_share']:.1%} |",
        f"| the agents' CPU (not netmon's), share of one core | {agents} |",
        f"| start-up to healthy | {r['healthy_s']:.1f} s |",
    ]
    return head + "\n\n" + str(r["table"]) + "\n" + "\n".join(resources)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=None, help="SNMP devices (default 1000)")
    parser.add_argument("--icmp", type=int, default=None, help="ICMP targets (default 2000)")
    parser.add_argument("--interval", type=float, default=None, help="seconds (default 30)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="measured after one interval of warm-up (default 120)")
    parser.add_argument("--scrape-every", type=float, default=None,
                        help="seconds between scrapes (default: a third of the interval)")
    parser.add_argument("--fast-processes", type=int, default=2,
                        help="fast agent processes for the healthy devices (default 2)")
    parser.add_argument("--quick", action="store_true",
                        help="50 SNMP + 40 ICMP at 10 s, 40 s measured")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (log, config)")
    args = parser.parse_args()
    q = args.quick
    args.devices = args.devices if args.devices is not None else 50 if q else 1000
    args.icmp = args.icmp if args.icmp is not None else 40 if q else 2000
    args.interval = args.interval or (10.0 if q else 30.0)
    args.seconds = args.seconds or (40.0 if q else 120.0)
    args.scrape_every = args.scrape_every or args.interval / 3
    if not 7 <= args.devices <= 20_000 or not 0 <= args.icmp <= 60_000:
        parser.error("--devices 7..20000 (one of each kind at least), --icmp 0..60000")
    if args.interval < 5 or args.seconds < args.interval or args.seconds > 3600:
        parser.error("--interval at least 5 s; --seconds from one interval to 3600")
    if args.icmp and (reason := nn.missing()):
        print(f"cannot make the dead ICMP hosts: {reason}", file=sys.stderr)
        return 2
    result = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"chaos_fleet-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print()
    print(report(result))
    print(f"\nJSON: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
