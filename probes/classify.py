"""Guess what a discovered device is: printer, switch, host, UPS, access point or other.

Pure functions, no I/O. :func:`facts_from_walked` reduces what discovery read over SNMP
(a few scalars, the first row of some MIBs, a few small tables) to :class:`DeviceFacts`;
:func:`classify` weighs the evidence (sysObjectID enterprise number, sysDescr patterns,
Printer-MIB / BRIDGE-MIB / UPS-MIB / APC PowerNet / HOST-RESOURCES / 802.11 MIB presence,
the interface count, open TCP ports) and says which class won, how sure it is (0-1) and
why, in words an IT person can check ("Printer-MIB present; HP enterprise 11; ...").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from probes.snmp.types import OID, Value, Walked, oid

DeviceClass = Literal["printer", "switch", "host", "ups", "access_point", "other"]
SnmpState = Literal["ok", "failed", "not_tried"]

SYS_DESCR, SYS_OBJECT_ID, SYS_NAME = oid("1.3.6.1.2.1.1.1.0"), oid("1.3.6.1.2.1.1.2.0"), oid("1.3.6.1.2.1.1.5.0")
UPS_IDENT_MODEL = oid("1.3.6.1.2.1.33.1.1.2.0")
APC_MODEL, APC_SERIAL = oid("1.3.6.1.4.1.318.1.1.1.1.1.1.0"), oid("1.3.6.1.4.1.318.1.1.1.1.2.3.0")
PRT_SERIAL, PRT_NAME = oid("1.3.6.1.2.1.43.5.1.1.17.1"), oid("1.3.6.1.2.1.43.5.1.1.16.1")
#: Scalars discovery GETs in one request.
SCALARS: tuple[OID, ...] = (SYS_DESCR, SYS_OBJECT_ID, SYS_NAME, UPS_IDENT_MODEL, APC_MODEL,
                            APC_SERIAL, PRT_SERIAL, PRT_NAME)  # fmt: skip
#: MIBs whose mere presence is evidence: one row is enough (name -> base OID).
PRESENCE: dict[str, OID] = {
    "Printer-MIB": oid("1.3.6.1.2.1.43"),
    "BRIDGE-MIB": oid("1.3.6.1.2.1.17"),
    "UPS-MIB": oid("1.3.6.1.2.1.33"),
    "APC PowerNet UPS": oid("1.3.6.1.4.1.318.1.1.1"),
    "hrStorage": oid("1.3.6.1.2.1.25.2.3"),
    "hrProcessorLoad": oid("1.3.6.1.2.1.25.3.3"),
    "IEEE 802.11 MIB": oid("1.2.840.10036"),
}
HR_DEVICE_TYPE, HR_DEVICE_DESCR = oid("1.3.6.1.2.1.25.3.2.1.2"), oid("1.3.6.1.2.1.25.3.2.1.3")
IF_DESCR, IF_TYPE, IF_PHYS = oid("1.3.6.1.2.1.2.2.1.2"), oid("1.3.6.1.2.1.2.2.1.3"), oid("1.3.6.1.2.1.2.2.1.6")
ENT_SERIAL = oid("1.3.6.1.2.1.47.1.1.1.1.11")
#: Small tables discovery walks whole (base -> most rows it reads).
TABLES: dict[OID, int] = {HR_DEVICE_TYPE: 200, HR_DEVICE_DESCR: 200, IF_DESCR: 2000,
                          IF_TYPE: 2000, IF_PHYS: 2000, ENT_SERIAL: 20}  # fmt: skip

_HR_TYPES = {"1": "other", "3": "processor", "4": "network", "5": "printer", "6": "disk_storage"}
_ETHERNET_IFTYPES = {6, 62, 69, 117}  # ethernetCsmacd, fastEther, fastEtherFX, gigabitEthernet

#: IANA private enterprise numbers of gear schools run -> vendor name.
ENTERPRISES: dict[int, str] = {
    9: "Cisco", 11: "HP", 63: "Apple", 171: "D-Link", 207: "Allied Telesis", 253: "Xerox",
    311: "Microsoft", 318: "APC", 367: "Ricoh", 534: "Eaton", 641: "Lexmark", 674: "Dell",
    890: "Zyxel", 935: "Phoenixtec", 1248: "Epson", 1347: "Kyocera", 1602: "Canon",
    1916: "Extreme Networks", 2011: "Huawei", 2385: "Sharp", 2435: "Brother", 2636: "Juniper",
    3808: "CyberPower", 4413: "Ubiquiti", 4526: "Netgear", 6574: "Synology", 8072: "net-snmp",
    10642: "Zebra", 11863: "TP-Link", 12356: "Fortinet", 14823: "Aruba", 14988: "MikroTik",
    18334: "Konica Minolta", 24681: "QNAP", 25053: "Ruckus", 29671: "Cisco Meraki",
    41112: "Ubiquiti", 47196: "HPE Aruba",
}
#: Enterprise -> (class, weight): vendors that make (almost) only one kind of device.
_ENTERPRISE_CLASS: dict[int, tuple[DeviceClass, float]] = {
    253: ("printer", 0.35), 367: ("printer", 0.35), 641: ("printer", 0.35),
    1248: ("printer", 0.3), 1347: ("printer", 0.35), 1602: ("printer", 0.25),
    2385: ("printer", 0.35), 2435: ("printer", 0.35), 18334: ("printer", 0.35),
    10642: ("printer", 0.3), 318: ("ups", 0.3), 534: ("ups", 0.3), 935: ("ups", 0.35),
    3808: ("ups", 0.35), 171: ("switch", 0.25), 207: ("switch", 0.25), 890: ("switch", 0.2),
    1916: ("switch", 0.3), 2636: ("switch", 0.25), 4413: ("switch", 0.25),
    4526: ("switch", 0.25), 11863: ("switch", 0.2), 47196: ("switch", 0.3),
    14988: ("switch", 0.15), 25053: ("access_point", 0.35), 14823: ("access_point", 0.2),
    6574: ("host", 0.3), 24681: ("host", 0.3), 311: ("host", 0.3), 63: ("host", 0.3),
}  # fmt: skip
#: sysObjectID prefixes more specific than the enterprise (prefix -> class, what it is).
_OBJECT_ID_CLASS: tuple[tuple[str, DeviceClass, float, str], ...] = (
    ("1.3.6.1.4.1.11.2.3.9.", "printer", 0.35, "HP JetDirect printer sysObjectID"),
    ("1.3.6.1.4.1.11.2.3.7.", "switch", 0.35, "HP ProCurve switch sysObjectID"),
    ("1.3.6.1.4.1.9.1.", "switch", 0.15, "Cisco product sysObjectID"),
    ("1.3.6.1.4.1.9.6.1.", "switch", 0.3, "Cisco Small Business sysObjectID"),
)
#: net-snmp's sysObjectID per OS (NET-SNMP-TC netSnmpAgentOIDs).
_NET_SNMP_OS = {"10": "linux", "13": "windows", "16": "macos", "8": "freebsd", "12": "openbsd",
                "7": "netbsd", "3": "solaris"}  # fmt: skip

_PRINTER_DESCR = re.compile(
    r"laserjet|officejet|deskjet|pagewide|designjet|jetdirect|bizhub|aficio|imagerunner|"
    r"\blbp\d|\bmfp?\b|mfc-|dcp-|\bhl-\d|\bnc-\d+h|ecosys|taskalfa|workcentre|versalink|"
    r"altalink|phaser|\bmx-\d|\bmp c?\d|printer|\bprint server|workforce|ecotank|zebra",
    re.IGNORECASE,
)
_SWITCH_DESCR = re.compile(
    r"switch|\bswch\b|procurve|catalyst|\bios\b|nx-os|aos-cx|arubaos-cx|junos|edgeswitch|"
    r"\bsg\d{3}|\bsf\d{3}|\bdgs-|\bdes-|\bgs\d{3}|\bjgs|routeros|smartpro|comware|\bicx\d",
    re.IGNORECASE,
)
_AP_DESCR = re.compile(
    r"access point|\buap\b|\bu6-|\buap-|aironet|\bwap\d|\beap\d|ruckus|unleashed|"
    r"\bmr\d{2}|\binstant\b|\biap-|wireless",
    re.IGNORECASE,
)
_UPS_DESCR = re.compile(r"\bups\b|smart-ups|back-ups|symmetra|powerware|eaton|ups network", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What discovery learnt about one address."""

    address: str
    snmp: SnmpState = "not_tried"
    sys_descr: str | None = None
    sys_object_id: str | None = None
    sys_name: str | None = None
    #: Names from :data:`PRESENCE` that the agent has.
    mibs: frozenset[str] = frozenset()
    #: hrDeviceType names (printer, processor, network, ...), one per device row.
    hr_device_types: tuple[str, ...] = ()
    interfaces: int = 0
    ethernet_ports: int = 0
    macs: tuple[str, ...] = ()
    serial: str | None = None
    #: A model name from a dedicated object (UPS ident, prtGeneralPrinterName).
    model_hint: str | None = None
    #: hrDeviceDescr of the printer device (on a PC this is a print queue, not a model).
    printer_descr: str | None = None
    #: Open TCP ports; None when ports were not checked.
    open_ports: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    device_class: DeviceClass
    confidence: float
    reason: str
    os: str | None = None
    vendor: str | None = None
    model: str | None = None

    @property
    def label(self) -> str:
        """``host (windows)``, ``printer``, ..."""
        return f"{self.device_class} ({self.os})" if self.os else self.device_class


# --- facts from SNMP data ---------------------------------------------------------------


def _text(value: Value | None) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _under(walked: Walked, base: OID) -> list[tuple[OID, Value]]:
    n = len(base)
    return sorted((k, v) for k, v in walked.items() if k[:n] == base)


def _mac(value: Value) -> str | None:
    if isinstance(value, bytes) and len(value) == 6 and len(set(value)) > 1:
        return ":".join(f"{b:02x}" for b in value)
    return None


def _usable_name(value: str | None) -> str | None:
    """sysName unless it is empty or an anonymised placeholder such as ``<private>``."""
    if not value or value.startswith("<") or value.lower() in ("localhost", "(none)"):
        return None
    return value


def facts_from_walked(address: str, walked: Walked, open_ports: Iterable[int] | None = None) -> DeviceFacts:
    """Reduce SNMP data (any superset of what discovery reads) to :class:`DeviceFacts`."""
    types = tuple(
        _HR_TYPES.get(str(v).rsplit(".", 1)[-1], "other") if str(v).startswith("1.3.6.1.2.1.25.3.1.")
        else "vendor" for _, v in _under(walked, HR_DEVICE_TYPE)
    )  # fmt: skip
    descrs = {k[-1]: _text(v) for k, v in _under(walked, HR_DEVICE_DESCR)}
    type_by_index = {k[-1]: str(v) for k, v in _under(walked, HR_DEVICE_TYPE)}
    printer_descr = next(
        (descrs.get(i) for i, t in type_by_index.items() if t == "1.3.6.1.2.1.25.3.1.5"), None
    )
    if_indexes = {k[-1] for k, _ in _under(walked, IF_DESCR)} | {k[-1] for k, _ in _under(walked, IF_TYPE)}
    ethernet = sum(1 for _, v in _under(walked, IF_TYPE) if isinstance(v, int) and v in _ETHERNET_IFTYPES)
    macs = tuple(dict.fromkeys(m for _, v in _under(walked, IF_PHYS) if (m := _mac(v))))
    serial = next(
        (s for s in (_text(walked.get(PRT_SERIAL)), _text(walked.get(APC_SERIAL)),
                     *(_text(v) for _, v in _under(walked, ENT_SERIAL))) if s),
        None,
    )  # fmt: skip
    sn = re.search(r"\bSN:\s*([A-Za-z0-9]{5,})", _text(walked.get(SYS_DESCR)) or "")
    if serial is None and sn:
        serial = sn.group(1)
    model_hint = next(
        (m for m in (_text(walked.get(APC_MODEL)), _text(walked.get(UPS_IDENT_MODEL)),
                     _text(walked.get(PRT_NAME))) if m and not m.startswith("Generic")),
        None,
    )  # fmt: skip
    object_id = walked.get(SYS_OBJECT_ID)
    return DeviceFacts(
        address=address,
        snmp="ok",
        sys_descr=_text(walked.get(SYS_DESCR)),
        sys_object_id=object_id if isinstance(object_id, str) else None,
        sys_name=_usable_name(_text(walked.get(SYS_NAME))),
        mibs=frozenset(name for name, base in PRESENCE.items() if _under(walked, base)),
        hr_device_types=types,
        interfaces=len(if_indexes),
        ethernet_ports=ethernet,
        macs=macs,
        serial=serial,
        model_hint=model_hint,
        printer_descr=printer_descr if printer_descr and not printer_descr.startswith("Generic") else None,
        open_ports=frozenset(open_ports) if open_ports is not None else None,
    )


# --- classification ---------------------------------------------------------------------


@dataclass
class _Evidence:
    scores: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def add(self, cls: str, weight: float, why: str) -> None:
        self.scores[cls] = self.scores.get(cls, 0.0) + weight
        self.reasons.setdefault(cls, []).append(why)


def enterprise_of(sys_object_id: str | None) -> int | None:
    """``1.3.6.1.4.1.11.2.3.9.1`` -> 11."""
    prefix = "1.3.6.1.4.1."
    if sys_object_id and sys_object_id.startswith(prefix):
        head = sys_object_id[len(prefix):].split(".", 1)[0]
        return int(head) if head.isdigit() else None
    return None


def _short(text: str, limit: int = 40) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def host_os(facts: DeviceFacts) -> str | None:
    """windows, linux, macos, freebsd ... from sysDescr and net-snmp's sysObjectID."""
    descr = facts.sys_descr or ""
    if re.search(r"windows", descr, re.IGNORECASE):
        return "windows"
    if re.match(r"darwin", descr, re.IGNORECASE) or "macos" in descr.lower():
        return "macos"
    if re.match(r"linux", descr, re.IGNORECASE):
        return "linux"
    oid_text = facts.sys_object_id or ""
    if oid_text.startswith("1.3.6.1.4.1.8072.3.2."):
        return _NET_SNMP_OS.get(oid_text.split(".")[-1])
    return {311: "windows", 63: "macos"}.get(enterprise_of(oid_text) or 0)


def _snmp_evidence(facts: DeviceFacts, ev: _Evidence) -> None:
    descr = facts.sys_descr or ""
    enterprise = enterprise_of(facts.sys_object_id)
    vendor = ENTERPRISES.get(enterprise or -1)
    mibs = facts.mibs
    if "Printer-MIB" in mibs:
        ev.add("printer", 0.6, "Printer-MIB present")
    if "printer" in facts.hr_device_types and "hrProcessorLoad" not in mibs:
        ev.add("printer", 0.25, "HOST-RESOURCES lists a printer device")
    if "UPS-MIB" in mibs:
        ev.add("ups", 0.7, "UPS-MIB present")
    if "APC PowerNet UPS" in mibs:
        ev.add("ups", 0.7, "APC PowerNet UPS objects present")
    if "IEEE 802.11 MIB" in mibs:
        ev.add("access_point", 0.6, "IEEE 802.11 MIB present")
    if "BRIDGE-MIB" in mibs:
        ev.add("switch", 0.35, "BRIDGE-MIB present")
    if "hrProcessorLoad" in mibs:
        ev.add("host", 0.35, "HOST-RESOURCES processor table present")
        if "hrStorage" in mibs:
            ev.add("host", 0.1, "hrStorage present")
    has_host_mib = bool({"hrProcessorLoad", "hrStorage"} & mibs)
    if facts.ethernet_ports >= 8 and not has_host_mib:
        ev.add("switch", 0.3, f"{facts.ethernet_ports} Ethernet ports")
    elif facts.interfaces >= 8 and not has_host_mib:
        ev.add("switch", 0.2, f"{facts.interfaces} interfaces")
    if enterprise is not None and enterprise in _ENTERPRISE_CLASS:
        cls, weight = _ENTERPRISE_CLASS[enterprise]
        ev.add(cls, weight, f"{vendor} enterprise {enterprise}")
    for prefix, cls, weight, what in _OBJECT_ID_CLASS:
        if (facts.sys_object_id or "").startswith(prefix):
            ev.add(cls, weight, what)
            break
    quoted = f"sysDescr '{_short(descr)}'"
    if _PRINTER_DESCR.search(descr):
        ev.add("printer", 0.3, quoted)
    if _UPS_DESCR.search(descr):
        ev.add("ups", 0.3, quoted)
    if _AP_DESCR.search(descr):
        ev.add("access_point", 0.35, quoted)
    if _SWITCH_DESCR.search(descr):
        ev.add("switch", 0.3, quoted)
    os_name = host_os(facts)
    if os_name == "windows":
        ev.add("host", 0.45, f"{quoted} (Windows)" if "windows" in descr.lower() else "Windows sysObjectID")
    elif os_name in ("linux", "macos", "freebsd", "openbsd", "netbsd", "solaris"):
        # Switches and APs run Linux too: a weaker hint, and only at the start of sysDescr.
        ev.add("host", 0.25, f"{quoted} ({os_name})" if descr else f"net-snmp on {os_name}")


def _port_evidence(ports: frozenset[int], ev: _Evidence) -> None:
    if 9100 in ports:
        ev.add("printer", 0.3, "TCP 9100 (raw printing) open")
    if 631 in ports:
        ev.add("printer", 0.1, "TCP 631 (IPP) open")
    if 515 in ports:
        ev.add("printer", 0.1, "TCP 515 (LPD) open")
    if 3389 in ports:
        ev.add("host", 0.35, "TCP 3389 (RDP) open")
    elif 445 in ports:
        ev.add("host", 0.2, "TCP 445 (SMB) open")
    if 22 in ports and 9100 not in ports:
        ev.add("host", 0.2, "TCP 22 (SSH) open")


def _ports_os(ports: frozenset[int] | None) -> str | None:
    if not ports:
        return None
    if 3389 in ports or 445 in ports:
        return "windows"
    if 22 in ports:
        return "linux"
    return None


def _without_vendor(text: str, vendor: str | None) -> str:
    for word in filter(None, [vendor, *(vendor or "").split()]):
        if text.lower().startswith(word.lower() + " "):
            return text[len(word) + 1 :].strip()
    return text


def model_of(facts: DeviceFacts, vendor: str | None, device_class: str) -> str | None:
    """A model name from a dedicated object, else from sysDescr's first part."""
    hint = facts.model_hint or (facts.printer_descr if device_class == "printer" else None)
    if hint:
        return _short(_without_vendor(hint, vendor), 60)
    descr = facts.sys_descr or ""
    if not descr:
        return None
    if m := re.search(r"PID:([^,]+)", descr):
        return m.group(1).strip()
    if m := re.match(r"Cisco IOS Software, (\S+) Software", descr):
        return m.group(1)
    if m := re.search(r"Windows Version [\d.]+ \(Build (\d+)", descr):
        return f"Windows (build {m.group(1)})"
    if m := re.match(r"(Linux|Darwin) \S+ (\S+)", descr):
        return f"{m.group(1)} {m.group(2)}"
    first = re.split(r",|\s/\s|\n", descr, maxsplit=1)[0].strip()
    return _short(_without_vendor(first, vendor), 60) or None


def classify(facts: DeviceFacts) -> Classification:
    """The most likely class with a 0-1 confidence and the evidence that decided it."""
    ev = _Evidence()
    if facts.snmp == "ok":
        _snmp_evidence(facts, ev)
    if facts.open_ports:
        _port_evidence(facts.open_ports, ev)
    enterprise = enterprise_of(facts.sys_object_id)
    vendor = ENTERPRISES.get(enterprise or -1)
    if vendor == "net-snmp":
        vendor = None
    notes = []
    if facts.snmp == "not_tried":
        notes.append("SNMP not tried (no credentials)")
    elif facts.snmp == "failed":
        notes.append("no SNMP answer")
    if facts.open_ports is not None and not facts.open_ports and facts.snmp != "ok":
        notes.append("no checked TCP port open")
    if not ev.scores:
        what = "answers ping" if facts.snmp != "ok" else "answers SNMP but nothing identifies it"
        confidence = 0.1 if facts.snmp != "ok" else 0.3
        reason = "; ".join([what, *notes])
        return Classification("other", confidence, reason, _ports_os(facts.open_ports), vendor,
                              model_of(facts, vendor, "other") if facts.snmp == "ok" else None)  # fmt: skip
    ranked = sorted(ev.scores.items(), key=lambda kv: kv[1], reverse=True)
    (winner, score), runner_up = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
    confidence = min(0.99, score) * score / (score + runner_up)
    if facts.snmp != "ok":
        confidence = min(confidence, 0.5)  # ports alone are a hint, not an identification
    reasons = ev.reasons[winner]
    if facts.snmp == "ok" and vendor and not any(vendor in r for r in reasons):
        reasons = [*reasons, f"{vendor} enterprise {enterprise}"]
    os_name = None
    if winner == "host":
        os_name = host_os(facts) if facts.snmp == "ok" else _ports_os(facts.open_ports)
    return Classification(
        winner,  # type: ignore[arg-type]
        round(confidence, 2),
        "; ".join([*reasons, *notes]),
        os_name,
        vendor,
        model_of(facts, vendor, winner) if facts.snmp == "ok" else None,
    )
