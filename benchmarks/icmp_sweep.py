"""ICMP sweep cost: netmon's shared engine vs fping, on thousands of loopback addresses.

    .venv/bin/python benchmarks/icmp_sweep.py [--hosts 4096 --rounds 3]

Pings N addresses of 127.1.0.0/16 (3 echoes each, 100 ms apart per host, all hosts at
once) with ``fping -c3 -q -i0 -p100`` and with netmon in a child process (the bare
engine, and the full ``probe_icmp`` path), alternating the order each round. Every side
runs as a child so it is measured the same way: wall time, CPU (user+sys from
``wait4``'s rusage) and peak RSS. Raw mode runs in the host's namespace; datagram mode
in a throwaway namespace with ``net.ipv4.ping_group_range`` set (the host's value is not
touched; fping runs there too). Prints medians and writes JSON to benchmarks/results/.
Needs root and fping. Loopback only; bounded rounds.

Start-up is reported apart as well as included: every side also runs on one host, and
"steady" is (CPU for N hosts - CPU for 1 host) / (N - 1). netmon's children get a
bytecode cache (a private PYTHONPYCACHEPREFIX, warmed by one unmeasured run) as an
installed package has, even where PYTHONDONTWRITEBYTECODE is set; they run as
``-m benchmarks.icmp_sweep`` and import only what the child side needs, so the harness's
own modules are not billed to netmon.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
COUNT, INTERVAL, TIMEOUT = 3, 0.1, 1.0


# ------------------------------------------------------------------ the child side


async def _sweep(hosts: list[str], mode: str, path: str) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    if path == "engine":
        from probes.icmp_engine import IcmpEngine

        engine = IcmpEngine(mode)  # type: ignore[arg-type]
        stats = await asyncio.gather(
            *(engine.ping(h, count=COUNT, interval=INTERVAL, timeout=TIMEOUT, payload_size=56)
              for h in hosts)
        )
        await engine.aclose()
        rtts = [r for s in stats for r in s.rtts]
        received = sum(s.received for s in stats)
        actual_mode = engine.mode
    else:
        from probes.context import ProbeContext
        from probes.icmp import IcmpSettings, probe_icmp
        from probes.target import Target

        settings = IcmpSettings(count=COUNT, interval=INTERVAL, timeout=TIMEOUT)
        async with ProbeContext(icmp_mode=mode) as ctx:  # type: ignore[arg-type]
            results = await asyncio.gather(
                *(probe_icmp(Target(h, h), settings, ctx) for h in hosts)
            )
            actual_mode = ctx.icmp.mode
        received = int(sum(s.value for r in results
                           for s in r.samples_named("netmon_icmp_packets_received")))
        rtts = [s.value for r in results for s in r.samples_named("netmon_icmp_rtt_seconds")
                if s.label_dict["stat"] == "avg"]
    rtts.sort()
    return {"sent": COUNT * len(hosts), "received": received, "mode": actual_mode,
            "median_rtt_ms": rtts[len(rtts) // 2] * 1000 if rtts else None}


def child_main(mode: str, path: str, hosts_file: str) -> None:
    hosts = Path(hosts_file).read_text().split()
    print(json.dumps(asyncio.run(_sweep(hosts, mode, path))))


# ------------------------------------------------------------------ the parent side
# Its modules are imported inside the functions, to keep them out of the measured child.


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` as a child; wall, CPU and peak RSS from wait4, and its output."""
    import os
    import subprocess
    import tempfile
    import time

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                "rss_mb": usage.ru_maxrss / 1024, "rc": proc.returncode,
                "stdout": out.read(), "stderr": err.read()}


def fping_result(run: dict[str, Any], n: int) -> dict[str, Any]:
    import statistics

    received, avgs = 0, []
    for line in run["stderr"].splitlines():
        if "xmt/rcv" not in line:
            continue
        counts = line.split("=")[1].split(",")[0].strip().split("/")
        received += int(counts[1])
        if "min/avg/max" in line:
            avgs.append(float(line.rsplit("=", 1)[1].split("/")[1]))
    return {"sent": COUNT * n, "received": received,
            "median_rtt_ms": statistics.median(avgs) if avgs else None}


Runs = dict[str, list[dict[str, Any]]]


def run_mode(mode: str, files: dict[int, str], rounds: int, cache: str) -> tuple[Runs, Runs]:
    """Each side ``rounds`` times on N hosts and on 1 host: (runs on N, runs on 1)."""
    import os
    import subprocess

    ns = f"nmbench{os.getpid()}"
    prefix: list[str] = []
    if mode == "datagram":
        subprocess.run(["ip", "netns", "add", ns], check=True)
        prefix = ["ip", "netns", "exec", ns]
        subprocess.run([*prefix, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run([*prefix, "sysctl", "-q", "-w",
                        "net.ipv4.ping_group_range=0 2147483647"], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    me = [sys.executable, "-m", "benchmarks.icmp_sweep", "--child", mode]

    def sides(hosts_file: str) -> dict[str, tuple[list[str], dict[str, str] | None]]:
        return {
            "fping": ([*prefix, "fping", f"-c{COUNT}", "-q", "-i0",
                       f"-p{int(INTERVAL * 1000)}", f"-t{int(TIMEOUT * 1000)}",
                       "-f", hosts_file], None),
            "netmon engine": ([*prefix, *me, "engine", hosts_file], env),
            "netmon probe_icmp": ([*prefix, *me, "probe", hosts_file], env),
        }

    n = max(files)
    big, one = sides(files[n]), sides(files[1])
    runs: Runs = {name: [] for name in big}
    startup: Runs = {name: [] for name in big}
    try:
        for cmd, side_env in one.values():  # warm the bytecode cache; not measured
            measure(cmd, side_env)
        for r in range(rounds):
            order = list(big) if r % 2 == 0 else list(reversed(big))
            for name in order:
                for count, table, out in ((n, big, runs), (1, one, startup)):
                    run = measure(*table[name])
                    if name == "fping":
                        run.update(fping_result(run, count))
                    else:
                        if run["rc"] != 0:
                            raise SystemExit(f"{name} failed: {run['stderr']}")
                        run.update(json.loads(run["stdout"]))
                    run.pop("stdout")
                    run.pop("stderr")
                    out[name].append(run)
    finally:
        if prefix:
            subprocess.run(["ip", "netns", "del", ns], check=False)
    return runs, startup


def summarise(runs: Runs, startup: Runs, n: int) -> dict[str, dict[str, Any]]:
    import statistics

    out = {}
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("wall", "cpu", "rss_mb")}
        one = statistics.median(r["cpu"] for r in startup[name])
        rtts = [r["median_rtt_ms"] for r in rs if r.get("median_rtt_ms") is not None]
        out[name] = {
            **med,
            "cpu_us_per_host": med["cpu"] / n * 1e6,
            "startup_cpu": one,
            "steady_us_per_host": max(med["cpu"] - one, 0.0) / max(n - 1, 1) * 1e6,
            "lost": statistics.median(r["sent"] - r["received"] for r in rs),
            "median_rtt_ms": statistics.median(rtts) if rtts else None,
        }
    fping = out["fping"]
    for row in out.values():
        row["cpu_vs_fping"] = row["cpu"] / fping["cpu"] if fping["cpu"] else None
        row["steady_vs_fping"] = (row["steady_us_per_host"] / fping["steady_us_per_host"]
                                  if fping["steady_us_per_host"] else None)
    return out


def main() -> None:
    import argparse
    import ipaddress
    import os
    import tempfile
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="raw,datagram")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "FILE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root (raw sockets, network namespaces)")
    n = max(2, min(args.hosts, 65536))
    base = ipaddress.IPv4Address("127.1.0.0")
    report: dict[str, Any] = {"hosts": n, "count": COUNT, "interval": INTERVAL,
                              "rounds": args.rounds, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="icmp_sweep") as tmp:
        files = {count: f"{tmp}/{count}.hosts" for count in (1, n)}
        for count, name in files.items():
            Path(name).write_text("\n".join(str(base + i) for i in range(count)) + "\n")
        for mode in args.modes.split(","):
            runs, startup = run_mode(mode, files, args.rounds, f"{tmp}/pycache")
            report["modes"][mode] = summarise(runs, startup, n)
    print(f"\nICMP sweep: {n} loopback hosts x {COUNT} echoes, medians of {args.rounds} rounds")
    print("(start-up = CPU of the same run on 1 host; steady = (CPU - start-up) / (hosts - 1))")
    header = (f"{'mode':9} {'tool':18} {'wall s':>7} {'CPU s':>7} {'RSS MB':>7} "
              f"{'CPU/host us':>11} {'x fping':>7} {'start-up ms':>11} {'steady us':>9} "
              f"{'x fping':>7} {'lost':>5} {'med RTT ms':>10}")
    print(header + "\n" + "-" * len(header))
    for mode, rows in report["modes"].items():
        for name, row in rows.items():
            rtt = "-" if row["median_rtt_ms"] is None else f"{row['median_rtt_ms']:.3f}"
            print(f"{mode:9} {name:18} {row['wall']:7.2f} {row['cpu']:7.3f} "
                  f"{row['rss_mb']:7.1f} {row['cpu_us_per_host']:11.1f} "
                  f"{row['cpu_vs_fping']:7.2f} {row['startup_cpu'] * 1000:11.1f} "
                  f"{row['steady_us_per_host']:9.1f} {row['steady_vs_fping']:7.2f} "
                  f"{row['lost']:5.0f} {rtt:>10}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"icmp_sweep-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
