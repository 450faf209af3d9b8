"""SNMP walk throughput: netmon's client vs net-snmp's snmpbulkwalk vs snmp_exporter.

    .venv/bin/python benchmarks/snmp_walk.py [--rounds 3] [--agents 4]

Starts snmpd on loopback, walks IF-MIB (ifTable, ifXTable) and HOST-RESOURCES (hrStorage,
hrDevice, hrSWRun) for 1, 50 and 200 "devices" at once (round-robin over a few snmpd
processes, so the agents are not the bottleneck), alternating the three tools each
round, and reports median varbinds per CPU-second. CPU: getrusage(SELF) for netmon,
getrusage(CHILDREN) for snmpbulkwalk processes, /proc/PID/stat for the exporter.
Then profiles netmon's walk with cProfile. Loopback only; bounded rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import simlab
from probes.snmp.client import SnmpClient, SnmpEndpoint
from probes.snmp.credentials import community
from probes.snmp.types import oid

COMMUNITY = "bench"
TABLES = {
    "ifTable": "1.3.6.1.2.1.2.2",
    "ifXTable": "1.3.6.1.2.1.31.1.1",
    "hrStorage": "1.3.6.1.2.1.25.2.3",
    "hrDevice": "1.3.6.1.2.1.25.3.2",
    "hrSWRun": "1.3.6.1.2.1.25.4.2",
}
MAX_REPETITIONS = 25
TICKS = os.sysconf("SC_CLK_TCK")

Measurement = tuple[float, int]  # (CPU seconds, varbinds)


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


# -- the three tools ------------------------------------------------------------------


async def run_netmon(client: SnmpClient, devices: list[tuple[str, int]]) -> Measurement:
    async def one(host: str, port: int) -> int:
        ep = SnmpEndpoint(host, community(COMMUNITY), port, timeout=5, retries=2,
                          max_repetitions=MAX_REPETITIONS)
        rows = 0
        for base in TABLES.values():
            result = await client.walk(ep, oid(base))
            if result.failure:
                print(f"  netmon: {result.failure.explanation}")
            rows += len(result.rows)
        return rows

    cpu = self_cpu()
    counts = await asyncio.gather(*(one(h, p) for h, p in devices))
    return self_cpu() - cpu, sum(counts)


async def run_snmpbulkwalk(devices: list[tuple[str, int]], parallel: int = 32) -> Measurement:
    env = dict(os.environ, MIBS="", MIBDIRS="/dev/null")
    gate = asyncio.Semaphore(parallel)

    async def one(host: str, port: int, base: str) -> int:
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                "snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-On", f"-Cr{MAX_REPETITIONS}",
                "-t", "5", "-r", "2", f"{host}:{port}", base,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            out, _ = await proc.communicate()
        return sum(1 for line in out.splitlines() if line.startswith(b"."))

    cpu = children_cpu()
    counts = await asyncio.gather(*(one(h, p, b) for h, p in devices for b in TABLES.values()))
    return children_cpu() - cpu, sum(counts)


class Exporter:
    """Debian's prometheus-snmp-exporter 0.21 with a hand-written old-format module."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="netmon-bench-exporter-"))
        walk = "\n".join(f"      - {b}" for b in TABLES.values())
        (self.dir / "snmp.yml").write_text(
            f"netmon:\n  walk:\n{walk}\n  metrics: []\n  version: 2\n"
            f"  max_repetitions: {MAX_REPETITIONS}\n  retries: 2\n  timeout: 5s\n"
            f"  auth:\n    community: {COMMUNITY}\n")
        self.port = free_tcp_port()
        self.proc = subprocess.Popen(
            ["prometheus-snmp-exporter", f"--config.file={self.dir / 'snmp.yml'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("snmp_exporter did not start")

    def scrape(self, host: str, port: int) -> int:
        url = f"http://127.0.0.1:{self.port}/snmp?target={host}:{port}&module=netmon"
        body = urllib.request.urlopen(url, timeout=60).read().decode()
        for line in body.splitlines():
            if line.startswith("snmp_scrape_pdus_returned "):
                return int(float(line.split()[1]))
        print("  exporter: no snmp_scrape_pdus_returned in the answer")
        return 0

    async def run(self, devices: list[tuple[str, int]]) -> Measurement:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=min(len(devices), 64)) as pool:
            cpu = proc_cpu(self.proc.pid)
            counts = await asyncio.gather(
                *(loop.run_in_executor(pool, self.scrape, h, p) for h, p in devices))
            return proc_cpu(self.proc.pid) - cpu, sum(counts)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- main -------------------------------------------------------------------------------


async def bench(agents: list[simlab.Agent], rounds: int) -> None:
    client = SnmpClient()
    exporter = Exporter() if shutil.which("prometheus-snmp-exporter") else None
    tools: dict[str, Callable[[list[tuple[str, int]]], Awaitable[Measurement]]] = {
        "netmon (pysnmp)": lambda d: run_netmon(client, d),
        "snmpbulkwalk": run_snmpbulkwalk,
    }
    if exporter:
        tools["snmp_exporter"] = exporter.run
    else:
        print("(prometheus-snmp-exporter missing: apt-get install prometheus-snmp-exporter)")
    try:
        await run_netmon(client, [(agents[0].host, agents[0].port)])  # engine warm-up
        print(f"{'devices':>7}  {'tool':<16} {'varbinds':>9} {'CPU s':>7} {'varbinds/CPU-s':>15}"
              f" {'vs netmon':>9}")
        for n in (1, 50, 200):
            devices = [(agents[i % len(agents)].host, agents[i % len(agents)].port)
                       for i in range(n)]
            got: dict[str, list[Measurement]] = {name: [] for name in tools}
            names = list(tools)
            reps = max(1, 40 // n)  # enough work for the 10 ms CPU clock of /proc
            for r in range(rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:  # alternate
                    cpu, vbs = 0.0, 0
                    for _ in range(reps):
                        c, v = await tools[name](devices)
                        cpu, vbs = cpu + c, vbs + v
                    got[name].append((cpu, vbs))
            base_rate = 0.0
            for name, ms in got.items():
                cpu = statistics.median(m[0] for m in ms)
                vbs = int(statistics.median(m[1] for m in ms))
                rate = statistics.median(m[1] / m[0] for m in ms if m[0] > 0)
                base_rate = base_rate or rate
                print(f"{n:>7}  {name:<16} {vbs:>9} {cpu:>7.3f} {rate:>15,.0f}"
                      f" {rate / base_rate:>8.1f}x")
        await profile(client, agents[0])
    finally:
        await client.aclose()
        if exporter:
            exporter.stop()


async def profile(client: SnmpClient, agent: simlab.Agent) -> None:
    """cProfile netmon walking one device 10 times: where does the CPU go?"""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(10):
        await run_netmon(client, [(agent.host, agent.port)])
    prof.disable()
    stats = pstats.Stats(prof)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    by_pkg: dict[str, float] = {}
    for (filename, _, _), v in raw.items():
        pkg = next((p for p in ("pyasn1", "pysnmp", "asyncio", "probes", "cryptography")
                    if f"/{p}/" in filename), "other")
        by_pkg[pkg] = by_pkg.get(pkg, 0.0) + v[2]
    print("\nprofile of netmon walking one device x10, own time by package:")
    for pkg, t in sorted(by_pkg.items(), key=lambda kv: -kv[1]):
        print(f"  {pkg:<12} {100 * t / total:5.1f} %")
    print()
    stats.sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agents", type=int, default=4, help="snmpd processes")
    args = parser.parse_args()
    if reason := simlab.snmpd_available():
        sys.exit(reason)
    agents = [simlab.start_snmpd(communities=[COMMUNITY]) for _ in range(args.agents)]
    try:
        asyncio.run(bench(agents, args.rounds))
    finally:
        for agent in agents:
            agent.stop()


if __name__ == "__main__":
    main()
