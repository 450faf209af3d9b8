"""What the embedded history store costs: netmon's CPU with history on against off, and
its disk per device per month.

    .venv/bin/python benchmarks/history_cost.py               # 2,000 + 200 at 10 s, 2 pairs, ~8 min
    .venv/bin/python benchmarks/history_cost.py --hosts 10000 --snmp 1000 --interval 60 --duration 300

Runs benchmarks/daemon_scale.py's lab (the same inventory of ICMP-only lab machines
and SNMP switches and printers served by its fast agents, the real ``netmon run``,
scraped like Prometheus) with ``history.enabled`` off and on, alternating
(off-on, on-off, ...) so that a drift of the shared machine's load hits both alike,
and reports each run's CPU share of one core over its measured window, the mean of
each mode and their ratio. The goal (issue 12): history costs at most 5 % more CPU.
A probe interval of 10 s on 2,200 devices is the rate of 13,200 devices at 60 s: more
than the district (11,000), in a window short enough for this 2-core machine.

Disk: after each history-on run its file is read with SQLite's ``dbstat`` (bytes and
rows of each table): how many series each kind of device really stores (an ICMP-only
machine 3: success, RTT, loss; an SNMP device its own success, ICMP's 3 and its
modules' series: interface rates, oper status, supplies, pages), counting only the
series still written at the end (a port without link keeps no rates). A short run holds a
few rows per series and no complete rollups, so the bytes per row of full tables are
measured apart (:func:`packed_row_sizes`: two virtual days through the store's write
path). Per device at a 60 s interval and the default retention: the steady-state
share of the file once the 5-minute tier is full (48 h raw + 35 d of 5-minute rows +
one month of hourly rows + the series row), plus what the hourly tier adds each
further month (up to 400 d). SQLite's page overhead is included (dbstat counts pages).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import daemon_scale

#: Retention of each tier at the defaults, in seconds, and the goal.
RAW_S, FIVE_S, MONTH_S = 48 * 3600, 35 * 86400, 30 * 86400
GOAL_RATIO = 1.05


def lab_args(opts: argparse.Namespace, history: str) -> argparse.Namespace:
    """The Namespace daemon_scale.run reads, for one run."""
    return argparse.Namespace(
        icmp=opts.hosts, snmp=opts.snmp, interval=opts.interval, duration=opts.duration,
        soak=0.0, agent="fast", agents=2, scrape_every=15.0, profile=0, keep=history == "on",
        no_selftest=True, selftest_result=None, sizing=False, quick=False, history=history,
    )  # fmt: skip


def file_stats(path: Path) -> dict[str, Any]:
    """Bytes and rows per table of a history file, and its series by probe kind."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
        tables = ("series", "raw", "rollup_5m", "rollup_1h", "changes", "outages")
        rows = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
        # sqlite_autoindex_series_1: the UNIQUE index belongs to the series' cost
        sizes = {t: pages.get(t, 0) for t in tables}
        sizes["series"] += sum(
            v for k, v in pages.items() if k.startswith("sqlite_autoindex_series")
        )
        kinds = Counter()
        for target, probe in conn.execute("SELECT target, probe FROM series"):
            kinds["lab" if target.startswith("lab-") else "snmp-device", probe] += 1
        # Series still written in the last 30 s (a down port's rates are not).
        last = conn.execute("SELECT MAX(t) FROM raw").fetchone()[0] or 0
        active = Counter()
        for (target,) in conn.execute(
            "SELECT s.target FROM series s WHERE EXISTS "
            "(SELECT 1 FROM raw r WHERE r.series_id = s.id AND r.t >= ?)",
            (last - 30,),
        ):
            active["lab" if target.startswith("lab-") else "snmp-device"] += 1
        targets = dict(
            conn.execute(
                "SELECT CASE WHEN target LIKE 'lab-%' THEN 'lab' ELSE 'snmp-device' END, "
                "COUNT(DISTINCT target) FROM series GROUP BY 1"
            ).fetchall()
        )
    finally:
        conn.close()
    per_row = {
        t: sizes[t] / rows[t] for t in ("raw", "rollup_5m", "rollup_1h", "series") if rows[t]
    }
    return {
        "file_bytes": path.stat().st_size, "bytes": sizes, "rows": rows, "bytes_per_row": per_row,
        "targets": targets,
        "series_per_target": {
            kind: sum(n for (k, _), n in kinds.items() if k == kind) / targets[kind]
            for kind in targets
        },
        "written_series_per_target": {kind: active[kind] / targets[kind] for kind in targets},
    }  # fmt: skip


def packed_row_sizes(workdir: Path, days: float = 2.0) -> dict[str, float]:
    """Bytes per row of each tier once tables are full, measured by feeding the store
    (its real write path, a virtual clock) ``days`` of 20 lab machines and 2 switches
    of 24 ports at 60 s: a short lab run holds a few rows per series only, packed
    differently, and no complete rollups."""
    from monitor.store.history import HistorySettings, HistoryStore
    from monitor.store.results import ResultStore
    from probes.result import ProbeResult, Sample, Status

    now = [1_700_000_000.0]
    path = workdir / "packed.db"
    store = HistoryStore(path, HistorySettings(max_size="100GB"), clock=lambda: now[0])
    store.start(background=False)
    results = ResultStore()
    results.subscribe(store.record)
    rng = random.Random(12)
    octets = {(sw, port): 0.0 for sw in range(2) for port in range(24)}
    for step in range(int(days * 1440)):
        t = now[0] + 60
        for pc in range(20):
            samples = [Sample.of("netmon_probe_success", 1),
                       Sample.of("netmon_icmp_rtt_seconds", rng.uniform(2e-4, 4e-3), stat="avg"),
                       Sample.of("netmon_icmp_packet_loss_ratio", 0.0)]  # fmt: skip
            results.put(ProbeResult(Status.OK, "ok", samples, probe="icmp", target=f"lab-{pc}",
                                    started_at=t), {}, 60.0)  # fmt: skip
        for sw in range(2):
            samples = [Sample.of("netmon_probe_success", 1)]
            for port in range(24):
                octets[sw, port] += rng.choice((0, 0, 1e3, 1e6, 5e7)) * rng.random()
                for metric in ("receive_bytes", "transmit_bytes"):
                    samples.append(Sample.of(f"netmon_interface_{metric}_total", octets[sw, port],
                                             if_index=port, if_name=f"ge{port}"))  # fmt: skip
                for metric in ("receive_errors", "transmit_errors"):
                    samples.append(Sample.of(f"netmon_interface_{metric}_total", 3,
                                             if_index=port, if_name=f"ge{port}"))  # fmt: skip
                samples.append(
                    Sample.of("netmon_interface_oper_up", 1, if_index=port, if_name=f"ge{port}")
                )
            results.put(ProbeResult(Status.OK, "ok", samples, probe="snmp", target=f"sw-{sw}",
                                    started_at=t), {}, 60.0)  # fmt: skip
        now[0] = t
        if step % 30 == 0:
            store.flush()
    store.close()
    stats = file_stats(path)
    path.unlink()
    return stats["bytes_per_row"]


def per_device_month(
    series_per_target: dict[str, float], row: dict[str, float], interval: float = 60.0
) -> dict[str, dict[str, float]]:
    """Bytes of one device once the tiers are full, and the hourly tier's growth per
    month after that (see the module docstring)."""
    out = {}
    for kind, series in series_per_target.items():
        raw = RAW_S / interval * row["raw"]
        five = FIVE_S / 300 * row["rollup_5m"]
        hour = MONTH_S / 3600 * row["rollup_1h"]
        out[kind] = {"series": series, "steady_bytes": series * (raw + five + hour + row["series"]),
                     "hourly_growth_bytes_per_month": series * hour}  # fmt: skip
    return out


def mib(n: float) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=2000, help="ICMP-only targets (default 2000)")
    parser.add_argument(
        "--snmp", type=int, default=200, help="SNMP devices, also pinged (default 200)"
    )
    parser.add_argument(
        "--interval", type=float, default=10.0, help="probe interval, s (default 10)"
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help="measured seconds per run (default 60)"
    )
    parser.add_argument(
        "--pairs", type=int, default=2, help="off/on pairs, alternating (default 2)"
    )
    opts = parser.parse_args()
    runs: list[dict[str, Any]] = []
    stats: dict[str, Any] | None = None
    for k in range(opts.pairs):
        for mode in ("off", "on") if k % 2 == 0 else ("on", "off"):
            print(f"\n=== pair {k + 1}/{opts.pairs}: history {mode}", flush=True)
            result = daemon_scale.run(lab_args(opts, mode))
            if mode == "on":
                workdir = Path(result.pop("workdir"))
                stats = file_stats(workdir / "netmon-history.db")
                shutil.rmtree(workdir, ignore_errors=True)
            runs.append({"history": mode, "cpu_share": result["cpu_share"],
                         "completed_ratio": result["completed_ratio"],
                         "steady_rss_mb": result["steady_rss_mb"], "window_s": result["window_s"]})  # fmt: skip
            print(f"history {mode}: CPU {result['cpu_share']:.1%} of a core, "
                  f"RSS {result['steady_rss_mb']} MB", flush=True)  # fmt: skip
    off = statistics.mean(r["cpu_share"] for r in runs if r["history"] == "off")
    on = statistics.mean(r["cpu_share"] for r in runs if r["history"] == "on")
    assert stats is not None
    workdir = Path(tempfile.mkdtemp(prefix="netmon-bench-history-"))
    try:
        packed = packed_row_sizes(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    disk = per_device_month(stats["written_series_per_target"], packed)
    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/history_cost.py", *sys.argv[1:]]),
        "params": vars(opts), "runs": runs, "cpu_share_off": off, "cpu_share_on": on,
        "ratio": on / off, "goal_ratio": GOAL_RATIO, "file": stats, "packed_bytes_per_row": packed,
        "per_device": disk,
    }  # fmt: skip
    print("\n| history | runs | CPU (share of one core) | steady RSS |\n|---|---|---|---|")
    for mode, cpu in (("off", off), ("on", on)):
        rss = statistics.mean(r["steady_rss_mb"] for r in runs if r["history"] == mode)
        print(f"| {mode} | {sum(r['history'] == mode for r in runs)} | {cpu:.1%} | {rss:.0f} MB |")
    verdict = "yes" if on / off <= GOAL_RATIO else "**no**"
    print(f"\nratio on/off: {on / off:.3f} (goal <= {GOAL_RATIO}: {verdict})")
    b = stats["bytes_per_row"]
    print(f"lab run: {stats['rows']['raw']:,} raw rows at {b['raw']:.1f} B (file {mib(stats['file_bytes'])}); "
          f"full tables: raw {packed['raw']:.1f} B, 5-minute {packed['rollup_5m']:.1f} B, "
          f"hourly {packed['rollup_1h']:.1f} B a row, {packed['series']:.0f} B a series")  # fmt: skip
    for kind, d in disk.items():
        print(f"{kind}: {d['series']:.1f} series written -> {mib(d['steady_bytes'])} per device (steady state, "
              f"60 s interval), + {mib(d['hourly_growth_bytes_per_month'])} per further month")  # fmt: skip
    out = daemon_scale.RESULTS / f"history_cost-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"JSON: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
