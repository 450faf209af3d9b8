"""IF-MIB: per-interface state, speed, traffic and error counters.

The index comes from the OID suffix (many agents omit ifIndex). ifXTable's 64-bit
counters and ifHighSpeed are preferred; ifTable's 32-bit columns are the fallback.
A column the device lacks yields no sample for it.
"""

from __future__ import annotations

import re

from probes.result import Record, Sample
from probes.snmp.modules.base import ModuleOutput, SnmpModule, index_label, integer, table, text
from probes.snmp.types import OID, Value, Walked, oid

IF_ENTRY = oid("1.3.6.1.2.1.2.2.1")
IFX_ENTRY = oid("1.3.6.1.2.1.31.1.1.1")

IF_COLUMNS = {
    2: "descr", 3: "type", 5: "speed", 7: "admin", 8: "oper", 10: "in_octets",
    13: "in_discards", 14: "in_errors", 16: "out_octets", 19: "out_discards", 20: "out_errors",
}  # fmt: skip
IFX_COLUMNS = {1: "name", 6: "hc_in_octets", 10: "hc_out_octets", 15: "high_speed", 18: "alias"}

OPER_STATES = {
    1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "not_present",
    7: "lower_layer_down",
}  # fmt: skip
ADMIN_STATES = {1: "up", 2: "down", 3: "testing"}

#: Common IANAifType numbers; others are shown as their number.
IF_TYPES = {
    1: "other", 6: "ethernetCsmacd", 7: "iso88023Csmacd", 23: "ppp", 24: "softwareLoopback",
    28: "slip", 32: "frameRelay", 37: "atm", 53: "propVirtual", 54: "propMultiplexor",
    62: "fastEther", 69: "fastEtherFX", 71: "ieee80211", 94: "adsl", 117: "gigabitEthernet",
    131: "tunnel", 135: "l2vlan", 136: "l3ipvlan", 161: "ieee8023adLag", 166: "mpls",
    209: "bridge",
}  # fmt: skip

#: ifSpeed's ceiling: "faster than a Gauge32 can say, see ifHighSpeed".
IF_SPEED_MAX = 4294967295

_HEX_LINE = re.compile(r"^(?:[0-9A-Fa-f]{2} )*[0-9A-Fa-f]{2} ?$")


def if_text(value: Value | None) -> str | None:
    """Interface strings as text. Repairs a known recording artifact where the tail of a
    string arrives as net-snmp hex-dump lines (``"Software Loopbac\\n6B 20 49 ..."``)."""
    if isinstance(value, bytes):
        value = value.split(b"\x00", 1)[0]
        lines = value.split(b"\n")
        if len(lines) > 1 and all(
            _HEX_LINE.match(ln.decode("ascii", "replace")) for ln in lines[1:] if ln
        ):
            tail = bytes.fromhex("".join(ln.decode("ascii") for ln in lines[1:]).replace(" ", ""))
            value = lines[0] + tail
    return text(value)


def if_type_name(number: int | None) -> str | None:
    if number is None:
        return None
    return IF_TYPES.get(number, str(number))


def speed_bps(speed: int | None, high_speed: int | None) -> int | None:
    """Bits per second from ifHighSpeed (Mbps), else ifSpeed; ``None`` when unknown.

    ifHighSpeed wins, except when it rounds a sub-Mbps link down to 0 while ifSpeed
    knows better. ifSpeed = 2**32-1 alone only says "at least 4.3 Gbps": unknown.
    """
    if high_speed is not None and (high_speed > 0 or speed in (None, 0, IF_SPEED_MAX)):
        return high_speed * 1_000_000
    if speed is not None and speed != IF_SPEED_MAX:
        return speed
    return None


def _row(index: OID, col: dict[str, Value]) -> Record:
    descr = if_text(col.get("descr"))
    name = if_text(col.get("name")) or descr
    hc_in, hc_out = integer(col.get("hc_in_octets")), integer(col.get("hc_out_octets"))
    return {
        "index": index_label(index),
        "name": name,
        "alias": if_text(col.get("alias")),
        "descr": descr,
        "type": if_type_name(integer(col.get("type"))),
        "admin": ADMIN_STATES.get(integer(col.get("admin")) or 0, "unknown")
        if "admin" in col
        else None,
        "oper": OPER_STATES.get(integer(col.get("oper")) or 0, "unknown")
        if "oper" in col
        else None,
        "speed_bps": speed_bps(integer(col.get("speed")), integer(col.get("high_speed"))),
        "in_octets": hc_in if hc_in is not None else integer(col.get("in_octets")),
        "out_octets": hc_out if hc_out is not None else integer(col.get("out_octets")),
        "in_errors": integer(col.get("in_errors")),
        "out_errors": integer(col.get("out_errors")),
        "in_discards": integer(col.get("in_discards")),
        "out_discards": integer(col.get("out_discards")),
    }


COUNTERS = {
    "in_octets": "netmon_interface_receive_bytes_total",
    "out_octets": "netmon_interface_transmit_bytes_total",
    "in_errors": "netmon_interface_receive_errors_total",
    "out_errors": "netmon_interface_transmit_errors_total",
    "in_discards": "netmon_interface_receive_discards_total",
    "out_discards": "netmon_interface_transmit_discards_total",
}


def convert(walked: Walked) -> ModuleOutput:
    out = ModuleOutput()
    rows: dict[OID, dict[str, Value]] = {}
    for entry, columns in ((IF_ENTRY, IF_COLUMNS), (IFX_ENTRY, IFX_COLUMNS)):
        for index, cols in table(walked, entry, columns).items():
            rows.setdefault(index, {}).update(cols)
    records: list[Record] = []
    samples = out.samples
    states = tuple(OPER_STATES.values())
    for index in sorted(rows):
        rec = _row(index, rows[index])
        records.append(rec)
        # Samples built directly (not Sample.of): this loop runs for every port of
        # every switch, and the label tuple is shared by all of a port's samples.
        labels = (
            ("if_index", rec["index"]),
            ("if_name", rec["name"] or ""),
            ("if_alias", rec["alias"] or ""),
            ("if_descr", rec["descr"] or ""),
        )
        samples.append(Sample("netmon_interface_info", (*labels, ("if_type", rec["type"] or "")),
                              1.0))
        oper = rec["oper"]
        if oper is not None:
            samples.append(Sample("netmon_interface_oper_up", labels, float(oper == "up")))
            samples += [
                Sample("netmon_interface_oper_status", (*labels, ("state", state)),
                       float(oper == state))
                for state in states
            ]
        if rec["admin"] is not None:
            samples.append(Sample("netmon_interface_admin_up", labels, float(rec["admin"] == "up")))
        if rec["speed_bps"] is not None:
            samples.append(Sample("netmon_interface_speed_bytes", labels, rec["speed_bps"] / 8))
        for key, metric in COUNTERS.items():
            value = rec[key]
            if value is not None:
                samples.append(Sample(metric, labels, float(value)))
    if records:
        out.records["interfaces"] = records
    return out


MODULE = SnmpModule(
    name="interfaces",
    description="IF-MIB interfaces: status, speed, traffic, errors and discards",
    walks=tuple(IF_ENTRY + (c,) for c in IF_COLUMNS) + tuple(IFX_ENTRY + (c,) for c in IFX_COLUMNS),
    convert=convert,
)
