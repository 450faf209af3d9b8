"""UPS state from the standard UPS-MIB (RFC 1628), else APC's PowerNet-MIB.

Many APC network cards speak only PowerNet-MIB, so it is the fallback when the
standard objects are missing. Values are scaled to base units (ratios 0-1, seconds,
volts); APC's "high precision" objects are in tenths and win over the integer ones.
"""

from __future__ import annotations

from collections.abc import Mapping

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
from probes.snmp.types import OID, Walked, oid

# --- UPS-MIB (RFC 1628), 1.3.6.1.2.1.33.1 ---
STD = {
    "manufacturer": "1.3.6.1.2.1.33.1.1.1.0",
    "model": "1.3.6.1.2.1.33.1.1.2.0",
    "battery_status": "1.3.6.1.2.1.33.1.2.1.0",
    "seconds_on_battery": "1.3.6.1.2.1.33.1.2.2.0",
    "minutes_remaining": "1.3.6.1.2.1.33.1.2.3.0",
    "charge_percent": "1.3.6.1.2.1.33.1.2.4.0",
    "input_lines": "1.3.6.1.2.1.33.1.3.2.0",
    "output_source": "1.3.6.1.2.1.33.1.4.1.0",
    "output_lines": "1.3.6.1.2.1.33.1.4.3.0",
    "alarms_present": "1.3.6.1.2.1.33.1.6.1.0",
}
STD_INPUT_VOLTAGE = oid("1.3.6.1.2.1.33.1.3.3.1.3")  # upsInputVoltage, RMS volts, per line
STD_OUTPUT_ENTRY = oid("1.3.6.1.2.1.33.1.4.4.1")  # upsOutputEntry: 2 voltage, 5 percent load
STD_ALARM_DESCR = oid("1.3.6.1.2.1.33.1.6.2.1.2")  # upsAlarmDescr: a well-known alarm OID
WELL_KNOWN_ALARMS = "1.3.6.1.2.1.33.1.6.3."
ALARM_NAMES = {
    1: "battery_bad", 2: "on_battery", 3: "low_battery", 4: "depleted_battery",
    5: "temperature_bad", 6: "input_bad", 7: "output_bad", 8: "output_overload",
    9: "on_bypass", 10: "bypass_bad", 11: "output_off_as_requested", 12: "ups_off_as_requested",
    13: "charger_failed", 14: "ups_output_off", 15: "ups_system_off", 16: "fan_failure",
    17: "fuse_failure", 18: "general_fault", 19: "diagnostic_test_failed",
    20: "communications_lost", 21: "awaiting_power", 22: "shutdown_pending",
    23: "shutdown_imminent", 24: "test_in_progress",
}  # fmt: skip
BATTERY_BAD = 1
STD_BATTERY_STATES = {1: "unknown", 2: "normal", 3: "low", 4: "depleted"}
STD_OUTPUT_SOURCE_BATTERY = 5

# --- APC PowerNet-MIB, 1.3.6.1.4.1.318.1.1.1 ---
APC = {
    "model": "1.3.6.1.4.1.318.1.1.1.1.1.1.0",  # upsBasicIdentModel
    "serial": "1.3.6.1.4.1.318.1.1.1.1.2.3.0",  # upsAdvIdentSerialNumber
    "battery_status": "1.3.6.1.4.1.318.1.1.1.2.1.1.0",  # upsBasicBatteryStatus
    "capacity": "1.3.6.1.4.1.318.1.1.1.2.2.1.0",  # upsAdvBatteryCapacity, percent
    "runtime_ticks": "1.3.6.1.4.1.318.1.1.1.2.2.3.0",  # upsAdvBatteryRunTimeRemaining
    "replace": "1.3.6.1.4.1.318.1.1.1.2.2.4.0",  # upsAdvBatteryReplaceIndicator
    "capacity_tenths": "1.3.6.1.4.1.318.1.1.1.2.3.1.0",  # upsHighPrecBatteryCapacity
    "input_voltage": "1.3.6.1.4.1.318.1.1.1.3.2.1.0",  # upsAdvInputLineVoltage
    "input_voltage_tenths": "1.3.6.1.4.1.318.1.1.1.3.3.1.0",  # upsHighPrecInputLineVoltage
    "output_status": "1.3.6.1.4.1.318.1.1.1.4.1.1.0",  # upsBasicOutputStatus
    "output_voltage": "1.3.6.1.4.1.318.1.1.1.4.2.1.0",  # upsAdvOutputVoltage
    "load": "1.3.6.1.4.1.318.1.1.1.4.2.3.0",  # upsAdvOutputLoad, percent
    "output_voltage_tenths": "1.3.6.1.4.1.318.1.1.1.4.3.1.0",  # upsHighPrecOutputVoltage
    "load_tenths": "1.3.6.1.4.1.318.1.1.1.4.3.3.0",  # upsHighPrecOutputLoad
}
APC_BATTERY_STATES = {1: "unknown", 2: "normal", 3: "low", 4: "fault"}
APC_ON_BATTERY = 3
APC_REPLACE_NEEDED = 2

BATTERY_STATES = ("normal", "low", "depleted", "fault", "unknown")


def _ints(walked: Walked, oids: Mapping[str, str]) -> dict[str, int | None]:
    return {k: integer(scalar(walked, v)) for k, v in oids.items()}


def _per_line(walked: Walked, column: OID, lines: int | None) -> dict[str, int]:
    """``{line: value}`` of one per-line column; rows beyond the declared line count
    (agents often keep three rows on a single-phase UPS) are left out."""
    out: dict[str, int] = {}
    for index, cols in sorted(table(walked, column[:-1], {column[-1]: "v"}).items()):
        value = integer(cols.get("v"))
        if value is None or (lines is not None and len(index) == 1 and index[0] > lines):
            continue
        out[index_label(index)] = value
    return out


def _state(states: Mapping[int, str], value: int | None) -> str | None:
    return None if value is None else states.get(value, "unknown")


def _standard(walked: Walked) -> Record | None:
    v = _ints(walked, STD)
    if v["battery_status"] is None and v["charge_percent"] is None and v["output_source"] is None:
        return None
    if v["output_source"] is not None:
        on_battery: bool | None = v["output_source"] == STD_OUTPUT_SOURCE_BATTERY
    elif v["seconds_on_battery"] is not None:
        on_battery = v["seconds_on_battery"] > 0
    else:
        on_battery = None
    runtime = v["minutes_remaining"]
    # Some agents say 0 minutes while on mains: "not estimated", not "about to die".
    runtime_s = None if runtime is None or (runtime == 0 and on_battery is False) else runtime * 60
    alarms: list[str] | None = None
    if v["alarms_present"] is not None or any(
        k[: len(STD_ALARM_DESCR)] == STD_ALARM_DESCR for k in walked
    ):
        alarms = []
        for cols in table(walked, STD_ALARM_DESCR[:-1], {STD_ALARM_DESCR[-1]: "d"}).values():
            descr = text(cols.get("d")) or ""
            tail = descr[len(WELL_KNOWN_ALARMS) :] if descr.startswith(WELL_KNOWN_ALARMS) else ""
            alarms.append(ALARM_NAMES.get(int(tail), descr) if tail.isdigit() else descr)
    out_lines, in_lines = v["output_lines"], v["input_lines"]
    load = _per_line(walked, STD_OUTPUT_ENTRY + (5,), out_lines)
    vin = _per_line(walked, STD_INPUT_VOLTAGE, in_lines)
    vout = _per_line(walked, STD_OUTPUT_ENTRY + (2,), out_lines)
    maker, model = text(scalar(walked, STD["manufacturer"])), text(scalar(walked, STD["model"]))
    return {
        "mib": "UPS-MIB",
        "model": " ".join(p for p in (maker, model) if p) or None,
        "serial": None,
        "on_battery": on_battery,
        "battery_status": _state(STD_BATTERY_STATES, v["battery_status"]),
        "charge_ratio": v["charge_percent"] / 100 if v["charge_percent"] is not None else None,
        "runtime_seconds": runtime_s,
        "seconds_on_battery": v["seconds_on_battery"],
        "replace_needed": None if alarms is None else ALARM_NAMES[BATTERY_BAD] in alarms,
        "alarms": alarms,
        "load_ratio": {line: pct / 100 for line, pct in load.items()},
        "input_voltage": {line: float(volts) for line, volts in vin.items()},
        "output_voltage": {line: float(volts) for line, volts in vout.items()},
    }


def _tenths_or(tenths: int | None, whole: int | None, scale: float) -> float | None:
    if tenths is not None:
        return tenths / 10 * scale
    return whole * scale if whole is not None else None


def _apc(walked: Walked) -> Record | None:
    v = _ints(walked, {k: o for k, o in APC.items() if k not in ("model", "serial")})
    if all(x is None for x in v.values()):
        return None
    charge = _tenths_or(v["capacity_tenths"], v["capacity"], 0.01)
    load = _tenths_or(v["load_tenths"], v["load"], 0.01)
    vin = _tenths_or(v["input_voltage_tenths"], v["input_voltage"], 1.0)
    vout = _tenths_or(v["output_voltage_tenths"], v["output_voltage"], 1.0)
    return {
        "mib": "PowerNet-MIB",
        "model": text(scalar(walked, APC["model"])) or None,
        "serial": text(scalar(walked, APC["serial"])) or None,
        "on_battery": None if v["output_status"] is None else v["output_status"] == APC_ON_BATTERY,
        "battery_status": _state(APC_BATTERY_STATES, v["battery_status"]),
        "charge_ratio": charge,
        "runtime_seconds": v["runtime_ticks"] / 100 if v["runtime_ticks"] is not None else None,
        "seconds_on_battery": None,
        "replace_needed": v["replace"] == APC_REPLACE_NEEDED if v["replace"] is not None else None,
        "alarms": None,
        "load_ratio": {"1": load} if load is not None else {},
        "input_voltage": {"1": vin} if vin is not None else {},
        "output_voltage": {"1": vout} if vout is not None else {},
    }


def convert(walked: Walked) -> ModuleOutput:
    out = ModuleOutput()
    ups = _standard(walked) or _apc(walked)
    if ups is None:
        return out
    s = out.samples
    if ups["on_battery"] is not None:
        s.append(Sample.of("netmon_ups_on_battery", ups["on_battery"]))
    if ups["battery_status"] is not None:
        s += [Sample.of("netmon_ups_battery_status", ups["battery_status"] == st, state=st)
              for st in BATTERY_STATES]  # fmt: skip
    for metric, key in (("netmon_ups_battery_charge_ratio", "charge_ratio"),
                        ("netmon_ups_battery_runtime_seconds", "runtime_seconds"),
                        ("netmon_ups_battery_replace_needed", "replace_needed")):  # fmt: skip
        if ups[key] is not None:
            s.append(Sample.of(metric, ups[key]))
    for metric, key in (("netmon_ups_load_ratio", "load_ratio"),
                        ("netmon_ups_input_voltage_volts", "input_voltage"),
                        ("netmon_ups_output_voltage_volts", "output_voltage")):  # fmt: skip
        s += [Sample.of(metric, value, line=line) for line, value in ups[key].items()]
    out.facts["ups_mib"] = ups["mib"]
    for key in ("model", "serial"):
        if ups[key]:
            out.facts[f"ups_{key}"] = ups[key]
    out.records["ups"] = [ups]
    return out


MODULE = SnmpModule(
    name="ups",
    description="UPS battery, load and power (UPS-MIB, else APC PowerNet-MIB)",
    walks=(STD_INPUT_VOLTAGE, STD_OUTPUT_ENTRY, STD_ALARM_DESCR),
    convert=convert,
    gets=tuple(oid(o) for o in (*STD.values(), *APC.values())),
)
