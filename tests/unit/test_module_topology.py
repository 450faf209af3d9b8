"""The topology converter on every recording, and the encodings real agents use.

Expected row counts come from the recordings' own lines (``tests.snmprec``), never
copied by hand. Three switch recordings carry LLDP rows and one (the D-Link) a
Q-BRIDGE forwarding table; none has CDP or the plain dot1dTpFdbTable, so those paths
are covered by small derived walks below.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.snmp.modules.topology import (
    ARP,
    ARP_PHYS,
    CDP_CACHE,
    FDB,
    LLDP_REM,
    MODULE,
    QFDB,
    convert,
    mac,
    port_id,
)
from probes.snmp.types import OID, Value, oid, oid_str
from tests.snmprec import load_walked, raw_lines, recordings


def _rows(path: Path, entry: OID, column: int) -> int:
    prefix = f"{oid_str(entry)}.{column}."
    return sum(1 for o, _, _ in raw_lines(path) if o.startswith(prefix))


def _tables(path: Path) -> dict[str, int]:
    out = convert(load_walked(path))
    return {r["table"]: r["rows"] for r in out.records.get("tables", [])}


@pytest.mark.parametrize("path", recordings(), ids=[f"{p.parent.name}/{p.stem}" for p in recordings()])
def test_row_counts_match_the_recording(path: Path) -> None:
    expected = {
        "lldp": _rows(path, LLDP_REM, 4),  # lldpRemChassisIdSubtype: one per neighbour
        "cdp": _rows(path, CDP_CACHE, 6),
        "fdb": _rows(path, FDB, 2),
        "qfdb": _rows(path, QFDB, 2),
        "arp": _rows(path, ARP, 2),
        "arp_phys": _rows(path, ARP_PHYS, 4),
    }
    found = _tables(path)
    if not any(expected.values()):  # only the device's own MACs, if it has any
        assert found in ({}, expected)
        assert bool(found) == ("macs" in convert(load_walked(path)).facts)
        return
    assert found == expected
    samples = convert(load_walked(path)).samples
    rows = {s.label_dict["table"]: s.value for s in samples if s.metric == "netmon_topology_table_rows"}
    assert rows == {k: float(v) for k, v in expected.items()}
    links = [s for s in samples if s.metric == "netmon_topology_link_info"]
    assert len(links) == expected["lldp"] + expected["cdp"]


def test_the_recordings_hold_what_the_issue_says() -> None:
    lldp = [p.stem for p in recordings("switch") if _tables(p).get("lldp")]
    fdb = [p.stem for p in recordings("switch") if _tables(p).get("fdb") or _tables(p).get("qfdb")]
    assert len(lldp) == 3, lldp
    assert fdb == ["dlink-dgs-1510-28"]


def _switch(name: str) -> Path:
    return next(p for p in recordings("switch") if name in p.stem)


def test_dlink_neighbours_ports_fdb_and_arp() -> None:
    out = convert(load_walked(_switch("dlink")))
    links = {link["if_index"]: link for link in out.records["links"]}
    assert links[24]["remote_name"] == "Kos16c"
    assert links[24]["remote_chassis"] == "10:be:f5:ac:87:a0"  # 4x hex, chassis subtype 4
    assert links[24]["remote_port"] == "eth1/0/24"  # port subtype 7 (local) as text
    assert links[24]["port"] == "eth1/0/24"  # lldpLocPortNum 24 -> ifIndex 24 -> ifName
    fdb = out.records["fdb"]
    assert {r["vlan"] for r in fdb} == {211, 430, 990, 2011}
    assert all(r["mac"].count(":") == 5 for r in fdb)
    # port 0 ("not learnt on a port") is left out of the per-port rows
    assert sum(1 for r in fdb if r["if_index"] is None) == 0
    counts = {s.label_dict["if_index"]: s.value for s in out.samples
              if s.metric == "netmon_topology_fdb_entries"}  # fmt: skip
    assert sum(counts.values()) == len(fdb)
    # ARP MACs are text without leading zeros ("2:3:4e:4:99:be"); broadcast rows dropped
    assert {r["ip"]: r["mac"] for r in out.records["arp"]} == {
        "10.20.11.1": "02:03:4e:04:99:be", "10.20.11.5": "10:62:eb:d1:a6:c0"}  # fmt: skip
    assert out.facts["bridge_address"] == "10:62:eb:d1:a6:c0"


def test_ubiquiti_port_ids_given_as_macs_and_procurve_zero_chassis() -> None:
    ubnt = convert(load_walked(_switch("ubiquiti"))).records["links"]
    assert {link["remote_port"] for link in ubnt} == {"30:9c:23:7d:90:2a", "80:2a:a8:4d:a4:38"}
    hp = convert(load_walked(_switch("procurve"))).records["links"]
    assert [link["remote_chassis"] for link in hp] == [None, None]  # anonymised: all zeros
    assert [link["remote_port"] for link in hp] == ["41", "42"]


@pytest.mark.parametrize(("value", "expected"), [
    (bytes.fromhex("3c528204120c"), "3c:52:82:04:12:0c"),
    (b"2:3:4e:4:99:be", "02:03:4e:04:99:be"),
    (b"00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e"),
    ("001a.2b3c.4d5e", "00:1a:2b:3c:4d:5e"),
    (b"001A2B3C4D5E", "00:1a:2b:3c:4d:5e"),
    (b"ABCDEF", "41:42:43:44:45:46"),  # six raw bytes that happen to be printable
    (b"\x00" * 6, None),
    (b"\xff" * 6, None),
    (b"eth1/0/24", None),
    (b"", None),
    (7, None),
])  # fmt: skip
def test_mac_forms(value: Value, expected: str | None) -> None:
    assert mac(value) == expected


@pytest.mark.parametrize(("subtype", "value", "expected"), [
    (3, bytes.fromhex("309c237d902a"), "30:9c:23:7d:90:2a"),
    (5, b"Gi1/0/17", "Gi1/0/17"),
    (7, b"17", "17"),
    (4, bytes([1, 10, 1, 0, 2]), "10.1.0.2"),
    (7, bytes.fromhex("309c237d902a"), "30:9c:23:7d:90:2a"),  # a MAC under the wrong subtype
    (None, None, None),
])  # fmt: skip
def test_port_id_forms(subtype: int | None, value: Value | None, expected: str | None) -> None:
    assert port_id(subtype, value) == expected


def test_cdp_plain_fdb_and_missing_tables() -> None:
    walked: dict[OID, Value] = {
        oid("1.3.6.1.2.1.31.1.1.1.1.10101"): b"Gi0/1",
        oid("1.3.6.1.2.1.17.1.4.1.2.1"): 10101,
        oid(f"{oid_str(CDP_CACHE)}.4.10101.1"): bytes([10, 1, 0, 2]),
        oid(f"{oid_str(CDP_CACHE)}.6.10101.1"): b"sw-core.school.example",
        oid(f"{oid_str(CDP_CACHE)}.7.10101.1"): b"GigabitEthernet1/0/48",
        oid(f"{oid_str(FDB)}.1.60.82.130.4.18.12"): bytes.fromhex("3c528204120c"),
        oid(f"{oid_str(FDB)}.2.60.82.130.4.18.12"): 1,
        oid(f"{oid_str(FDB)}.3.60.82.130.4.18.12"): 3,
        oid(f"{oid_str(FDB)}.2.0.1.2.3.4.5"): 1,
        oid(f"{oid_str(FDB)}.3.0.1.2.3.4.5"): 4,  # self: the switch's own MAC
    }
    out = convert(walked)
    [link] = out.records["links"]
    assert (link["protocol"], link["port"], link["remote_name"], link["remote_address"],
            link["remote_port"]) == ("cdp", "Gi0/1", "sw-core", "10.1.0.2", "GigabitEthernet1/0/48")  # fmt: skip
    assert out.records["fdb"] == [{"mac": "3c:52:82:04:12:0c", "vlan": None, "if_index": 10101,
                                   "port": "Gi0/1"}]  # fmt: skip
    assert convert({}).records == {}
    assert convert({oid("1.3.6.1.2.1.31.1.1.1.1.1"): b"Gi0/1"}).records == {}


def test_the_module_walks_tables_and_gets_scalars() -> None:
    assert MODULE.name == "topology"
    assert all(len(w) > 8 for w in MODULE.walks)
    assert all(g[-1] == 0 for g in MODULE.gets)
