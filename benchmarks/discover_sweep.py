"""Discovery's ICMP sweep vs fping on a loopback /22.

    .venv/bin/python benchmarks/discover_sweep.py [--network 127.20.0.0/22 --rounds 5]

Each round runs, in alternating order, ``fping -g NET -a -q -r 0 -t 1000 -i 0`` (and with
fping's default 10 ms inter-packet gap, ``-i`` left out) and netmon's
sweep (:func:`monitor.discover.icmp_sweep`: one echo per address, 1 s timeout, no
retries, so the same work as fping's flags) in a child process, and measures both the
same way: wall time and CPU (user+sys from ``wait4``'s rusage), including start-up.
Every address of 127.0.0.0/8 answers on ``lo``, so all 1,022 hosts reply. Prints
medians and ratios and writes JSON to benchmarks/results/. Needs fping and raw or
datagram ICMP sockets. Loopback only (refuses other networks); bounded rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
TIMEOUT = 1.0


async def _child(network: str) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from monitor.discover import DiscoverSettings, icmp_sweep
    from probes.context import ProbeContext

    hosts = [str(a) for a in ipaddress.ip_network(network).hosts()]
    async with ProbeContext() as ctx:
        up = await icmp_sweep(ctx, hosts, DiscoverSettings(icmp_timeout=TIMEOUT, icmp_retries=0))
        mode = ctx.icmp.mode
    return {"up": len(up), "mode": mode}


def _measure(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, its stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return wall, usage.ru_utime + usage.ru_stime, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="127.20.0.0/22")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    net = ipaddress.ip_network(args.network)
    if not net.subnet_of(ipaddress.ip_network("127.0.0.0/8")) or net.num_addresses > 65536:  # type: ignore[arg-type]
        sys.exit("benchmark networks must be inside 127.0.0.0/8 and at most a /16")
    fping = shutil.which("fping")
    if fping is None:
        sys.exit("needs fping (apt-get install fping)")
    rounds = max(1, min(args.rounds, 20))
    commands = {
        "fping": [fping, "-g", str(net), "-a", "-q", "-r", "0", "-t", str(int(TIMEOUT * 1000)), "-i", "0"],
        # fping's default 10 ms between packets to different hosts: 10 s for a /22.
        "fping-i10": [fping, "-g", str(net), "-a", "-q", "-r", "0", "-t", str(int(TIMEOUT * 1000))],
        "netmon": [sys.executable, str(Path(__file__).resolve()), "--child", str(net)],
    }
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in commands}
    found: dict[str, int] = {}
    mode = ""
    for i in range(rounds):
        for name in (list(commands) if i % 2 == 0 else list(reversed(commands))):
            wall, cpu, out = _measure(commands[name])
            if name.startswith("fping"):
                found[name] = len(out.split())
            else:
                result = json.loads(out)
                found[name], mode = result["up"], result["mode"]
            runs[name].append({"wall": wall, "cpu": cpu})
    hosts = net.num_addresses - 2
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("wall", "cpu")} for k, v in runs.items()}
    report = {
        "network": str(net), "hosts": hosts, "rounds": rounds, "icmp_mode": mode, "found": found,
        "median": med,
        "ratio_netmon_to_fping": {m: med["netmon"][m] / med["fping"][m] for m in ("wall", "cpu")},
        "command": " ".join(["benchmarks/discover_sweep.py", "--network", str(net), "--rounds", str(rounds)]),
    }  # fmt: skip
    print(f"{hosts} hosts in {net}, {rounds} rounds, medians (netmon ICMP mode: {mode})")
    for name in commands:
        print(f"  {name:9s} wall {med[name]['wall']:.3f} s  CPU {med[name]['cpu']:.3f} s  "
              f"({med[name]['cpu'] / hosts * 1e6:.0f} µs CPU/host)  found {found[name]}")  # fmt: skip
    r = report["ratio_netmon_to_fping"]
    print(f"  netmon / fping -i 0: wall {r['wall']:.2f}x, CPU {r['cpu']:.2f}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"discover_sweep-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"  wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(asyncio.run(_child(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
