"""The SNMP modules by name: what ``modules: [...]`` in settings and config may list."""

from __future__ import annotations

from probes.snmp.modules.base import SnmpModule
from probes.snmp.modules.host import MODULE as HOST
from probes.snmp.modules.interfaces import MODULE as INTERFACES
from probes.snmp.modules.printer import MODULE as PRINTER
from probes.snmp.modules.system import MODULE as SYSTEM
from probes.snmp.modules.topology import MODULE as TOPOLOGY
from probes.snmp.modules.ups import MODULE as UPS

MODULES: dict[str, SnmpModule] = {m.name: m for m in (SYSTEM, INTERFACES, PRINTER, HOST, UPS, TOPOLOGY)}

__all__ = ["MODULES", "SnmpModule"]
