"""HOST-RESOURCES-MIB: processor load, storage (memory and disks), processes, users."""

from __future__ import annotations

import re

from probes.result import Record, Sample
from probes.snmp.modules.base import (
    ModuleOutput,
    SnmpModule,
    index_label,
    integer,
    scalar,
    table,
    text,
)
from probes.snmp.types import Value, Walked, oid

HR_SYSTEM_NUM_USERS = oid("1.3.6.1.2.1.25.1.5.0")
HR_SYSTEM_PROCESSES = oid("1.3.6.1.2.1.25.1.6.0")
HR_STORAGE_ENTRY = oid("1.3.6.1.2.1.25.2.3.1")
HR_PROCESSOR_LOAD = oid("1.3.6.1.2.1.25.3.3.1.2")
HR_PROCESSOR_ENTRY = HR_PROCESSOR_LOAD[:-1]

STORAGE_COLUMNS = {2: "type", 3: "descr", 4: "units", 5: "size", 6: "used"}

#: hrStorageTypes (1.3.6.1.2.1.25.2.1.N) -> the kind shown to people and in labels.
STORAGE_KINDS = {
    1: "other", 2: "ram", 3: "virtual_memory", 4: "fixed_disk", 5: "removable_disk",
    6: "removable_disk", 7: "cd_rom", 8: "ram_disk", 9: "flash", 10: "network_disk",
}  # fmt: skip
_STORAGE_TYPES_PREFIX = "1.3.6.1.2.1.25.2.1."

# Windows: "C:\ Label:Data  Serial Number 10f82425" -> "C:\ (Data)"
_WINDOWS_VOLUME = re.compile(r"^([A-Za-z]:\\)\s+Label:(.*?)\s+Serial Number\s+\S+$")


def storage_kind(type_oid: Value | None) -> str:
    t = text(type_oid) or ""
    if t.startswith(_STORAGE_TYPES_PREFIX) and t[len(_STORAGE_TYPES_PREFIX) :].isdigit():
        return STORAGE_KINDS.get(int(t[len(_STORAGE_TYPES_PREFIX) :]), "other")
    return "other"


def storage_name(descr: str | None) -> str:
    """A short storage name for labels: Windows volume serial numbers dropped."""
    if not descr:
        return ""
    if m := _WINDOWS_VOLUME.match(descr):
        label = m.group(2).strip()
        return f"{m.group(1)} ({label})" if label else m.group(1)
    return descr


def unsigned32(value: int | None) -> int | None:
    """Undo Integer32 wraparound: agents that report large sizes as negative numbers."""
    if value is None:
        return None
    return value + 2**32 if value < 0 else value


def convert(walked: Walked) -> ModuleOutput:
    out = ModuleOutput()
    cpus: list[Record] = []
    for index, cols in sorted(table(walked, HR_PROCESSOR_ENTRY, {2: "load"}).items()):
        load = integer(cols.get("load"))
        if load is None:
            continue
        cpus.append({"index": index_label(index), "load_ratio": load / 100})
        out.samples.append(
            Sample.of("netmon_host_cpu_load_ratio", load / 100, cpu=index_label(index))
        )
    if cpus:
        out.records["cpus"] = cpus
        out.facts["cpu_count"] = str(len(cpus))

    storage: list[Record] = []
    for index, cols in sorted(table(walked, HR_STORAGE_ENTRY, STORAGE_COLUMNS).items()):
        descr = text(cols.get("descr"))
        kind = storage_kind(cols.get("type"))
        units = integer(cols.get("units"))
        size, used = unsigned32(integer(cols.get("size"))), unsigned32(integer(cols.get("used")))
        if units is None or units <= 0:  # e.g. an empty CD-ROM drive: sizes mean nothing
            size = used = None
        size_bytes = size * units if size is not None and units else None
        used_bytes = used * units if used is not None and units else None
        ratio = used_bytes / size_bytes if size_bytes and used_bytes is not None else None
        storage.append({
            "index": index_label(index), "description": descr, "kind": kind,
            "size_bytes": size_bytes, "used_bytes": used_bytes, "used_ratio": ratio,
        })  # fmt: skip
        labels = {"index": index_label(index), "storage": storage_name(descr), "kind": kind}
        if size_bytes is not None:
            out.samples.append(Sample.of("netmon_host_storage_size_bytes", size_bytes, **labels))
        if used_bytes is not None:
            out.samples.append(Sample.of("netmon_host_storage_used_bytes", used_bytes, **labels))
    if storage:
        out.records["storage"] = storage

    for metric, at in (("netmon_host_processes", HR_SYSTEM_PROCESSES),
                       ("netmon_host_users", HR_SYSTEM_NUM_USERS)):  # fmt: skip
        value = integer(scalar(walked, at))
        if value is not None:
            out.samples.append(Sample.of(metric, value))
    return out


MODULE = SnmpModule(
    name="host",
    description="HOST-RESOURCES: CPU load, memory and disk usage, processes, users",
    walks=(HR_PROCESSOR_LOAD, HR_STORAGE_ENTRY),
    convert=convert,
    gets=(HR_SYSTEM_PROCESSES, HR_SYSTEM_NUM_USERS),
)
