"""The topology model on the simulated school's derived recordings (pure logic: the
converter's output fed in as the daemon feeds it, no agent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import InventoryTarget, load_config, resolve_targets
from monitor.demo import network
from monitor.demo.school import demo_config
from monitor.topology import Topology, effective_parents
from probes.result import ProbeResult, Status
from probes.snmp.modules.topology import convert
from tests.snmprec import RECORDINGS, load_walked

SWITCHES = ("sw-core", "sw-b1", "sw-b2")


def _result(name: str) -> ProbeResult:
    out = convert(load_walked(RECORDINGS / "topology" / "switch" / f"{name}.snmprec"))
    return ProbeResult(Status.OK, "ok", out.samples, out.facts, out.records, target=name)


@pytest.fixture
def targets(tmp_path: Path) -> list[InventoryTarget]:
    path = tmp_path / "netmon.yml"
    path.write_text(demo_config(snmp_port=1161))
    return resolve_targets(load_config(path))


def _model(targets: list[InventoryTarget], path: Path | None = None) -> Topology:
    topo = Topology(path)
    topo.set_inventory(targets)
    for at, name in enumerate(SWITCHES, 1000):
        topo.ingest(name, _result(name), at=float(at))
    return topo


def test_committed_recordings_are_the_generators_output() -> None:
    for name, text in network.derive(network.school()).items():
        path = RECORDINGS / "topology" / "switch" / f"{name}.snmprec"
        assert path.read_text(encoding="utf-8", errors="surrogateescape") == text, (
            f"{path} is stale: run .venv/bin/python -m monitor.demo.network")


def test_every_device_is_found_on_its_port(targets: list[InventoryTarget]) -> None:
    topo = _model(targets)
    net = network.school()
    for host in net.hosts:
        switch = net.switch(host.switch)
        names = network._values(network._base_lines(switch.base), network.IF_NAME)
        for query in (host.name, host.address, host.mac.upper().replace(":", "-")):
            found = topo.where(query)
            assert found is not None and found.place is not None, query
            assert (found.name, found.place.switch, found.place.port, found.place.alias) == (
                host.name, host.switch, names[host.if_index], host.alias), query
            assert found.place.macs == 1 and found.mac == host.mac
    assert topo.where("no-such-device") is None


def test_inferred_parents_and_uplinks(targets: list[InventoryTarget]) -> None:
    topo = _model(targets)
    parents = topo.inferred_parents()
    assert parents["sw-b1"] == parents["sw-b2"] == "sw-core"
    assert parents["sw-library"] == "sw-core"  # matched by its LLDP management address
    assert "sw-core" not in parents  # the root: the largest ARP table
    for host in network.school().hosts:
        assert parents[host.name] == host.switch
    assert topo.uplinks("sw-core") == {25: "sw-b1", 26: "sw-b2", 27: "sw-library"}
    assert topo.uplinks("sw-b2") == {24: "sw-core"}
    effective = effective_parents(targets, parents)
    assert effective["lab-204-10"] == ("sw-b2", "topology")


def test_explicit_parents_win_and_none_opts_out(targets: list[InventoryTarget]) -> None:
    import dataclasses

    pcs = [t for t in targets if t.name.startswith("lab-204-")]
    written = dataclasses.replace(pcs[0], parent="sw-core", auto_parent=False)
    opted_out = dataclasses.replace(pcs[1], auto_parent=False)
    inferred = {pcs[0].name: "sw-b2", pcs[1].name: "sw-b2", pcs[2].name: "sw-b2"}
    assert effective_parents([written, opted_out, pcs[2]], inferred) == {
        pcs[0].name: ("sw-core", "config"), pcs[2].name: ("sw-b2", "topology")}  # fmt: skip


def test_moves_failed_polls_and_persistence(targets: list[InventoryTarget], tmp_path: Path) -> None:
    path = tmp_path / "topology.json"
    topo = _model(targets, path)
    first = topo.where("lab-204-10")
    assert first is not None and first.place is not None and first.since == 1002.0
    # the PC moves from port 0/1 to 0/20 of its switch
    moved = _result("sw-b2")
    for row in moved.records["fdb"]:
        if row["mac"] == "3c:52:82:04:00:0a":
            row.update(if_index=20, port="0/20")
    topo.ingest("sw-b2", moved, at=2000.0)
    now = topo.where("lab-204-10")
    assert now is not None and now.place is not None
    assert (now.place.port, now.since, now.first_seen, now.last_seen) == ("0/20", 2000.0, 1000.0, 2000.0)
    assert [m["from"] for m in now.moves] == ["sw-b2 0/1"]
    # a dead switch's poll fails: what it last said stays
    assert not topo.ingest("sw-b2", ProbeResult(Status.TIMEOUT, "silent", target="sw-b2"), at=3000.0)
    assert topo.inferred_parents()["lab-204-10"] == "sw-b2"
    topo.save()
    again = Topology(path)
    again.set_inventory(targets)
    restored = again.where("lab-204-10")
    assert restored == now
    assert again.inferred_parents() == topo.inferred_parents()


def test_saving_writes_only_news_and_never_raises(
    targets: list[InventoryTarget], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model nobody fed leaves the file alone (a netmon failing at start-up on a
    read-only disk printed a second error for it); a disk that refuses the file costs a
    log line, and the model tries again at the next save."""
    path = tmp_path / "topology.json"
    idle = Topology(path)
    idle.set_inventory(targets)
    idle.save()
    assert not path.exists()
    topo = _model(targets, tmp_path / "gone" / "topology.json")
    (tmp_path / "gone").write_text("a file where the folder should be")
    topo.save()
    assert "cannot write the topology" in caplog.text
    (tmp_path / "gone").unlink()
    topo.save()
    again = Topology(tmp_path / "gone" / "topology.json")
    again.set_inventory(targets)
    assert again.where("lab-204-10") == topo.where("lab-204-10")


def test_a_broken_file_is_ignored(targets: list[InventoryTarget], tmp_path: Path) -> None:
    path = tmp_path / "topology.json"
    path.write_text("{not json")
    topo = Topology(path)
    topo.set_inventory(targets)
    assert topo.inferred_parents() == {}


def test_suggest_parents_writes_them_into_the_text_keeping_comments(
    targets: list[InventoryTarget], tmp_path: Path
) -> None:
    from monitor.cli.topology import parent_edits

    topo = _model(targets)
    text = demo_config(snmp_port=1161).replace(
        "groups:\n", "groups:\n# the school's groups (a comment to keep)\n", 1)
    text = text.replace("- name: printers\n", "- name: printers  # by the library\n", 1)
    path = tmp_path / "netmon.yml"
    path.write_text(text)
    cfg = load_config(path)
    new, done = parent_edits(text, cfg, topo.inferred_parents())
    assert ("group lab-204", "sw-b2") in done and ("group servers", "sw-core") in done
    assert ("group printers", "sw-b1") in done
    assert ("sw-b1", "sw-core") in done  # the network group: sw-core has none, so per target
    assert "# the school's groups (a comment to keep)\n" in new and "printers  # by the library\n" in new
    path.write_text(new)
    written = {t.name: t for t in resolve_targets(load_config(path))}
    inferred = topo.inferred_parents()
    for name, t in written.items():
        if name in inferred and name != "lab-205-pc1":
            assert t.parent == inferred[name], name
    assert parent_edits(new, load_config(path), inferred)[1] == []  # nothing left to write


def test_suggest_parents_in_flow_style(tmp_path: Path) -> None:
    from monitor.cli.topology import parent_edits

    text = ("groups:\n  - {name: lab, role: lab, probes: [icmp], targets: "
            "[{name: a, address: 127.0.0.5}, {name: b, address: 127.0.0.6}]}  # flow\n")  # fmt: skip
    path = tmp_path / "netmon.yml"
    path.write_text(text)
    cfg = load_config(path)
    apart, _ = parent_edits(text, cfg, {"a": "sw1", "b": "sw2"})
    assert "{name: a, address: 127.0.0.5, parent: sw1}, {name: b, address: 127.0.0.6, parent: sw2}" in apart
    together, done = parent_edits(text, cfg, {"a": "sw1", "b": "sw1"})
    assert together.endswith("], parent: sw1}  # flow\n") and done == [("group lab", "sw1")]


def test_a_device_no_arp_table_knows_is_found_by_its_own_mac(targets: list[InventoryTarget]) -> None:
    """The core forgot the printer's ARP entry; the printer's own topology result (its
    recording's ifPhysAddress) names the MAC its closet switch learnt."""
    topo = Topology()
    topo.set_inventory(targets)
    core = _result("sw-core")
    core.records["arp"] = [r for r in core.records["arp"] if r["ip"] != "127.0.1.5"]
    for name, result in (("sw-core", core), ("sw-b1", _result("sw-b1")), ("sw-b2", _result("sw-b2"))):
        topo.ingest(name, result, at=1000.0)
    assert topo.where("staffroom-printer").place is None  # type: ignore[union-attr]
    out = convert(load_walked(RECORDINGS / "printer" / "brother-hl-5370dw.snmprec"))
    assert "00:1b:a9:0b:a7:52" in out.facts["macs"]
    topo.ingest("staffroom-printer", ProbeResult(Status.OK, "ok", out.samples, out.facts, out.records),
                at=1001.0)  # fmt: skip
    found = topo.where("staffroom-printer")
    assert found is not None and found.place is not None
    assert (found.place.switch, found.place.alias, found.mac) == ("sw-b1", "Staff room", "00:1b:a9:0b:a7:52")
    assert topo.inferred_parents()["staffroom-printer"] == "sw-b1"


def test_parent_auto_and_none_are_words_not_targets(tmp_path: Path) -> None:
    path = tmp_path / "netmon.yml"
    path.write_text(
        "groups:\n"
        "  - name: lab\n    role: lab\n    probes: [icmp]\n    parent: auto\n"
        "    targets:\n"
        "      - {name: a, address: 127.0.0.5}\n"
        "      - {name: b, address: 127.0.0.6, parent: none}\n"
        "      - {name: c, address: 127.0.0.7, parent: a}\n"
    )
    got = {t.name: (t.parent, t.auto_parent) for t in resolve_targets(load_config(path))}
    assert got == {"a": (None, True), "b": (None, False), "c": ("a", False)}
    assert effective_parents(resolve_targets(load_config(path)), {"a": "sw", "b": "sw", "c": "sw"}) == {
        "a": ("sw", "topology"), "c": ("a", "config")}  # fmt: skip
