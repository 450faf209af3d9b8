"""Printer health from the Printer-MIB (RFC 3805) and HOST-RESOURCES-MIB (RFC 2790).

What school IT staff ask of a printer: how much toner is left, is a waste box full,
is there paper, is it jammed or open, what does it complain about, how many pages.

Rules this module follows (where other tools go wrong):

- Supply and tray levels -1 (unlimited), -2 (unknown) and -3 (some remaining) are
  states, never percentages. A ratio is emitted only when the level is a real number
  (0 or more) and the capacity is a positive number; a level above its capacity
  counts as full capacity (ratio 1).
- ``prtMarkerSuppliesClass`` tells a consumable (toner: low is bad) from a receptacle
  (waste toner box: full is bad). RFC 3805 defines a receptacle's level as its
  *remaining space*, so for receptacles ``ratio`` is how full the box is
  (``1 - level / capacity``), which is what people and the bars in the CLI expect;
  level 0 means full, -3 means "some space left". When the class column is missing
  (most devices), a waste type (wasteToner, wasteInk, ...) or "waste" in the
  description marks a receptacle; everything else is a consumable.
- Supply states: consumables ok / low (at most ``LOW_RATIO``) / empty / some_remaining /
  unknown / unlimited; receptacles ok / nearly_full (at least ``NEARLY_FULL_RATIO``
  full) / full / some_remaining / unknown / unlimited. A known level with an unknown
  capacity is "empty" at 0 and "some_remaining" above.
- ``hrPrinterDetectedErrorState`` is a bit string whose first octet's high bit is bit
  0; one or two octets, trailing octets optional; some agents send it as hex text.
- ``hrPrinterStatus`` is missing on many printers: the status is then "unknown" in the
  facts and no status series is emitted (absence is not a state the device reported).
- A device with neither Printer-MIB nor hrPrinterTable data gives nothing at all:
  Windows hosts list their print queues as hrDevicePrinter rows.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from probes.result import Record, Sample
from probes.snmp.modules.base import (
    ModuleOutput,
    SnmpModule,
    index_label,
    integer,
    table,
    text,
)
from probes.snmp.types import OID, Value, Walked, oid

#: A consumable at or below this share of its capacity is "low".
LOW_RATIO = 0.10
#: A receptacle at or above this share full is "nearly_full".
NEARLY_FULL_RATIO = 0.90
#: A paper tray at or below this share of its capacity is "low".
TRAY_LOW_RATIO = 0.10

# --- OIDs ---
PRINTER_MIB = oid("1.3.6.1.2.1.43")
PRT_GENERAL_SERIAL = oid("1.3.6.1.2.1.43.5.1.1.17")
PRT_COVER_ENTRY = oid("1.3.6.1.2.1.43.6.1.1")
PRT_INPUT_ENTRY = oid("1.3.6.1.2.1.43.8.2.1")
PRT_MARKER_ENTRY = oid("1.3.6.1.2.1.43.10.2.1")
PRT_SUPPLIES_ENTRY = oid("1.3.6.1.2.1.43.11.1.1")
PRT_COLORANT_VALUE = oid("1.3.6.1.2.1.43.12.1.1.4")
PRT_ALERT_ENTRY = oid("1.3.6.1.2.1.43.18.1.1")
HR_DEVICE_ENTRY = oid("1.3.6.1.2.1.25.3.2.1")
HR_PRINTER_ENTRY = oid("1.3.6.1.2.1.25.3.5.1")
HR_DEVICE_PRINTER = "1.3.6.1.2.1.25.3.1.5"

UNLIMITED, UNKNOWN, SOME_REMAINING = -1, -2, -3

SUPPLY_COLUMNS = {
    3: "colorant", 4: "class", 5: "type", 6: "description", 7: "unit", 8: "max", 9: "level",
}  # fmt: skip
INPUT_COLUMNS = {
    2: "type", 3: "dim_unit", 4: "dim_feed", 5: "dim_xfeed", 8: "unit", 9: "max",
    10: "level", 11: "status", 12: "media", 13: "name", 18: "description",
}  # fmt: skip
ALERT_COLUMNS = {
    2: "severity", 3: "training", 4: "group", 5: "group_index", 6: "location", 7: "code",
    8: "description",
}  # fmt: skip

#: PrtMarkerSuppliesTypeTC.
SUPPLY_TYPES = {
    1: "other", 2: "unknown", 3: "toner", 4: "waste_toner", 5: "ink", 6: "ink_cartridge",
    7: "ink_ribbon", 8: "waste_ink", 9: "drum", 10: "developer", 11: "fuser_oil",
    12: "solid_wax", 13: "ribbon_wax", 14: "waste_wax", 15: "fuser", 16: "corona_wire",
    17: "fuser_oil_wick", 18: "cleaner_unit", 19: "fuser_cleaning_pad", 20: "transfer_unit",
    21: "toner_cartridge", 22: "fuser_oiler", 23: "water", 24: "waste_water",
    25: "glue_water_additive", 26: "waste_paper", 27: "binding_supply", 28: "banding_supply",
    29: "stitching_wire", 30: "shrink_wrap", 31: "paper_wrap", 32: "staples", 33: "inserts",
    34: "covers", 35: "matte_toner", 36: "matte_ink",
}  # fmt: skip
WASTE_TYPES = frozenset({4, 8, 14, 24, 26})
CLASS_CONSUMABLE, CLASS_RECEPTACLE = 3, 4

#: PrtMarkerSuppliesSupplyUnitTC / PrtCapacityUnitTC / PrtMarkerCounterUnitTC.
UNITS = {
    1: "other", 2: "unknown", 3: "ten-thousandths of an inch", 4: "micrometers",
    5: "characters", 6: "lines", 7: "impressions", 8: "sheets", 9: "dot rows", 11: "hours",
    12: "thousandths of an ounce", 13: "tenths of a gram", 14: "hundredths of a fluid ounce",
    15: "tenths of a milliliter", 16: "feet", 17: "meters", 18: "items", 19: "percent",
}  # fmt: skip
SHEETS = 8
#: Marker counter units that count pages; others (meters, hours) are not pages.
PAGE_UNITS = frozenset({7, 8})

#: PrtInputTypeTC.
INPUT_TYPES = {
    1: "other", 2: "unknown", 3: "removable tray", 4: "fixed tray", 5: "manual feed",
    6: "roll", 7: "fan-fold",
}  # fmt: skip

#: Common paper sizes (width x length in mm) for tray records.
PAPER_SIZES = {
    (210, 297): "A4", (297, 420): "A3", (148, 210): "A5", (216, 279): "Letter",
    (216, 356): "Legal", (279, 432): "Tabloid", (184, 267): "Executive", (176, 250): "B5",
}  # fmt: skip

#: hrPrinterDetectedErrorState bits (RFC 2790), bit 0 = high bit of the first octet.
CONDITIONS = (
    ("low_paper", "Paper low"),
    ("no_paper", "Out of paper"),
    ("low_toner", "Toner low"),
    ("no_toner", "Toner empty"),
    ("door_open", "Door open"),
    ("jammed", "Paper jam"),
    ("offline", "Printer offline"),
    ("service_requested", "Service requested"),
    ("input_tray_missing", "Paper tray missing"),
    ("output_tray_missing", "Output tray missing"),
    ("marker_supply_missing", "Toner or ink cartridge missing"),
    ("output_near_full", "Output tray nearly full"),
    ("output_full", "Output tray full"),
    ("input_tray_empty", "Paper tray empty"),
    ("overdue_prevent_maint", "Preventive maintenance overdue"),
)

#: hrPrinterStatus.
PRINTER_STATUSES = {1: "other", 2: "unknown", 3: "idle", 4: "printing", 5: "warmup"}
#: hrDeviceStatus.
DEVICE_STATUSES = {1: "unknown", 2: "running", 3: "warning", 4: "testing", 5: "down"}
STATUS_NOT_REPORTED = "unknown (not reported by the printer)"

#: PrtCoverStatusTC -> (words, open?).
COVER_STATUSES: dict[int, tuple[str, bool | None]] = {
    1: ("other", None), 3: ("open", True), 4: ("closed", False),
    5: ("interlock open", True), 6: ("interlock closed", False),
}  # fmt: skip

#: PrtAlertSeverityLevelTC.
ALERT_SEVERITIES = {1: "other", 3: "critical", 4: "warning", 5: "warning_binary_change_event"}
#: PrtAlertTrainingLevelTC.
ALERT_TRAINING = {
    1: "other", 2: "unknown", 3: "untrained", 4: "trained", 5: "field_service",
    6: "management", 7: "no_intervention_required",
}  # fmt: skip
#: PrtAlertGroupTC.
ALERT_GROUPS = {
    1: "other", 3: "host_resources_storage", 4: "host_resources_device", 5: "general_printer",
    6: "cover", 7: "localization", 8: "input", 9: "output", 10: "marker",
    11: "marker_supplies", 12: "marker_colorant", 13: "media_path", 14: "channel",
    15: "interpreter", 16: "console_display_buffer", 17: "console_lights", 18: "alert",
    30: "finisher_device", 31: "finisher_supply", 32: "finisher_supply_media_input",
    33: "finisher_attribute",
}  # fmt: skip
#: PrtAlertCodeTC -> (snake_case name, plain English or "" to derive from the name).
ALERT_CODES: dict[int, tuple[str, str]] = {
    1: ("other", "Other"), 2: ("unknown", "Unknown"),
    3: ("cover_open", "Cover open"), 4: ("cover_closed", "Cover closed"),
    5: ("interlock_open", "Interlock open"), 6: ("interlock_closed", "Interlock closed"),
    7: ("configuration_change", "Configuration changed"), 8: ("jam", "Paper jam"),
    9: ("subunit_missing", "Part missing"),
    10: ("subunit_life_almost_over", "Part nearly worn out"),
    11: ("subunit_life_over", "Part worn out"), 12: ("subunit_almost_empty", "Nearly empty"),
    13: ("subunit_empty", "Empty"), 14: ("subunit_almost_full", "Nearly full"),
    15: ("subunit_full", "Full"), 16: ("subunit_near_limit", "Near its limit"),
    17: ("subunit_at_limit", "At its limit"), 18: ("subunit_opened", "Opened"),
    19: ("subunit_closed", "Closed"), 20: ("subunit_turned_on", "Turned on"),
    21: ("subunit_turned_off", "Turned off"), 22: ("subunit_offline", "Offline"),
    23: ("subunit_power_saver", "Power saving"), 24: ("subunit_warming_up", "Warming up"),
    25: ("subunit_added", "Part added"), 26: ("subunit_removed", "Part removed"),
    27: ("subunit_resource_added", "Resource added"),
    28: ("subunit_resource_removed", "Resource removed"),
    29: ("subunit_recoverable_failure", "Recoverable failure"),
    30: ("subunit_unrecoverable_failure", "Failure, needs service"),
    31: ("subunit_recoverable_storage_error", "Recoverable storage error"),
    32: ("subunit_unrecoverable_storage_error", "Storage failure, needs service"),
    33: ("subunit_motor_failure", "Motor failure"),
    34: ("subunit_memory_exhausted", "Out of memory"),
    35: ("subunit_under_temperature", "Too cold"), 36: ("subunit_over_temperature", "Too hot"),
    37: ("subunit_timing_failure", "Timing failure"),
    38: ("subunit_thermistor_failure", "Thermistor failure"),
    501: ("door_open", "Door open"), 502: ("door_closed", "Door closed"),
    503: ("powered_up", "Powered up"), 504: ("powered_down", "Powered down"),
    505: ("printer_nms_reset", "Reset over the network"),
    506: ("printer_manual_reset", "Reset at the printer"),
    507: ("printer_ready_to_print", "Ready to print"),
    801: ("input_media_tray_missing", "Paper tray missing"),
    802: ("input_media_size_change", "Paper size changed"),
    803: ("input_media_weight_change", "Paper weight changed"),
    804: ("input_media_type_change", "Paper type changed"),
    805: ("input_media_color_change", "Paper colour changed"),
    806: ("input_media_form_parts_change", "Paper form parts changed"),
    807: ("input_media_supply_low", "Paper low"),
    808: ("input_media_supply_empty", "Out of paper"),
    809: ("input_manual_input_request", "Load paper in the manual feed"),
    810: ("input_tray_position_failure", "Paper tray position failure"),
    811: ("input_tray_elevation_failure", "Paper tray lift failure"),
    812: ("input_cannot_feed_size_selected", "Cannot feed the selected paper size"),
    901: ("output_media_tray_missing", "Output tray missing"),
    902: ("output_media_tray_almost_full", "Output tray nearly full"),
    903: ("output_media_tray_full", "Output tray full"),
    904: ("output_mailbox_select_failure", "Mailbox selection failed"),
    1001: ("marker_fuser_under_temperature", "Fuser too cold"),
    1002: ("marker_fuser_over_temperature", "Fuser too hot"),
    1003: ("marker_fuser_timing_failure", "Fuser timing failure"),
    1004: ("marker_fuser_thermistor_failure", "Fuser thermistor failure"),
    1005: ("marker_adjusting_print_quality", "Adjusting print quality"),
    1101: ("marker_toner_empty", "Toner empty"), 1102: ("marker_ink_empty", "Ink empty"),
    1103: ("marker_print_ribbon_empty", "Ribbon empty"),
    1104: ("marker_toner_almost_empty", "Toner low"),
    1105: ("marker_ink_almost_empty", "Ink low"),
    1106: ("marker_print_ribbon_almost_empty", "Ribbon low"),
    1107: ("marker_waste_toner_receptacle_almost_full", "Waste toner box nearly full"),
    1108: ("marker_waste_ink_receptacle_almost_full", "Waste ink box nearly full"),
    1109: ("marker_waste_toner_receptacle_full", "Waste toner box full"),
    1110: ("marker_waste_ink_receptacle_full", "Waste ink box full"),
    1111: ("marker_opc_life_almost_over", "Drum nearly worn out"),
    1112: ("marker_opc_life_over", "Drum worn out"),
    1113: ("marker_developer_almost_empty", "Developer low"),
    1114: ("marker_developer_empty", "Developer empty"),
    1115: ("marker_toner_cartridge_missing", "Toner cartridge missing"),
    1301: ("media_path_media_tray_missing", "Paper path tray missing"),
    1302: ("media_path_media_tray_almost_full", "Paper path tray nearly full"),
    1303: ("media_path_media_tray_full", "Paper path tray full"),
    1304: ("media_path_cannot_duplex_media_selected", "Cannot print two-sided on this paper"),
    1501: ("interpreter_memory_increase", "Memory increased"),
    1502: ("interpreter_memory_decrease", "Memory decreased"),
    1503: ("interpreter_cartridge_added", "Font cartridge added"),
    1504: ("interpreter_cartridge_deleted", "Font cartridge removed"),
    1505: ("interpreter_resource_added", "Resource added"),
    1506: ("interpreter_resource_deleted", "Resource removed"),
    1507: ("interpreter_resource_unavailable", "Resource unavailable"),
    1509: ("interpreter_complex_page_encountered", "Page too complex"),
    1801: ("alert_removal_of_binary_change_entry", "Alert removed"),
}  # fmt: skip

CONSUMABLE_STATES = ("ok", "low", "empty", "some_remaining", "unknown", "unlimited")
RECEPTACLE_STATES = ("ok", "nearly_full", "full", "some_remaining", "unknown", "unlimited")
TRAY_STATES = CONSUMABLE_STATES

_COLOR_WORDS = re.compile(
    r"\b(light cyan|light magenta|light black|light gr[ae]y|photo black|matte black|"
    r"black|cyan|magenta|yellow|red|green|blue|orange|violet|gr[ae]y)\b",
    re.IGNORECASE,
)
_HEX = frozenset(string.hexdigits)


# --- small decoders -----------------------------------------------------------------


def enum_name(names: Mapping[int, str], value: Value | None) -> str:
    """An enum's snake_case name; ``unknown`` when missing, ``unknown_N`` when unlisted."""
    n = integer(value)
    if n is None:
        return "unknown"
    return names.get(n, f"unknown_{n}")


def _words(name: str) -> str:
    return name.replace("_", " ").capitalize()


def supply_type(value: Value | None) -> str:
    return enum_name(SUPPLY_TYPES, value)


def supply_name(description: str | None, type_: str, index: str) -> str:
    """The ``supply`` label: the device's description, else its type, else its index."""
    if description:
        return description
    return _words(type_) if type_ != "unknown" else f"supply {index}"


def supply_class(klass: Value | None, type_: Value | None, description: str | None) -> str:
    """``consumable`` or ``receptacle``: the device's class, else a guess from the type
    or the description (a waste box is a receptacle)."""
    k = integer(klass)
    if k == CLASS_RECEPTACLE:
        return "receptacle"
    if k == CLASS_CONSUMABLE:
        return "consumable"
    if integer(type_) in WASTE_TYPES or "waste" in (description or "").lower():
        return "receptacle"
    return "consumable"


def color_of(colorant: str | None, description: str | None) -> str | None:
    """The colorant name the device gives, else a colour word found in the description."""
    name = (colorant or "").strip().lower()
    if name and name not in ("unknown", "other", "none"):
        return re.sub(r"[\s-]+", "_", name)
    m = _COLOR_WORDS.search(description or "")
    if m is None:
        return None
    return re.sub(r"\s+", "_", m.group(1).lower()).replace("grey", "gray")


def _percent(ratio: float) -> str:
    pct = round(ratio * 100)
    if pct == 0 and ratio > 0:
        return "<1%"
    if pct == 100 and ratio < 1:
        return ">99%"
    return f"{pct}%"


def level_state(
    level: int | None, capacity: int | None, receptacle: bool = False
) -> tuple[str, float | None, str]:
    """``(state, ratio, level_text)`` for one supply or tray, by the Printer-MIB rules.

    For consumables and trays ``ratio`` is the share left; for receptacles (whose level
    is the remaining *space*) it is the share filled. ``None`` when not a real number.
    """
    if level == UNLIMITED:
        return "unlimited", None, "unlimited"
    if level == SOME_REMAINING:
        return "some_remaining", None, "some space left" if receptacle else "some remaining"
    if level is None or level < 0:
        return "unknown", None, "unknown"
    if capacity is None or capacity <= 0:
        if level == 0:
            return ("full", None, "full") if receptacle else ("empty", None, "empty")
        return "some_remaining", None, "some space left" if receptacle else "some remaining"
    left = min(level / capacity, 1.0)
    if receptacle:
        filled = 1.0 - left
        if level == 0:
            return "full", filled, "full"
        state = "nearly_full" if filled >= NEARLY_FULL_RATIO else "ok"
        return state, filled, f"{_percent(filled)} full"
    if level == 0:
        return "empty", left, "empty"
    return ("low" if left <= LOW_RATIO else "ok"), left, _percent(left)


def tray_state(level: int | None, capacity: int | None) -> tuple[str, float | None, str]:
    """Like :func:`level_state` for paper, with ``TRAY_LOW_RATIO`` as the low mark."""
    state, ratio, words = level_state(level, capacity)
    if ratio is not None and level:
        state = "low" if ratio <= TRAY_LOW_RATIO else "ok"
    return state, ratio, words


def _hex_text(raw: bytes) -> bytes | None:
    """``b"2000"``, ``b"0x20 00"``, ``b"20:00"`` -> the octets they spell, else None."""
    try:
        s = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    s = re.sub(r"[\s:.-]", "", s.strip())
    if s[:2].lower() == "0x":
        s = s[2:]
    if len(s) < 2 or len(s) % 2 or not set(s) <= _HEX:
        return None
    return bytes.fromhex(s)


def error_bits(value: Value | None) -> set[int] | None:
    """Bit numbers set in ``hrPrinterDetectedErrorState``; ``None`` when absent.

    OCTET STRING (one, two or more octets; bit 0 = high bit of the first octet), hex
    text for agents that send it so, or an INTEGER from broken agents (its big-endian
    octets). An empty string means nothing is set.
    """
    if value is None:
        return None
    if isinstance(value, int):
        if value < 0:
            return None
        raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    else:
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "replace")
        raw = _hex_text(raw) or raw
    return {bit for bit in range(len(raw) * 8) if raw[bit // 8] & (0x80 >> (bit % 8))}


SUBUNIT_FLAGS = ((8, "warning"), (16, "critical alert"), (32, "offline"), (64, "changing state"))


def tray_status_text(value: Value | None) -> str | None:
    """PrtSubUnitStatusTC (availability in bits 0-2 plus alert/offline flags) in words."""
    v = integer(value)
    if v is None or not 0 <= v < 128:
        return None
    availability = {
        0: "available", 2: "standby", 4: "active", 6: "busy",
        1: "unavailable (on request)", 3: "unavailable (broken)", 5: "unknown",
    }.get(v & 7, "unknown")  # fmt: skip
    flags = [w for bit, w in SUBUNIT_FLAGS if v & bit]
    return ", ".join([availability, *flags])


def paper_size(unit: Value | None, feed: Value | None, xfeed: Value | None) -> str | None:
    """Declared media dimensions as ``"A4 (210 x 297 mm)"``; None when not given."""
    per_mm = {3: 10_000 / 25.4, 4: 1000.0}.get(integer(unit) or 0)
    length, width = integer(feed), integer(xfeed)
    if per_mm is None or length is None or width is None or length <= 0 or width <= 0:
        return None
    w, h = sorted((round(width / per_mm), round(length / per_mm)))
    name = next(
        (n for (sw, sh), n in PAPER_SIZES.items() if abs(sw - w) <= 2 and abs(sh - h) <= 2), None
    )
    return f"{name} ({w} x {h} mm)" if name else f"{w} x {h} mm"


# --- the parts of the conversion ----------------------------------------------------


def _colorants(walked: Walked) -> dict[OID, str]:
    rows = table(walked, PRT_COLORANT_VALUE[:-1], {PRT_COLORANT_VALUE[-1]: "value"})
    return {i: t for i, c in rows.items() if (t := text(c.get("value")))}


def _supplies(walked: Walked, out: ModuleOutput) -> None:
    colorants = _colorants(walked)
    rows: list[Record] = []
    for index, cols in sorted(table(walked, PRT_SUPPLIES_ENTRY, SUPPLY_COLUMNS).items()):
        description = text(cols.get("description")) or None
        klass = supply_class(cols.get("class"), cols.get("type"), description)
        colorant_index = integer(cols.get("colorant"))
        colorant = colorants.get(index[:-1] + (colorant_index,)) if colorant_index else None
        color = color_of(colorant, description)
        type_ = supply_type(cols.get("type"))
        level, capacity = integer(cols.get("level")), integer(cols.get("max"))
        state, ratio, level_text = level_state(level, capacity, klass == "receptacle")
        idx = index_label(index)
        rows.append({
            "index": idx, "description": description, "type": type_, "color": color,
            "class": klass, "unit": UNITS.get(integer(cols.get("unit")) or 0),
            "level": level, "max_capacity": capacity, "ratio": ratio, "state": state,
            "level_text": level_text,
        })  # fmt: skip
        labels = {
            "supply": supply_name(description, type_, idx),
            "index": idx, "type": type_, "color": color or "", "class": klass,
        }  # fmt: skip
        if ratio is not None:
            out.samples.append(Sample.of("netmon_printer_supply_level_ratio", ratio, **labels))
        states = RECEPTACLE_STATES if klass == "receptacle" else CONSUMABLE_STATES
        out.samples += [
            Sample.of("netmon_printer_supply_state", float(s == state), **labels, state=s)
            for s in states
        ]
    if rows:
        out.records["supplies"] = rows


def _trays(walked: Walked, out: ModuleOutput) -> None:
    rows: list[Record] = []
    for index, cols in sorted(table(walked, PRT_INPUT_ENTRY, INPUT_COLUMNS).items()):
        idx = index_label(index)
        name = text(cols.get("name")) or text(cols.get("description")) or f"tray {index[-1]}"
        level, capacity = integer(cols.get("level")), integer(cols.get("max"))
        state, ratio, level_text = tray_state(level, capacity)
        unit = integer(cols.get("unit"))
        if ratio is not None and unit == SHEETS and level is not None and capacity:
            level_text = f"{level_text} ({level} of {capacity} sheets)"
        type_ = integer(cols.get("type"))
        rows.append({
            "index": idx, "name": name, "type": INPUT_TYPES.get(type_ or 0),
            "media": text(cols.get("media")) or None,
            "size": paper_size(cols.get("dim_unit"), cols.get("dim_feed"), cols.get("dim_xfeed")),
            "level": level, "max_capacity": capacity, "unit": UNITS.get(unit or 0),
            "ratio": ratio, "state": state, "level_text": level_text,
            "status": tray_status_text(cols.get("status")),
        })  # fmt: skip
        if ratio is not None:
            out.samples.append(
                Sample.of("netmon_printer_tray_level_ratio", ratio, tray=name, index=idx)
            )
        out.samples += [
            Sample.of("netmon_printer_tray_state", float(s == state), tray=name, index=idx, state=s)
            for s in TRAY_STATES
        ]
    if rows:
        out.records["trays"] = rows


def _pages(walked: Walked, out: ModuleOutput) -> None:
    rows = table(walked, PRT_MARKER_ENTRY, {3: "unit", 4: "count"})
    counts = {
        i: n
        for i, c in sorted(rows.items())
        if (n := integer(c.get("count"))) is not None
        and n >= 0
        and (integer(c.get("unit")) is None or integer(c.get("unit")) in PAGE_UNITS)
    }
    for index, n in counts.items():
        marker = index_label(index) if len(counts) > 1 else None
        out.samples.append(Sample.of("netmon_printer_pages_total", n, marker=marker))
    if counts:
        out.facts["page_count"] = str(sum(counts.values()))


def _hr_printer(walked: Walked, out: ModuleOutput) -> None:
    rows = sorted(table(walked, HR_PRINTER_ENTRY, {1: "status", 2: "errors"}).items())
    many = len(rows) > 1
    status_word: str | None = None
    conditions: list[Record] = []
    for index, cols in rows:
        device = index_label(index) if many else None
        status = integer(cols.get("status"))
        if status is not None:
            word = PRINTER_STATUSES.get(status, "unknown")
            status_word = status_word or word
            out.samples += [
                Sample.of("netmon_printer_status", float(s == word), device=device, status=s)
                for s in PRINTER_STATUSES.values()
            ]
        bits = error_bits(cols.get("errors"))
        if bits is None:
            continue
        for bit, (name, words) in enumerate(CONDITIONS):
            out.samples.append(
                Sample.of(
                    "netmon_printer_condition", float(bit in bits), device=device, condition=name
                )
            )
            if bit in bits:
                conditions.append({"condition": name, "description": words})
    if status_word:
        out.facts["printer_status"] = status_word
    if any(error_bits(cols.get("errors")) is not None for _, cols in rows):
        out.records["conditions"] = conditions


def _alerts(walked: Walked, out: ModuleOutput) -> None:
    rows: list[Record] = []
    for index, cols in sorted(table(walked, PRT_ALERT_ENTRY, ALERT_COLUMNS).items()):
        code_n = integer(cols.get("code"))
        code, meaning = ALERT_CODES.get(code_n or 0, (enum_name({}, code_n), ""))
        description = text(cols.get("description")) or meaning or _words(code)
        severity = enum_name(ALERT_SEVERITIES, cols.get("severity"))
        group = enum_name(ALERT_GROUPS, cols.get("group"))
        idx = index_label(index)
        rows.append({
            "index": idx, "severity": severity, "group": group,
            "group_index": integer(cols.get("group_index")),
            "location": integer(cols.get("location")), "code": code,
            "meaning": meaning or _words(code), "description": description,
            "training": enum_name(ALERT_TRAINING, cols.get("training")),
        })  # fmt: skip
        out.samples.append(Sample.of(
            "netmon_printer_alert_info", 1, index=idx, severity=severity, group=group,
            code=code, description=description,
        ))  # fmt: skip
    if rows:
        out.records["alerts"] = rows


def _covers(walked: Walked, out: ModuleOutput) -> None:
    rows: list[Record] = []
    for index, cols in sorted(table(walked, PRT_COVER_ENTRY, {2: "name", 3: "status"}).items()):
        idx = index_label(index)
        name = text(cols.get("name")) or f"cover {index[-1]}"
        status = integer(cols.get("status"))
        words, is_open = COVER_STATUSES.get(status or 0, ("unknown", None))
        rows.append({"index": idx, "name": name, "status": words, "open": is_open})
        if is_open is not None:
            out.samples.append(
                Sample.of("netmon_printer_cover_open", float(is_open), cover=name, index=idx)
            )
    if rows:
        out.records["covers"] = rows


def _identity(walked: Walked, out: ModuleOutput) -> None:
    devices = table(walked, HR_DEVICE_ENTRY, {2: "type", 3: "descr", 5: "status"})
    printers = [
        cols
        for _, cols in sorted(devices.items())
        if (text(cols.get("type")) or "").lstrip(".") == HR_DEVICE_PRINTER
    ]
    if printers:
        if model := text(printers[0].get("descr")):
            out.facts["model"] = model
        if (status := integer(printers[0].get("status"))) is not None:
            out.facts["device_status"] = DEVICE_STATUSES.get(status, "unknown")
    serials = table(walked, PRT_GENERAL_SERIAL[:-1], {PRT_GENERAL_SERIAL[-1]: "serial"})
    for _, cols in sorted(serials.items()):
        if serial := text(cols.get("serial")):
            out.facts["serial"] = serial
            break


def _under(key: OID, base: OID) -> bool:
    return key[: len(base)] == base


def convert(walked: Walked) -> ModuleOutput:
    """Supplies, trays, pages, status, conditions, alerts, covers and identity."""
    out = ModuleOutput()
    # hrDevicePrinter rows alone are print queues (Windows hosts list them), not a printer.
    if not any(_under(k, PRINTER_MIB) or _under(k, HR_PRINTER_ENTRY) for k in walked):
        return out
    for part in (_identity, _supplies, _trays, _pages, _hr_printer, _alerts, _covers):
        part(walked, out)
    out.facts.setdefault("printer_status", STATUS_NOT_REPORTED)
    return out


MODULE = SnmpModule(
    name="printer",
    description="Printer-MIB supplies, paper trays, page count, conditions, alerts and covers",
    walks=(
        PRT_SUPPLIES_ENTRY,
        PRT_COLORANT_VALUE,
        PRT_INPUT_ENTRY,
        PRT_MARKER_ENTRY,
        HR_PRINTER_ENTRY,
        PRT_ALERT_ENTRY,
        PRT_COVER_ENTRY,
        PRT_GENERAL_SERIAL,
        HR_DEVICE_ENTRY + (2,),
        HR_DEVICE_ENTRY + (3,),
        HR_DEVICE_ENTRY + (5,),
    ),
    convert=convert,
)
