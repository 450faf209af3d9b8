"""The chaos fleet, small (issue 16): ``netmon run`` against 50 SNMP agents in the mix of
benchmarks/chaos_fleet.py (healthy, silent, slow, garbage, truncated, wrong community,
SNMPv3 wrong password) and 40 ICMP targets, 8 of them dead in a namespace. Every kind
gets its own status and explanation, healthy devices are probed in every interval, and
netmon's log holds no traceback. tests/chaos_fleet_lab.py builds the fleet; the
benchmark runs the same checks at 1,000 + 2,000."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.demo import simlab
from probes.result import Status
from probes.snmp.client import SnmpClient
from probes.snmp.credentials import community
from probes.snmp.types import SnmpEndpoint, oid
from tests import chaos_fleet_lab as lab
from tests import netns as nn
from tests.conftest import COMMUNITY, need

SNMP_DEVICES, ICMP_TARGETS, INTERVAL = 50, 40, 10.0
#: Measured after one interval of warm-up: three intervals.
MEASURED = 3 * INTERVAL


@pytest.fixture(scope="module")
def chaos_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[lab.Fleet, lab.Figures, str]]:  # fmt: skip
    need(nn.missing())
    need(simlab.snmpd_available())
    workdir: Path = tmp_path_factory.mktemp("chaos")
    with lab.fleet(SNMP_DEVICES, ICMP_TARGETS, INTERVAL, workdir, max_seconds=300) as fl:
        run = lab.NetmonRun(fl, workdir)
        try:
            run.start()
            window = (run.spawned_at + INTERVAL, run.spawned_at + INTERVAL + MEASURED)
            jobs = {(j.target.name, j.store_name) for j in lab.regular_jobs(fl)}
            # Until every job has a result (slow agents' first runs end near their
            # deadline, ~55 s), at most twice the measured time. By name, not by count:
            # a switch's topology job that happens to run would otherwise stand in for a
            # slow agent's first result.
            scrapes = lab.observe(run, INTERVAL + MEASURED, INTERVAL / 4,
                                  until=lambda s: jobs <= set(s[-1].status))  # fmt: skip
            targets = run.targets()
        finally:
            run.stop()
        log = run.log_path.read_text(errors="replace")
        fig = lab.evaluate(fl, scrapes, targets, log, window)
    yield fl, fig, lab.table(fig) + "\n" + log[-3000:]  # agents and namespace gone


def test_the_fleet_has_every_kind(chaos_run: tuple[lab.Fleet, lab.Figures, str]) -> None:
    fl, fig, _ = chaos_run
    assert {d.kind for d in fl.devices} == {k for k, _ in lab.SNMP_SHARES}
    assert [k.kind for k in fig.kinds] == [k for k, _ in lab.SNMP_SHARES] + [
        "icmp_live", "icmp_dead"]  # fmt: skip
    assert len(fl.dead) == 8 and all(ip.startswith("10.253.") for ip in fl.dead)


@pytest.mark.parametrize("kind", [k for k, _ in lab.SNMP_SHARES] + ["icmp_live", "icmp_dead"])
def test_each_kind_gets_its_status_and_explanation(
    chaos_run: tuple[lab.Fleet, lab.Figures, str], kind: str
) -> None:
    _, fig, report = chaos_run
    [k] = [k for k in fig.kinds if k.kind == kind]
    assert k.unseen == 0, report
    assert set(k.statuses) <= set(k.expected.statuses), report
    assert k.got_it == k.devices, report
    assert k.explained == k.devices, f"{k.example}\n{report}"
    if k.expected.data:
        assert k.with_data == k.devices, report


def test_fault_statuses_are_distinct() -> None:
    """No fault passes for success, dead, broken and rejecting agents each have their own
    status, and the two ways of rejecting credentials are told apart in words."""
    faults = ("silent", "garbage", "truncated", "wrong_community", "v3_wrong_password",
              "icmp_dead")  # fmt: skip
    for kind in faults:
        assert not {"ok", "partial"} & set(lab.EXPECTED[kind].statuses), kind
    families = {lab.EXPECTED[k].statuses for k in ("silent", "garbage", "wrong_community")}
    assert len(families) == 3
    assert lab.EXPECTED["wrong_community"].says != lab.EXPECTED["v3_wrong_password"].says


def test_healthy_devices_are_probed_every_interval(
    chaos_run: tuple[lab.Fleet, lab.Figures, str],
) -> None:
    _, fig, report = chaos_run
    assert fig.healthy_fires >= fig.healthy_jobs * 2, report  # at least two intervals each
    assert fig.healthy_every_interval == fig.healthy_jobs, report
    assert fig.healthy_fires_met == fig.healthy_fires, report
    assert fig.icmp_live_every_interval == fig.icmp_live_jobs, report


def test_no_traceback_or_panic_in_the_log(chaos_run: tuple[lab.Fleet, lab.Figures, str]) -> None:
    _, fig, report = chaos_run
    assert fig.log == {"tracebacks": 0, "pyasn1": 0, "panics": 0}, report


def test_log_problems_counts_what_it_must() -> None:
    text = ("Traceback (most recent call last):\n  File x\npyasn1.error.PyAsn1Error: bad\n"
            "thread '<unnamed>' panicked at src/lib.rs\npyo3_runtime.PanicException: x\n")  # fmt: skip
    assert lab.log_problems(text) == {"tracebacks": 1, "pyasn1": 1, "panics": 2}


# -- the client's lanes: silent agents never hold a prompt agent's turn ---------------------


@pytest.fixture
def silent_sockets() -> Iterator[list[int]]:
    """Bound UDP sockets nobody reads: requests vanish, no ICMP error comes back."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        yield [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


async def test_silent_agents_do_not_hold_a_prompt_agents_turn(
    snmpd: simlab.Agent, silent_sockets: list[int]
) -> None:
    """Two requests in flight for prompt agents, six silent agents asked first: the
    walk of a healthy snmpd finishes while every silent request is still waiting
    (with one lane for all, it would wait for their timeouts)."""
    creds = community(COMMUNITY)
    client = SnmpClient(max_in_flight=2)
    try:
        silent = [SnmpEndpoint("127.0.0.1", creds, port=p, timeout=3.0, retries=0)
                  for p in silent_sockets]  # fmt: skip
        pending = [asyncio.create_task(client.walk(ep, oid("1.3.6.1.2.1.1"))) for ep in silent]
        await asyncio.sleep(0.3)  # every silent request sent and waiting
        healthy = SnmpEndpoint(snmpd.host, creds, port=snmpd.port, timeout=3.0, retries=0)
        first = await client.walk(healthy, oid("1.3.6.1.2.1.1"))
        assert first.failure is None and first.rows
        second = await client.walk(healthy, oid("1.3.6.1.2.1.2"))  # now in the prompt lane
        assert second.failure is None and second.rows
        assert not any(t.done() for t in pending)
        results = await asyncio.gather(*pending)
        assert all(r.failure is not None and r.failure.status is Status.TIMEOUT
                   for r in results)
    finally:
        await client.aclose()
