"""plan_jobs and sharding: the pure half of the scheduler, on inventories loaded from
real config files."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from monitor.config import InventoryTarget, load_config, resolve_targets
from monitor.scheduler import ProbeJob, plan_jobs, shard_of
from probes.snmp.probe import SnmpSettings
from probes.tcp import TcpSettings

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
defaults:
  interval: 30s
  icmp: {count: 2, timeout: 500ms}
  snmp: {credentials: school, timeout: 1500ms, retries: 3}
  tcp: {timeout: 1s}
credentials:
  school: {version: 2c, community: school-secret}
  network: {version: 2c, community: network-secret}
groups:
  - name: network
    role: switch
    credentials: network
    targets:
      - {name: sw-core, address: 127.0.0.2, port: 1161}
  - name: printers
    role: printer
    interval: 5m
    tcp_ports: [9100, 631]
    labels: {building: main}
    targets:
      - {name: library-mfp, address: 127.0.0.20, labels: {room: library}}
      - {name: office-copier, address: 127.0.0.21, modules: [system]}
  - name: lab
    role: lab
    probes: [icmp]
    targets: {range: 127.0.4.1-127.0.4.60}
  - name: odd
    probes: [snmp]
    targets:
      - {name: no-modules, address: 127.0.0.30}
"""


@pytest.fixture
def targets(tmp_path: Path) -> list[InventoryTarget]:
    path = tmp_path / "netmon.yml"
    path.write_text(CONFIG)
    return resolve_targets(load_config(path))


def by_id(jobs: list[ProbeJob]) -> dict[str, ProbeJob]:
    return {j.id: j for j in jobs}


def test_one_job_per_target_and_probe_tcp_per_port(targets: list[InventoryTarget]) -> None:
    jobs = by_id(plan_jobs(targets))
    expected = {"sw-core/icmp", "sw-core/snmp", "sw-core/topology", "no-modules/snmp"}
    for printer in ("library-mfp", "office-copier"):
        expected |= {f"{printer}/{p}" for p in ("icmp", "snmp", "tcp-9100", "tcp-631")}
    expected |= {f"lab-{i}/icmp" for i in range(1, 61)}
    assert set(jobs) == expected
    assert len(jobs) == len(plan_jobs(targets))  # ids are unique
    tcp = jobs["library-mfp/tcp-631"]
    assert (tcp.probe, tcp.store_name, tcp.port) == ("tcp", "tcp-631", 631)
    assert tcp.probe_target.port == 631 and tcp.probe_target.host == "127.0.0.20"



def test_slow_modules_get_a_job_of_their_own(targets: list[InventoryTarget]) -> None:
    """A switch's topology tables are polled every 15 minutes, in their own job that
    start-up does not wait for; a module interval not above the target's is ignored."""
    jobs = by_id(plan_jobs(targets))
    snmp, topo = jobs["sw-core/snmp"], jobs["sw-core/topology"]
    assert snmp.settings.modules == ("system", "interfaces")  # type: ignore[attr-defined]
    assert (topo.probe, topo.store_name, topo.interval, topo.awaited) == ("snmp", "topology", 900.0, False)
    assert topo.settings.modules == ("topology",)  # type: ignore[attr-defined]
    fast = next(t for t in targets if t.name == "sw-core")
    fast = dataclasses.replace(fast, interval=1800.0)
    assert [j.id for j in plan_jobs([fast]) if j.probe == "snmp"] == ["sw-core/snmp"]
    assert jobs["library-mfp/icmp"].store_name == "icmp"
    assert jobs["library-mfp/icmp"].probe_target.port is None


def test_settings_come_from_the_inventory(targets: list[InventoryTarget]) -> None:
    jobs = by_id(plan_jobs(targets))
    core = jobs["sw-core/snmp"].settings
    assert isinstance(core, SnmpSettings)
    assert core.modules == ("system", "interfaces")
    assert core.port == 1161 and core.timeout == 1.5 and core.retries == 3
    assert isinstance(core.credentials.community, SecretStr)
    assert core.credentials.community.get_secret_value() == "network-secret"
    mfp = jobs["library-mfp/snmp"].settings
    assert isinstance(mfp, SnmpSettings)
    assert mfp.modules == ("system", "printer") and mfp.port == 161
    assert mfp.credentials.community.get_secret_value() == "school-secret"  # type: ignore[union-attr]
    assert jobs["office-copier/snmp"].settings.modules == ("system",)  # type: ignore[attr-defined]
    # probes: [snmp] without modules still reads the system group
    assert jobs["no-modules/snmp"].settings.modules == ("system",)  # type: ignore[attr-defined]
    icmp = jobs["lab-7/icmp"].settings
    assert (icmp.count, icmp.timeout) == (2, 0.5)  # type: ignore[attr-defined]
    assert jobs["lab-7/icmp"].interval == 30 and jobs["library-mfp/icmp"].interval == 300
    tcp = jobs["library-mfp/tcp-9100"].settings
    assert isinstance(tcp, TcpSettings) and tcp.timeout == 1.0
    labels = jobs["library-mfp/tcp-9100"].labels
    assert labels == {"role": "printer", "group": "printers", "building": "main", "room": "library"}


def test_ids_and_phases_are_stable(targets: list[InventoryTarget]) -> None:
    first, again = plan_jobs(targets), plan_jobs(list(reversed(targets)))
    assert by_id(first) == by_id(again)
    assert [j.id for j in first] == [j.id for j in plan_jobs(targets)]
    phases = [j.phase for j in first]
    assert all(0 <= p < j.interval for p, j in zip(phases, first, strict=True))
    assert phases == [j.phase for j in plan_jobs(targets)]
    # spread: 60 lab jobs over 30 s do not share one start time
    lab = sorted(j.phase for j in first if j.target.group == "lab")
    assert len(set(lab)) == len(lab) and lab[-1] - lab[0] > 15


@pytest.mark.parametrize("n", [2, 3])
def test_every_target_lands_in_exactly_one_shard(targets: list[InventoryTarget], n: int) -> None:
    everything = by_id(plan_jobs(targets))
    shards = [plan_jobs(targets, (i, n)) for i in range(n)]
    ids = [j.id for shard in shards for j in shard]
    assert sorted(ids) == sorted(everything)  # all jobs, none twice
    owners: dict[str, set[int]] = {}
    for i, shard in enumerate(shards):
        for job in shard:
            owners.setdefault(job.target.name, set()).add(i)
            assert shard_of(job.target.name, n) == i
    assert len(owners) == len(targets)
    assert all(len(o) == 1 for o in owners.values())
    assert all(shards), "with 64 targets no shard is empty"


def test_shard_of_is_the_same_in_another_process(targets: list[InventoryTarget]) -> None:
    names = [t.name for t in targets]
    here = [[shard_of(name, n) for name in names] for n in (2, 3, 7)]
    code = (
        "import json, sys\n"
        "from monitor.scheduler import shard_of\n"
        "names = json.load(sys.stdin)\n"
        "print(json.dumps([[shard_of(x, n) for x in names] for n in (2, 3, 7)]))\n"
    )
    import json

    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(names), capture_output=True,
        text=True, check=True, cwd=ROOT, env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )  # fmt: skip
    assert json.loads(out.stdout) == here


def test_bad_shard_is_refused(targets: list[InventoryTarget]) -> None:
    with pytest.raises(ValueError, match="0..1"):
        plan_jobs(targets, (2, 2))
    with pytest.raises(ValueError):
        shard_of("x", 0)
