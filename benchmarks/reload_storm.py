"""Reload cost and reload storms at a few thousand targets, against a real ``netmon run``.

    .venv/bin/python benchmarks/reload_storm.py                     # 3,000 targets
    .venv/bin/python benchmarks/reload_storm.py --targets 6000 --signals 100 --seconds 10
    .venv/bin/python benchmarks/reload_storm.py --burst 10    # 10 bursts of 10 signals

Starts ``netmon run`` (the CLI, INFO logs) on a config of ``--targets`` ICMP hosts on
127.1.0.0/16 (60 s interval, so probing stays light), then measures:

* the wall time of ``POST /-/reload`` (the answer comes after a reload that read the
  file after the request): unchanged config, one group of 250 targets relabelled, every
  target relabelled, and a broken config (rejected);
* a storm: ``--signals`` SIGHUPs over ``--seconds`` (evenly, or ``--burst N`` signals
  2 ms apart per burst), the config rewritten atomically before each one, valid and
  broken in turn, the last one valid. netmon's own counters (its "reloaded:" log line)
  give the signals it got, the reloads applied and rejected; the rest were folded into
  a reload that was already due, and whether the last (valid) config is in use;
* scheduler lag (p99 and max over the last 1,000 runs), asyncio tasks, open
  descriptors and RSS before and after the storm.

Loopback only, bounded: one netmon process, at most ``--signals`` signals, a few POSTs.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.demo.simlab import free_tcp_port

PER_GROUP = 250


def config(targets: int, gen: str, relabel_group: str = "", broken: bool = False) -> str:
    groups = ""
    for k in range((targets + PER_GROUP - 1) // PER_GROUP):
        n = min(PER_GROUP, targets - k * PER_GROUP)
        label = f"{{gen: '{relabel_group}'}}" if relabel_group and k == 0 else "{}"
        groups += f"""\
  - name: g{k}
    role: lab
    probes: [icmp]
    labels: {label}
    targets: {{range: 127.1.{k}.1-127.1.{k}.{n}}}
"""
    text = f"""\
defaults:
  interval: 60s
  labels: {{gen: '{gen}'}}
  icmp: {{count: 1, timeout: 1s}}
alerts: {{}}
groups:
{groups}"""
    return text.replace("interval: 60s", "interval: often") if broken else text


def write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.read().decode()


def post_reload(url: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    req = urllib.request.Request(f"{url}/-/reload", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.perf_counter() - t0


def self_metrics(url: str) -> dict[str, float]:
    text = get(f"{url}/metrics")
    out = {}
    for name, key in [
        ("lag_p99", 'netmon_scheduler_lag_seconds{stat="p99"}'),
        ("lag_max", 'netmon_scheduler_lag_seconds{stat="max"}'),
        ("tasks", "netmon_event_loop_tasks"),
        ("fds", "netmon_process_open_fds"),
    ]:
        m = re.search(rf"^{re.escape(key)} (\S+)$", text, re.MULTILINE)
        out[name] = float(m[1]) if m else float("nan")
    jobs = re.search(r'^netmon_scheduler_jobs\{probe="icmp"\} (\S+)$', text, re.MULTILINE)
    out["jobs"] = float(jobs[1]) if jobs else float("nan")
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=3000)
    ap.add_argument("--signals", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=5, help="POST reloads per case")
    ap.add_argument("--burst", type=int, default=1, help="signals per burst (2 ms apart)")
    ap.add_argument("--log", type=Path, help="keep netmon's log in this file")
    opts = ap.parse_args()
    if opts.targets > 250 * PER_GROUP:
        ap.error(f"at most {250 * PER_GROUP} targets")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "netmon.yml"
        write(path, config(opts.targets, "0"))
        listen = f"127.0.0.1:{free_tcp_port()}"
        url = f"http://{listen}"
        code = ("import logging, sys; logging.basicConfig(level=logging.INFO, "
                "format='%(asctime)s %(levelname)s %(name)s: %(message)s'); "
                "logging.getLogger('aiohttp.access').setLevel(logging.WARNING); "
                "from monitor.cli.app import main; sys.exit(main(sys.argv[1:]))")  # fmt: skip
        log_path = Path(tmp) / "netmon.log"
        t0 = time.monotonic()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", code, "run", "-c", str(path), "--listen", listen],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if get(f"{url}/-/healthy"):
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    print(log_path.read_text()[-3000:], file=sys.stderr)
                    return 1
                time.sleep(0.05)
            started = time.monotonic() - t0
            print(f"netmon run with {opts.targets} ICMP targets: serving after {started:.1f} s")
            time.sleep(5)  # some runs, so the lag figures exist
            before = self_metrics(url) | {"rss": rss_mib(proc.pid)}

            print(f"\nPOST /-/reload wall time, {opts.repeat} each (median, max):")
            cases = [
                ("unchanged", lambda i: config(opts.targets, "0")),
                (f"{PER_GROUP} targets relabelled", lambda i: config(opts.targets, "0", f"r{i}")),
                ("every target relabelled", lambda i: config(opts.targets, f"a{i}")),
                ("broken (rejected)", lambda i: config(opts.targets, "0", broken=True)),
            ]
            for name, make in cases:
                times = []
                for i in range(opts.repeat):
                    write(path, make(i))
                    status, took = post_reload(url)
                    expect = 400 if "broken" in name else 200
                    assert status == expect, (name, status)
                    times.append(took)
                times.sort()
                print(
                    f"  {name:<28} {times[len(times) // 2] * 1000:7.0f} ms  {times[-1] * 1000:7.0f} ms"
                )

            def count(pattern: str) -> int:
                return len(re.findall(pattern, log_path.read_text(errors="replace")))

            def counters() -> tuple[int, int, int]:
                """netmon's own totals from its last "reloaded:" line."""
                found = re.findall(r"\((\d+) reload requests, (\d+) applied, (\d+) rejected\)",
                                   log_path.read_text(errors="replace"))  # fmt: skip
                req, app, rej = found[-1]
                return int(req), int(app), int(rej)

            write(path, config(opts.targets, "0"))
            assert post_reload(url)[0] == 200  # so the last log line has the counters
            req0, app0, rej0 = counters()
            # Evenly spread, or in bursts of --burst signals 2 ms apart.
            gap = opts.seconds / opts.signals * opts.burst
            t_storm = time.monotonic()
            for i in range(opts.signals):
                valid = i % 2 == 1 or i == opts.signals - 1
                write(path, config(opts.targets, f"s{i}", broken=not valid))
                proc.send_signal(signal.SIGHUP)
                if (i + 1) % opts.burst:
                    time.sleep(0.002)
                else:
                    time.sleep(max(0.0, t_storm + (i + 1) // opts.burst * gap - time.monotonic()))
            sent = time.monotonic() - t_storm
            time.sleep(2.0)  # the storm's last reload is done: the POST gets a reload of its own
            ok = f'gen="s{opts.signals - 1}"' in get(f"{url}/metrics")  # before the POST's reload
            status, _ = post_reload(url)  # for the counters in the log
            assert status == 200, status
            req, app, rej = (a - b for a, b in zip(counters(), (req0, app0, rej0), strict=True))
            req, app = req - 1, app - 1  # the POST and the reload that served it
            how = "evenly spread" if opts.burst == 1 else f"in bursts of {opts.burst}"
            print(
                f"\nstorm: {opts.signals} SIGHUPs in {sent:.1f} s ({how}), valid and broken in turn"
            )
            print(f"  SIGHUPs netmon got {req} (the kernel merges one sent while one is pending)")
            print(f"  reloads run {app + rej}: applied {app}, rejected {rej}; "
                  f"folded into another {req - app - rej}")  # fmt: skip
            print(f"  last valid config in use afterwards: {ok}")
            time.sleep(3)
            after = self_metrics(url) | {"rss": rss_mib(proc.pid)}
            print("\n                 before storm   after storm")
            for key, unit in [("jobs", ""), ("lag_p99", "s"), ("lag_max", "s"),
                              ("tasks", ""), ("fds", ""), ("rss", "MiB")]:  # fmt: skip
                print(f"  {key:<14} {before[key]:>12.3f}   {after[key]:>11.3f} {unit}")
            tracebacks = count("Traceback")
            print(f"\ntracebacks in the log: {tracebacks}")
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            return 0 if ok and tracebacks == 0 else 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if opts.log:
                opts.log.write_bytes(log_path.read_bytes())


if __name__ == "__main__":
    sys.exit(main())
