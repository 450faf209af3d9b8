"""What a burst of wrong basic-auth passwords costs ``netmon run`` (issue 16 item 6).

    nice -n 19 .venv/bin/python benchmarks/login_abuse.py                 # this tree
    nice -n 19 .venv/bin/python benchmarks/login_abuse.py --before DIR    # and an older one
    nice -n 19 .venv/bin/python benchmarks/login_abuse.py --addresses 50  # from 50 addresses

``netmon run`` (a fresh process per tree, ``PYTHONPATH`` pointing at the tree) probes
``--targets`` TCP listeners on 127.6.x.y every ``--interval`` seconds, with basic auth
for one user whose bcrypt hash has cost ``--cost`` (12 by default; ``htpasswd -B``
makes 5, ``-C 10`` 10). Once every target has a result, two windows of ``--seconds``
each are measured:

* quiet: a "Prometheus" scrapes ``/metrics`` with the right password once a second;
* burst: the same, while an attacker sends ``--rate`` requests a second with a
  different wrong password each (``--concurrency`` at a time, spread over
  ``--addresses`` loopback source addresses, 127.0.7.x); attempts still unanswered
  when the window ends are given up and counted.

Per window: netmon's CPU (utime + stime from ``/proc/PID/stat``) per wall second; the
attacker's answers by status; the scrapes' statuses and latency (median, max); the
scheduler lag p99 and max (``netmon_scheduler_lag_seconds``, over the last 1,000 runs,
read at the end of the window); skipped runs (``netmon_scheduler_skipped_runs_total``
growth); and the oldest result during the window (``/api/targets`` ``age_seconds``).

``--before DIR`` runs the same against another tree (e.g. ``git archive bf98a94 | tar
-x -C DIR``) and prints both. Results go to ``benchmarks/results/login_abuse-<time>.json``
(``--no-save``: not). Loopback only; bounded by the windows (each run a minute at most
with the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt

from monitor.demo import simlab

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "scrape-secret-7781"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_metrics(text: str) -> dict[str, float]:
    """The few netmon self-metrics this benchmark reads, by name{labels}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("netmon_scheduler_", "netmon_web_auth_")):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


async def window(
    url: str, pid: int, seconds: float, attack: dict[str, Any] | None
) -> dict[str, Any]:
    """Scrape once a second for ``seconds`` (and attack meanwhile); the window's figures."""
    right = {"Authorization": basic("prometheus", PASSWORD)}
    scrapes: list[tuple[int, float]] = []
    ages: list[float] = []
    answers: Counter[int] = Counter()
    sent = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    timeout = aiohttp.ClientTimeout(total=30)

    async def scraper(http: aiohttp.ClientSession) -> None:
        while loop.time() < end:
            t0 = loop.time()
            async with http.get(f"{url}/metrics", headers=right) as resp:
                await resp.read()
                scrapes.append((resp.status, loop.time() - t0))
            async with http.get(f"{url}/api/targets", headers=right) as resp:
                if resp.status == 200:
                    for target in await resp.json():
                        ages.extend(r["age_seconds"] for r in target["results"].values())
            await asyncio.sleep(max(0.0, 1.0 - (loop.time() - t0)))

    async def one(http: aiohttp.ClientSession, n: int) -> None:
        headers = {"Authorization": basic("prometheus", f"guess-{n}")}
        try:
            async with http.get(f"{url}/metrics", headers=headers) as resp:
                await resp.read()
                answers[resp.status] += 1
        except (aiohttp.ClientError, TimeoutError):
            answers[0] += 1
        except asyncio.CancelledError:
            raise

    async def attacker(sessions: list[aiohttp.ClientSession], rate: float, limit: int) -> None:
        nonlocal sent
        gate = asyncio.Semaphore(limit)
        tasks: set[asyncio.Task[None]] = set()

        async def gated(http: aiohttp.ClientSession, n: int) -> None:
            async with gate:
                await one(http, n)

        start = loop.time()
        while loop.time() < end:
            due = int((loop.time() - start) * rate) + 1
            while sent < due:
                task = loop.create_task(gated(sessions[sent % len(sessions)], sent))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.01)
        # Attempts still unanswered when the window ends are given up (counted as such).
        pending = list(tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        answers[-1] += len(pending)

    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
        jobs = [scraper(http)]
        if attack is not None:
            sessions = [
                await stack.enter_async_context(aiohttp.ClientSession(
                    timeout=timeout,
                    connector=aiohttp.TCPConnector(local_addr=(f"127.0.7.{i + 1}", 0)),
                ))
                for i in range(attack["addresses"])
            ]  # fmt: skip
            jobs.append(attacker(sessions, attack["rate"], attack["concurrency"]))
        await asyncio.gather(*jobs)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        async with http.get(f"{url}/metrics", headers=right) as resp:
            metrics = self_metrics(await resp.text())
    latencies = [t for _, t in scrapes]
    return {
        "wall_seconds": round(wall, 2),
        "netmon_cpu_seconds": round(cpu, 2),
        "netmon_cores": round(cpu / wall, 3),
        "attempts_sent": sent,
        "answers": {str(k): v for k, v in sorted(answers.items())},
        "scrapes": len(scrapes),
        "scrapes_ok": sum(1 for s, _ in scrapes if s == 200),
        "scrape_seconds_median": round(statistics.median(latencies), 4) if latencies else None,
        "scrape_seconds_max": round(max(latencies), 4) if latencies else None,
        "oldest_result_seconds": round(max(ages), 2) if ages else None,
        "metrics": metrics,
    }


def lag(metrics: dict[str, float], stat: str) -> float | None:
    value = metrics.get(f'netmon_scheduler_lag_seconds{{stat="{stat}"}}')
    return None if value is None else round(value, 4)


def skipped(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("netmon_scheduler_skipped_runs"))


def run_tree(tree: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One ``netmon run`` from ``tree``: the quiet and the burst window."""
    with ExitStack() as stack:
        listeners = []
        for i in range(args.targets):
            address = f"127.6.{i // 250}.{i % 250 + 1}"
            server = stack.enter_context(socket.create_server((address, 0)))
            listeners.append((f"srv-{i}", address, server.getsockname()[1]))
        groups = "".join(
            f"  - {{name: {name}, role: server, probes: [tcp], tcp_ports: [{port}], "
            f"targets: [{{name: {name}, address: {address}}}]}}\n"
            for name, address, port in listeners
        )
        config = workdir / "netmon.yml"
        config.write_text(
            f"defaults:\n  interval: {args.interval}s\n  tcp: {{timeout: 1s}}\ngroups:\n{groups}"
        )
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=args.cost)).decode()
        web = workdir / "web.yml"
        web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = workdir / f"netmon-{tree.name}.log"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "run", "-c", str(config),
                 "--listen", f"127.0.0.1:{port}", "--web-config", str(web)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tree,
            )  # fmt: skip
        try:
            wait_ready(url, proc, log_path)
            quiet = asyncio.run(window(url, proc.pid, args.seconds, None))
            attack = {
                "rate": args.rate, "concurrency": args.concurrency, "addresses": args.addresses,
            }  # fmt: skip
            burst = asyncio.run(window(url, proc.pid, args.seconds, attack))
        finally:
            simlab.stop_process(proc, timeout=15)
        text = log_path.read_text(errors="replace")
    for w in (quiet, burst):
        w["scheduler_lag_p99"] = lag(w["metrics"], "p99")
        w["scheduler_lag_max"] = lag(w["metrics"], "max")
    burst["skipped_runs"] = skipped(burst["metrics"]) - skipped(quiet["metrics"])
    return {
        "tree": str(tree),
        "quiet": quiet,
        "burst": burst,
        "log_lines": len(text.splitlines()),
        "log_tracebacks": text.count("Traceback"),
    }


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{url}/api/targets", headers={"Authorization": basic("prometheus", PASSWORD)}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"netmon exited:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                if all(t["results"] for t in json.loads(resp.read())):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("netmon never had a result for every target")


def table(results: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, ...]] = []
    header = [""]
    for r in results:
        name = Path(r["tree"]).name
        header += [f"{name} quiet", f"{name} burst"]

    def cells(fn: Any) -> tuple[str, ...]:
        out = []
        for r in results:
            for w in (r["quiet"], r["burst"]):
                value = fn(w)
                out.append("-" if value is None else str(value))
        return tuple(out)

    rows.append(("netmon CPU (cores)", *cells(lambda w: w["netmon_cores"])))
    rows.append(("netmon CPU-s in window", *cells(lambda w: w["netmon_cpu_seconds"])))
    rows.append(("wrong attempts sent", *cells(lambda w: w["attempts_sent"] or None)))
    rows.append(("answered 401 (bcrypt ran)", *cells(lambda w: w["answers"].get("401"))))
    rows.append(("answered 429 (no bcrypt)", *cells(lambda w: w["answers"].get("429"))))
    rows.append(("connection error", *cells(lambda w: w["answers"].get("0"))))
    rows.append(("unanswered at window end", *cells(lambda w: w["answers"].get("-1"))))
    rows.append(("window wall s", *cells(lambda w: w["wall_seconds"])))
    rows.append(("scrapes ok / made", *cells(lambda w: f"{w['scrapes_ok']}/{w['scrapes']}")))
    rows.append(("scrape s median", *cells(lambda w: w["scrape_seconds_median"])))
    rows.append(("scrape s max", *cells(lambda w: w["scrape_seconds_max"])))
    rows.append(("scheduler lag p99 s", *cells(lambda w: w["scheduler_lag_p99"])))
    rows.append(("scheduler lag max s", *cells(lambda w: w["scheduler_lag_max"])))
    rows.append(("oldest result s", *cells(lambda w: w["oldest_result_seconds"])))
    rows.append(("skipped runs", *cells(lambda w: w.get("skipped_runs"))))
    widths = [max(len(str(row[i])) for row in [tuple(header), *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, metavar="DIR", help="an older tree to compare")
    parser.add_argument("--targets", type=int, default=100, help="TCP targets (default 100)")
    parser.add_argument("--interval", type=int, default=2, help="probe interval s (default 2)")
    parser.add_argument("--cost", type=int, default=12, help="bcrypt cost (default 12)")
    parser.add_argument("--seconds", type=float, default=20, help="each window (default 20)")
    parser.add_argument("--rate", type=float, default=20, help="wrong attempts/s (default 20)")
    parser.add_argument("--concurrency", type=int, default=20, help="at once (default 20)")
    parser.add_argument("--addresses", type=int, default=1, help="attacker addresses (1-250)")
    parser.add_argument("--no-save", action="store_true", help="do not write a results file")
    args = parser.parse_args()
    if not 1 <= args.addresses <= 250 or not 1 <= args.targets <= 5000:
        parser.error("--addresses is 1-250, --targets 1-5000")
    trees = [args.before.resolve()] if args.before else []
    trees.append(ROOT)
    results = []
    with tempfile.TemporaryDirectory(prefix="login_abuse-") as tmp:
        for tree in trees:
            print(f"running {tree} ...", file=sys.stderr, flush=True)
            results.append(run_tree(tree, args, Path(tmp)))
    print(table(results))
    for r in results:
        print(f"{r['tree']}: {r['log_lines']} log lines, {r['log_tracebacks']} tracebacks")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / time.strftime("login_abuse-%Y%m%d-%H%M%S.json")
        path.write_text(json.dumps({"args": {**vars(args), "before": str(args.before)},
                                    "results": results}, indent=2) + "\n")  # fmt: skip
        print(f"saved {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
