"""SNMPv2-MIB system group: who the device is and how long it has been up."""

from __future__ import annotations

import re

from probes.result import Sample
from probes.snmp.modules.base import ModuleOutput, SnmpModule, integer, scalar, text
from probes.snmp.types import Walked, oid

SYS_DESCR = oid("1.3.6.1.2.1.1.1.0")
SYS_OBJECT_ID = oid("1.3.6.1.2.1.1.2.0")
SYS_UPTIME = oid("1.3.6.1.2.1.1.3.0")
SYS_CONTACT = oid("1.3.6.1.2.1.1.4.0")
SYS_NAME = oid("1.3.6.1.2.1.1.5.0")
SYS_LOCATION = oid("1.3.6.1.2.1.1.6.0")
HR_SYSTEM_UPTIME = oid("1.3.6.1.2.1.25.1.1.0")

#: Longest sys_descr label value; the full text stays in the facts.
LABEL_MAX = 120


def one_line(value: str | None, limit: int = LABEL_MAX) -> str:
    """First non-empty line, whitespace collapsed, cut to ``limit`` characters (for labels)."""
    if not value:
        return ""
    line = next((ln for ln in value.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def multi_line(value: str | None) -> str | None:
    """Device text with CRLF/CR line ends normalised and trailing spaces dropped per line."""
    if value is None:
        return None
    return "\n".join(ln.rstrip() for ln in re.split(r"\r\n|\r|\n", value)).strip()


def human_duration(seconds: float) -> str:
    """``2220509.0`` -> ``"25d 16h 48m"``; shown in facts next to the raw metric."""
    minutes = int(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h {mins:02d}m" if days else f"{hours}h {mins:02d}m"


def convert(walked: Walked) -> ModuleOutput:
    out = ModuleOutput()
    descr = multi_line(text(scalar(walked, SYS_DESCR)))
    object_id = text(scalar(walked, SYS_OBJECT_ID))
    name = text(scalar(walked, SYS_NAME))
    location = text(scalar(walked, SYS_LOCATION))
    contact = text(scalar(walked, SYS_CONTACT))
    strings = {
        "sys_descr": descr,
        "sys_object_id": object_id,
        "sys_name": name,
        "location": location,
        "contact": contact,
    }
    out.facts.update({k: v for k, v in strings.items() if v is not None})
    if any(v is not None for v in strings.values()):
        labels = {
            k: (one_line(v) if k == "sys_descr" else " ".join((v or "").split()))
            for k, v in strings.items()
        }
        out.samples.append(Sample.of("netmon_device_info", 1, **labels))
    for source, at in (("sysUpTime", SYS_UPTIME), ("hrSystemUptime", HR_SYSTEM_UPTIME)):
        ticks = integer(scalar(walked, at))
        if ticks is not None and ticks >= 0:
            seconds = ticks / 100
            out.samples.append(Sample.of("netmon_device_uptime_seconds", seconds, source=source))
            out.facts["uptime" if source == "sysUpTime" else "host_uptime"] = human_duration(
                seconds
            )
    return out


MODULE = SnmpModule(
    name="system",
    description="Device identity (sysDescr, sysName, location, contact) and uptime",
    walks=(),
    convert=convert,
    gets=(
        SYS_DESCR,
        SYS_OBJECT_ID,
        SYS_UPTIME,
        SYS_CONTACT,
        SYS_NAME,
        SYS_LOCATION,
        HR_SYSTEM_UPTIME,
    ),
)
