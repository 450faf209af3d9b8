"""Where things are plugged in: LLDP and CDP neighbours, bridge forwarding tables, ARP.

Walked tables (each may be missing; a missing table yields no rows, not an error):

* LLDP-MIB ``lldpRemTable`` (neighbours per local port), ``lldpRemManAddrTable``
  (their management addresses), ``lldpLocPortTable`` (local port numbers -> names) and
  the local chassis ID;
* CISCO-CDP-MIB ``cdpCacheTable``;
* BRIDGE-MIB ``dot1dBasePortIfIndex`` (bridge port -> ifIndex), ``dot1dTpFdbTable``
  and Q-BRIDGE-MIB ``dot1qTpFdbTable`` (MACs learnt per port, per VLAN);
* IP-MIB ``ipNetToMediaTable`` and ``ipNetToPhysicalTable`` (IP -> MAC);
* IF-MIB ifName/ifAlias/ifDescr/ifPhysAddress/ifOperStatus, so ports have names and
  the switch's own MACs are known (how a neighbour's chassis ID is matched to it).

Real agents disagree on encodings, so the pure helpers accept MACs as six raw bytes
or as text (``2:3:4e:4:99:be``, ``00-1A-2B-3C-4D-5E``, ``001a.2b3c.4d5e``), port IDs
as a MAC, an interface name or a local number, and treat an all-zero MAC (anonymised
recordings, unset fields) as unknown.

Samples stay low-cardinality: one ``netmon_topology_link_info`` per neighbour, one
``netmon_topology_fdb_entries`` count per port and one ``netmon_topology_table_rows``
per table; the MACs themselves are only in the records (for the topology model, the
CLI and ``--json``), never one series per MAC.
"""

from __future__ import annotations

import ipaddress
import re

from probes.result import Record, Sample
from probes.snmp.modules.base import (
    ModuleOutput,
    SnmpModule,
    integer,
    scalar,
    table,
    text,
)
from probes.snmp.modules.interfaces import OPER_STATES, if_text
from probes.snmp.types import OID, Value, Walked, oid

LLDP_LOC_CHASSIS_SUBTYPE = oid("1.0.8802.1.1.2.1.3.1")
LLDP_LOC_CHASSIS_ID = oid("1.0.8802.1.1.2.1.3.2")
LLDP_LOC_SYS_NAME = oid("1.0.8802.1.1.2.1.3.3")
LLDP_LOC_PORT = oid("1.0.8802.1.1.2.1.3.7.1")
LLDP_REM = oid("1.0.8802.1.1.2.1.4.1.1")
LLDP_REM_MAN_ADDR = oid("1.0.8802.1.1.2.1.4.2.1")
CDP_CACHE = oid("1.3.6.1.4.1.9.9.23.1.2.1.1")
BRIDGE_ADDRESS = oid("1.3.6.1.2.1.17.1.1")
BASE_PORT_IFINDEX = oid("1.3.6.1.2.1.17.1.4.1")
FDB = oid("1.3.6.1.2.1.17.4.3.1")
QFDB = oid("1.3.6.1.2.1.17.7.1.2.2.1")
ARP = oid("1.3.6.1.2.1.4.22.1")
ARP_PHYS = oid("1.3.6.1.2.1.4.35.1")
IF_ENTRY = oid("1.3.6.1.2.1.2.2.1")
IFX_ENTRY = oid("1.3.6.1.2.1.31.1.1.1")

LLDP_LOC_PORT_COLUMNS = {2: "id_subtype", 3: "id", 4: "descr"}
LLDP_REM_COLUMNS = {
    4: "chassis_subtype", 5: "chassis", 6: "port_subtype", 7: "port", 8: "port_descr",
    9: "sys_name", 10: "sys_descr", 12: "caps",
}  # fmt: skip
CDP_COLUMNS = {3: "address_type", 4: "address", 6: "device_id", 7: "port", 8: "platform",
               9: "caps"}  # fmt: skip
IF_COLUMNS = {2: "descr", 6: "mac", 8: "oper"}
IFX_COLUMNS = {1: "name", 18: "alias"}

#: LLDP chassis/port ID subtypes that carry a MAC address (chassis 4, port 3).
CHASSIS_MAC, PORT_MAC = 4, 3
#: LLDP chassis/port ID subtypes that carry a network address (chassis 5, port 4).
CHASSIS_ADDRESS, PORT_ADDRESS = 5, 4
#: LLDP system capability bits (a BITS string: bit 0 is the first octet's top bit).
LLDP_CAP_BRIDGE, LLDP_CAP_ROUTER = 2, 4
#: CDP capability flags (a 32-bit mask): router 0x01, transparent/source-route bridge
#: 0x02/0x04, switch 0x08.
CDP_CAP_BRIDGE = 0x0E
#: dot1dTpFdbStatus / dot1qTpFdbStatus values that are not a learnt host: invalid, self.
FDB_SKIP = {2, 4}
#: ipNetToMedia/PhysicalType: invalid (2) rows are stale entries.
ARP_INVALID = 2

#: Tables counted in ``netmon_topology_table_rows`` and in the ``tables`` record.
TABLES = ("lldp", "cdp", "fdb", "qfdb", "arp", "arp_phys")

_MAC_TEXT = re.compile(r"^[0-9A-Fa-f]{1,2}([:\- ])(?:[0-9A-Fa-f]{1,2}\1){4}[0-9A-Fa-f]{1,2}$")
_MAC_DOTTED = re.compile(r"^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$")
_MAC_PLAIN = re.compile(r"^(?:0x)?[0-9A-Fa-f]{12}$")


def mac(value: Value | None) -> str | None:
    """A MAC address as ``aa:bb:cc:dd:ee:ff`` from six raw bytes or any common text form;
    ``None`` when it is none of those or all zeros (unknown)."""
    if value is None:
        return None
    raw: bytes | None = None
    if isinstance(value, bytes):
        try:
            as_text = value.decode("ascii").strip()
        except UnicodeDecodeError:
            as_text = ""
        raw = _mac_text(as_text) if as_text else None
        if raw is None and len(value) == 6:
            raw = value
    elif isinstance(value, str):
        raw = _mac_text(value.strip())
    if raw is None or not any(raw) or raw == b"\xff" * 6:
        return None
    return ":".join(f"{b:02x}" for b in raw)


def _mac_text(value: str) -> bytes | None:
    if _MAC_TEXT.match(value):
        return bytes(int(p, 16) for p in re.split(r"[:\- ]", value))
    if _MAC_DOTTED.match(value):
        return bytes.fromhex(value.replace(".", ""))
    if _MAC_PLAIN.match(value):
        return bytes.fromhex(value[-12:])
    return None


def mac_from_index(index: OID) -> str | None:
    """The MAC in the last six parts of a table index (dot1d/dot1qTpFdbTable)."""
    if len(index) < 6 or any(not 0 <= p <= 255 for p in index[-6:]):
        return None
    return mac(bytes(index[-6:]))


def address(value: Value | None) -> str | None:
    """An IP address from an IpAddress string or 4/16 raw bytes (CDP, LLDP chassis IDs)."""
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            return None
    if isinstance(value, bytes) and len(value) in (4, 16):
        return str(ipaddress.ip_address(value))
    if isinstance(value, bytes) and len(value) in (5, 17) and value[0] in (1, 2):
        return str(ipaddress.ip_address(value[1:]))  # LLDP network address: family byte first
    return None


def ip_from_index(parts: OID) -> str | None:
    """An IP from index parts: 4 (IPv4) or 16 (IPv6) numbers, each 0-255."""
    if len(parts) not in (4, 16) or any(not 0 <= p <= 255 for p in parts):
        return None
    return str(ipaddress.ip_address(bytes(parts)))


def port_id(subtype: int | None, value: Value | None) -> str | None:
    """An LLDP port ID as text: a MAC for subtype 3, an address for subtype 4, else the
    device's string (ifName, a local number, ...)."""
    return _id(subtype, value, PORT_MAC, PORT_ADDRESS)


def _chassis(subtype: int | None, value: Value | None) -> str | None:
    """An LLDP chassis ID as text (its subtypes number MAC 4 and network address 5)."""
    if subtype == CHASSIS_MAC:
        return mac(value)
    return _id(subtype, value, CHASSIS_MAC, CHASSIS_ADDRESS)


def _id(subtype: int | None, value: Value | None, mac_subtype: int, address_subtype: int) -> str | None:
    if subtype == mac_subtype and (found := mac(value)) is not None:
        return found
    if subtype == address_subtype and (found := address(value)) is not None:
        return found
    if isinstance(value, bytes) and len(value) == 6 and not value.isascii():
        return mac(value)  # an unprintable 6-byte ID is a MAC whatever the subtype says
    return if_text(value) or None


def _first_line(value: str | None) -> str | None:
    lines = [ln.strip() for ln in (value or "").splitlines() if ln.strip()]
    return lines[0][:120] if lines else None


def _bits(value: Value | None) -> int:
    """An LLDP BITS value as an integer whose bit 0 is the first octet's top bit."""
    if not isinstance(value, bytes) or not value:
        return 0
    if re.fullmatch(rb"[0-9 ]+", value):
        return 0  # a textual rendering of BITS (seen in recordings): unknown
    number = int.from_bytes(value[:2].ljust(2, b"\x00"), "big")
    return int(f"{number:016b}"[::-1], 2)


class _Ports:
    """The device's interfaces by ifIndex, with ways to find one from what the LLDP,
    bridge and CDP tables give instead of an ifIndex."""

    def __init__(self, walked: Walked) -> None:
        rows: dict[OID, dict[str, Value]] = {}
        for entry, columns in ((IF_ENTRY, IF_COLUMNS), (IFX_ENTRY, IFX_COLUMNS)):
            for index, cols in table(walked, entry, columns).items():
                rows.setdefault(index, {}).update(cols)
        self.records: dict[int, Record] = {}
        for index, col in rows.items():
            if len(index) != 1:
                continue
            oper = integer(col.get("oper"))
            self.records[index[0]] = {
                "if_index": index[0],
                "name": if_text(col.get("name")) or if_text(col.get("descr")) or str(index[0]),
                "alias": if_text(col.get("alias")) or "",
                "descr": if_text(col.get("descr")) or "",
                "mac": mac(col.get("mac")),
                "oper": OPER_STATES.get(oper, "unknown") if oper is not None else None,
            }
        self._by_name: dict[str, int] = {}
        for if_index, rec in sorted(self.records.items(), reverse=True):
            for key in (rec["descr"], rec["name"]):
                if key:
                    self._by_name[key.lower()] = if_index
        self.base_ports = {
            idx[0]: v
            for idx, col in table(walked, BASE_PORT_IFINDEX, {2: "if_index"}).items()
            if len(idx) == 1 and (v := integer(col.get("if_index"))) is not None
        }

    def named(self, name: str | None) -> int | None:
        return self._by_name.get(name.lower()) if name else None

    def of_bridge_port(self, port: int) -> int | None:
        """ifIndex of a bridge port; agents without dot1dBasePortIfIndex number bridge
        ports as their ifIndexes."""
        if port in self.base_ports:
            return self.base_ports[port]
        return port if not self.base_ports and port in self.records else None

    def name(self, if_index: int | None) -> str:
        rec = self.records.get(if_index) if if_index is not None else None
        return rec["name"] if rec else ("" if if_index is None else str(if_index))


def _local_ports(walked: Walked, ports: _Ports) -> dict[int, tuple[int | None, str]]:
    """lldpLocPortNum -> (ifIndex or None, port name). The number is "an ifIndex or a
    dot1dBasePort" by the MIB; the lldpLocPortId (often the ifName) decides when it names
    an interface, then the bridge-port mapping, then the number taken as an ifIndex."""
    found: dict[int, tuple[int | None, str]] = {}
    for index, col in table(walked, LLDP_LOC_PORT, LLDP_LOC_PORT_COLUMNS).items():
        if len(index) != 1:
            continue
        num = index[0]
        pid = port_id(integer(col.get("id_subtype")), col.get("id"))
        descr = if_text(col.get("descr"))
        if_index = ports.named(pid) or ports.named(descr)
        if if_index is None and num in ports.base_ports:
            if_index = ports.base_ports[num]
        if if_index is None and num in ports.records:
            if_index = num
        found[num] = (if_index, ports.name(if_index) if if_index is not None else (pid or descr or str(num)))
    return found


def _lldp_links(walked: Walked, ports: _Ports) -> list[Record]:
    local = _local_ports(walked, ports)
    managed: dict[OID, str] = {}
    for index in table(walked, LLDP_REM_MAN_ADDR, {3: "if_subtype"}):
        # index: timeMark.localPortNum.remIndex.addrSubtype.addrLen.addr...
        if len(index) >= 6 and index[3] in (1, 2) and index[4] == len(index) - 5:
            ip = ip_from_index(index[5:])
            if ip is not None:
                managed.setdefault(index[:3], ip)
    links: list[Record] = []
    for index, col in sorted(table(walked, LLDP_REM, LLDP_REM_COLUMNS).items()):
        if len(index) != 3:
            continue
        num = index[1]
        if_index, local_name = local.get(num, (None, ""))
        if num not in local:
            if_index = ports.of_bridge_port(num) or (num if num in ports.records else None)
            local_name = ports.name(if_index) if if_index is not None else str(num)
        caps = _bits(col.get("caps"))
        chassis_subtype = integer(col.get("chassis_subtype"))
        links.append({
            "protocol": "lldp",
            "if_index": if_index,
            "port": local_name,
            "remote_chassis": _chassis(chassis_subtype, col.get("chassis")),
            "remote_name": text(col.get("sys_name")) or None,
            "remote_port": port_id(integer(col.get("port_subtype")), col.get("port")),
            "remote_port_descr": if_text(col.get("port_descr")) or None,
            "remote_address": managed.get(index)
            or (address(col.get("chassis")) if chassis_subtype == CHASSIS_ADDRESS else None),
            "remote_platform": _first_line(text(col.get("sys_descr"))),
            "remote_bridge": bool(caps & (1 << LLDP_CAP_BRIDGE | 1 << LLDP_CAP_ROUTER)),
        })  # fmt: skip
    return links


def _cdp_links(walked: Walked, ports: _Ports) -> list[Record]:
    links: list[Record] = []
    for index, col in sorted(table(walked, CDP_CACHE, CDP_COLUMNS).items()):
        if len(index) != 2:
            continue
        device = text(col.get("device_id"))
        caps = col.get("caps")
        flags = int.from_bytes(caps[:4], "big") if isinstance(caps, bytes) and len(caps) == 4 else 0
        links.append({
            "protocol": "cdp",
            "if_index": index[0],
            "port": ports.name(index[0]),
            # CDP device IDs are often "name(serial)" or "name.domain"
            "remote_chassis": mac(col.get("device_id")),
            "remote_name": re.split(r"[(.]", device, maxsplit=1)[0] or device if device else None,
            "remote_port": if_text(col.get("port")) or None,
            "remote_port_descr": None,
            "remote_address": address(col.get("address")),
            "remote_platform": text(col.get("platform")) or None,
            "remote_bridge": bool(flags & (CDP_CAP_BRIDGE | 0x01)),
        })  # fmt: skip
    return links


def _fdb(walked: Walked, ports: _Ports) -> tuple[list[Record], int, int]:
    """Learnt MACs (one row per MAC and VLAN), and the row counts of both tables."""
    rows: dict[tuple[str, int | None], Record] = {}
    plain = table(walked, FDB, {1: "address", 2: "port", 3: "status"})
    vlan_aware = table(walked, QFDB, {2: "port", 3: "status"})
    for index, col in vlan_aware.items():
        _fdb_row(rows, ports, mac_from_index(index), index[0] if len(index) == 7 else None, col)
    for index, col in plain.items():
        found = mac(col.get("address")) or mac_from_index(index)
        if not any(key[0] == found for key in rows):  # the Q-BRIDGE row says more (VLAN)
            _fdb_row(rows, ports, found, None, col)
    return list(rows.values()), len(plain), len(vlan_aware)


def _fdb_row(rows: dict[tuple[str, int | None], Record], ports: _Ports, found: str | None,
             vlan: int | None, col: dict[str, Value]) -> None:  # fmt: skip
    port = integer(col.get("port"))
    if found is None or not port or integer(col.get("status")) in FDB_SKIP:
        return
    if_index = ports.of_bridge_port(port)
    rows[(found, vlan)] = {"mac": found, "vlan": vlan, "if_index": if_index,
                           "port": ports.name(if_index) if if_index is not None else str(port)}


def _arp(walked: Walked) -> tuple[list[Record], int, int]:
    """IP -> MAC rows (ipNetToPhysicalTable wins over the older ipNetToMediaTable)."""
    rows: dict[str, Record] = {}
    media = table(walked, ARP, {2: "mac", 4: "type"})
    physical = table(walked, ARP_PHYS, {4: "mac", 6: "type"})
    for index, col in physical.items():
        # index: ifIndex.addrType.addrLen.addr...
        if len(index) >= 3 and index[2] == len(index) - 3:
            _arp_row(rows, index[0], ip_from_index(index[3:]), col)
    for index, col in media.items():
        if len(index) == 5:
            _arp_row(rows, index[0], ip_from_index(index[1:]), col, replace=False)
    return sorted(rows.values(), key=lambda r: r["ip"]), len(media), len(physical)


def _arp_row(rows: dict[str, Record], if_index: int, ip: str | None, col: dict[str, Value],
             replace: bool = True) -> None:  # fmt: skip
    found = mac(col.get("mac"))
    if ip is None or found is None or integer(col.get("type")) == ARP_INVALID:
        return
    if replace or ip not in rows:
        rows[ip] = {"ip": ip, "mac": found, "if_index": if_index}


def convert(walked: Walked) -> ModuleOutput:
    out = ModuleOutput()
    ports = _Ports(walked)
    lldp = _lldp_links(walked, ports)
    cdp = _cdp_links(walked, ports)
    fdb, fdb_rows, qfdb_rows = _fdb(walked, ports)
    arp, arp_rows, arp_phys_rows = _arp(walked)
    counts = {"lldp": len(lldp), "cdp": len(cdp), "fdb": fdb_rows, "qfdb": qfdb_rows,
              "arp": arp_rows, "arp_phys": arp_phys_rows}  # fmt: skip
    chassis = _chassis(integer(scalar(walked, LLDP_LOC_CHASSIS_SUBTYPE)),
                       scalar(walked, LLDP_LOC_CHASSIS_ID))  # fmt: skip
    facts = {
        "lldp_chassis_id": chassis,
        "lldp_sys_name": text(scalar(walked, LLDP_LOC_SYS_NAME)) or None,
        "bridge_address": mac(scalar(walked, BRIDGE_ADDRESS)),
    }
    out.facts.update({k: v for k, v in facts.items() if v})
    samples = out.samples
    for name in TABLES:
        samples.append(Sample("netmon_topology_table_rows", (("table", name),), float(counts[name])))
    for link in (*lldp, *cdp):
        samples.append(Sample.of(
            "netmon_topology_link_info", 1, protocol=link["protocol"],
            if_index=link["if_index"] if link["if_index"] is not None else "",
            if_name=link["port"], remote_name=link["remote_name"] or "",
            remote_port=link["remote_port"] or "", remote_chassis=link["remote_chassis"] or "",
        ))  # fmt: skip
    per_port: dict[int | None, int] = {}
    for row in fdb:
        per_port[row["if_index"]] = per_port.get(row["if_index"], 0) + 1
    for if_index, count in sorted(per_port.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        samples.append(Sample.of(
            "netmon_topology_fdb_entries", count,
            if_index=if_index if if_index is not None else "", if_name=ports.name(if_index),
        ))  # fmt: skip
    own = sorted({rec["mac"] for rec in ports.records.values() if rec["mac"]})
    if own:  # the device's own MACs: how an end device without an ARP entry is found
        out.facts["macs"] = ", ".join(own)
    if any(counts.values()) or own:
        out.records["tables"] = [{"table": name, "rows": counts[name]} for name in TABLES]
    for key, rows in (("links", [*lldp, *cdp]), ("fdb", fdb), ("arp", arp)):
        if rows:
            out.records[key] = rows
    if ports.records and any(counts.values()):
        out.records["ports"] = [ports.records[i] for i in sorted(ports.records)]
    return out


MODULE = SnmpModule(
    name="topology",
    description="LLDP/CDP neighbours, bridge forwarding tables and ARP: what is plugged in where",
    walks=(
        *(LLDP_LOC_PORT + (c,) for c in LLDP_LOC_PORT_COLUMNS),
        *(LLDP_REM + (c,) for c in LLDP_REM_COLUMNS),
        LLDP_REM_MAN_ADDR + (3,),
        *(CDP_CACHE + (c,) for c in CDP_COLUMNS),
        BASE_PORT_IFINDEX + (2,),
        FDB + (1,), FDB + (2,), FDB + (3,), QFDB + (2,), QFDB + (3,),
        ARP + (2,), ARP + (4,), ARP_PHYS + (4,), ARP_PHYS + (6,),
        *(IF_ENTRY + (c,) for c in IF_COLUMNS), *(IFX_ENTRY + (c,) for c in IFX_COLUMNS),
    ),
    convert=convert,
    gets=tuple(o + (0,) for o in (LLDP_LOC_CHASSIS_SUBTYPE, LLDP_LOC_CHASSIS_ID,
                                  LLDP_LOC_SYS_NAME, BRIDGE_ADDRESS)),
)
