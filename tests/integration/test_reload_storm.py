"""Reload storms against a real ``netmon run``: a SIGHUP during start-up, then 100 SIGHUPs
in about 10 s with the config rewritten between them (valid and broken in turn, some
written in place so a reload may read half a file). Afterwards the jobs are exactly the
last valid config's, each runs once per interval (counted by TCP listeners of the test's
own, one per job), the process holds no more tasks or descriptors than before, and each
rejected config left one log line with file:line: field, never a traceback.

The in-process tests pin the rules the storm relies on: concurrent requests fold into
one reload, a reload asked for during start-up runs after it, a rejected config is one
log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.config import load_config, resolve_targets
from monitor.daemon import Monitor
from monitor.demo import simlab
from monitor.scheduler import ProbeScheduler, plan_jobs
from monitor.store.results import ResultStore
from probes.context import ProbeContext
from tests.waiting import http_json, http_status, wait_until

ROOT = Path(__file__).resolve().parents[2]
#: Probed by ICMP in every valid config (their jobs must survive every reload).
BASE_HOSTS = 40
#: Probed by ICMP rarely (30 or 45 s), their interval changed by every valid config.
BULK_HOSTS = 300
#: TCP jobs, each to a listener of its own, present in some configs and not in others.
TCP_TARGETS = 8
SIGNALS = 100
#: The storm's last config, a valid one: the last SIGHUP guarantees a read of it. (A
#: config overwritten before any reload read it is skipped: nothing saw it.)
FINAL = SIGNALS - 1
TCP_INTERVAL = 1.0
ICMP_INTERVAL = 2.0


class Listeners:
    """TCP listeners on 127.0.6.k, one per TCP job, counting the connections each gets."""

    def __init__(self, n: int) -> None:
        self.socks = [socket.create_server((f"127.0.6.{k + 1}", 0)) for k in range(n)]
        self.counts: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [s.getsockname()[:2] for s in self.socks]

    def snapshot(self) -> Counter[int]:
        with self._lock:
            return Counter(self.counts)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            for k, sock in enumerate(self.socks):
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ, k)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    try:
                        conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    except BlockingIOError:
                        continue
                    conn.close()
                    with self._lock:
                        self.counts[key.data] += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.socks:
            sock.close()


@pytest.fixture
def listeners() -> Iterator[Listeners]:
    lst = Listeners(TCP_TARGETS)
    yield lst
    lst.close()


def tcp_subset(i: int) -> list[int]:
    """The TCP jobs config ``i`` has: two of every three, a different two each time."""
    return [k for k in range(TCP_TARGETS) if (k + i) % 3]


def valid_config(i: int, gen: str, listeners: Listeners) -> str:
    """A valid config: the fixed hosts, 10 + i/2 hosts labelled ``gen``, some TCP jobs,
    and an alerts section that differs every time (so the notifier restarts too)."""
    tcp = ""
    for k in tcp_subset(i):
        host, port = listeners.addresses[k]
        tcp += f"""\
  - name: svc-{k}
    role: server
    probes: [tcp]
    tcp_ports: [{port}]
    interval: {TCP_INTERVAL:g}s
    targets: [{{name: svc-{k}, address: {host}}}]
"""
    # Many jobs whose interval changes every time: each reload re-adds them all to
    # apscheduler (more than the event loop's self-pipe holds, 278 wake-ups).
    bulk = "".join(
        f"""\
  - name: bulk{half}
    role: lab
    probes: [icmp]
    interval: {30 + 15 * (i // 2 % 2)}s
    targets: {{range: 127.0.{8 + half}.1-127.0.{8 + half}.{BULK_HOSTS // 2}}}
"""
        for half in range(2)
    )
    return f"""\
defaults:
  interval: {ICMP_INTERVAL:g}s
  icmp: {{count: 1, timeout: 1s}}
  tcp: {{timeout: 1s}}
alerts: {{parent_wait: {300 + i}s}}
groups:
  - name: base
    role: lab
    probes: [icmp]
    targets: {{range: 127.0.5.1-127.0.5.{BASE_HOSTS}}}
  - name: vary
    role: lab
    probes: [icmp]
    labels: {{gen: "{gen}"}}
    targets: {{range: 127.0.7.1-127.0.7.{10 + i // 2}}}
{bulk}{tcp}"""


def broken_config(i: int, listeners: Listeners) -> str:
    """A config with one kind of mistake (five kinds in turn)."""
    good = valid_config(i, str(i), listeners)
    kind = i // 2 % 5
    if kind == 0:
        return good + "  - name: [\n"  # YAML syntax
    if kind == 1:
        return good.replace(f"interval: {ICMP_INTERVAL:g}s", "interval: often")
    if kind == 2:
        return good.replace("    role: lab\n", "    role: lab\n    colour: red\n", 1)
    if kind == 3:
        return good.replace("127.0.7.1-", "127.0.5.1-")  # addresses used twice
    return ""  # an empty file (a writer that truncated and has not written yet)


def expected(i: int) -> tuple[set[str], int, int]:
    """Target names, ICMP jobs and TCP jobs of valid config ``i``."""
    names = {f"base-{h}" for h in range(1, BASE_HOSTS + 1)}
    names |= {f"vary-{h}" for h in range(1, 11 + i // 2)}
    names |= {f"svc-{k}" for k in tcp_subset(i)}
    names |= {f"bulk{half}-{h}" for half in range(2) for h in range(1, BULK_HOSTS // 2 + 1)}
    return names, BASE_HOSTS + 10 + i // 2 + BULK_HOSTS, len(tcp_subset(i))


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? (\S+)$")


def metrics(url: str) -> dict[tuple[str, str], float]:
    """``/metrics`` as {(name, labels text): value}."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[(m[1], m[2] or "")] = float(m[3])
    return out


def post_reload(url: str) -> tuple[int, str]:
    req = urllib.request.Request(f"{url}/-/reload", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sighup_caught_or_ignored(pid: int) -> bool:
    """True once the process no longer dies of SIGHUP (its default action)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    masks = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    bit = 1 << (signal.SIGHUP - 1)
    return bool((int(masks["SigIgn"], 16) | int(masks["SigCgt"], 16)) & bit)


def serving(listen: str) -> bool:
    host, port = listen.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Netmon:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> None:
        assert self.proc.poll() is None, f"netmon ended:\n{self.log_text()[-3000:]}"


def state(url: str) -> tuple[set[str], set[str], dict[str, float]]:
    """Target names and ``gen`` labels from /api/targets, job gauges from /metrics."""
    targets = http_json(f"{url}/api/targets", timeout=10)
    names = {t["name"] for t in targets}
    gens = {t["labels"]["gen"] for t in targets if "gen" in t["labels"]}
    jobs = {k[1]: v for k, v in metrics(url).items() if k[0] == "netmon_scheduler_jobs"}
    return names, gens, jobs


def loop_and_fds(url: str, times: int = 5) -> tuple[list[float], list[float]]:
    tasks, fds = [], []
    for _ in range(times):
        m = metrics(url)
        tasks.append(m[("netmon_event_loop_tasks", "")])
        fds.append(m[("netmon_process_open_fds", "")])
        time.sleep(0.2)
    return tasks, fds


def test_reload_storm_keeps_exactly_the_last_valid_config(
    tmp_path: Path, listeners: Listeners
) -> None:
    path = tmp_path / "netmon.yml"
    write_atomically(path, valid_config(0, "s0", listeners))
    listen = f"127.0.0.1:{simlab.free_tcp_port()}"
    url = f"http://{listen}"
    # `netmon run` through the CLI, with INFO logs (the applied reloads' lines).
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO, "
            "format='%(asctime)s %(levelname)s %(name)s: %(message)s'); "
            "from monitor.cli.app import main; sys.exit(main(sys.argv[1:]))")  # fmt: skip
    log_path = tmp_path / "netmon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "run", "-c", str(path), "--listen", listen],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    netmon = Netmon(proc, url, log_path)
    try:
        # 1. A reload asked for during start-up: sent once SIGHUP no longer kills the
        # process, before the web server is up; it must be applied once start-up is done.
        wait_until(lambda: sighup_caught_or_ignored(proc.pid) or proc.poll() is not None,
                   30, "netmon to catch SIGHUP", step=0.005)  # fmt: skip
        netmon.alive()
        final_names, final_icmp, final_tcp = expected(FINAL)
        write_atomically(path, valid_config(FINAL, "s1", listeners))
        proc.send_signal(signal.SIGHUP)
        assert not serving(listen), "netmon was already serving: the signal came too late"
        wait_until(lambda: http_status(f"{url}/-/healthy") == 200 or proc.poll() is not None,
                   60, "netmon serving")  # fmt: skip
        netmon.alive()
        wait_until(lambda: state(url)[1] == {"s1"}, 30, "the start-up reload applied")
        names, _, jobs = state(url)
        assert names == final_names
        assert jobs == {'probe="icmp"': final_icmp, 'probe="tcp"': final_tcp}, jobs
        wait_until(lambda: len(listeners.snapshot()) == final_tcp, 10, "every TCP job's first run")
        tasks_before, fds_before = loop_and_fds(url)

        # 2. The storm: 100 SIGHUPs in ~10 s, valid and broken configs in turn, in
        # bursts of ten (so reloads are still running when the next signals come).
        # Some valid configs are written in place, the signal sent halfway through.
        started = time.monotonic()
        for i in range(SIGNALS):
            text = valid_config(i, str(i), listeners) if i % 2 else broken_config(i, listeners)
            if i % 6 == 3 and i != FINAL:  # in place: truncate, half, signal, the rest
                with path.open("w") as f:
                    f.write(text[: len(text) // 2])
                    f.flush()
                    proc.send_signal(signal.SIGHUP)
                    time.sleep(0.005)
                    f.write(text[len(text) // 2 :])
            else:
                write_atomically(path, text)
                proc.send_signal(signal.SIGHUP)
            time.sleep(0.002 if i % 10 != 9 else 0.9)
        storm_seconds = time.monotonic() - started
        netmon.alive()

        # Then a broken file: a POST reload (queued after whatever runs) rejects it, and
        # the jobs are exactly those of the storm's last config, the last valid one.
        write_atomically(path, broken_config(SIGNALS, listeners))
        status, body = post_reload(url)
        assert status == 400 and str(path) in body, (status, body)
        names, gens, jobs = state(url)
        assert gens == {str(FINAL)}, "the last valid config did not win"
        assert names == final_names, names ^ final_names
        assert jobs == {'probe="icmp"': final_icmp, 'probe="tcp"': final_tcp}, jobs
        # Prometheus's own reload metrics: the last reload (the POST) was rejected, the
        # running config is the storm's last valid one, loaded during the storm.
        reloads = metrics(url)
        assert reloads[("netmon_config_last_reload_successful", "")] == 0
        loaded_at = reloads[("netmon_config_last_reload_success_timestamp_seconds", "")]
        assert time.time() - storm_seconds - 5 < loaded_at < time.time()
        assert reloads[("netmon_config_reloads_total", 'result="rejected"')] >= 2
        assert reloads[("netmon_config_reloads_total", 'result="applied"')] >= 2

        # 3. Every job runs once per interval, none twice, none of a removed config.
        before, runs_before = listeners.snapshot(), metrics(url)
        time.sleep(4 * TCP_INTERVAL)
        after, runs_after = listeners.snapshot(), metrics(url)
        ran = {k: after[k] - before[k] for k in range(TCP_TARGETS)}
        wanted = set(tcp_subset(FINAL))
        for k, n in ran.items():
            if k in wanted:
                assert 3 <= n <= 5, f"svc-{k} ran {n} times in 4 intervals"
            else:
                assert n == 0, f"svc-{k} is in no current config but ran {n} times"

        def icmp_runs(m: dict[tuple[str, str], float]) -> float:
            return sum(v for (name, lab), v in m.items()
                       if name == "netmon_probe_runs_total" and 'probe="icmp"' in lab)  # fmt: skip

        # 2 intervals of 2 s for the frequent ones; the bulk ones run every 45 s
        frequent_icmp = final_icmp - BULK_HOSTS
        icmp = icmp_runs(runs_after) - icmp_runs(runs_before)
        assert frequent_icmp <= icmp <= 3 * frequent_icmp + BULK_HOSTS // 5, (icmp, final_icmp)
        last_run = {lab for (name, lab), v in runs_after.items()
                    if name == "netmon_probe_last_run_timestamp_seconds" and v > time.time() - 3 * ICMP_INTERVAL}  # fmt: skip
        frequent = {n for n in final_names if not n.startswith("bulk")}
        missing = {n for n in frequent if not any(f'target="{n}"' in lab for lab in last_run)}
        assert not missing, f"no recent run of {sorted(missing)[:5]}"

        # 4. No growth of tasks or descriptors (the same job set as before the storm).
        tasks_after, fds_after = loop_and_fds(url)
        assert min(tasks_after) <= max(tasks_before) + 3, (tasks_before, tasks_after)
        assert min(fds_after) <= max(fds_before) + 3, (fds_before, fds_after)

        # 5. Logs: one line per rejected config, with file:line: field; no traceback.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, netmon.log_text()[-3000:]
        text = netmon.log_text()
        assert "Traceback" not in text, text[-3000:]
        rejected = [ln for ln in text.splitlines() if "config not reloaded" in ln]
        applied = [ln for ln in text.splitlines() if "netmon.daemon: reloaded:" in ln]
        assert rejected and applied
        where = re.compile(rf"keeping the running one: {re.escape(str(path))}(:\d+)?: \S")
        for line in rejected:
            assert where.search(line), line
        kinds = {
            m[0]
            for ln in rejected
            for m in [re.search(r"(YAML syntax|interval|colour|already used|empty)", ln)]
            if m
        }
        assert len(kinds) >= 2, rejected  # (which are read depends on timing)
        runs = len(rejected) + len(applied)
        # Signals that came while a reload ran were folded: far fewer reloads than signals.
        assert runs < SIGNALS, f"{runs} reloads for {SIGNALS} signals"
        print(f"\nstorm: {SIGNALS} SIGHUPs in {storm_seconds:.1f}s -> {len(applied)} applied, "
              f"{len(rejected)} rejected reloads (incl. the start-up reload and the POST)")  # fmt: skip
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- in process: the rules the storm relies on -------------------------------------------


def small_config(listeners: Listeners, gen: str, i: int = 0) -> str:
    return valid_config(i, gen, listeners)


async def test_concurrent_reloads_fold_into_one(tmp_path: Path, listeners: Listeners) -> None:
    path = tmp_path / "netmon.yml"
    write_atomically(path, small_config(listeners, "a"))
    m = Monitor(path)
    installed: list[str] = []  # the gen of each config put in place (the log filter's hook)
    m.on_config = lambda cfg: installed.append(
        next(g.labels["gen"] for g in cfg.groups if g.name == "vary")
    )
    await m.start()
    try:
        write_atomically(path, small_config(listeners, "b", 4))
        results = await asyncio.gather(*(m.reload() for _ in range(20)))
        assert results == [[]] * 20
        assert (m.reload_counts["requested"], m.reload_counts["applied"]) == (20, 1)
        assert installed == ["a", "b"]
        assert {t.labels["gen"] for t in m.targets() if "gen" in t.labels} == {"b"}

        # A request while a reload runs gets one more reload, reading the file then.
        first = asyncio.ensure_future(m.reload())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        write_atomically(path, small_config(listeners, "c", 6))
        second = await m.reload()
        assert await first == [] and second == []
        assert {t.labels["gen"] for t in m.targets() if "gen" in t.labels} == {"c"}
        assert len(m.scheduler.jobs) == sum(expected(6)[1:])
    finally:
        await m.stop()


async def test_a_reload_asked_for_during_start_up_runs_after_it(
    tmp_path: Path, listeners: Listeners
) -> None:
    path = tmp_path / "netmon.yml"
    write_atomically(path, small_config(listeners, "a"))
    m = Monitor(path)
    starting = asyncio.ensure_future(m.start())
    outcome = m.request_reload()
    write_atomically(path, small_config(listeners, "b", 2))
    try:
        await starting
        assert await asyncio.wait_for(outcome, 30) == []
        assert m.reload_counts["applied"] == 1
        assert {t.labels["gen"] for t in m.targets() if "gen" in t.labels} == {"b"}
    finally:
        await m.stop()


async def test_a_rejected_config_is_one_log_line(
    tmp_path: Path, listeners: Listeners, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "netmon.yml"
    good = small_config(listeners, "a")
    write_atomically(path, good)
    m = Monitor(path)
    await m.start()
    try:
        jobs = m.scheduler.jobs
        bad = good.replace("role: lab", "role: toaster").replace("interval: 2s", "interval: often")
        write_atomically(path, bad.replace("count: 1", "count: 0"))
        with caplog.at_level(logging.INFO, logger="netmon.daemon"):
            problems = await m.reload()
            write_atomically(path, "")
            empty = await m.reload()
        assert len(problems) >= 4, problems
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(lines) == 2, lines
        assert lines[0].startswith(f"config not reloaded, keeping the running one: {path}:")
        assert f"and {len(problems) - 3} more" in lines[0] and "\n" not in lines[0]
        assert empty and "empty" in empty[0] and "empty" in lines[1]
        assert m.scheduler.jobs == jobs
        assert (m.reload_counts["rejected"], m.reload_counts["applied"]) == (2, 0)
    finally:
        await m.stop()


async def test_a_signal_during_a_big_apply_is_not_lost(tmp_path: Path) -> None:
    """Adding 1,000 jobs to a running apscheduler must not fill the event loop's
    self-pipe: a signal that comes then would be lost (its wake-up byte dropped)."""
    groups = "".join(
        f"  - {{name: g{k}, role: lab, probes: [icmp], targets: {{range: 127.0.{10 + k}.1-127.0.{10 + k}.250}}}}\n"
        for k in range(4)
    )  # fmt: skip
    path = tmp_path / "netmon.yml"
    path.write_text(f"defaults: {{interval: 1h}}\ngroups:\n{groups}")
    jobs = plan_jobs(resolve_targets(load_config(path)))
    assert len(jobs) == 1000
    loop = asyncio.get_running_loop()
    got = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, got.set)
    scheduler = ProbeScheduler(ResultStore(), ProbeContext())
    scheduler.start()
    try:
        scheduler.apply(jobs)
        os.kill(os.getpid(), signal.SIGUSR1)  # while the loop has not run since
        await asyncio.wait_for(got.wait(), 10)
        assert set(scheduler.jobs) == {j.id for j in jobs}
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        await scheduler.shutdown()
