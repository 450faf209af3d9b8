"""The simulated school's wiring: derived switch recordings that agree with each other.

A real recording knows nothing of the devices around it, so the topology tests and
the demo serve recordings derived from three real switch recordings: each keeps its
device's system group and interfaces, and gets the topology tables rewritten to
describe one network:

* the core's LLDP neighbours are the closet switches (and each closet's LLDP
  neighbour on its uplink is the core);
* each switch's forwarding table holds the MAC of every device, learnt on the port
  towards it (an access port for its own devices, the uplink for the others);
* the core's ARP tables (ipNetToMediaTable and ipNetToPhysicalTable) map every
  device's IP address to its MAC.

:func:`derive` turns a :class:`Network` into snmprec texts; ``python -m
monitor.demo.network`` writes the school below into ``tests/fixtures/snmprec/topology/``
(documented in its README.md), and tests build their own networks (addresses in a
network namespace) with the same function.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from monitor.demo.simlab import RECORDINGS

LLDP_LOC = "1.0.8802.1.1.2.1.3"
LLDP_REM = "1.0.8802.1.1.2.1.4.1.1"
LLDP_MAN = "1.0.8802.1.1.2.1.4.2.1"
#: Subtrees replaced in every derived switch (the base's own rows describe its network).
REPLACED = (
    "1.0.8802.", "1.3.6.1.2.1.17.1.1.", "1.3.6.1.2.1.17.1.4.", "1.3.6.1.2.1.17.4.3.",
    "1.3.6.1.2.1.17.7.1.2.2.", "1.3.6.1.2.1.4.22.", "1.3.6.1.2.1.4.35.", "1.3.6.1.2.1.1.5.0",
    "1.3.6.1.4.1.9.9.23.",
)  # fmt: skip
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
IF_PHYS = "1.3.6.1.2.1.2.2.1.6"
#: LLDP system capabilities "bridge, router" (BITS: bit 2 and bit 4 of the first octet).
CAPS_BRIDGE_ROUTER = "28"
#: The VLAN (Q-BRIDGE FDB ID) every device is on.
VLAN = 10


@dataclass(frozen=True)
class Switch:
    name: str
    address: str
    #: The real recording it is derived from (path below tests/fixtures/snmprec).
    base: str
    mac: str
    #: (local ifIndex, neighbour switch name, the neighbour's ifIndex)
    links: tuple[tuple[int, str, int], ...] = ()
    #: Which forwarding table it fills: "qfdb" (Q-BRIDGE, VLAN-aware) or "fdb".
    fdb: str = "fdb"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    mac: str
    switch: str
    if_index: int
    #: ifAlias of the access port (what the wall socket is labelled).
    alias: str = ""


@dataclass
class Network:
    core: str
    switches: list[Switch]
    hosts: list[Host]
    #: Neighbours of the core outside the derived set: (core ifIndex, sysName, address).
    extra_neighbours: list[tuple[int, str, str]] = field(default_factory=list)

    def switch(self, name: str) -> Switch:
        return next(s for s in self.switches if s.name == name)


def _key(line: str) -> tuple[int, ...]:
    return tuple(int(p) for p in line.split("|", 1)[0].split("."))


def _hex(mac: str) -> str:
    return mac.replace(":", "").upper()


def _oid_bytes(mac: str) -> str:
    return ".".join(str(int(p, 16)) for p in mac.split(":"))


def _base_lines(base: str) -> list[str]:
    text = (RECORDINGS / f"{base}.snmprec").read_text(encoding="utf-8", errors="surrogateescape")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _values(lines: Iterable[str], column: str) -> dict[int, str]:
    prefix = column + "."
    out = {}
    for ln in lines:
        o, _, value = ln.split("|", 2)
        rest = o[len(prefix):]
        if o.startswith(prefix) and rest.isdigit():
            out[int(rest)] = value
    return out


def _toward(net: Network, switch: Switch, target: str) -> int | None:
    """The port of ``switch`` on the path to switch ``target`` (a tree: breadth first)."""
    if target == switch.name:
        return None
    seen = {switch.name}
    frontier = [(s_name, local) for local, s_name, _ in switch.links]
    while frontier:
        nxt = []
        for name, first_port in frontier:
            if name == target:
                return first_port
            if name in seen:
                continue
            seen.add(name)
            nxt += [(n, first_port) for _, n, _ in net.switch(name).links if n not in seen]
        frontier = nxt
    return None


def derive(net: Network) -> dict[str, str]:
    """``{switch name: snmprec text}`` for every switch of ``net``."""
    return {s.name: _derive_switch(net, s) for s in net.switches}


def _derive_switch(net: Network, sw: Switch) -> str:
    base = _base_lines(sw.base)
    names = _values(base, IF_NAME)
    kept = [ln for ln in base if not ln.split("|", 1)[0].startswith(REPLACED)
            and ln.split("|", 1)[0] != "1.3.6.1.2.1.1.5.0"]  # fmt: skip
    rows: dict[str, str] = {ln.split("|", 1)[0]: ln for ln in kept}

    def put(o: str, tag: str, value: object) -> None:
        rows[o] = f"{o}|{tag}|{value}"

    put("1.3.6.1.2.1.1.5.0", "4", sw.name)
    put(f"{LLDP_LOC}.1.0", "2", 4)
    put(f"{LLDP_LOC}.2.0", "4x", _hex(sw.mac))
    put(f"{LLDP_LOC}.3.0", "4", sw.name)
    put("1.3.6.1.2.1.17.1.1.0", "4x", _hex(sw.mac))
    physical = sorted(i for i, n in names.items() if i < 1000 and ("/" in n or n.isdigit()))
    for i in physical:
        put(f"1.3.6.1.2.1.17.1.4.1.2.{i}", "2", i)
    neighbours = [(local, net.switch(n).name, net.switch(n).mac, net.switch(n).address,
                   _values(_base_lines(net.switch(n).base), IF_NAME).get(port, str(port)))
                  for local, n, port in sw.links]  # fmt: skip
    # lldpRemTable rows: (local port, remote index, chassis subtype and value, port
    # subtype and value, sysName, management address); caps only for derived switches
    rem = [(local, 1, (4, "4x", _hex(mac)), (5, port_name), name, address)
           for local, name, mac, address, port_name in neighbours]  # fmt: skip
    if sw.name == net.core:  # known only by name and address: chassis and port "local"
        rem += [(local, n, (7, "4", sys_name), (7, "1"), sys_name, address)
                for n, (local, sys_name, address) in enumerate(net.extra_neighbours, 2)]  # fmt: skip
    for local, n, (c_sub, c_tag, chassis), (p_sub, port_name), name, address in rem:
        idx = f"0.{local}.{n}"
        put(f"{LLDP_REM}.4.{idx}", "2", c_sub)
        put(f"{LLDP_REM}.5.{idx}", c_tag, chassis)
        put(f"{LLDP_REM}.6.{idx}", "2", p_sub)
        put(f"{LLDP_REM}.7.{idx}", "4", port_name)
        put(f"{LLDP_REM}.9.{idx}", "4", name)
        put(f"{LLDP_MAN}.3.{idx}.1.4.{address}", "2", 2)
        put(f"{IF_OPER}.{local}", "2", 1)
        if n == 1:
            put(f"{LLDP_REM}.12.{idx}", "4x", CAPS_BRIDGE_ROUTER + "00")
            put(f"{LLDP_LOC}.7.1.2.{local}", "2", 5)
            put(f"{LLDP_LOC}.7.1.3.{local}", "4", names.get(local, str(local)))
    learnt: list[tuple[str, int]] = []
    for host in net.hosts:
        port = host.if_index if host.switch == sw.name else _toward(net, sw, host.switch)
        if port is not None:
            learnt.append((host.mac, port))
        if host.switch == sw.name:
            put(f"{IF_OPER}.{host.if_index}", "2", 1)
            if host.alias:
                put(f"{IF_ALIAS}.{host.if_index}", "4", host.alias)
    for local, _, mac, _, _ in neighbours:
        learnt.append((mac, local))
    for mac, port in learnt:
        if sw.fdb == "qfdb":
            put(f"1.3.6.1.2.1.17.7.1.2.2.1.2.{VLAN}.{_oid_bytes(mac)}", "2", port)
            put(f"1.3.6.1.2.1.17.7.1.2.2.1.3.{VLAN}.{_oid_bytes(mac)}", "2", 3)
        else:
            put(f"1.3.6.1.2.1.17.4.3.1.1.{_oid_bytes(mac)}", "4x", _hex(mac))
            put(f"1.3.6.1.2.1.17.4.3.1.2.{_oid_bytes(mac)}", "2", port)
            put(f"1.3.6.1.2.1.17.4.3.1.3.{_oid_bytes(mac)}", "2", 3)
    if sw.name == net.core:
        vlan_if = physical[0]
        arp = [(h.address, h.mac) for h in net.hosts] + [
            (s.address, s.mac) for s in net.switches if s.name != sw.name]
        for address, mac in arp:
            # ipNetToMedia with the MAC as text without leading zeros (as the D-Link
            # recording has it), ipNetToPhysical as raw bytes
            text_mac = ":".join(f"{int(p, 16):x}" for p in mac.split(":"))
            put(f"1.3.6.1.2.1.4.22.1.2.{vlan_if}.{address}", "4", text_mac)
            put(f"1.3.6.1.2.1.4.22.1.4.{vlan_if}.{address}", "2", 3)
            put(f"1.3.6.1.2.1.4.35.1.4.{vlan_if}.1.4.{address}", "4x", _hex(mac))
            put(f"1.3.6.1.2.1.4.35.1.6.{vlan_if}.1.4.{address}", "2", 3)
    return "\n".join(rows[o] for o in sorted(rows, key=lambda o: _key(o))) + "\n"


def own_mac(recording: str) -> str | None:
    """The first non-zero ifPhysAddress of a recording (a printer's own MAC)."""
    for value in _values(_base_lines(recording), IF_PHYS).values():
        if len(value) == 12 and value.strip("0"):
            return ":".join(value[i:i + 2].lower() for i in range(0, 12, 2))
    return None


# --- the demo school -----------------------------------------------------------------

SCHOOL_DIR = "topology"
CORE = Switch("sw-core", "127.0.1.1", "switch/dlink-dgs-1510-28", "10:62:eb:00:00:01",
              links=((25, "sw-b1", 24), (26, "sw-b2", 24)), fdb="qfdb")  # fmt: skip
B1 = Switch("sw-b1", "127.0.1.20", "switch/hp-procurve-e2910al-24g-poe", "00:1b:3f:00:00:b1",
            links=((24, "sw-core", 25),))  # fmt: skip
B2 = Switch("sw-b2", "127.0.1.21", "switch/ubiquiti-edgeswitch-24-250w", "80:2a:a8:00:00:b2",
            links=((24, "sw-core", 26),))  # fmt: skip
#: The lab room's PCs (ICMP only): 127.0.4.10-21 on sw-b2 ports 1-12.
LAB = [
    Host(f"lab-204-{10 + i}", f"127.0.4.{10 + i}", f"3c:52:82:04:00:{10 + i:02x}", "sw-b2", 1 + i,
         f"Room 204 desk {1 + i}")
    for i in range(12)
]  # fmt: skip
#: SNMP devices of monitor.demo.school: their MACs are their recordings' own.
PLACED = [
    ("library-mfp", "127.0.1.3", "printer/hp-color-laserjet-pro-m252dw", "sw-b1", 5, "Library"),
    ("office-copier", "127.0.1.4", "printer/konica-minolta-bizhub-c3110", "sw-b1", 6, "Office"),
    ("staffroom-printer", "127.0.1.5", "printer/brother-hl-5370dw", "sw-b1", 7, "Staff room"),
    ("file-server", "127.0.1.6", "linux/el8-x86_64-server", "sw-core", 1, "Server rack A"),
    ("ups-server-room", "127.0.1.7", "ups/apc-smart-ups-1000-nmc3", "sw-core", 2, "Server rack A"),
]


def school() -> Network:
    hosts = [Host(n, a, own_mac(rec) or "02:00:00:00:01:" + a.rsplit(".", 1)[1].zfill(2), sw, port,
                  alias) for n, a, rec, sw, port, alias in PLACED]  # fmt: skip
    return Network("sw-core", [CORE, B1, B2], hosts + LAB,
                   extra_neighbours=[(27, "<private>", "127.0.1.2")])  # fmt: skip


def write(net: Network, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in derive(net).items():
        path = directory / f"{name}.snmprec"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", type=Path, default=RECORDINGS / SCHOOL_DIR / "switch")
    for path in write(school(), parser.parse_args().dir):
        print(path)


if __name__ == "__main__":
    main()
