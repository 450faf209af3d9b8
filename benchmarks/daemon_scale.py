"""netmon's daemon at school-district scale, on loopback.

    .venv/bin/python benchmarks/daemon_scale.py                # 10,000 hosts + 1,000 SNMP at 60 s
    .venv/bin/python benchmarks/daemon_scale.py --quick        # 500 + 40 at 10 s, ~1.5 minutes
    .venv/bin/python benchmarks/daemon_scale.py --hosts 5000 --snmp 1000 --duration 180
    .venv/bin/python benchmarks/daemon_scale.py --soak 30m     # RSS, fds, tasks over 30 minutes
    .venv/bin/python benchmarks/daemon_scale.py --sizing       # 500, 2,000, 11,000 devices
    .venv/bin/python benchmarks/daemon_scale.py --agent snmpsim --agents 4   # the old agents

Writes an inventory (temp dir) with N ICMP-only lab machines (``--hosts``, alias
``--icmp``) on 127.10.x.y (.0 and .255 skipped: 254 a /24, 10,000 hosts end at
127.10.39.94) and M SNMP devices on 127.0.1.1-250, 127.0.2.1-250 ... (1,000 devices end
at 127.0.4.250): half switches (role ``switch`` = icmp + snmp system+interfaces), half
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
  of the window; RSS from /proc/PID/status: peak = VmHWM (the process's high-water
  mark, start-up included), steady = median VmRSS over the window's last half (MB and
  KB here are 1,024-based, as /proc counts). Bytes per exported series = RSS / the
  series of the last scrape (the measure that carries over to other sizes).
* scheduler lag: ``netmon_scheduler_lag_seconds{stat=p50|p99|max}`` covers the last
  1,000 runs only, so it is read at every scrape; the table shows the worst scrape.
* completed vs scheduled: each job fires once per interval at a fixed phase (sha256 of
  its id, as monitor.scheduler computes it), so a window of W seconds holds
  floor(W/I) or ceil(W/I) runs of each job, about jobs x W/I in all. "Scheduled" counts
  those fire times exactly, inside (first scrape, last scrape]; "completed" is the rise
  of ``netmon_probe_runs_total`` (any status) between those two scrapes, per probe kind.
  Runs in flight at either end roughly cancel out (a few runs either way; the SNMP ones
  take ~0.1-2 s).
* scrapes alternate between plain and ``Accept-Encoding: gzip`` (one request per round,
  so the daemon is scraped as often as by one Prometheus); the table gives the median
  time and size of each kind. A daemon that answers the gzip request uncompressed (no
  ``Content-Encoding: gzip``) is reported as "not supported". Only the few self-metric
  lines are parsed at each scrape; the last scrape is parsed in full after the window
  (a check that the exposition is valid, outside the measurement).
* the agents' CPU (all agent processes, utime+stime over the window, as a share of one
  core: the total and per process) is reported apart: it is not netmon's, but a
  saturated agent (~100 % of a core) makes SNMP runs time out and is then the
  bottleneck, not netmon (the table checks each stays under half a core). It also
  competes with netmon for the machine's cores, as does this script (its CPU too).

``--soak DURATION`` (``30m``, ``2h``, ``90s``) measures for DURATION instead of
``--duration`` and adds: VmRSS, open fds (/proc/PID/fd) and threads (/proc/PID/status)
every second, asyncio tasks (``netmon_event_loop_tasks``) at every scrape, each at the
start (the first interval after ready) and the end (the last interval). The RSS growth
is counted after a warm-up standing for the "first hour": max(10 intervals - the
store's history of 10 runs per job is full by then -, 10 % of the soak), at most half
the soak; for 30 minutes at 60 s that is the first 10 minutes. Growth = median VmRSS
over the last interval / median VmRSS over the interval before the warm-up mark - 1;
also the least-squares slope after the warm-up, in MB/hour. Fds, threads and tasks
(which go up and down with the probe runs in flight) "grew" when their least-squares
trend over the soak rises by more than 1 and by more than 3 standard errors.

``--sizing`` runs 450 + 50, 1,800 + 200 and 10,000 + 1,000 (ICMP-only + SNMP; about one
SNMP switch or printer per ten ping-only machines, the full-size mix) one after another,
each measured for 120 s after ready (``--duration`` changes it), and prints one table of
devices against memory and CPU. With ``--quick``: a tenth of those sizes at 10 s.

``--profile SECONDS`` samples the daemon with py-spy (if installed) during the window
and prints where its time goes. Loopback only; everything started is stopped at the
end (try/finally); the run is bounded by start-up + warm-up timeouts + duration.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
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
from typing import Any, NamedTuple

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import fast_agent
from monitor.config import load_config, resolve_targets
from monitor.demo import simlab
from monitor.scheduler import _EPOCH, plan_jobs
from monitor.store import results as store

RESULTS = REPO / "benchmarks" / "results"
NETMON = REPO / ".venv" / "bin" / "netmon"
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOALS = {
    "cpu_share": 0.50,
    "peak_rss_mb": 400.0,
    "bytes_per_series": 0.6 * 1024,
    "lag_p99_s": 1.0,
    "completed": 0.995,  # 100 % but for the runs in flight at either end of the window
    "healthy_s": 2.0,
    "agent_cpu_share": 0.50,  # per agent process: below it the agents are not the bottleneck
    "soak_rss_growth": 0.05,
}
#: The store keeps this many runs per job: RSS may grow until that many intervals passed.
HISTORY_RUNS = getattr(store, "HISTORY_LENGTH", 10)
#: --sizing: (ICMP-only, SNMP) pairs, 500, 2,000 and 11,000 devices.
SIZING = ((450, 50), (1800, 200), (10_000, 1000))
SIZING_QUICK = ((45, 5), (180, 20), (450, 50))
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
    """VmRSS and VmHWM (peak RSS) in kB, and Threads (a count)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def open_fds(pid: int) -> int:
    """File descriptors a process has open (-1 if unreadable)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Row(NamedTuple):
    """One sample: time, daemon CPU-s, VmRSS kB, each agent's CPU-s, open fds, threads."""

    at: float
    cpu: float
    rss_kb: int
    agents: list[float]
    fds: int
    threads: int


@dataclass
class Sampler:
    """Samples the daemon's CPU, RSS, fds and threads and the agents' CPU once a second
    (a thread)."""

    pid: int
    agent_pids: list[int]
    rows: list[Row] = field(default_factory=list)
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
        mem = memory_kb(self.pid)
        self.rows.append(
            Row(time.time(), cpu, mem.get("VmRSS", 0), agents, open_fds(self.pid),
                mem.get("Threads", 0))
        )  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def window(self, t0: float, t1: float) -> list[Row]:
        return [r for r in self.rows if t0 <= r.at <= t1]


# --- /metrics --------------------------------------------------------------------------


def http_get(
    url: str, timeout: float = 30.0, headers: dict[str, str] | None = None
) -> tuple[int, bytes, str]:
    """Status, body (as sent: not decompressed) and Content-Encoding of a GET."""
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Encoding", "")
    except urllib.error.HTTPError as exc:
        return exc.code, b"", ""
    except OSError:
        return 0, b"", ""


#: The self-metrics read at every scrape (lines starting with these; the rest is counted).
READ_AT_EVERY_SCRAPE = (
    b"netmon_scheduler_lag_seconds",
    b"netmon_probe_runs_total",
    b"netmon_scheduler_skipped_runs_total",
    b"netmon_event_loop_tasks",
    b"netmon_process_open_fds",
)


@dataclass
class Scrape:
    """One /metrics scrape: when, how long it took, and the figures we read from it."""

    at: float
    seconds: float
    size_bytes: int  # uncompressed
    series: int
    lag: dict[str, float]
    runs: dict[str, float]
    skipped: dict[str, float]
    asked_gzip: bool = False
    gzipped: bool = False
    wire_bytes: int = 0  # as sent: compressed if gzipped
    tasks: float | None = None
    fds: float | None = None


def scrape(base: str, asked_gzip: bool = False) -> tuple[Scrape, bytes]:
    """Scrape ``/metrics`` (with ``Accept-Encoding: gzip`` if ``asked_gzip``); the figures
    and the uncompressed body. The time is the request's until the last byte is read."""
    from prometheus_client.parser import text_string_to_metric_families

    headers = {"Accept-Encoding": "gzip"} if asked_gzip else {"Accept-Encoding": "identity"}
    t0 = time.time()
    status, wire, encoding = http_get(f"{base}/metrics", timeout=60, headers=headers)
    elapsed = time.time() - t0
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    gzipped = encoding.lower() == "gzip"
    body = gzip.decompress(wire) if gzipped else wire
    if encoding.lower() not in ("", "identity", "gzip"):
        raise RuntimeError(f"/metrics answered with Content-Encoding {encoding!r}")
    series = 0
    picked: list[bytes] = []
    for line in body.split(b"\n"):
        if not line or line.startswith(b"#"):
            continue
        series += 1
        if line.startswith(READ_AT_EVERY_SCRAPE):
            picked.append(line)
    lag: dict[str, float] = {}
    runs: dict[str, float] = {}
    skipped: dict[str, float] = {}
    tasks = fds = None
    text = b"\n".join(picked).decode() + "\n"
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "netmon_scheduler_lag_seconds":
                lag[s.labels["stat"]] = s.value
            elif s.name == "netmon_probe_runs_total":
                runs[f"{s.labels['probe']}/{s.labels['status']}"] = s.value
            elif s.name == "netmon_scheduler_skipped_runs_total":
                skipped[f"{s.labels['probe']}/{s.labels['reason']}"] = s.value
            elif s.name == "netmon_event_loop_tasks":
                tasks = s.value
            elif s.name == "netmon_process_open_fds":
                fds = s.value
    result = Scrape(t0, elapsed, len(body), series, lag, runs, skipped,
                    asked_gzip, gzipped, len(wire), tasks, fds)  # fmt: skip
    return result, body


def check_exposition(body: bytes, series: int) -> None:
    """Parse a whole scrape (client_python's parser): it must be valid, ``series`` samples."""
    from prometheus_client.parser import text_string_to_metric_families

    parsed = sum(len(f.samples) for f in text_string_to_metric_families(body.decode()))
    if parsed != series:
        raise RuntimeError(f"/metrics: {parsed} samples parsed, {series} sample lines counted")


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def scrape_figures(scrapes: list[Scrape]) -> dict[str, Any]:
    """Median time and size of the plain and of the gzip scrapes (None if not supported)."""
    plain = [s for s in scrapes if not s.gzipped]
    zipped = [s for s in scrapes if s.gzipped]
    asked = [s for s in scrapes if s.asked_gzip]
    last = scrapes[-1]
    out: dict[str, Any] = {
        "count": len(scrapes),
        "median_s": round(statistics.median(s.seconds for s in plain), 3) if plain else None,
        "max_s": round(max(s.seconds for s in plain), 3) if plain else None,
        "bytes": last.size_bytes,
        "series": last.series,
        "plain": {"count": len(plain),
                  "median_s": round(statistics.median(s.seconds for s in plain), 3) if plain else None,
                  "median_bytes": int(statistics.median(s.wire_bytes for s in plain)) if plain else None},
        "gzip": None if not zipped else {
            "count": len(zipped),
            "median_s": round(statistics.median(s.seconds for s in zipped), 3),
            "max_s": round(max(s.seconds for s in zipped), 3),
            "median_bytes": int(statistics.median(s.wire_bytes for s in zipped)),
            "ratio": round(statistics.median(s.size_bytes / s.wire_bytes for s in zipped), 1),
        },
        "gzip_asked": len(asked),
    }  # fmt: skip
    return out


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


def own_cpu_seconds() -> float:
    """This script's own CPU (all its threads: scraping and reading /metrics, sampling)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def spread(values: list[float]) -> dict[str, float] | None:
    """min / median / max of some samples (None if there are none)."""
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def trend(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of (time, value) points and its standard error, per second."""
    if len(points) < 3:
        return 0.0, 0.0
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    if not den:
        return 0.0, 0.0
    slope = sum((t - mt) * (v - mv) for t, v in points) / den
    resid = sum((v - mv - slope * (t - mt)) ** 2 for t, v in points)
    return slope, math.sqrt(resid / (len(points) - 2) / den)


def soak_figures(rows: list[Row], scrapes: list[Scrape], interval: float) -> dict[str, Any]:
    """RSS growth after the warm-up, and fds, threads and tasks at the start and the end.

    The warm-up stands for the issue's "first hour": max(HISTORY_RUNS intervals, 10 % of
    the soak), at most half of it. RSS at the warm-up mark = median VmRSS over the interval
    before it; at the end = median over the last interval (one interval smooths the
    per-interval saw-tooth of probe runs and scrapes). Start = the first interval of the
    soak, end = the last. Tasks (and fds) go up and down with the probe runs in flight, so
    a start/end pair is noisy: fds, threads and tasks "grew" when their least-squares
    trend over the whole soak rises by more than 1 and by more than 3 standard errors.
    """
    t0, t1 = rows[0].at, rows[-1].at
    soak = t1 - t0
    warm = min(max(HISTORY_RUNS * interval, 0.1 * soak), 0.5 * soak)
    span = min(interval, warm)
    at_warm = [r.rss_kb for r in rows if t0 + warm - span <= r.at <= t0 + warm]
    at_end = [r.rss_kb for r in rows if r.at >= t1 - span]
    base_kb, end_kb = statistics.median(at_warm), statistics.median(at_end)
    after = [r for r in rows if r.at >= t0 + warm]
    slope = trend([(r.at, r.rss_kb) for r in after])[0] * 3600 / 1024  # MB per hour
    start_rows = [r for r in rows if r.at <= t0 + interval]
    end_rows = [r for r in rows if r.at >= t1 - interval]
    start_scrapes = [s for s in scrapes if s.at <= scrapes[0].at + interval]
    end_scrapes = [s for s in scrapes if s.at >= scrapes[-1].at - interval]
    out: dict[str, Any] = {
        "soak_s": round(soak, 1),
        "warmup_s": round(warm, 1),
        "warmup_rule": (f"max({HISTORY_RUNS} intervals, 10 % of the soak), at most half of it;"
                        f" RSS = median VmRSS over {span:g} s"),
        "rss_mb": {"start": round(statistics.median(r.rss_kb for r in start_rows) / 1024, 1),
                   "warmup": round(base_kb / 1024, 1), "end": round(end_kb / 1024, 1),
                   "max_after_warmup": round(max(r.rss_kb for r in after) / 1024, 1) if after else None},
        "rss_growth_after_warmup": round(end_kb / base_kb - 1, 4) if base_kb else None,
        "rss_slope_mb_per_hour_after_warmup": round(slope, 1),
        "fds": {"start": spread([r.fds for r in start_rows]), "end": spread([r.fds for r in end_rows])},
        "threads": {"start": spread([r.threads for r in start_rows]),
                    "end": spread([r.threads for r in end_rows])},
        "tasks": {"start": spread([s.tasks for s in start_scrapes if s.tasks is not None]),
                  "end": spread([s.tasks for s in end_scrapes if s.tasks is not None])},
    }  # fmt: skip
    series = {
        "fds": [(r.at, r.fds) for r in rows if r.fds >= 0],
        "threads": [(r.at, r.threads) for r in rows],
        "tasks": [(s.at, s.tasks) for s in scrapes if s.tasks is not None],
    }
    for key, points in series.items():
        slope, error = trend(points)
        rise, rise_error = slope * soak, error * soak
        out[key]["trend_rise"] = round(rise, 2)
        out[key]["trend_rise_stderr"] = round(rise_error, 2)
        out[key]["grew"] = None if len(points) < 3 else rise > max(1.0, 3 * rise_error)
    return out


def parse_duration(text: str) -> float:
    """``30m``, ``2h``, ``90s``, ``90`` (seconds) -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration like 30m, 2h or 90s")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2]]


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
        status, _, _ = http_get(url, timeout=5)
        if status == 200:
            return time.time()
        time.sleep(0.25)
    return None


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
        doc = inventory(args.icmp, devices, args.interval, port)
        doc["history"] = {"enabled": getattr(args, "history", "on") == "on"}
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
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

        own0 = own_cpu_seconds()
        first_scrape, body = scrape(base)
        scrapes = [first_scrape]
        t_end = scrapes[0].at + args.duration
        progress_every = min(300.0, max(30.0, args.duration / 6))
        next_progress = scrapes[0].at + progress_every
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
            # Alternate plain and gzip: one request a round, as from one Prometheus.
            latest, body = scrape(base, asked_gzip=len(scrapes) % 2 == 1)
            scrapes.append(latest)
            if args.soak and latest.at >= next_progress and sampler.rows:
                next_progress += progress_every
                row = sampler.rows[-1]
                print(
                    f"  {(latest.at - scrapes[0].at) / 60:5.1f} min: RSS {row.rss_kb / 1024:.0f} MB,"
                    f" {row.fds} fds, {row.threads} threads, {latest.tasks} tasks",
                    flush=True,
                )
        sampler.sample()
        sampler.stop()
        own1 = own_cpu_seconds()
        first, last = scrapes[0], scrapes[-1]
        check_exposition(body, last.series)
        vmhwm_kb = memory_kb(daemon.pid).get("VmHWM", 0)
        profile = None
        if spy is not None:
            spy.wait(timeout=args.profile + 30)
            if (workdir / "profile.txt").exists():
                profile = summarize_profile(workdir / "profile.txt")

        window = sampler.window(first.at, last.at + last.seconds + 1)
        w0, w1 = window[0], window[-1]
        wall = w1.at - w0.at
        steady_kb = statistics.median(r.rss_kb for r in window[len(window) // 2 :])
        top = max(sampler.rows, key=lambda r: r.rss_kb)
        near_scrape = any(s.at - 1 <= top.at <= s.at + s.seconds + 1 for s in scrapes)
        phase = ("start-up" if top.at < t_healthy else "warm-up" if top.at < t_ready
                 else "window, during a scrape" if near_scrape else "window")  # fmt: skip
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
                       "duration_s": args.duration, "soak_s": args.soak or None,
                       "agent": args.agent, "snmp_agents": len(agent_pids),
                       "history": getattr(args, "history", "on"),
                       "scrape_every_s": args.scrape_every, "agent_selftest": args.selftest_result,
                       "snmp_recordings": sorted({r for _, _, r in devices})},
            "jobs": dict(n_jobs),
            "startup": {"to_healthy_s": round(t_healthy - t_spawn, 2), "to_ready_s": round(t_ready - t_spawn, 2),
                        "cpu_s_to_healthy": round(startup[-1].cpu, 2) if startup else None},
            "window_s": round(wall, 1),
            "cpu_s": round(w1.cpu - w0.cpu, 2),
            "cpu_share": round((w1.cpu - w0.cpu) / wall, 4),
            "rss_mb_end": round(w1.rss_kb / 1024, 1),
            # The peak is VmHWM: the high-water mark, start-up and warm-up included.
            "peak_rss_mb": round(vmhwm_kb / 1024, 1),
            "vmhwm_mb": round(vmhwm_kb / 1024, 1),
            "max_sampled_rss_mb": round(top.rss_kb / 1024, 1),
            # When the highest sampled VmRSS was seen: s since spawn, and in which phase.
            "max_sampled_rss_at": {"s_since_spawn": round(top.at - t_spawn, 1), "phase": phase},
            "steady_rss_mb": round(steady_kb / 1024, 1),
            "bytes_per_series": {"steady": round(steady_kb * 1024 / max(1, last.series)),
                                 "peak": round(vmhwm_kb * 1024 / max(1, last.series))},
            "lag_last_scrape": last.lag,
            "lag_worst_scrape": worst,
            "lag_p99_max_over_scrapes": max((lag.get("p99", 0.0) for lag in lag_scrapes), default=None),
            "lag_max_over_scrapes": max((lag.get("max", 0.0) for lag in lag_scrapes), default=None),
            "scheduled": dict(scheduled),
            "completed": dict(completed),
            "completed_ratio": round(sum(completed.values()) / max(1, sum(scheduled.values())), 4),
            "completed_ratio_by_probe": {k: round(completed.get(k, 0) / max(1, v), 4)
                                         for k, v in sorted(scheduled.items())},
            "ok_ratio": round(ok / max(1, sum(scheduled.values())), 4),
            "runs_by_status": {k: v for k, v in sorted(by_status.items()) if v},
            "skipped_runs": skipped,
            "scrapes": scrape_figures(scrapes),
            "agents_cpu_share": [round((w1.agents[i] - w0.agents[i]) / wall, 4) for i in range(len(agent_pids))],
            "agents_cpu_share_total": round(sum(w1.agents[i] - w0.agents[i] for i in range(len(agent_pids))) / wall, 4),
            "bench_cpu_share": round((own1 - own0) / wall, 4),
            "process": {"fds": [w0.fds, w1.fds], "threads": [w0.threads, w1.threads],
                        "tasks": [first.tasks, last.tasks], "fds_exported": [first.fds, last.fds]},
            "soak": soak_figures(window, scrapes, args.interval) if args.soak else None,
            "profile": profile,
            # Every 5th sample: seconds since spawn, daemon CPU-s, RSS MB, fds, threads.
            "timeline": [(round(r.at - t_spawn, 1), round(r.cpu, 2), round(r.rss_kb / 1024, 1), r.fds, r.threads)
                         for r in sampler.rows[::5]],
        }  # fmt: skip
        if args.keep:
            result["workdir"] = str(workdir)  # the config, netmon.log, the history file
        return result
    finally:
        if sampler is not None:
            sampler.stop()
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait(timeout=5)
        if daemon is not None:
            simlab.stop_process(daemon, timeout=15)
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


def mb(value: float) -> str:
    return f"{value / 1e6:.1f} MB"


def scrape_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    sc = r["scrapes"]
    plain = sc["plain"]
    text = "none (every scrape was gzipped)"
    if plain["count"]:
        text = (
            f"{plain['median_s']:.2f} s median, {mb(plain['median_bytes'])}, "
            f"{sc['series']:,} series ({plain['count']} scrapes)"
        )
    rows = [("/metrics scrape, plain", text, "", "")]
    z = sc["gzip"]
    if z:
        text = (
            f"{z['median_s']:.2f} s median, {mb(z['median_bytes'])} ({z['ratio']:g}× smaller;"
            f" {z['count']} scrapes)"
        )
    elif sc.get("gzip_asked"):
        text = "not supported (asked with Accept-Encoding: gzip, answered uncompressed)"
    else:
        text = "not measured (one scrape only)"
    rows.append(("/metrics scrape, gzip", text, "", ""))
    return rows


def table(r: dict[str, Any]) -> str:
    p = r["params"]
    lag = r["lag_worst_scrape"]
    scheduled, completed = r["scheduled"], r["completed"]
    per_probe = ", ".join(
        f"{k} {completed.get(k, 0):,}/{v:,}" for k, v in sorted(scheduled.items())
    )
    bps = r.get("bytes_per_series") or {}
    peak = f"{r['peak_rss_mb']:.0f} MB"
    if r.get("max_sampled_rss_at"):
        peak += (
            f" (highest 1-s sample {r['max_sampled_rss_mb']:.0f} MB,"
            f" {r['max_sampled_rss_at']['phase']})"
        )
    agents = r["agents_cpu_share"]
    rows = [
        ("CPU, share of one core", f"{r['cpu_share']:.1%} ({r['cpu_s']:.1f} CPU-s in {r['window_s']:.0f} s)",
         "≤ 50 %", mark(r["cpu_share"] <= GOALS["cpu_share"])),
        ("peak RSS (VmHWM)", peak, "≤ 400 MB", mark(r["peak_rss_mb"] <= GOALS["peak_rss_mb"])),
        ("steady RSS (median, last half of the window)", f"{r.get('steady_rss_mb', float('nan')):.0f} MB", "", ""),
        ("RSS per exported series, peak / steady",
         f"{bps.get('peak', 0):,} B / {bps.get('steady', 0):,} B ({r['scrapes']['series']:,} series)",
         "≤ 0.6 KB (614 B), peak", mark(bps.get("peak", math.inf) <= GOALS["bytes_per_series"])),
        ("scheduler lag p50 / p99 / max", (f"{lag.get('p50', float('nan')):.3f} / {lag.get('p99', float('nan')):.3f} / "
         f"{lag.get('max', float('nan')):.3f} s"), "p99 ≤ 1 s",
         mark(lag.get("p99", math.inf) <= GOALS["lag_p99_s"])),
        ("probes completed / scheduled", f"{r['completed_ratio']:.1%} ({per_probe}); ok {r['ok_ratio']:.1%}",
         "100 %", mark(r["completed_ratio"] >= GOALS["completed"])),
    ]  # fmt: skip
    for probe, ratio in (r.get("completed_ratio_by_probe") or {}).items():
        text = f"{ratio:.1%} ({completed.get(probe, 0):,} of {scheduled[probe]:,})"
        rows.append((f"runs completed: {probe}", text, "100 %", mark(ratio >= GOALS["completed"])))
    rows += scrape_rows(r)
    rows += [
        ("start-up to healthy / ready", f"{r['startup']['to_healthy_s']:.1f} s / {r['startup']['to_ready_s']:.1f} s",
         "healthy ≤ 2 s", mark(r["startup"]["to_healthy_s"] <= GOALS["healthy_s"])),
        (f"{p.get('agent', 'snmpsim')} agents' CPU (not netmon's)",
         (f"{r.get('agents_cpu_share_total', sum(agents)):.1%} of one core in all "
          f"({len(agents)} processes: {', '.join(f'{c:.1%}' for c in agents)})"),
         "each < 50 % (not the bottleneck)", mark(max(agents, default=0.0) < GOALS["agent_cpu_share"])),
    ]  # fmt: skip
    if "bench_cpu_share" in r:
        text = f"{r['bench_cpu_share']:.1%} of one core"
        rows.append(("this script's CPU (scrapes, /proc)", text, "", ""))
    head = (f"{p['icmp_targets']:,} ICMP + {p['snmp_targets']:,} SNMP targets, every {p['interval_s']:g} s, "
            f"{r['window_s']:.0f} s measured after ready, {r['machine']['cpus']} CPUs")  # fmt: skip
    lines = [head, "", "| figure | measured | goal | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def soak_table(r: dict[str, Any]) -> str:
    sk = r["soak"]
    rss = sk["rss_mb"]
    growth = sk["rss_growth_after_warmup"]

    def cell(value: dict[str, float] | None) -> str:
        if not value:
            return "n/a"
        if value["min"] == value["max"]:
            return f"{value['median']:g}"
        return f"{value['median']:g} ({value['min']:g}-{value['max']:g})"

    def grew(key: str) -> str:
        return "n/a" if sk[key]["grew"] is None else mark(not sk[key]["grew"])

    def rise(key: str) -> str:
        return f"trend {sk[key]['trend_rise']:+g} ± {sk[key]['trend_rise_stderr']:g}"

    rows = [
        ("RSS, median MB", f"{rss['start']:.0f}", f"{rss['warmup']:.0f}", f"{rss['end']:.0f}",
         f"growth after warm-up {growth:+.1%}; {sk['rss_slope_mb_per_hour_after_warmup']:+.1f} MB/h",
         "≤ 5 %", mark(growth is not None and growth <= GOALS["soak_rss_growth"])),
        ("open fds", cell(sk["fds"]["start"]), "", cell(sk["fds"]["end"]), rise("fds"), "no growth",
         grew("fds")),
        ("asyncio tasks", cell(sk["tasks"]["start"]), "", cell(sk["tasks"]["end"]), rise("tasks"),
         "no growth", grew("tasks")),
        ("threads", cell(sk["threads"]["start"]), "", cell(sk["threads"]["end"]), rise("threads"),
         "no growth", grew("threads")),
    ]  # fmt: skip
    head = (f"soak: {sk['soak_s'] / 60:.1f} min after ready; warm-up (the \"first hour\") = first"
            f" {sk['warmup_s']:.0f} s: {sk['warmup_rule']}. Start = the first interval, end = the"
            " last: median (min-max). fds/threads/tasks grew if their least-squares trend over the"
            " soak rises by more than 1 and more than 3 standard errors.")  # fmt: skip
    lines = [head, "", "| figure | start | warm-up mark | end | change | goal | met |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def sizing_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| devices | ICMP-only + SNMP | probe jobs | series | peak RSS | steady RSS "
        + "| B/series (steady) | CPU, share of a core | lag p99 | runs completed "
        + "| /metrics (plain) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p, sc = r["params"], r["scrapes"]
        lag = r["lag_worst_scrape"].get("p99", float("nan"))
        lines.append(
            f"| {p['icmp_targets'] + p['snmp_targets']:,} | {p['icmp_targets']:,} + {p['snmp_targets']:,} "
            f"| {sum(r['jobs'].values()):,} | {sc['series']:,} | {r['peak_rss_mb']:.0f} MB "
            f"| {r['steady_rss_mb']:.0f} MB | {r['bytes_per_series']['steady']:,} B | {r['cpu_share']:.1%} "
            f"| {lag:.3f} s | {r['completed_ratio']:.1%} | {sc['median_s']:.2f} s, {mb(sc['bytes'])} |"
        )  # fmt: skip
    r = results[0]
    head = (f"sizing: every {r['params']['interval_s']:g} s, {r['window_s']:.0f} s measured after ready"
            f" each, {r['machine']['cpus']} CPUs, Python {r['machine']['python']}; ICMP-only lab machines"
            " + SNMP devices (half switches, half printers, also pinged)")  # fmt: skip
    return head + "\n\n" + "\n".join(lines)


def report(result: dict[str, Any]) -> None:
    print()
    print(table(result))
    if result.get("soak"):
        print()
        print(soak_table(result))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--hosts",
        "--icmp",
        dest="icmp",
        type=int,
        default=None,
        metavar="N",
        help="ICMP-only targets (lab machines; default 10000)",
    )
    parser.add_argument(
        "--snmp",
        type=int,
        default=None,
        metavar="M",
        help="SNMP devices, also pinged (default 1000)",
    )
    parser.add_argument(
        "--interval", type=float, default=None, help="probe interval, s (default 60)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="measured seconds after ready (default 180; 120 per size with --sizing)",
    )
    parser.add_argument(
        "--soak",
        type=parse_duration,
        default=0.0,
        metavar="DURATION",
        help="measure for DURATION (30m, 2h, 90s) and report RSS growth, fds, tasks, threads",
    )
    parser.add_argument(
        "--sizing",
        action="store_true",
        help="run 500, 2,000 and 11,000 devices one after another; one table",
    )
    parser.add_argument(
        "--agent",
        choices=("fast", "snmpsim"),
        default="fast",
        help="what serves the SNMP devices: benchmarks/fast_agent.py (default) or snmpsim",
    )
    parser.add_argument("--agents", type=int, default=2, help="agent processes (default 2)")
    parser.add_argument("--history", choices=("on", "off"), default="on",
                        help="the embedded history store (history.enabled; default on)")  # fmt: skip
    parser.add_argument(
        "--no-selftest",
        action="store_true",
        help="skip the fast agent's check against snmpsim before measuring",
    )
    parser.add_argument(
        "--scrape-every",
        type=float,
        default=None,
        help="scrape /metrics every S s, like Prometheus (default 15; 5 with --quick)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="SECONDS",
        help="py-spy the daemon for SECONDS in the window",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="500 ICMP + 40 SNMP at 10 s for 30 s (what is given explicitly still counts)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (config, netmon.log)"
    )
    args = parser.parse_args()
    if args.sizing and (args.soak or args.icmp is not None or args.snmp is not None):
        parser.error("--sizing chooses its own sizes and takes no --soak, --hosts or --snmp")
    if args.soak and args.duration is not None:
        parser.error("--soak DURATION replaces --duration")
    quick = args.quick
    if args.icmp is None:
        args.icmp = 500 if quick else 10_000
    if args.snmp is None:
        args.snmp = 40 if quick else 1000
    if args.interval is None:
        args.interval = 10.0 if quick else 60.0
    if args.soak:
        args.duration = args.soak
    elif args.duration is None:
        args.duration = 30.0 if quick else 120.0 if args.sizing else 180.0
    if args.scrape_every is None:
        args.scrape_every = 5.0 if quick else 15.0
    sizes = (SIZING_QUICK if quick else SIZING) if args.sizing else ((args.icmp, args.snmp),)
    with_snmp = any(m for _, m in sizes)
    if with_snmp and args.agent == "snmpsim" and (reason := simlab.snmpsim_available()):
        print(f"cannot serve SNMP devices: {reason}", file=sys.stderr)
        return 2
    args.selftest_result = None
    if with_snmp and args.agent == "fast" and not args.no_selftest:
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    if args.sizing:
        results = []
        for k, (n_icmp, n_snmp) in enumerate(sizes, 1):
            print(f"\n=== sizing {k}/{len(sizes)}: {n_icmp + n_snmp:,} devices", flush=True)
            one = argparse.Namespace(**{**vars(args), "icmp": n_icmp, "snmp": n_snmp})
            results.append(run(one))
            print(table(results[-1]), flush=True)
        out = RESULTS / f"daemon_scale-sizing-{stamp}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print()
        print(sizing_table(results))
        print(f"JSON: {out.relative_to(REPO)}")
        return 0
    result = run(args)
    out = RESULTS / f"daemon_scale-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    print(f"JSON: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
