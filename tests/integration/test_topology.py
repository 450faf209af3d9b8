"""Topology end to end (issue 14): snmpsim serves the simulated school (the derived
switch recordings of tests/fixtures/snmprec/topology and the real device recordings),
`netmon run` polls it with the demo config, which has no `parent:` line, and
`netmon where` / `netmon inventory list` answer from what it learnt. Also: the topology
module through `netmon probe snmp --module topology --json` on every recording with
LLDP, CDP or forwarding-table rows, counts checked against the files."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from monitor.demo import network, simlab
from monitor.demo.school import DEVICES, demo_config
from probes.snmp.modules.topology import convert
from tests import netns as nn
from tests.alert_lab import (
    RULE_DOWN,
    alerts_of,
    body,
    firing,
    host_lab,
    mentions,
    metrics,
    probe_success,
    resolved,
    scenario_config,
    subjects,
    wait_probe_rounds,
)
from tests.alerting import SmtpRecorder
from tests.conftest import need, need_root
from tests.ha_lab import NetmonProcess, wait_until
from tests.integration.test_status_page import CHROMIUM, chromium
from tests.snmprec import RECORDINGS, community_of, load_walked, recordings

#: Recordings with LLDP, CDP or forwarding-table rows.
TOPOLOGY_FILES = [p for p in [*recordings("switch"), *sorted((RECORDINGS / "topology").glob("*/*.snmprec"))]
                  if any(r["rows"] for r in convert(load_walked(p)).records.get("tables", [])
                         if r["table"] in ("lldp", "cdp", "fdb", "qfdb"))]  # fmt: skip


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
        # the core's uplinks, as the exported interface_down rule reads them
        uplinks = {(lbl["target"], lbl["if_index"], lbl["neighbour"])
                   for lbl, _ in metrics(nm).get("netmon_interface_uplink", [])}  # fmt: skip
        assert {("sw-core", "25", "sw-b1"), ("sw-core", "26", "sw-b2"), ("sw-b2", "24", "sw-core")} <= uplinks
        _check_map_in_chromium(nm.url, tmp_path)
        # /probe (Prometheus' multi-target scrapes) leaves the 15-minute module out unless asked
        assert "netmon_topology_" not in _get(f"{nm.url}/probe?target=sw-core")
        assert 'netmon_topology_table_rows{' in _get(f"{nm.url}/probe?target=sw-core&module=topology")
        # the inferred parents written into the config: from then on they are the config's
        wrote = nm.cli("topology", "suggest-parents", "--write")
        assert wrote.returncode == 0 and "group lab-204: parent sw-b2" in wrote.stdout, wrote.stderr
        rows = {r["name"]: r for r in json.loads(nm.cli("inventory", "list", "--json").stdout)}
        assert (rows["lab-204-12"]["parent"], rows["lab-204-12"]["parent_source"]) == ("sw-b2", "config")
    finally:
        nm.stop()
        print(nm.log_tail())


def _check_map_in_chromium(url: str, tmp: Path) -> None:
    """The map as headless Chromium builds it: SVG nodes and links, devices per room in
    <details>, no script (the CSP forbids it anyway); the search, device and switch pages."""
    need(None if Path(CHROMIUM).exists() else "needs Chromium (Debian package chromium)")
    dom = chromium(tmp, f"{url}/map", "--dump-dom").stdout
    for switch in ("sw-core", "sw-b1", "sw-b2", "sw-library"):
        assert f'data-switch="{switch}"' in dom, dom[:2000]
    for pair in ("sw-b1|sw-core", "sw-b2|sw-core", "sw-core|sw-library"):
        assert f'data-link="{pair}" data-state="up"' in dom, pair
    assert ">eth1/0/26</text>" in dom and ">0/24</text>" in dom  # ports on the link
    assert "<b>sw-b2</b>: 12 devices" in dom and 'data-room="204"' in dom
    assert "<script" not in dom
    # the rest is plain HTML: read as a client would, without another browser start
    page = _get(f"{url}/where?q=3c:52:82:04:00:0c")
    assert "lab-204-12 (127.0.4.12, 3c:52:82:04:00:0c) is on sw-b2 port 0/3" in page
    device = _get(f"{url}/device/lab-204-12")
    assert 'data-connected="sw-b2"' in device and "inferred from the topology" in device
    switch = _get(f"{url}/device/sw-b2")
    assert '<tr><td>0/3</td><td><a href="/device/lab-204-12">lab-204-12</a></td></tr>' in switch
    assert 'action="/where"' in _get(f"{url}/")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


# --- inferred parents: one email when a closet switch dies -------------------------------


def test_closet_switch_down_one_email_with_inferred_parents(tmp_path: Path) -> None:
    """As test_alert_scenarios' closet test, but nobody wrote a parent: the core's LLDP
    names the closet, the closet's forwarding table holds the PCs' MACs, the core's ARP
    their IPs. The closet (its SNMP agent too) and the PCs sit behind one veth link in a
    namespace; pulling it must send one email, about the closet only."""
    need_root()
    need(nn.missing())
    need(simlab.snmpsim_available())
    children = [f"lab-pc-{i:02d}" for i in range(1, 7)]
    with host_lab(["sw-closet", *children]) as lab, SmtpRecorder() as mail:
        core = network.Switch("sw-core", "127.0.0.1", "switch/dlink-dgs-1510-28",
                              "10:62:eb:00:00:01", links=((25, "sw-closet", 24),), fdb="qfdb")  # fmt: skip
        closet = network.Switch("sw-closet", lab.addresses["sw-closet"],
                                "switch/hp-procurve-e2910al-24g-poe", "00:1b:3f:00:00:c1",
                                links=((24, "sw-core", 25),))  # fmt: skip
        pcs = [network.Host(n, lab.addresses[n], f"3c:52:82:05:00:{i:02x}", "sw-closet", i)
               for i, n in enumerate(children, 1)]  # fmt: skip
        data = tmp_path / "data"
        network.write(network.Network("sw-core", [core, closet], pcs), data / "net")
        host_port = simlab.free_udp_port("127.0.0.1")
        config = scenario_config(
            smtp_port=mail.port,
            credentials={n: {"version": "2c", "community": f"net/{n}"} for n in ("sw-core", "sw-closet")},
            groups=[
                {"name": "core", "role": "switch", "credentials": "sw-core", "labels": {"building": "main"},
                 "targets": [{"name": "sw-core", "address": "127.0.0.1", "port": host_port}]},
                {"name": "closet", "role": "switch", "credentials": "sw-closet",
                 "labels": {"building": "main"},
                 "targets": [{"name": "sw-closet", "address": closet.address}]},
                {"name": "lab-204", "role": "lab", "probes": ["icmp"],
                 "labels": {"building": "main", "room": "204"},
                 "targets": [{"name": p.name, "address": p.address} for p in pcs]},
            ],
            rules={RULE_DOWN: {"for": "2s"}},
            alerts={"route": {"receiver": "it-team", "group_by": ["building"], "group_wait": "1s",
                              "group_interval": "2s", "repeat_interval": "1h"}},
        )
        assert "parent" not in config
        doc = yaml.safe_load(config)
        doc["defaults"]["snmp"]["module_intervals"] = {"topology": "2s"}
        config = yaml.safe_dump(doc, sort_keys=False)
        with simlab.start_snmpsim(data, host="127.0.0.1", port=host_port,
                                  ready_community="net/sw-core") as _core_agent, \
             simlab.start_snmpsim(data, host=closet.address, port=161, ready_community="net/sw-closet",
                                  command_prefix=lab.ns.prefix()) as _closet_agent:  # fmt: skip
            nm = NetmonProcess("netmon", config, tmp_path / "n")
            nm.start()
            try:
                def inferred() -> bool:
                    rows = {r["name"]: r for r in json.loads(nm.cli("inventory", "list", "--json").stdout)}
                    return rows["sw-closet"]["parent"] == "sw-core" and all(
                        (rows[c]["parent"], rows[c]["parent_source"]) == ("sw-closet", "topology")
                        for c in children)  # fmt: skip

                wait_until(inferred, 60, "netmon to infer the PCs' and the closet's parents")
                wait_until(lambda: all(probe_success(nm, t) == 1.0 for t in ["sw-closet", *children]),
                           30, "everything to answer pings")  # fmt: skip
                lab.link(up=False)
                wait_until(lambda: bool(firing(mail.messages)), 30, "the switch-down email")

                def children_suppressed() -> bool:
                    rows = {a["target"]: a for a in alerts_of(nm, rule=RULE_DOWN)}
                    return all(rows.get(c, {}).get("suppressed") == "parent_down" for c in children)

                wait_until(children_suppressed, 60, "every child to show as suppressed parent_down")
                wait_probe_rounds(nm, jobs=len(children) + 5, rounds=3)
                messages = list(mail.messages)
                assert len(messages) == 1, subjects(messages)
                assert mentions(messages, "sw-closet")
                assert not [c for c in children if mentions(messages, c)], body(messages[0])
                lab.link(up=True)
                wait_until(lambda: bool(resolved(mail.messages)), 30, "the recovery email")
                assert not [c for c in children if mentions(list(mail.messages), c)]
            finally:
                nm.stop()
                print(nm.log_tail())


async def test_discover_suggests_lldp_neighbours_outside_the_range(school_agent: simlab.Agent) -> None:
    from monitor.discover import CredentialSet, DiscoverSettings, discover, parse_network
    from probes.context import ProbeContext
    from probes.snmp.credentials import community

    sets = [CredentialSet("core", community("topology/switch/sw-core"))]
    settings = DiscoverSettings(snmp_port=school_agent.port, icmp_timeout=1.0, snmp_timeout=1.0)
    async with ProbeContext() as ctx:
        found = await discover(parse_network("127.0.1.1/32"), sets, settings, ctx)
    assert [d.role for d in found.devices] == ["switch"]
    assert {(n["address"], n["name"], n["port"]) for n in found.neighbours} == {
        ("127.0.1.20", "sw-b1", "eth1/0/25"), ("127.0.1.21", "sw-b2", "eth1/0/26"),
        ("127.0.1.2", "<private>", "eth1/0/27")}  # fmt: skip
