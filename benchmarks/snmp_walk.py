"""SNMP polling cost: netmon vs net-snmp's snmpbulkwalk vs prometheus-snmp-exporter.

    .venv/bin/python benchmarks/snmp_walk.py            # full run, ~7 minutes on 2 cores
    .venv/bin/python benchmarks/snmp_walk.py --quick    # short run, ~30 seconds

Starts snmpd on loopback and polls IF-MIB (ifTable, ifXTable) and HOST-RESOURCES
(hrStorage, hrDevice, hrSWRun) from 1, 50 and 200 "devices" at once (round-robin over
a few snmpd processes, so the agents are not the bottleneck). Each round runs every
tool once, in a rotating order; figures are medians over rounds. Two scopes: "all"
walks every table; "converted" only ifTable, ifXTable and hrStorage, the tables that
netmon's modules turn into samples (hrSWRun, 2/3 of "all", has no netmon module).

The tools and what they do per device:
- snmpbulkwalk: walk only (C; the floor).
- snmp_exporter (Debian's 0.21, Go): walk, decode, build Prometheus samples from a
  real old-format module (indexes, label lookups, state sets; see exporter_module()).
- netmon walk: SnmpClient.walk of the same subtrees (gufo-snmp: walk and decode to
  Python values), as the SNMP probe polls.
- netmon walk+convert: the same, then netmon's real ``interfaces`` and ``host`` module
  converters turn the rows into samples. netmon has no module for hrDevice/hrSWRun, so
  those rows are walked and decoded but not converted; the exporter converts them.
- netmon pysnmp walk+convert: the same through PysnmpClient (pysnmp 7 + pyasn1), the
  polling path before gufo-snmp and now netmon's failure-diagnosis client: the
  before/after ratio in the same run.

CPU: getrusage(SELF) for netmon, getrusage(CHILDREN) for snmpbulkwalk processes,
/proc/PID/stat for the exporter (10 ms ticks: each measurement repeats the poll until
the tool used enough CPU).
Both converting tools are checked for the series they must produce before timing.
Ends with a cProfile summary of netmon (share of gufo/asyncio/netmon), writes JSON to
benchmarks/results/ and prints a Markdown table for the README. Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import platform
import pstats
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.demo import simlab
from probes.result import Sample
from probes.snmp.client import SnmpClient, SnmpEndpoint
from probes.snmp.credentials import community
from probes.snmp.modules import host, interfaces
from probes.snmp.pysnmp_client import PysnmpClient
from probes.snmp.types import OID, Value, oid

RESULTS = REPO / "benchmarks" / "results"
COMMUNITY = "bench"
TABLES = {
    "ifTable": "1.3.6.1.2.1.2.2",
    "ifXTable": "1.3.6.1.2.1.31.1.1",
    "hrStorage": "1.3.6.1.2.1.25.2.3",
    "hrDevice": "1.3.6.1.2.1.25.3.2",
    "hrSWRun": "1.3.6.1.2.1.25.4.2",
}
#: What each scenario walks: every table, or only those netmon's modules convert (so
#: both converting tools turn every walked value into samples).
SCOPES = {
    "all": tuple(TABLES),
    "converted": ("ifTable", "ifXTable", "hrStorage"),
}
MAX_REPETITIONS = 25
TICKS = os.sysconf("SC_CLK_TCK")
MAX_POLLS = 1000  # per measurement: bounds a run
#: Walks done and walks that failed or stopped short (a lost response shows here), per
#: client class, over the whole run.
WALKS: Counter[str] = Counter()
FAILED: Counter[str] = Counter()
NETMON_WALK, NETMON_CONVERT = "netmon walk", "netmon walk+convert"
NETMON_PYSNMP = "netmon pysnmp walk+convert"
BULKWALK, EXPORTER = "snmpbulkwalk", "snmp_exporter"
WORK = {
    BULKWALK: "walk",
    EXPORTER: "walk + decode + samples",
    NETMON_WALK: "walk + decode",
    NETMON_CONVERT: "walk + decode + samples",
    NETMON_PYSNMP: "walk + decode + samples",
}


@dataclass(slots=True)
class Measurement:
    cpu: float  # seconds
    varbinds: int
    samples: int  # metric samples built (0 for walk-only tools)
    polls: int = 0  # device polls (filled in by measure())


Tool = Callable[[list[tuple[str, int]], str], Awaitable[Measurement]]  # (devices, scope)


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- netmon ---------------------------------------------------------------------------


def bases(scope: str) -> list[str]:
    return [TABLES[t] for t in SCOPES[scope]]


async def netmon_walk(client: SnmpClient | PysnmpClient, host_: str, port: int,
                      scope: str) -> dict[OID, Value]:
    """Walk the scope's tables of one device into one mapping, as the SNMP probe does."""
    ep = SnmpEndpoint(host_, community(COMMUNITY), port, timeout=5, retries=2,
                      max_repetitions=MAX_REPETITIONS)
    walked: dict[OID, Value] = {}
    for base in bases(scope):
        result = await client.walk(ep, oid(base))
        WALKS[type(client).__name__] += 1
        if result.failure:
            FAILED[type(client).__name__] += 1
            print(f"  netmon: {result.failure.explanation}")
        walked.update(result.rows)
    return walked


def netmon_convert(walked: dict[OID, Value]) -> list[Sample]:
    """netmon's real module converters, as probe_snmp runs them."""
    samples = interfaces.MODULE.convert(walked).samples
    samples += host.MODULE.convert(walked).samples
    return samples


async def run_netmon(client: SnmpClient | PysnmpClient, devices: list[tuple[str, int]], scope: str,
                     convert: bool) -> Measurement:
    async def one(host_: str, port: int) -> tuple[int, int]:
        walked = await netmon_walk(client, host_, port, scope)
        return len(walked), len(netmon_convert(walked)) if convert else 0

    cpu = self_cpu()
    counts = await asyncio.gather(*(one(h, p) for h, p in devices))
    return Measurement(self_cpu() - cpu, sum(c[0] for c in counts), sum(c[1] for c in counts))


def check_netmon(samples: list[Sample]) -> None:
    """The conversion must really produce the series a user would see."""
    names = {s.metric for s in samples}
    for metric in ("netmon_interface_receive_bytes_total", "netmon_interface_oper_status",
                   "netmon_interface_speed_bytes", "netmon_host_storage_size_bytes",
                   "netmon_host_storage_used_bytes"):
        assert metric in names, f"netmon produced no {metric}: {sorted(names)}"
    assert any(s.metric == "netmon_interface_receive_bytes_total"
               and s.label_dict.get("if_name") == "lo" for s in samples), "no sample for lo"


# -- snmpbulkwalk ---------------------------------------------------------------------


async def run_snmpbulkwalk(devices: list[tuple[str, int]], scope: str,
                           parallel: int = 32) -> Measurement:
    env = dict(os.environ, MIBS="", MIBDIRS="/dev/null")
    gate = asyncio.Semaphore(parallel)

    async def one(host_: str, port: int, base: str) -> int:
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                "snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-On", f"-Cr{MAX_REPETITIONS}",
                "-t", "5", "-r", "2", f"{host_}:{port}", base,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            out, _ = await proc.communicate()
        return sum(1 for line in out.splitlines() if line.startswith(b"."))

    cpu = children_cpu()
    counts = await asyncio.gather(*(one(h, p, b) for h, p in devices for b in bases(scope)))
    return Measurement(children_cpu() - cpu, sum(counts), 0)


# -- snmp_exporter --------------------------------------------------------------------


def _metric(name: str, at: str, kind: str, help_: str, index: str,
            lookups: list[tuple[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "name": name, "oid": at, "type": kind, "help": help_,
        "indexes": [{"labelname": index, "type": "gauge"}],
    }
    if lookups:
        m["lookups"] = [{"labels": [index], "labelname": label, "oid": lo, "type": "DisplayString"}
                        for label, lo in lookups]
    m.update(extra)
    return m


def exporter_module(scope: str) -> dict[str, Any]:
    """An snmp_exporter 0.21 (old format) module for the benchmark's tables, written the
    way its generator would: every column a metric, interfaces labelled with ifName,
    ifAlias and ifDescr (as netmon labels them), storage with its description, etc."""
    if_ = "1.3.6.1.2.1.2.2.1."
    ifx = "1.3.6.1.2.1.31.1.1.1."
    if_labels = [("ifName", ifx + "1"), ("ifAlias", ifx + "18"), ("ifDescr", if_ + "2")]
    oper = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
            7: "lowerLayerDown"}
    metrics = [
        _metric("ifDescr", if_ + "2", "DisplayString", "Interface description", "ifIndex"),
        _metric("ifType", if_ + "3", "gauge", "IANAifType", "ifIndex", if_labels),
        _metric("ifSpeed", if_ + "5", "gauge", "Speed, bit/s", "ifIndex", if_labels),
        _metric("ifAdminStatus", if_ + "7", "gauge", "Desired state", "ifIndex", if_labels),
        _metric("ifOperStatus", if_ + "8", "EnumAsStateSet", "Current state", "ifIndex",
                if_labels, enum_values=oper),
    ]
    for col, name in ((10, "ifInOctets"), (13, "ifInDiscards"), (14, "ifInErrors"),
                      (16, "ifOutOctets"), (19, "ifOutDiscards"), (20, "ifOutErrors")):
        metrics.append(_metric(name, f"{if_}{col}", "counter", name, "ifIndex", if_labels))
    metrics += [
        _metric("ifName", ifx + "1", "DisplayString", "Interface name", "ifIndex"),
        _metric("ifAlias", ifx + "18", "DisplayString", "Interface alias", "ifIndex"),
        _metric("ifHCInOctets", ifx + "6", "counter", "Octets in", "ifIndex", if_labels),
        _metric("ifHCOutOctets", ifx + "10", "counter", "Octets out", "ifIndex", if_labels),
        _metric("ifHighSpeed", ifx + "15", "gauge", "Speed, Mbit/s", "ifIndex", if_labels),
    ]
    st = "1.3.6.1.2.1.25.2.3.1."
    st_labels = [("hrStorageDescr", st + "3"), ("hrStorageType", st + "2")]
    metrics += [
        _metric("hrStorageDescr", st + "3", "DisplayString", "Storage", "hrStorageIndex"),
        _metric("hrStorageAllocationUnits", st + "4", "gauge", "Bytes per unit",
                "hrStorageIndex", st_labels),
        _metric("hrStorageSize", st + "5", "gauge", "Size in units", "hrStorageIndex", st_labels),
        _metric("hrStorageUsed", st + "6", "gauge", "Used units", "hrStorageIndex", st_labels),
    ]
    dv = "1.3.6.1.2.1.25.3.2.1."
    dv_labels = [("hrDeviceDescr", dv + "3")]
    metrics += [
        _metric("hrDeviceType", dv + "2", "DisplayString", "Device type", "hrDeviceIndex"),
        _metric("hrDeviceDescr", dv + "3", "DisplayString", "Device", "hrDeviceIndex"),
        _metric("hrDeviceStatus", dv + "5", "gauge", "Device status", "hrDeviceIndex", dv_labels),
        _metric("hrDeviceErrors", dv + "6", "counter", "Device errors", "hrDeviceIndex",
                dv_labels),
    ]
    sw = "1.3.6.1.2.1.25.4.2.1."
    sw_labels = [("hrSWRunName", sw + "2")]
    metrics += [
        _metric("hrSWRunName", sw + "2", "DisplayString", "Program", "hrSWRunIndex"),
        _metric("hrSWRunPath", sw + "4", "DisplayString", "Path", "hrSWRunIndex", sw_labels),
        _metric("hrSWRunParameters", sw + "5", "DisplayString", "Arguments", "hrSWRunIndex",
                sw_labels),
        _metric("hrSWRunType", sw + "6", "gauge", "Software type", "hrSWRunIndex", sw_labels),
        _metric("hrSWRunStatus", sw + "7", "gauge", "Run status", "hrSWRunIndex", sw_labels),
    ]
    walks = bases(scope)
    return {
        "walk": walks,
        "metrics": [m for m in metrics if any(m["oid"].startswith(w + ".") for w in walks)],
        "version": 2,
        "max_repetitions": MAX_REPETITIONS,
        "retries": 2,
        "timeout": "5s",
        "auth": {"community": COMMUNITY},
    }


_SAMPLE = re.compile(r"^(?!#)(?!snmp_scrape_)\w+[{ ]", re.MULTILINE)


class Exporter:
    """Debian's prometheus-snmp-exporter 0.21 running :func:`exporter_module`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="netmon-bench-exporter-"))
        self.config = self.dir / "snmp.yml"
        modules = {scope: exporter_module(scope) for scope in SCOPES}
        self.config.write_text(yaml.safe_dump(modules, sort_keys=False))
        self.port = free_tcp_port()
        self.proc = subprocess.Popen(
            ["prometheus-snmp-exporter", f"--config.file={self.config}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):
            if self.proc.poll() is not None:
                raise RuntimeError(f"snmp_exporter exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("snmp_exporter did not start")

    def body(self, host_: str, port: int, scope: str) -> str:
        url = f"http://127.0.0.1:{self.port}/snmp?target={host_}:{port}&module={scope}"
        with urllib.request.urlopen(url, timeout=60) as rsp:
            return str(rsp.read().decode())

    def scrape(self, host_: str, port: int, scope: str) -> tuple[int, int]:
        """(varbinds the exporter received, samples it built) for one device."""
        body = self.body(host_, port, scope)
        m = re.search(r"^snmp_scrape_pdus_returned (\S+)$", body, re.MULTILINE)
        if not m:
            print("  exporter: no snmp_scrape_pdus_returned in the answer")
        return int(float(m.group(1))) if m else 0, len(_SAMPLE.findall(body))

    def check(self, host_: str, port: int, scope: str) -> None:
        """The exporter must really build the series of the module, not just walk."""
        body = self.body(host_, port, scope)
        expected = [r'^ifHCInOctets\{.*ifName="lo"', r'^ifOperStatus\{.*ifOperStatus="up"',
                    r'^ifDescr\{.*ifDescr="lo"', r"^hrStorageSize\{.*hrStorageDescr="]
        if "hrSWRun" in SCOPES[scope]:
            expected += [r'^hrSWRunStatus\{.*hrSWRunName="snmpd"', r"^hrDeviceStatus\{"]
        for pattern in expected:
            assert re.search(pattern, body, re.MULTILINE), f"snmp_exporter /snmp has no {pattern}"
        assert not re.search(r"^snmp_scrape_.*error", body, re.MULTILINE), "exporter reported errors"

    async def run(self, devices: list[tuple[str, int]], scope: str) -> Measurement:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=min(len(devices), 64)) as pool:
            cpu = proc_cpu(self.proc.pid)
            counts = await asyncio.gather(
                *(loop.run_in_executor(pool, self.scrape, h, p, scope) for h, p in devices))
            return Measurement(proc_cpu(self.proc.pid) - cpu,
                               sum(c[0] for c in counts), sum(c[1] for c in counts))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- the benchmark --------------------------------------------------------------------


def summarise(ms: list[Measurement]) -> dict[str, Any]:
    """Medians over rounds, per device poll and per CPU-second."""
    timed = [m for m in ms if m.cpu > 0]
    return {
        "varbinds_per_device": statistics.median(m.varbinds / m.polls for m in ms),
        "samples_per_device": statistics.median(m.samples / m.polls for m in ms),
        "cpu_ms_per_device": statistics.median(1000 * m.cpu / m.polls for m in ms),
        "varbinds_per_cpu_s": statistics.median(m.varbinds / m.cpu for m in timed)
        if timed else None,
        "rounds": [asdict(m) for m in ms],
    }


async def measure(tools: dict[str, Tool], agents: list[simlab.Agent], scope: str, n: int,
                  rounds: int, min_cpu: float) -> dict[str, dict[str, Any]]:
    """Every tool polling ``n`` devices at once, ``rounds`` times in rotating order.

    A measurement repeats the poll until the tool used ``min_cpu`` CPU-seconds (at most
    MAX_POLLS device polls): the exporter's /proc clock ticks only every 10 ms."""
    devices = [(agents[i % len(agents)].host, agents[i % len(agents)].port) for i in range(n)]
    got: dict[str, list[Measurement]] = {name: [] for name in tools}
    names = list(tools)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            total = Measurement(0.0, 0, 0, 0)
            while total.polls == 0 or (total.cpu < min_cpu and total.polls < MAX_POLLS):
                m = await tools[name](devices, scope)
                total.cpu += m.cpu
                total.varbinds += m.varbinds
                total.samples += m.samples
                total.polls += n
            got[name].append(total)
    rows = {name: summarise(ms) for name, ms in got.items()}
    ref = (rows.get(EXPORTER) or rows[NETMON_WALK])["varbinds_per_cpu_s"]
    for row in rows.values():
        rate = row["varbinds_per_cpu_s"]
        row["vs_exporter"] = rate / ref if rate and ref else None
    return rows


async def bench(agents: list[simlab.Agent], rounds: int, sizes: tuple[int, ...],
                min_cpu: float) -> dict[str, Any]:
    client = SnmpClient()
    old = PysnmpClient()
    exporter = Exporter() if shutil.which("prometheus-snmp-exporter") else None
    tools: dict[str, Tool] = {
        BULKWALK: run_snmpbulkwalk,
        NETMON_WALK: lambda d, scope: run_netmon(client, d, scope, convert=False),
        NETMON_CONVERT: lambda d, scope: run_netmon(client, d, scope, convert=True),
        NETMON_PYSNMP: lambda d, scope: run_netmon(old, d, scope, convert=True),
    }
    if exporter:
        tools[EXPORTER] = exporter.run
    else:
        print("(prometheus-snmp-exporter missing: apt-get install prometheus-snmp-exporter)")
    a0 = (agents[0].host, agents[0].port)
    report: dict[str, Any] = {"per_device": {}, "scopes": {}}
    try:
        await netmon_walk(client, *a0, "all")  # warm-up
        await netmon_walk(old, *a0, "all")  # pysnmp's engine
        for scope in SCOPES:  # check that both converting tools produce real series
            walked = await netmon_walk(client, *a0, scope)
            samples = netmon_convert(walked)
            check_netmon(samples)
            per: dict[str, int] = {"varbinds": len(walked), "netmon_samples": len(samples)}
            if exporter:
                exporter.check(*a0, scope)
                per["exporter_varbinds"], per["exporter_samples"] = exporter.scrape(*a0, scope)
            report["per_device"][scope] = per
            print(f"one device, {scope}:", ", ".join(f"{k} {v}" for k, v in per.items()))
        print(f"\n{'scope':<9} {'devices':>7}  {'tool':<20} {'varbinds':>9} {'samples':>8}"
              f" {'CPU ms':>7} {'varbinds/CPU-s':>15} {'vs exporter':>11}   (per device)")
        for scope in SCOPES:
            report["scopes"][scope] = {}
            for n in sizes:
                rows = await measure(tools, agents, scope, n, rounds, min_cpu)
                for name, row in rows.items():
                    print(f"{scope:<9} {n:>7}  {name:<20} {row['varbinds_per_device']:>9.0f}"
                          f" {row['samples_per_device']:>8.0f} {row['cpu_ms_per_device']:>7.1f}"
                          f" {row['varbinds_per_cpu_s'] or 0:>15,.0f}"
                          f" {row['vs_exporter'] or 0:>10.2f}x")
                report["scopes"][scope][str(n)] = rows
        report["profile"] = await profile(client, agents[0])
        report["walks"] = {k: {"done": WALKS[k], "failed": FAILED[k]} for k in WALKS}
        print("walks done / failed or incomplete:",
              ", ".join(f"{k} {WALKS[k]:,} / {FAILED[k]}" for k in WALKS))
    finally:
        await client.aclose()
        await old.aclose()
        if exporter:
            exporter.stop()
    return report


async def profile(client: SnmpClient, agent: simlab.Agent) -> dict[str, float]:
    """cProfile netmon walking and converting one device 10 times: where does CPU go?"""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(10):
        await run_netmon(client, [(agent.host, agent.port)], "all", convert=True)
    prof.disable()
    stats = pstats.Stats(prof)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    by_pkg: dict[str, float] = {}
    for (filename, _, name), v in raw.items():
        pkg = next((p for p in ("pyasn1", "pysnmp", "gufo", "asyncio", "probes", "cryptography")
                    if f"/{p}/" in filename), "other")
        if "ClientSocket" in name or "GetIter" in name:  # gufo's Rust methods
            pkg = "gufo"
        elif "epoll" in name:  # mostly time spent waiting for answers, not CPU
            pkg = "epoll wait"
        by_pkg[pkg] = by_pkg.get(pkg, 0.0) + v[2]
    shares = {("netmon (probes/)" if k == "probes" else k): round(100 * t / total, 1)
              for k, t in sorted(by_pkg.items(), key=lambda kv: -kv[1])}
    print("\nprofile of netmon walk+convert, one device x10, own time by package:")
    for pkg, share in shares.items():
        print(f"  {pkg:<16} {share:5.1f} %")
    print()
    stats.sort_stats("tottime").print_stats(12)
    return shares


def markdown(report: dict[str, Any]) -> str:
    """The README table: one line per scope, device count and tool."""
    lines = [
        "| tables | devices | tool | work | varbinds per device | samples per device |"
        + " varbinds per CPU-second | CPU ms per device | vs snmp_exporter |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for scope, sizes in report["scopes"].items():
        for n, rows in sizes.items():
            for name, row in rows.items():
                rate, ratio = row["varbinds_per_cpu_s"], row["vs_exporter"]
                samples = f"{row['samples_per_device']:.0f}" if row["samples_per_device"] else "–"
                lines.append(
                    f"| {scope} | {n} | {name} | {WORK[name]}"
                    f" | {row['varbinds_per_device']:.0f}"
                    f" | {samples}"
                    f" | {f'{rate:,.0f}' if rate else 'n/a'} | {row['cpu_ms_per_device']:.1f}"
                    f" | {f'{ratio:.2f}×' if ratio else 'n/a'} |")
    shares = report["profile"]
    note = (
        "\nnet-snmp's snmpd on loopback; \"all\" = ifTable, ifXTable, hrStorage, hrDevice,"
        " hrSWRun; \"converted\" = ifTable, ifXTable, hrStorage, the tables netmon's"
        " interfaces and host modules turn into samples (netmon has no hrDevice/hrSWRun"
        " module, so in \"all\" it walks and decodes them but builds no samples from them)."
        " Varbinds per device vary a little: the agent reports this machine's live"
        " processes and interfaces. snmpbulkwalk starts one process per table, which dominates its small walks."
        " snmp_exporter 0.21 runs a hand-written module with a metric per column, ifName/"
        "ifAlias/ifDescr label lookups and an ifOperStatus state set. Medians of"
        f" {report['rounds']} rounds, tools in rotating order; {report['machine']}."
        " Walks done / failed or incomplete (a lost response would count): "
        + ", ".join(f"{k} {v['done']:,} / {v['failed']}" for k, v in report["walks"].items())
        + ". netmon walk+convert profile (own time): "
        + ", ".join(f"{k} {v:.0f} %" for k, v in shares.items() if v >= 1)
        + f". Reproduce: `{report['command']}`."
    )
    return "\n".join(lines) + "\n" + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (1 and 20 devices)")
    parser.add_argument("--rounds", type=int, default=None, help="default 5, quick 3")
    parser.add_argument("--agents", type=int, default=4, help="snmpd processes")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    sizes = (1, 20) if args.quick else (1, 50, 200)
    min_cpu = 0.2 if args.quick else 0.5  # CPU-seconds per measurement, at least
    if reason := simlab.snmpd_available():
        sys.exit(reason)
    agents = [simlab.start_snmpd(communities=[COMMUNITY]) for _ in range(args.agents)]
    try:
        report = asyncio.run(bench(agents, rounds, sizes, min_cpu))
    finally:
        for agent in agents:
            agent.stop()
    report.update(
        rounds=rounds, agents=args.agents, quick=args.quick, max_repetitions=MAX_REPETITIONS,
        command=".venv/bin/python benchmarks/snmp_walk.py" + (" --quick" if args.quick else ""),
        machine=f"{os.cpu_count()} cores, Python {platform.python_version()}",
        exporter_modules={scope: exporter_module(scope) for scope in SCOPES},
    )
    table = markdown(report)
    report["markdown"] = table
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"snmp_walk-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"results: {path.relative_to(REPO)}\n\n{table}")


if __name__ == "__main__":
    main()
