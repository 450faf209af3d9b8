"""Topology end to end (issue 14): snmpsim serves the simulated school (the derived
switch recordings of tests/fixtures/snmprec/topology and the real device recordings),
`netmon run` polls it with the demo config, which has no `parent:` line, and
`netmon where` / `netmon inventory list` answer from what it learnt. Also: the topology
module through `netmon probe snmp --module topology --json` on every recording with
LLDP, CDP or forwarding-table rows, counts checked against the files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.demo import network, simlab
from monitor.demo.school import DEVICES, demo_config
from probes.snmp.modules.topology import convert
from tests.conftest import need
from tests.ha_lab import NetmonProcess, wait_until
from tests.snmprec import RECORDINGS, community_of, load_walked, recordings

TOPOLOGY_FILES = [p for p in [*recordings("switch"), *sorted((RECORDINGS / "topology").glob("*/*.snmprec"))]
                  if convert(load_walked(p)).records.get("tables")]  # fmt: skip


@pytest.fixture(scope="module")
def school_agent() -> Iterator[simlab.Agent]:
    need(simlab.snmpsim_available())
    port = simlab.free_udp_port(DEVICES[0].address)
    agent = simlab.start_snmpsim(host=DEVICES[0].address, port=port,
                                 extra_endpoints=[(d.address, port) for d in DEVICES[1:]])  # fmt: skip
    yield agent
    agent.stop()


def test_probe_topology_json_counts_match_the_files(school_agent: simlab.Agent) -> None:
    assert len(TOPOLOGY_FILES) == 6  # three real switches with LLDP, three derived
    import subprocess

    from tests.ha_lab import NETMON

    for path in TOPOLOGY_FILES:
        proc = subprocess.run(
            [str(NETMON), "probe", "snmp", f"{school_agent.host}:{school_agent.port}", "--module",
             "topology", "--community", community_of(path), "--json"],
            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        [result] = json.loads(proc.stdout)
        assert result["status"] == "ok", result["explanation"]
        expected = convert(load_walked(path)).records
        assert result["records"]["tables"] == expected["tables"], path.name
        assert len(result["records"].get("fdb", [])) == len(expected.get("fdb", [])), path.name


def test_where_and_inferred_parents_end_to_end(school_agent: simlab.Agent, tmp_path: Path) -> None:
    config = demo_config(snmp_port=school_agent.port, interval="2s", topology_interval="3s")
    assert "parent:" not in config.replace("parent: sw-core", "")  # only lab-205's (not here)
    nm = NetmonProcess("netmon", config, tmp_path / "n")
    nm.start()
    net = network.school()
    try:
        def located(name: str) -> dict[str, object] | None:
            proc = nm.cli("where", name, "--json")
            doc = json.loads(proc.stdout) if proc.returncode == 0 else None
            return doc if doc and doc.get("switch") else None

        last = net.hosts[-1]
        wait_until(lambda: bool((found := located(last.name)) and found["switch"] == last.switch),
                   60, f"netmon where {last.name} to name {last.switch}")
        for host in net.hosts:
            found = located(host.name)
            assert found is not None, host.name
            assert (found["switch"], found["if_index"], found["alias"], found["mac"]) == (
                host.switch, host.if_index, host.alias, host.mac), host.name
        line = nm.cli("where", "127.0.4.12").stdout.strip()
        assert line.startswith("lab-204-12 (127.0.4.12, 3c:52:82:04:00:0c) is on sw-b2 port 0/3 "
                               "'Room 204 desk 3' since "), line  # fmt: skip
        rows = {r["name"]: r for r in json.loads(nm.cli("inventory", "list", "--json").stdout)}
        for host in net.hosts:
            assert (rows[host.name]["parent"], rows[host.name]["parent_source"]) == (
                host.switch, "topology"), host.name
        assert (rows["sw-b2"]["parent"], rows["sw-b2"]["parent_source"]) == ("sw-core", "topology")
        assert (rows["sw-library"]["parent"], rows["sw-core"]["parent"]) == ("sw-core", None)
    finally:
        nm.stop()
        print(nm.log_tail())
