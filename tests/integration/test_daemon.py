"""The monitor daemon end to end on loopback: snmpsim devices, 127.x ICMP, a TCP
listener, and an SNMP "agent" that never answers. Checks that every job's results reach
the store, that the silent one does not hold the others up, reload semantics and the
scheduler's own metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.config import ConfigFileError
from monitor.daemon import Monitor
from monitor.demo import simlab
from probes.result import Sample, Status
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]
PRINTER = "printer/hp-laserjet-mfp-m130nw"
SWITCH = "switch/cisco-sb-sg350-10"


@dataclass
class Lab:
    snmp_host: str
    snmp_host2: str
    snmp_port: int
    tcp_port: int
    tcp_port2: int
    silent_port: int


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """snmpsim on two loopback addresses, two TCP listeners and a silent UDP socket."""
    need(simlab.snmpsim_available())
    port = simlab.free_udp_port("127.0.0.1")
    with simlab.start_snmpsim(host="127.0.0.1", port=port, extra_endpoints=[("127.0.2.2", port)]) as _, \
            socket.create_server(("127.0.0.1", 0)) as tcp, \
            socket.create_server(("127.0.0.1", 0)) as tcp2, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # fmt: skip
        silent.bind(("127.0.4.1", 0))  # bound, never read: requests vanish unanswered
        yield Lab("127.0.0.1", "127.0.2.2", port, tcp.getsockname()[1], tcp2.getsockname()[1],
                  silent.getsockname()[1])  # fmt: skip


def config_text(lab: Lab, lab_hosts: tuple[int, ...] = (1, 2), *, tcp_port: int | None = None,
                silent: bool = True, interval: str = "1s") -> str:  # fmt: skip
    hosts = "".join(f"      - {{name: lab-{i}, address: 127.0.3.{i}}}\n" for i in lab_hosts)
    text = f"""\
defaults:
  interval: {interval}
  icmp: {{count: 1, timeout: 1s}}
  snmp: {{timeout: 1s, retries: 2}}
  tcp: {{timeout: 1s}}
credentials:
  printer: {{version: 2c, community: {PRINTER}}}
  switch: {{version: 2c, community: {SWITCH}}}
  nobody: {{version: 2c, community: nobody}}
groups:
  - name: printers
    role: printer
    credentials: printer
    probes: [snmp]
    targets: [{{name: printer-1, address: {lab.snmp_host}, port: {lab.snmp_port}}}]
  - name: switches
    role: switch
    credentials: switch
    probes: [snmp]
    targets: [{{name: switch-1, address: {lab.snmp_host2}, port: {lab.snmp_port}}}]
  - name: lab
    role: lab
    probes: [icmp]
    labels: {{room: "204"}}
    targets:
{hosts}  - name: servers
    role: server
    probes: [tcp]
    tcp_ports: [{tcp_port or lab.tcp_port}]
    targets: [{{name: web-1, address: 127.0.0.1}}]
"""
    if silent:
        text += f"""\
  - name: dead
    credentials: nobody
    probes: [snmp]
    modules: [system]
    targets: [{{name: silent-1, address: 127.0.4.1, port: {lab.silent_port}}}]
"""
    return text


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll until ``predicate`` holds (a bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:.0f}s")
        await asyncio.sleep(0.05)


def samples_of(samples: list[Sample], metric: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {s.labels: s.value for s in samples if s.metric == metric}


@pytest.fixture
async def monitor(lab: Lab, tmp_path: Path) -> Monitor:  # type: ignore[misc]
    path = tmp_path / "netmon.yml"
    path.write_text(config_text(lab, interval="2s"))
    m = Monitor(path)
    await m.start()
    yield m
    await m.stop()


async def test_every_job_stores_ok_results_and_a_silent_agent_holds_nobody_up(
    monitor: Monitor, lab: Lab
) -> None:
    store, jobs = monitor.store, monitor.scheduler.jobs
    # the switch's topology job runs every 15 minutes: nothing here waits for it
    assert not jobs["switch-1/topology"].awaited
    others = [j for j in jobs.values() if j.target.name != "silent-1" and j.awaited]
    assert {j.id for j in others} == {"printer-1/snmp", "switch-1/snmp", "lab-1/icmp",
                                      "lab-2/icmp", f"web-1/tcp-{lab.tcp_port}"}  # fmt: skip
    assert not monitor.is_ready(), "ready before any job ran"

    await wait_for(lambda: store.get("silent-1", "snmp") is not None, "the silent agent's result")
    silent = store.get("silent-1", "snmp")
    assert silent is not None and silent.result.status is Status.TIMEOUT, silent.result.explanation
    for job in others:
        first = store.history(job.target.name, job.store_name)
        assert first, f"{job.id} has no result although the silent agent's run finished"
        # Each of them finished before the silent one did: nobody waited for it.
        assert first[0].at < silent.finished_at, job.id

    await wait_for(lambda: all(len(store.history(j.target.name, j.store_name)) >= 3 for j in others),
                   "three runs of every other job")  # fmt: skip
    for job in others:
        stored = store.get(job.target.name, job.store_name)
        assert stored is not None
        if job.probe == "icmp" and stored.result.status is Status.PERMISSION_ERROR:
            need(stored.result.explanation)
        assert stored.result.status is Status.OK, (job.id, stored.result.explanation)
        assert stored.labels["role"] == job.target.role
        assert stored.interval == 2.0
    assert store.get("lab-1", "icmp").labels["room"] == "204"  # type: ignore[union-attr]
    printer = store.get("printer-1", "snmp")
    assert printer is not None and printer.result.records.get("supplies")
    # The silent run outlasts the 2 s interval (3 tries of 1 s), so its next run
    # was skipped rather than started alongside it.
    assert len(store.history("silent-1", "snmp")) < min(
        len(store.history(j.target.name, j.store_name)) for j in others
    )
    assert monitor.is_ready()

    self_samples = monitor.extra_samples()
    lag = samples_of(self_samples, "netmon_scheduler_lag_seconds")
    assert {dict(k)["stat"] for k in lag} == {"last", "p50", "p99", "max"}
    assert all(v >= 0 for v in lag.values())
    assert lag[(("stat", "p50"),)] <= lag[(("stat", "max"),)]
    runs = samples_of(self_samples, "netmon_probe_runs_total")
    assert runs[(("probe", "icmp"), ("status", "ok"))] >= 6
    assert runs[(("probe", "snmp"), ("status", "ok"))] >= 6
    assert runs[(("probe", "snmp"), ("status", "timeout"))] >= 1
    assert runs[(("probe", "tcp"), ("status", "error"))] == 0
    skipped = samples_of(self_samples, "netmon_scheduler_skipped_runs_total")
    assert skipped[(("probe", "snmp"), ("reason", "still_running"))] >= 1
    assert skipped[(("probe", "icmp"), ("reason", "still_running"))] == 0
    njobs = samples_of(self_samples, "netmon_scheduler_jobs")
    # snmp: printer, switch (and its topology job), silent agent
    assert njobs == {(("probe", "icmp"),): 2, (("probe", "snmp"),): 4, (("probe", "tcp"),): 1}


async def test_probe_once(monitor: Monitor, lab: Lab) -> None:
    before = len(monitor.store)
    [printer] = await monitor.probe_once("printer-1", None, "printer")
    assert printer.status is Status.OK and printer.records.get("supplies")
    [tcp] = await monitor.probe_once("web-1", "tcp", None)
    assert (tcp.status, tcp.probe) == (Status.OK, f"tcp-{lab.tcp_port}")
    [bad] = await monitor.probe_once("printer-1", None, "no-such-module")
    assert bad.status is Status.CONFIG_ERROR and "no-such-module" in bad.explanation
    with pytest.raises(KeyError):
        await monitor.probe_once("not-in-inventory", None, None)
    assert len(monitor.store) <= before + 6  # only scheduled runs store (6 jobs at most)
    assert {t.name for t in monitor.targets()} >= {"printer-1", "web-1", "lab-1"}


async def test_reload_keeps_unchanged_results_and_rejects_a_broken_config(
    lab: Lab, tmp_path: Path
) -> None:
    path = tmp_path / "netmon.yml"
    path.write_text(config_text(lab, (1, 2), silent=False))
    m = Monitor(path)
    await m.start()
    try:
        store = m.store
        await wait_for(lambda: m.scheduler.has_run_all(), "every job's first run")
        kept_job = m.scheduler.jobs["lab-1/icmp"]
        kept = store.get("lab-1", "icmp")
        assert kept is not None

        # lab-2 removed, lab-3 added, lab-1 unchanged, web-1 moves to another port
        path.write_text(config_text(lab, (1, 3), tcp_port=lab.tcp_port2, silent=False))
        assert await m.reload() == []
        jobs = m.scheduler.jobs
        assert jobs["lab-1/icmp"] is kept_job, "an unchanged job is not rescheduled"
        assert "lab-2/icmp" not in jobs and "lab-3/icmp" in jobs
        assert f"web-1/tcp-{lab.tcp_port2}" in jobs and f"web-1/tcp-{lab.tcp_port}" not in jobs
        assert store.get("lab-2", "icmp") is None, "a removed target's results are dropped"
        latest = store.get("lab-1", "icmp")
        assert latest is not None and latest.result.started_at >= kept.result.started_at
        assert kept.finished_at in [h.at for h in store.history("lab-1", "icmp")]
        if latest.result.started_at == kept.result.started_at:
            assert latest is kept  # no run in between: the very same stored object
        await wait_for(lambda: store.get("lab-3", "icmp") is not None, "the added target's result")
        await wait_for(lambda: store.get("web-1", f"tcp-{lab.tcp_port2}") is not None,
                       "the moved port's result")  # fmt: skip
        assert store.get("web-1", f"tcp-{lab.tcp_port2}").result.status is Status.OK  # type: ignore[union-attr]

        # A broken config: problems returned, running jobs untouched, still probing.
        good = path.read_text()
        path.write_text(good.replace("interval: 1s", "interval: often") + "  - name: [\n")
        problems = await m.reload()
        assert problems and all(p.startswith(f"{path}:") for p in problems), problems
        assert m.scheduler.jobs == jobs
        runs = len(store.history("lab-3", "icmp"))
        await wait_for(lambda: len(store.history("lab-3", "icmp")) > runs, "a run after the bad reload")  # fmt: skip

        path.write_text(good.replace("interval: 1s", "interval: often"))
        problems = await m.reload()
        assert len(problems) == 1 and "defaults.interval" in problems[0], problems
        assert m.scheduler.jobs == jobs
    finally:
        await m.stop()


async def test_start_with_a_broken_config_raises(tmp_path: Path) -> None:
    path = tmp_path / "netmon.yml"
    path.write_text("groups:\n  - name: x\n    role: toaster\n")
    with pytest.raises(ConfigFileError) as info:
        await Monitor(path).start()
    assert info.value.problems[0].line == 3


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def test_run_serves_reloads_on_sighup_and_stops_on_sigterm(lab: Lab, tmp_path: Path) -> None:
    """`monitor.daemon.run` in its own process, as `netmon run` starts it."""
    path = tmp_path / "netmon.yml"
    path.write_text(config_text(lab, (1,), silent=False))
    listen = f"127.0.0.1:{simlab.free_tcp_port()}"
    code = ("import asyncio, sys; from pathlib import Path; from monitor.daemon import run; "
            "sys.exit(asyncio.run(run(Path(sys.argv[1]), sys.argv[2])))")  # fmt: skip
    log = (tmp_path / "netmon.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), listen], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://{listen}"
    try:
        deadline = time.monotonic() + 30
        while _get(f"{url}/-/ready")[0] != 200:
            assert proc.poll() is None, (tmp_path / "netmon.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.2)
        status, text = _get(f"{url}/metrics")
        assert status == 200 and 'target="lab-1"' in text and "netmon_scheduler_lag_seconds" in text

        path.write_text(config_text(lab, (1, 3), silent=False))
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while 'target="lab-3"' not in _get(f"{url}/metrics")[1]:
            assert proc.poll() is None and time.monotonic() < deadline, "lab-3 never appeared"
            time.sleep(0.2)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, (tmp_path / "netmon.log").read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_run_on_a_port_in_use_says_so_and_exits(tmp_path: Path) -> None:
    """A second netmon (or anything) on the port: one line naming it, exit 1."""
    path = tmp_path / "netmon.yml"
    path.write_text(
        f"alerts: {{state_file: {tmp_path / 'state.db'}}}\n"
        "groups:\n  - name: lab\n    targets: [{name: pc-1, address: 127.0.0.1}]\n"
    )
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "run", "-c", str(path),
             "--listen", f"127.0.0.1:{port}"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert out.returncode == 1, out
    assert f"netmon: cannot listen on 127.0.0.1:{port}:" in out.stderr, out.stderr
    assert "another" in out.stderr and "Traceback" not in out.stderr, out.stderr
