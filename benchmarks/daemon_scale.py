"""netmon's daemon at school-district scale, on loopback.

    .venv/bin/python benchmarks/daemon_scale.py                # 5,000 ICMP + 500 SNMP at 60 s
    .venv/bin/python benchmarks/daemon_scale.py --quick        # 500 + 40 at 10 s, ~1.5 minutes
    .venv/bin/python benchmarks/daemon_scale.py --icmp 5000 --snmp 1000 --interval 60 --duration 180
    .venv/bin/python benchmarks/daemon_scale.py --agent snmpsim --agents 4   # the old agents

Writes an inventory (temp dir) with N ICMP-only lab machines on 127.10.x.y (.0 and .255
skipped) and M SNMP devices on 127.0.1.1-250, 127.0.2.1-250 ... (1,000 devices end at
127.0.4.250): half switches (role ``switch`` = icmp + snmp system+interfaces), half
printers (role ``printer`` = icmp + snmp system+printer); the community is the
recording's path, round-robin over the project's recordings. ``--agents`` processes
serve them: ``--agent fast`` (default; benchmarks/fast_agent.py, the same recordings
pre-encoded, ~600,000 varbinds per CPU-second, first checked byte for byte against
snmpsim) or ``--agent snmpsim`` (~10,000 varbinds per CPU-second: too few for 1,000
devices on 2 cores). Starts the real ``.venv/bin/netmon run`` and, like Prometheus,
scrapes its ``/metrics`` every ``--scrape-every`` seconds.

Timeline and what is measured:
* start-up: spawn -> ``/-/healthy`` answers (config loaded, HTTP up);
* warm-up: -> ``/-/ready`` (every job ran once, about one interval);
* the measured window: ``--duration`` seconds from ready. CPU share of one core =
  (utime+stime of the daemon, from /proc/PID/stat sampled every second) / wall seconds
  of the window; RSS from /proc/PID/status (VmRSS every second, VmHWM = peak).
* scheduler lag: ``netmon_scheduler_lag_seconds{stat=p50|p99|max}`` covers the last
  1,000 runs only, so it is read at every scrape; the table shows the worst scrape.
* completed vs scheduled: each job fires once per interval at a fixed phase (sha256 of
  its id, as monitor.scheduler computes it), so a window of W seconds holds
  floor(W/I) or ceil(W/I) runs of each job, about jobs x W/I in all. "Scheduled" counts
  those fire times exactly, inside (first scrape, last scrape]; "completed" is the rise
  of ``netmon_probe_runs_total`` (any status) between those two scrapes. Runs in flight
  at either end roughly cancel out (a few runs either way; the SNMP ones take ~0.1-2 s).
* the agents' CPU (all agent processes, utime+stime over the window, as a share of one
  core: the total and per process) is reported apart: it is not netmon's, but a
  saturated agent (~100 % of a core) makes SNMP runs time out and is then the
  bottleneck, not netmon. It also competes with netmon for the machine's cores.

``--profile SECONDS`` samples the daemon with py-spy (if installed) during the window
and prints where its time goes. Loopback only; everything started is stopped at the
end (try/finally); the run is bounded by start-up + warm-up timeouts + duration.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import fast_agent
from monitor import simlab
from monitor.config import load_config, resolve_targets
from monitor.scheduler import _EPOCH, plan_jobs

RESULTS = REPO / "benchmarks" / "results"
NETMON = REPO / ".venv" / "bin" / "netmon"
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOALS = {"cpu_share": 0.50, "peak_rss_mb": 300.0, "lag_p99_s": 1.0, "completed": 1.0}
SWITCHES = sorted(p.relative_to(simlab.RECORDINGS).with_suffix("").as_posix()
                  for p in (simlab.RECORDINGS / "switch").glob("*.snmprec"))  # fmt: skip
PRINTERS = sorted(p.relative_to(simlab.RECORDINGS).with_suffix("").as_posix()
                  for p in (simlab.RECORDINGS / "printer").glob("*.snmprec"))  # fmt: skip


# --- inventory -------------------------------------------------------------------------


def icmp_ranges(n: int) -> list[tuple[str, int]]:
    """Ranges 127.10.K.1-254 (the last one shorter) covering ``n`` addresses."""
    out = []
    for k in range(math.ceil(n / 254)):
        count = min(254, n - 254 * k)
        if k >= 256:
            raise SystemExit("at most 65,024 ICMP targets (127.10.0.0/16)")
        out.append((f"127.10.{k}.1-127.10.{k}.{count}", k))
    return out


def snmp_address(i: int) -> str:
    """The i-th SNMP device: 127.0.1.1 ... 127.0.1.250, 127.0.2.1 ... (at most 63,750)."""
    if not 0 <= i < 250 * 255:
        raise SystemExit("at most 63,750 SNMP devices (127.0.1.1 ... 127.0.255.250)")
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def snmp_devices(m: int) -> list[tuple[str, str, str]]:
    """(name, address, recording) for ``m`` devices: even ones switches, odd ones printers."""
    devices = []
    for i in range(m):
        pool = SWITCHES if i % 2 == 0 else PRINTERS
        recording = pool[(i // 2) % len(pool)]
        devices.append((f"{recording.split('/')[0]}-{i}", snmp_address(i), recording))
    return devices


def inventory(
    n_icmp: int, devices: list[tuple[str, str, str]], interval: float, port: int
) -> dict[str, Any]:
    """The YAML document: one lab group of ranges, one group per recording."""
    recordings = sorted({r for _, _, r in devices})
    cred = {r: f"rec-{r.replace('/', '-')}" for r in recordings}
    groups: list[dict[str, Any]] = []
    if n_icmp:
        groups.append({
            "name": "labs", "role": "lab", "probes": ["icmp"],
            "targets": [{"range": rng, "name_prefix": f"lab-{k}"} for rng, k in icmp_ranges(n_icmp)],
        })  # fmt: skip
    for r in recordings:
        groups.append({
            "name": cred[r].removeprefix("rec-"),
            "role": "switch" if r.startswith("switch/") else "printer",
            "credentials": cred[r],
            "targets": [{"name": n, "address": a} for n, a, rr in devices if rr == r],
        })  # fmt: skip
    return {
        "defaults": {
            "interval": f"{interval:g}s",
            "icmp": {"count": 3, "timeout": "1s"},
            "snmp": {"port": port, "timeout": "2s", "retries": 1},
        },
        "credentials": {cred[r]: {"version": "2c", "community": r} for r in recordings},
        "groups": groups,
    }


# --- /proc sampling --------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in kB."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


@dataclass
class Sampler:
    """Samples the daemon's CPU and RSS and the agents' CPU once a second (a thread)."""

    pid: int
    agent_pids: list[int]
    rows: list[tuple[float, float, int, list[float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(1.0)

    def sample(self) -> None:
        cpu = cpu_seconds(self.pid)
        if cpu is None:
            return
        agents = [cpu_seconds(p) or 0.0 for p in self.agent_pids]
        self.rows.append((time.time(), cpu, memory_kb(self.pid).get("VmRSS", 0), agents))

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def window(self, t0: float, t1: float) -> list[tuple[float, float, int, list[float]]]:
        return [r for r in self.rows if t0 <= r[0] <= t1]


# --- /metrics --------------------------------------------------------------------------


def http_get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


@dataclass
class Scrape:
    """One /metrics scrape: when, how long it took, and the figures we read from it."""

    at: float
    seconds: float
    size_bytes: int
    series: int
    lag: dict[str, float]
    runs: dict[str, float]
    skipped: dict[str, float]


def scrape(base: str) -> Scrape:
    from prometheus_client.parser import text_string_to_metric_families

    t0 = time.time()
    status, body = http_get(f"{base}/metrics", timeout=60)
    elapsed = time.time() - t0
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    lag: dict[str, float] = {}
    runs: dict[str, float] = {}
    skipped: dict[str, float] = {}
    series = 0
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            series += 1
            if s.name == "netmon_scheduler_lag_seconds":
                lag[s.labels["stat"]] = s.value
            elif s.name == "netmon_probe_runs_total":
                runs[f"{s.labels['probe']}/{s.labels['status']}"] = s.value
            elif s.name == "netmon_scheduler_skipped_runs_total":
                skipped[f"{s.labels['probe']}/{s.labels['reason']}"] = s.value
    return Scrape(t0, elapsed, len(body), series, lag, runs, skipped)


def scheduled_runs(config: Path, t0: float, t1: float) -> Counter[str]:
    """Fire times of every job inside (t0, t1], by probe, from the scheduler's phases."""
    epoch = _EPOCH.timestamp()
    out: Counter[str] = Counter()
    for job in plan_jobs(resolve_targets(load_config(config))):
        first = epoch + job.phase
        # k such that t0 < first + k*I <= t1
        k0 = math.floor((t0 - first) / job.interval) + 1
        k1 = math.floor((t1 - first) / job.interval)
        out[job.probe] += max(0, k1 - k0 + 1)
    return out


# --- profile ---------------------------------------------------------------------------


def py_spy() -> str | None:
    exe = Path(sys.executable).parent / "py-spy"
    return str(exe) if exe.exists() else shutil.which("py-spy")


def summarize_profile(raw: Path, top: int = 15) -> dict[str, Any]:
    """Collapsed stacks -> share of samples in each library (inclusive), by the leaf
    frame's owner (self time) and by leaf function."""
    total = 0
    packages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    own: Counter[str] = Counter()
    libraries = (
        "pyasn1",
        "pysnmp",
        "apscheduler",
        "aiohttp",
        "prometheus_client",
        "pydantic",
        "alerts/",
        "sqlite3",
    )
    # A leaf frame's owner: a library, netmon's own code, or the standard library.
    owners = (*libraries, "alerts/", "monitor/", "probes/")
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for name in libraries:
            if any(name in f for f in frames):
                packages[name] += count
        owner = next((o.rstrip("/") for o in owners if o in frames[-1]), "stdlib/other")
        own[owner] += count
        leaves[frames[-1]] += count
    share = {k: round(v / total, 3) for k, v in packages.most_common()} if total else {}
    return {
        "samples": total,
        "inclusive_share_by_library": share,
        "self_share_by_owner": {k: round(v / total, 3) for k, v in own.most_common()}
        if total
        else {},
        "top_leaf_functions": [(f, round(c / total, 3)) for f, c in leaves.most_common(top)]
        if total
        else [],
    }


# --- the run ---------------------------------------------------------------------------


def wait_for(url: str, deadline: float, proc: subprocess.Popen[bytes]) -> float | None:
    """Poll ``url`` until it answers 200 (returns the time) or ``deadline`` passes."""
    while time.time() < deadline:
        if proc.poll() is not None:
            return None
        status, _ = http_get(url, timeout=5)
        if status == 200:
            return time.time()
        time.sleep(0.25)
    return None


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="netmon-bench-daemon-"))
    agents: list[simlab.Agent] = []
    fast: fast_agent.FastAgents | None = None
    daemon: subprocess.Popen[bytes] | None = None
    sampler: Sampler | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        devices = snmp_devices(args.snmp)
        port = simlab.free_udp_port("127.0.0.1")
        addresses = [a for _, a, _ in devices]
        n_agents = min(args.agents, len(addresses))
        if args.agent == "fast" and addresses:
            print(
                f"starting {n_agents} fast agent processes on {len(addresses)} addresses, port {port}",
                flush=True,
            )
            # The workers' own time bound: start-up, warm-up, the window and some slack.
            bound = 120 + 3 * args.interval + args.duration + 600
            fast = fast_agent.start(addresses, port, processes=n_agents, max_seconds=bound)
            agent_pids = fast.pids
        else:
            for k in range(n_agents):
                mine = addresses[k::n_agents]
                print(
                    f"starting snmpsim {k + 1}/{n_agents} on {len(mine)} addresses, port {port}",
                    flush=True,
                )
                agents.append(simlab.start_snmpsim(
                    host=mine[0], port=port, extra_endpoints=[(a, port) for a in mine[1:]],
                    timeout=120.0,
                ))  # fmt: skip
            agent_pids = [a.process.pid for a in agents]
        config = workdir / "netmon.yml"
        config.write_text(
            yaml.safe_dump(inventory(args.icmp, devices, args.interval, port), sort_keys=False)
        )
        n_jobs = Counter(j.probe for j in plan_jobs(resolve_targets(load_config(config))))
        print(
            f"inventory: {args.icmp} ICMP-only + {args.snmp} SNMP targets -> jobs {dict(n_jobs)}",
            flush=True,
        )

        listen_port = simlab.free_tcp_port()
        base = f"http://127.0.0.1:{listen_port}"
        log = (workdir / "netmon.log").open("wb")
        t_spawn = time.time()
        daemon = subprocess.Popen(
            [str(NETMON), "run", "-c", str(config), "--listen", f"127.0.0.1:{listen_port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        sampler = Sampler(daemon.pid, agent_pids)
        sampler.start()
        t_healthy = wait_for(f"{base}/-/healthy", t_spawn + 120, daemon)
        if t_healthy is None:
            raise RuntimeError(
                f"netmon did not become healthy:\n{(workdir / 'netmon.log').read_text()[-3000:]}"
            )
        print(
            f"healthy after {t_healthy - t_spawn:.1f} s; waiting for ready (~one interval)",
            flush=True,
        )
        t_ready = wait_for(f"{base}/-/ready", t_healthy + args.interval + 60, daemon)
        if t_ready is None:
            raise RuntimeError("netmon did not become ready within interval + 60 s")
        print(f"ready after {t_ready - t_spawn:.1f} s; measuring {args.duration:g} s", flush=True)

        scrapes = [scrape(base)]
        t_end = scrapes[0].at + args.duration
        if args.profile and (exe := py_spy()):
            spy = subprocess.Popen(
                [exe, "record", "--pid", str(daemon.pid), "--duration", str(args.profile),
                 "--rate", "50", "--nonblocking", "--format", "raw", "-o", str(workdir / "profile.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        while (now := time.time()) < t_end:
            time.sleep(min(args.scrape_every, t_end - now) if args.scrape_every else t_end - now)
            if daemon.poll() is not None:
                raise RuntimeError(f"netmon exited with {daemon.returncode}")
            scrapes.append(scrape(base))
        sampler.sample()
        sampler.stop()
        first, last = scrapes[0], scrapes[-1]
        profile = None
        if spy is not None:
            spy.wait(timeout=args.profile + 30)
            if (workdir / "profile.txt").exists():
                profile = summarize_profile(workdir / "profile.txt")

        window = sampler.window(first.at, last.at + last.seconds + 1)
        w0, w1 = window[0], window[-1]
        wall = w1[0] - w0[0]
        startup = sampler.window(t_spawn, t_healthy + 0.5)
        scheduled = scheduled_runs(config, first.at, last.at)
        completed: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        for key, value in last.runs.items():
            probe = key.split("/")[0]
            delta = value - first.runs.get(key, 0.0)
            completed[probe] += int(delta)
            by_status[key] += int(delta)
        skipped = {
            k: int(v - first.skipped.get(k, 0.0))
            for k, v in last.skipped.items()
            if v - first.skipped.get(k, 0.0)
        }
        lag_scrapes = [s.lag for s in scrapes if s.lag]
        worst = max(lag_scrapes, key=lambda lag: lag.get("p99", 0.0)) if lag_scrapes else {}
        ok = sum(v for k, v in by_status.items() if k.endswith("/ok"))
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join([".venv/bin/python", "benchmarks/daemon_scale.py", *sys.argv[1:]]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
            "params": {"icmp_targets": args.icmp, "snmp_targets": args.snmp, "interval_s": args.interval,
                       "duration_s": args.duration, "agent": args.agent, "snmp_agents": len(agent_pids),
                       "scrape_every_s": args.scrape_every, "agent_selftest": args.selftest_result,
                       "snmp_recordings": sorted({r for _, _, r in devices})},
            "jobs": dict(n_jobs),
            "startup": {"to_healthy_s": round(t_healthy - t_spawn, 2), "to_ready_s": round(t_ready - t_spawn, 2),
                        "cpu_s_to_healthy": round(startup[-1][1], 2) if startup else None},
            "window_s": round(wall, 1),
            "cpu_s": round(w1[1] - w0[1], 2),
            "cpu_share": round((w1[1] - w0[1]) / wall, 4),
            "rss_mb_end": round(w1[2] / 1024, 1),
            "peak_rss_mb": round(max(r[2] for r in sampler.rows) / 1024, 1),
            "vmhwm_mb": round(memory_kb(daemon.pid).get("VmHWM", 0) / 1024, 1),
            "lag_last_scrape": last.lag,
            "lag_worst_scrape": worst,
            "lag_p99_max_over_scrapes": max((lag.get("p99", 0.0) for lag in lag_scrapes), default=None),
            "lag_max_over_scrapes": max((lag.get("max", 0.0) for lag in lag_scrapes), default=None),
            "scheduled": dict(scheduled),
            "completed": dict(completed),
            "completed_ratio": round(sum(completed.values()) / max(1, sum(scheduled.values())), 4),
            "ok_ratio": round(ok / max(1, sum(scheduled.values())), 4),
            "runs_by_status": {k: v for k, v in sorted(by_status.items()) if v},
            "skipped_runs": skipped,
            "scrapes": {"count": len(scrapes), "median_s": round(sorted(s.seconds for s in scrapes)[len(scrapes) // 2], 3),
                        "max_s": round(max(s.seconds for s in scrapes), 3), "bytes": last.size_bytes,
                        "series": last.series},
            "agents_cpu_share": [round((w1[3][i] - w0[3][i]) / wall, 4) for i in range(len(agent_pids))],
            "agents_cpu_share_total": round(sum(w1[3][i] - w0[3][i] for i in range(len(agent_pids))) / wall, 4),
            "profile": profile,
            # Every 5th sample: seconds since spawn, daemon CPU-s, RSS MB (for plots).
            "timeline": [(round(t - t_spawn, 1), round(c, 2), round(k / 1024, 1)) for t, c, k, _ in sampler.rows[::5]],
        }  # fmt: skip
        return result
    finally:
        if sampler is not None:
            sampler.stop()
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait(timeout=5)
        if daemon is not None:
            stop_process(daemon)
        for agent in agents:
            agent.stop()
        if fast is not None:
            fast.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- report ----------------------------------------------------------------------------


def mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def table(r: dict[str, Any]) -> str:
    p = r["params"]
    lag = r["lag_worst_scrape"]
    scheduled, completed = r["scheduled"], r["completed"]
    per_probe = ", ".join(
        f"{k} {completed.get(k, 0):,}/{v:,}" for k, v in sorted(scheduled.items())
    )
    rows = [
        ("CPU, share of one core", f"{r['cpu_share']:.1%} ({r['cpu_s']:.1f} CPU-s in {r['window_s']:.0f} s)",
         "≤ 50 %", mark(r["cpu_share"] <= GOALS["cpu_share"])),
        ("peak RSS", f"{r['peak_rss_mb']:.0f} MB", "≤ 300 MB", mark(r["peak_rss_mb"] <= GOALS["peak_rss_mb"])),
        ("scheduler lag p50 / p99 / max", (f"{lag.get('p50', float('nan')):.3f} / {lag.get('p99', float('nan')):.3f} / "
         f"{lag.get('max', float('nan')):.3f} s"), "p99 ≤ 1 s",
         mark(lag.get("p99", math.inf) <= GOALS["lag_p99_s"])),
        ("probes completed / scheduled", f"{r['completed_ratio']:.1%} ({per_probe}); ok {r['ok_ratio']:.1%}",
         "100 %", mark(r["completed_ratio"] >= 0.995)),
        ("/metrics scrape", (f"{r['scrapes']['median_s']:.2f} s median, {r['scrapes']['bytes'] / 1e6:.1f} MB, "
         f"{r['scrapes']['series']:,} series"), "", ""),
        ("start-up to healthy / ready", f"{r['startup']['to_healthy_s']:.1f} s / {r['startup']['to_ready_s']:.1f} s", "", ""),
        (f"{p.get('agent', 'snmpsim')} agents' CPU (not netmon's)",
         (f"{r.get('agents_cpu_share_total', sum(r['agents_cpu_share'])):.1%} of one core in all "
          f"({len(r['agents_cpu_share'])} processes: {', '.join(f'{c:.1%}' for c in r['agents_cpu_share'])})"),
         "", ""),
    ]  # fmt: skip
    head = (f"{p['icmp_targets']:,} ICMP + {p['snmp_targets']:,} SNMP targets, every {p['interval_s']:g} s, "
            f"{r['window_s']:.0f} s measured after ready, {r['machine']['cpus']} CPUs")  # fmt: skip
    lines = [head, "", "| figure | measured | goal | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--icmp", type=int, default=5000, help="ICMP-only targets (default 5000)")
    parser.add_argument(
        "--snmp", type=int, default=500, help="SNMP devices, also pinged (default 500)"
    )
    parser.add_argument(
        "--interval", type=float, default=60.0, help="probe interval, s (default 60)"
    )
    parser.add_argument(
        "--duration", type=float, default=180.0, help="measured seconds after ready (default 180)"
    )
    parser.add_argument(
        "--agent",
        choices=("fast", "snmpsim"),
        default="fast",
        help="what serves the SNMP devices: benchmarks/fast_agent.py (default) or snmpsim",
    )
    parser.add_argument("--agents", type=int, default=2, help="agent processes (default 2)")
    parser.add_argument(
        "--no-selftest",
        action="store_true",
        help="skip the fast agent's check against snmpsim before measuring",
    )
    parser.add_argument(
        "--scrape-every",
        type=float,
        default=15.0,
        help="scrape /metrics every S s, like Prometheus (default 15)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="SECONDS",
        help="py-spy the daemon for SECONDS in the window",
    )
    parser.add_argument("--quick", action="store_true", help="500 ICMP + 40 SNMP at 10 s for 30 s")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (config, netmon.log)"
    )
    args = parser.parse_args()
    if args.quick:
        args.icmp, args.snmp, args.interval, args.duration = 500, 40, 10.0, 30.0
        args.scrape_every = min(args.scrape_every, 5.0)
    if args.snmp and args.agent == "snmpsim" and (reason := simlab.snmpsim_available()):
        print(f"cannot serve SNMP devices: {reason}", file=sys.stderr)
        return 2
    args.selftest_result = None
    if args.snmp and args.agent == "fast" and not args.no_selftest:
        if reason := simlab.snmpsim_available():
            print(f"(no check of the fast agent against snmpsim: {reason})", flush=True)
        else:
            diffs = fast_agent.selftest(fast_agent.QUICK_RECORDINGS)
            if diffs:
                print(
                    "the fast agent answers differently from snmpsim:\n" + "\n".join(diffs),
                    file=sys.stderr,
                )
                return 2
            args.selftest_result = (
                f"identical to snmpsim on {', '.join(fast_agent.QUICK_RECORDINGS)}"
            )
    result = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"daemon_scale-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(result))
    print()
    print(
        f"runs by status: {result['runs_by_status']}; skipped: {result['skipped_runs'] or 'none'}"
    )
    if result["profile"]:
        prof = result["profile"]
        print(
            f"py-spy ({prof['samples']} samples); inclusive: {prof['inclusive_share_by_library']}"
        )
        print(f"  self time by owner: {prof['self_share_by_owner']}")
        for name, share in prof["top_leaf_functions"][:10]:
            print(f"  {share:6.1%}  {name}")
    print(f"JSON: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
