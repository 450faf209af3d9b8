"""The printer converter on every printer recording, plus hand-built edge cases.

Expectations for the recordings are computed here from the files' raw columns with
the test's own plain reading of RFC 3805 / RFC 2790, never copied by hand. The
table-driven cases cover every special value the recordings do not show, and hostile
data that must not raise.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from probes.metrics import METRICS
from probes.result import Sample
from probes.snmp.modules import MODULES
from probes.snmp.modules.base import ModuleOutput
from probes.snmp.modules.printer import (
    CONDITIONS,
    LOW_RATIO,
    MODULE,
    NEARLY_FULL_RATIO,
    convert,
    error_bits,
)
from probes.snmp.probe import plan
from probes.snmp.types import OID, Value, Walked, oid
from tests.snmprec import column, load_walked, raw_lines, recordings

SUPPLIES = "1.3.6.1.2.1.43.11.1.1"
INPUT = "1.3.6.1.2.1.43.8.2.1"
MARKER = "1.3.6.1.2.1.43.10.2.1"
HR_PRINTER = "1.3.6.1.2.1.25.3.5.1"
HR_DEVICE = "1.3.6.1.2.1.25.3.2.1"
ALERTS = "1.3.6.1.2.1.43.18.1.1"
COVERS = "1.3.6.1.2.1.43.6.1.1"
COLORANT_VALUE = "1.3.6.1.2.1.43.12.1.1.4"

PRINTERS = recordings("printer")
IDS = [p.stem for p in PRINTERS]
CONDITION_NAMES = [name for name, _ in CONDITIONS]
#: RFC 2790 bit order of hrPrinterDetectedErrorState, written out again on purpose.
RFC_BITS = [
    "low_paper", "no_paper", "low_toner", "no_toner", "door_open", "jammed", "offline",
    "service_requested", "input_tray_missing", "output_tray_missing", "marker_supply_missing",
    "output_near_full", "output_full", "input_tray_empty", "overdue_prevent_maint",
]  # fmt: skip
#: wasteToner, wasteInk, wasteWax, wasteWater, wastePaper
WASTE_TYPE_CODES = {"4", "8", "14", "24", "26"}


# --- the test's own reading of the MIB ------------------------------------------------


def expect_level(level: int | None, cap: int | None, receptacle: bool) -> tuple[str, float | None]:
    """(state, ratio): -1 unlimited, -2 unknown, -3 some remaining; a ratio only for a
    real level over a positive capacity; a receptacle's level is its free space."""
    specials = {-1: "unlimited", -2: "unknown", -3: "some_remaining"}
    if level is None:
        return "unknown", None
    if level in specials:
        return specials[level], None
    if level < 0:
        return "unknown", None
    empty_word = "full" if receptacle else "empty"
    if cap is None or cap <= 0:
        return (empty_word if level == 0 else "some_remaining"), None
    share_left = min(level, cap) / cap
    if receptacle:
        filled = 1 - share_left
        if level == 0:
            return "full", filled
        return ("nearly_full" if filled >= NEARLY_FULL_RATIO else "ok"), filled
    if level == 0:
        return "empty", 0.0
    return ("low" if share_left <= LOW_RATIO else "ok"), share_left


def ints(path: Path, entry: str, col: int) -> dict[str, int]:
    return {k: int(v) for k, v in column(path, entry, col).items()}


def labelled(out: ModuleOutput, metric: str, **labels: str) -> list[Sample]:
    return [
        s
        for s in out.samples
        if s.metric == metric and all(s.label_dict.get(k) == v for k, v in labels.items())
    ]


def state_of(out: ModuleOutput, metric: str, **labels: str) -> str:
    """The one state whose series is 1; fails unless there is exactly one."""
    series = labelled(out, metric, **labels)
    assert series, f"no {metric}{labels}"
    on = [s.label_dict.get("state", s.label_dict.get("status")) for s in series if s.value == 1]
    assert len(on) == 1 and all(s.value in (0, 1) for s in series), f"{metric}{labels}: {on}"
    return str(on[0])


def assert_well_formed(out: ModuleOutput) -> None:
    """Catalogued names, no duplicate series, one 1 per state set."""
    for s in out.samples:
        assert s.metric in METRICS, s.metric
        assert all(isinstance(v, str) for _, v in s.labels)
    keys = Counter((s.metric, tuple(sorted(s.labels))) for s in out.samples)
    assert not [k for k, n in keys.items() if n > 1], "duplicate series"
    for metric, key in (
        ("netmon_printer_supply_state", "index"),
        ("netmon_printer_tray_state", "index"),
        ("netmon_printer_status", "device"),
    ):
        groups: dict[str | None, list[Sample]] = {}
        for s in out.samples:
            if s.metric == metric:
                groups.setdefault(s.label_dict.get(key), []).append(s)
        for group, series in groups.items():
            assert sum(s.value for s in series) == 1, f"{metric} {group}"


# --- every recording ------------------------------------------------------------------


@pytest.mark.parametrize("path", PRINTERS, ids=IDS)
def test_supplies_follow_the_mib(path: Path) -> None:
    out = convert(load_walked(path))
    assert_well_formed(out)
    levels, caps = ints(path, SUPPLIES, 9), ints(path, SUPPLIES, 8)
    classes, types = column(path, SUPPLIES, 4), column(path, SUPPLIES, 5)
    descriptions = column(path, SUPPLIES, 6)
    indexes = sorted(
        set(levels) | set(caps) | set(descriptions) | set(types),
        key=lambda i: tuple(map(int, i.split("."))),
    )
    rows = {r["index"]: r for r in out.records["supplies"]}
    assert list(rows) == indexes
    ratios = 0
    for i in indexes:
        descr = descriptions.get(i, "").strip()
        if classes.get(i) in ("3", "4"):
            receptacle = classes[i] == "4"
        else:
            receptacle = types.get(i) in WASTE_TYPE_CODES or "waste" in descr.lower()
        state, ratio = expect_level(levels.get(i), caps.get(i), receptacle)
        row = rows[i]
        assert row["class"] == ("receptacle" if receptacle else "consumable")
        assert (row["level"], row["max_capacity"]) == (levels.get(i), caps.get(i))
        assert row["state"] == state, (i, descr)
        assert row["ratio"] == pytest.approx(ratio) if ratio is not None else row["ratio"] is None
        assert row["description"] == (descr or None)
        assert row["level_text"]
        if ratio is not None:
            assert "%" in row["level_text"] or row["level_text"] in ("empty", "full")
        else:
            assert "%" not in row["level_text"]
        assert state_of(out, "netmon_printer_supply_state", index=i) == state
        samples = labelled(out, "netmon_printer_supply_level_ratio", index=i)
        assert [s.value for s in samples] == ([pytest.approx(ratio)] if ratio is not None else [])
        ratios += ratio is not None
        if descr:
            names = {
                s.label_dict["supply"]
                for s in labelled(out, "netmon_printer_supply_state", index=i)
            }
            assert names == {descr}
    assert len(labelled(out, "netmon_printer_supply_level_ratio")) == ratios


@pytest.mark.parametrize("path", PRINTERS, ids=IDS)
def test_supply_colours_come_from_colorants_or_descriptions(path: Path) -> None:
    out = convert(load_walked(path))
    colorant_of = column(path, SUPPLIES, 3)
    colorants = column(path, COLORANT_VALUE[: -len(".4")], 4)
    for row in out.records["supplies"]:
        i = row["index"]
        device = i.split(".")[0]
        name = colorants.get(f"{device}.{colorant_of.get(i)}", "").strip().lower()
        if name and name not in ("unknown", "other"):
            assert row["color"] == name
            continue
        words = (row["description"] or "").lower().replace("(", " ").replace(")", " ").split()
        found = [c for c in ("black", "cyan", "magenta", "yellow") if c in words]
        if found:
            assert row["color"] == found[0], row
        else:
            assert row["color"] is None, row


@pytest.mark.parametrize("path", PRINTERS, ids=IDS)
def test_trays_follow_the_mib(path: Path) -> None:
    out = convert(load_walked(path))
    levels, caps = ints(path, INPUT, 10), ints(path, INPUT, 9)
    names = column(path, INPUT, 13)
    indexes = sorted(
        set(levels) | set(caps) | set(names), key=lambda i: tuple(map(int, i.split(".")))
    )
    if not indexes:
        assert "trays" not in out.records
        assert not labelled(out, "netmon_printer_tray_state")
        return
    rows = {r["index"]: r for r in out.records["trays"]}
    assert list(rows) == indexes
    for i in indexes:
        state, ratio = expect_level(levels.get(i), caps.get(i), receptacle=False)
        row = rows[i]
        assert row["state"] == state, (i, row)
        assert row["ratio"] == pytest.approx(ratio) if ratio is not None else row["ratio"] is None
        assert row["name"] == (names.get(i, "").strip() or row["name"])
        assert state_of(out, "netmon_printer_tray_state", index=i) == state
        samples = labelled(out, "netmon_printer_tray_level_ratio", index=i)
        assert [s.value for s in samples] == ([pytest.approx(ratio)] if ratio is not None else [])


@pytest.mark.parametrize("path", PRINTERS, ids=IDS)
def test_detected_error_state_decoded_bit_by_bit(path: Path) -> None:
    out = convert(load_walked(path))
    raw = {o: (tag, v) for o, tag, v in raw_lines(path) if o.startswith(HR_PRINTER + ".2.")}
    conditions = labelled(out, "netmon_printer_condition")
    if not raw:
        assert not conditions and "conditions" not in out.records
        return
    ((tag, value),) = raw.values()
    octets = bytes.fromhex(value) if tag == "4x" else value.encode()
    bits = "".join(f"{b:08b}" for b in octets)
    active = {RFC_BITS[n] for n, c in enumerate(bits[: len(RFC_BITS)]) if c == "1"}
    assert {s.label_dict["condition"]: s.value for s in conditions} == {
        name: float(name in active) for name in RFC_BITS
    }
    assert {r["condition"] for r in out.records["conditions"]} == active
    assert all(r["description"] for r in out.records["conditions"])


@pytest.mark.parametrize("path", PRINTERS, ids=IDS)
def test_pages_status_and_identity(path: Path) -> None:
    out = convert(load_walked(path))
    counts = ints(path, MARKER, 4)
    pages = labelled(out, "netmon_printer_pages_total")
    assert sorted(s.value for s in pages) == sorted(float(v) for v in counts.values())
    if counts:
        assert out.facts["page_count"] == str(sum(counts.values()))
    statuses = ints(path, HR_PRINTER, 1)
    if not statuses:  # true of every recording: never fail, say unknown
        assert out.facts["printer_status"].startswith("unknown")
        assert not labelled(out, "netmon_printer_status")
    types, descrs = column(path, HR_DEVICE, 2), column(path, HR_DEVICE, 3)
    printers = sorted((i for i, t in types.items() if t == "1.3.6.1.2.1.25.3.1.5"), key=int)
    if printers:
        assert out.facts["model"] == descrs[printers[0]].strip()
        status = ints(path, HR_DEVICE, 5).get(printers[0])
        words = {1: "unknown", 2: "running", 3: "warning", 4: "testing", 5: "down"}
        assert out.facts.get("device_status") == (words[status] if status else None)
    serials = column(path, "1.3.6.1.2.1.43.5.1.1", 17)
    assert out.facts.get("serial") == (next(iter(serials.values())).strip() if serials else None)
    assert not column(path, ALERTS, 7) and "alerts" not in out.records
    assert not column(path, COVERS, 3) and "covers" not in out.records


def test_converter_reads_only_what_the_module_fetches() -> None:
    gets, walks = plan([MODULE])
    for path in PRINTERS:
        full = load_walked(path)
        fetched = {
            k: v for k, v in full.items() if k in set(gets) or any(k[: len(w)] == w for w in walks)
        }
        assert convert(fetched) == convert(full), path.stem


def test_module_is_registered() -> None:
    assert MODULES["printer"] is MODULE
    assert MODULE.convert is convert


# --- hand-built cases -----------------------------------------------------------------


def supply(
    i: int,
    level: Value | None,
    cap: Value | None,
    klass: Value | None = 3,
    descr: Value | None = b"Black Toner",
    type_: Value | None = 3,
) -> dict[OID, Value]:
    cols = {4: klass, 5: type_, 6: descr, 8: cap, 9: level}
    return {oid(f"{SUPPLIES}.{c}.1.{i}"): v for c, v in cols.items() if v is not None}


CONSUMABLE_CASES = [
    # level, capacity, state, ratio
    (-1, 100, "unlimited", None),
    (-2, 100, "unknown", None),
    (-3, 100, "some_remaining", None),
    (0, 100, "empty", 0.0),
    (5, 100, "low", 0.05),
    (10, 100, "low", 0.10),
    (11, 100, "ok", 0.11),
    (100, 100, "ok", 1.0),
    (150, 100, "ok", 1.0),  # over capacity: counted as full capacity, never > 1
    (40, -2, "some_remaining", None),  # capacity unknown: no percentage invented
    (0, -2, "empty", None),
    (40, -1, "some_remaining", None),
    (40, 0, "some_remaining", None),
    (-3, -2, "some_remaining", None),
    (-1, -1, "unlimited", None),
    (-9, 100, "unknown", None),
    (None, 100, "unknown", None),
    (b"abc", 100, "unknown", None),  # text where a number belongs
    (b"30", b"60", "ok", 0.5),  # numbers sent as text
    (1, 17208, "low", 1 / 17208),
]


@pytest.mark.parametrize(("level", "cap", "state", "ratio"), CONSUMABLE_CASES)
def test_consumable_levels(
    level: Value | None, cap: Value | None, state: str, ratio: float | None
) -> None:
    out = convert(supply(1, level, cap))
    assert_well_formed(out)
    (row,) = out.records["supplies"]
    assert (row["class"], row["state"]) == ("consumable", state)
    assert row["ratio"] == (pytest.approx(ratio) if ratio is not None else None)
    assert state_of(out, "netmon_printer_supply_state", index="1.1") == state
    assert {s.label_dict["state"] for s in labelled(out, "netmon_printer_supply_state")} == {
        "ok", "low", "empty", "some_remaining", "unknown", "unlimited",
    }  # fmt: skip
    ratios = labelled(out, "netmon_printer_supply_level_ratio")
    assert [s.value for s in ratios] == ([pytest.approx(ratio)] if ratio is not None else [])
    if ratio is None:
        assert "%" not in row["level_text"]
    words = {"unlimited": "unlimited", "unknown": "unknown", "some_remaining": "some remaining"}
    if state in words:
        assert row["level_text"] == words[state]


RECEPTACLE_CASES = [
    # level (= free space, RFC 3805), capacity, state, ratio (= share filled)
    (100, 100, "ok", 0.0),
    (60, 100, "ok", 0.4),
    (11, 100, "ok", 0.89),
    (10, 100, "nearly_full", 0.9),
    (3, 100, "nearly_full", 0.97),
    (0, 100, "full", 1.0),
    (0, -2, "full", None),
    (55, -2, "some_remaining", None),
    (-3, 100, "some_remaining", None),
    (-3, -2, "some_remaining", None),
    (-2, 100, "unknown", None),
    (-1, 100, "unlimited", None),
]


@pytest.mark.parametrize(("level", "cap", "state", "ratio"), RECEPTACLE_CASES)
@pytest.mark.parametrize(
    "how", ["class column", "waste type, no class", "description, no class or type"]
)
def test_receptacle_levels(level: int, cap: int, state: str, ratio: float | None, how: str) -> None:
    if how == "class column":
        walked = supply(1, level, cap, klass=4, descr=b"Box", type_=1)
    elif how == "waste type, no class":
        walked = supply(1, level, cap, klass=None, descr=b"Box", type_=4)
    else:
        walked = supply(1, level, cap, klass=None, descr=b"Waste Toner Box", type_=None)
    out = convert(walked)
    assert_well_formed(out)
    (row,) = out.records["supplies"]
    assert (row["class"], row["state"]) == ("receptacle", state)
    assert row["ratio"] == (pytest.approx(ratio) if ratio is not None else None)
    assert {s.label_dict["state"] for s in labelled(out, "netmon_printer_supply_state")} == {
        "ok", "nearly_full", "full", "some_remaining", "unknown", "unlimited",
    }  # fmt: skip
    assert state_of(out, "netmon_printer_supply_state", index="1.1") == state
    if ratio is not None and state != "full":
        assert row["level_text"].endswith("% full")


def test_class_column_wins_over_type_and_description() -> None:
    out = convert(supply(1, 50, 100, klass=3, descr=b"Waste Toner", type_=4))
    assert out.records["supplies"][0]["class"] == "consumable"


@pytest.mark.parametrize(
    ("code", "word"),
    [(3, "toner"), (4, "waste_toner"), (5, "ink"), (6, "ink_cartridge"), (8, "waste_ink"),
     (9, "drum"), (10, "developer"), (15, "fuser"), (20, "transfer_unit"),
     (21, "toner_cartridge"), (32, "staples"), (None, "unknown"), (99, "unknown_99"),
     (b"x", "unknown")],
)  # fmt: skip
def test_supply_types_are_words(code: Value | None, word: str) -> None:
    out = convert(supply(1, 50, 100, type_=code))
    assert out.records["supplies"][0]["type"] == word
    assert {s.label_dict["type"] for s in labelled(out, "netmon_printer_supply_state")} == {word}


@pytest.mark.parametrize(
    ("colorant", "descr", "color"),
    [(b"cyan", b"Toner", "cyan"), (b"Light Cyan", b"Ink", "light_cyan"),
     (b"unknown", b"Magenta Toner", "magenta"), (None, b"Toner (Yellow)", "yellow"),
     (None, b"Black Cartridge HP CF400X", "black"), (None, b"Drum Unit", None),
     (None, b"Blackboard toner", None), (b"", b"Cyan Toner", "cyan")],
)  # fmt: skip
def test_colours(colorant: bytes | None, descr: bytes, color: str | None) -> None:
    walked = supply(1, 50, 100, descr=descr)
    walked[oid(f"{SUPPLIES}.3.1.1")] = 2
    if colorant is not None:
        walked[oid(f"{COLORANT_VALUE}.1.2")] = colorant
    out = convert(walked)
    assert out.records["supplies"][0]["color"] == color
    labels = {s.label_dict["color"] for s in labelled(out, "netmon_printer_supply_state")}
    assert labels == {color or ""}  # always present, so every series has the same labels


def test_colorant_index_zero_or_dangling_falls_back_to_description() -> None:
    walked = {**supply(1, 50, 100, descr=b"Cyan Toner"), **supply(2, 50, 100, descr=b"Toner")}
    walked[oid(f"{SUPPLIES}.3.1.1")] = 0
    walked[oid(f"{SUPPLIES}.3.1.2")] = 7
    walked[oid(f"{COLORANT_VALUE}.1.1")] = b"black"
    rows = convert(walked).records["supplies"]
    assert [r["color"] for r in rows] == ["cyan", None]


def test_supplies_need_no_description() -> None:
    out = convert({oid(f"{SUPPLIES}.9.1.3"): 40, oid(f"{SUPPLIES}.5.1.4"): 9})
    labels = {s.label_dict["index"]: s.label_dict["supply"] for s in out.samples}
    assert labels == {"1.3": "supply 1.3", "1.4": "Drum"}


# --- trays ---


def tray(i: int, level: Value | None, cap: Value | None, **cols: Value) -> dict[OID, Value]:
    numbers = {"type": 2, "dim_unit": 3, "feed": 4, "xfeed": 5, "unit": 8, "status": 11,
               "media": 12, "name": 13, "description": 18}  # fmt: skip
    out: dict[OID, Value] = {}
    if cap is not None:
        out[oid(f"{INPUT}.9.1.{i}")] = cap
    if level is not None:
        out[oid(f"{INPUT}.10.1.{i}")] = level
    for key, value in cols.items():
        out[oid(f"{INPUT}.{numbers[key]}.1.{i}")] = value
    return out


@pytest.mark.parametrize(("level", "cap", "state", "ratio"), CONSUMABLE_CASES)
def test_tray_levels(
    level: Value | None, cap: Value | None, state: str, ratio: float | None
) -> None:
    out = convert(tray(1, level, cap, name=b"Tray 1"))
    assert_well_formed(out)
    (row,) = out.records["trays"]
    assert row["state"] == state and row["name"] == "Tray 1"
    assert row["ratio"] == (pytest.approx(ratio) if ratio is not None else None)
    assert state_of(out, "netmon_printer_tray_state", index="1.1", tray="Tray 1") == state
    ratios = labelled(out, "netmon_printer_tray_level_ratio")
    assert [s.value for s in ratios] == ([pytest.approx(ratio)] if ratio is not None else [])


def test_tray_details_for_people() -> None:
    walked = tray(2, 55, 550, unit=8, type=4, dim_unit=3, feed=110000, xfeed=85000,
                  status=9, media=b"Plain\x00\x00", description=b"Cassette")  # fmt: skip
    (row,) = convert(walked).records["trays"]
    assert row["name"] == "Cassette"  # no name column: the description
    assert row["media"] == "Plain"
    assert row["size"] == "Letter (216 x 279 mm)"
    assert row["level_text"] == "10% (55 of 550 sheets)"
    assert row["unit"] == "sheets" and row["type"] == "fixed tray"
    assert row["status"] == "unavailable (on request), warning"
    (bare,) = convert(tray(3, -2, -2)).records["trays"]
    assert bare["name"] == "tray 3" and bare["size"] is None and bare["status"] is None


# --- hrPrinterDetectedErrorState ---


def errors(value: Value) -> ModuleOutput:
    return convert({oid(f"{HR_PRINTER}.2.1"): value})


def active(out: ModuleOutput) -> set[str]:
    values = {s.label_dict["condition"]: s.value for s in labelled(out, "netmon_printer_condition")}
    assert sorted(values) == sorted(RFC_BITS), "every condition has a series"
    return {name for name, v in values.items() if v == 1}


@pytest.mark.parametrize("bit", range(len(RFC_BITS)), ids=RFC_BITS)
def test_each_error_bit(bit: int) -> None:
    two = (1 << (15 - bit)).to_bytes(2, "big")
    assert active(errors(two)) == {RFC_BITS[bit]}
    out = errors(two + b"\x00\x00")  # trailing zero octets change nothing
    assert active(out) == {RFC_BITS[bit]}
    assert [r["condition"] for r in out.records["conditions"]] == [RFC_BITS[bit]]
    assert out.records["conditions"][0]["description"]
    if bit < 8:
        assert active(errors(two[:1])) == {RFC_BITS[bit]}  # a one-octet agent
    assert active(errors(two.hex().encode())) == {RFC_BITS[bit]}  # sent as hex text


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"\x00", set()), (b"", set()), (b"\x00\x00", set()), (b"2000", {"low_toner"}),
     (b"0x2000", {"low_toner"}), (b"20 00", {"low_toner"}), (b"20:00", {"low_toner"}),
     (b"\xc0", {"low_paper", "no_paper"}), (b"\x05\x00", {"jammed", "service_requested"}),
     (b"\x00\x04", {"input_tray_empty"}), (b"\xff\xff\xff", set(RFC_BITS)),
     (b"\x00\x01", set()), (0, set()), (0x2000, {"low_toner"}), ("2000", {"low_toner"})],
)  # fmt: skip
def test_error_state_encodings(value: Value, expected: set[str]) -> None:
    out = errors(value)
    assert_well_formed(out)
    assert active(out) == expected
    assert {r["condition"] for r in out.records["conditions"]} == expected


def test_english_descriptions() -> None:
    words = {r["condition"]: r["description"] for r in errors(b"\xff\xfe").records["conditions"]}
    assert words["no_paper"] == "Out of paper" and words["jammed"] == "Paper jam"
    assert words["low_toner"] == "Toner low" and words["door_open"] == "Door open"
    assert words["input_tray_empty"] == "Paper tray empty"
    assert len(set(words.values())) == len(RFC_BITS)


def test_error_bits_helper() -> None:
    assert error_bits(None) is None
    assert error_bits(-1) is None
    assert error_bits(b"\x80") == {0}


# --- status, pages, alerts, covers ---


@pytest.mark.parametrize(
    ("value", "status"),
    [(1, "other"), (2, "unknown"), (3, "idle"), (4, "printing"), (5, "warmup"), (42, "unknown")],
)  # fmt: skip
def test_printer_status(value: int, status: str) -> None:
    out = convert({oid(f"{HR_PRINTER}.1.1"): value})
    assert_well_formed(out)
    assert out.facts["printer_status"] == status
    assert state_of(out, "netmon_printer_status") == status
    assert len(labelled(out, "netmon_printer_status")) == 5
    assert "conditions" not in out.records  # no error state: nothing claimed


def test_two_printer_devices_get_a_device_label() -> None:
    out = convert({oid(f"{HR_PRINTER}.1.1"): 3, oid(f"{HR_PRINTER}.1.7"): 4,
                   oid(f"{HR_PRINTER}.2.7"): b"\x04"})  # fmt: skip
    assert_well_formed(out)
    assert state_of(out, "netmon_printer_status", device="7") == "printing"
    assert state_of(out, "netmon_printer_status", device="1") == "idle"
    assert active_for(out, "7") == {"jammed"}


def active_for(out: ModuleOutput, device: str) -> set[str]:
    return {
        s.label_dict["condition"]
        for s in labelled(out, "netmon_printer_condition", device=device)
        if s.value
    }


def test_page_counters() -> None:
    one = convert({oid(f"{MARKER}.4.1.1"): 1234})
    assert [(s.value, s.label_dict) for s in one.samples] == [(1234.0, {})]
    two = convert({oid(f"{MARKER}.4.1.1"): 10, oid(f"{MARKER}.4.1.2"): 20,
                   oid(f"{MARKER}.3.1.2"): 7})  # fmt: skip
    assert {s.label_dict["marker"]: s.value for s in two.samples} == {"1.1": 10.0, "1.2": 20.0}
    assert two.facts["page_count"] == "30"
    meters = convert({oid(f"{MARKER}.4.1.1"): 500, oid(f"{MARKER}.3.1.1"): 17})
    assert not meters.samples  # a plotter's meters are not pages
    assert not convert({oid(f"{MARKER}.4.1.1"): b"lots"}).samples


def alert(i: int, **cols: Value) -> dict[OID, Value]:
    numbers = {"severity": 2, "training": 3, "group": 4, "group_index": 5, "location": 6,
               "code": 7, "description": 8}  # fmt: skip
    return {oid(f"{ALERTS}.{numbers[k]}.1.{i}"): v for k, v in cols.items()}


def test_alerts() -> None:
    walked = {
        **alert(1, severity=3, training=4, group=8, group_index=2, location=-2, code=808,
                description=b"Tray 2 empty\x00"),
        **alert(2, severity=4, group=11, code=1104),
        **alert(3, severity=99, group=b"?", code=4242, description=b"  "),
        **alert(4, severity=5, group=6, code=3, description=b"Front cover open"),
    }  # fmt: skip
    out = convert(walked)
    assert_well_formed(out)
    info = {s.label_dict["index"]: s.label_dict for s in labelled(out, "netmon_printer_alert_info")}
    assert info["1.1"] == {
        "index": "1.1",
        "severity": "critical",
        "group": "input",
        "code": "input_media_supply_empty",
        "description": "Tray 2 empty",
    }
    assert info["1.2"]["code"] == "marker_toner_almost_empty"
    assert info["1.2"]["description"] == "Toner low"  # no device text: plain English
    assert info["1.2"]["group"] == "marker_supplies"
    assert (info["1.3"]["severity"], info["1.3"]["group"], info["1.3"]["code"]) == (
        "unknown_99", "unknown", "unknown_4242",
    )  # fmt: skip
    assert info["1.3"]["description"]
    assert info["1.4"]["severity"] == "warning_binary_change_event"
    assert all(s.value == 1 for s in labelled(out, "netmon_printer_alert_info"))
    rows = {r["index"]: r for r in out.records["alerts"]}
    assert rows["1.1"]["meaning"] == "Out of paper" and rows["1.1"]["group_index"] == 2
    assert rows["1.1"]["training"] == "trained" and rows["1.1"]["location"] == -2
    assert rows["1.4"]["meaning"] == "Cover open"


@pytest.mark.parametrize("code", [8, 501, 808, 1101, 1104, 1109, 1115, 9, 3])
def test_common_alert_codes_have_english(code: int) -> None:
    (row,) = convert(alert(1, code=code)).records["alerts"]
    assert not row["code"].startswith("unknown")
    assert row["meaning"] and row["meaning"] != row["code"] and "_" not in row["meaning"]
    assert row["description"] == row["meaning"]  # no device text: the English words


@pytest.mark.parametrize(
    ("status", "is_open", "words"),
    [(3, 1.0, "open"), (4, 0.0, "closed"), (5, 1.0, "interlock open"),
     (6, 0.0, "interlock closed"), (1, None, "other"), (2, None, "unknown"),
     (b"open", None, "unknown")],
)  # fmt: skip
def test_covers(status: Value, is_open: float | None, words: str) -> None:
    out = convert({oid(f"{COVERS}.2.1.1"): b"Front Cover", oid(f"{COVERS}.3.1.1"): status})
    assert_well_formed(out)
    assert out.records["covers"] == [
        {"index": "1.1", "name": "Front Cover", "status": words,
         "open": None if is_open is None else bool(is_open)}
    ]  # fmt: skip
    values = [(s.value, s.label_dict["cover"]) for s in labelled(out, "netmon_printer_cover_open")]
    assert values == ([] if is_open is None else [(is_open, "Front Cover")])


def test_identity_picks_the_printer_device() -> None:
    walked: dict[OID, Value] = {
        oid(f"{HR_DEVICE}.2.1"): "1.3.6.1.2.1.25.3.1.4",
        oid(f"{HR_DEVICE}.3.1"): b"Ethernet",
        oid(f"{HR_DEVICE}.5.1"): 2,
        oid(f"{HR_DEVICE}.2.3"): ".1.3.6.1.2.1.25.3.1.5",
        oid(f"{HR_DEVICE}.3.3"): b"Acme Laser 9000\x00\x00 ",
        oid(f"{HR_DEVICE}.5.3"): 5,
        oid("1.3.6.1.2.1.43.5.1.1.17.1"): b" SN123 ",
    }
    facts = convert(walked).facts
    assert facts["model"] == "Acme Laser 9000"
    assert facts["device_status"] == "down"
    assert facts["serial"] == "SN123"
    assert facts["printer_status"].startswith("unknown")


# --- hostile data ---------------------------------------------------------------------

ODD: list[Any] = [b"\xff\xfe junk", "1.2.3", -7, -1, -2, -3, 2**70, -(2**40), b"", "x", 0,
                  b"\x00\x01", "9", b"-3", b"0x20"]  # fmt: skip


def test_no_printer_mib_gives_nothing() -> None:
    assert convert({}) == ModuleOutput()
    for path in recordings():
        if path.parent.name != "printer":
            assert convert(load_walked(path)) == ModuleOutput(), path.stem


def test_garbage_in_every_column_does_not_raise() -> None:
    _, walks = plan([MODULE])
    for shift in range(len(ODD)):
        junk: dict[OID, Value] = {}
        for i, base in enumerate(walks):
            for col in range(1, 20):
                for row in (1, 2):
                    junk[base + (col, 1, row)] = ODD[(i + col + row + shift) % len(ODD)]
                    junk[base + (1, row)] = ODD[(col + shift) % len(ODD)]
        out = convert(junk)
        assert_well_formed(out)


@pytest.mark.parametrize("path", PRINTERS, ids=IDS)
def test_recordings_with_values_replaced_by_junk(path: Path) -> None:
    _, walks = plan([MODULE])
    full = dict(load_walked(path))
    printer_oids = [k for k in full if any(k[: len(w)] == w for w in walks)]
    for shift in range(len(ODD)):
        walked: Walked = {
            k: (ODD[(n + shift) % len(ODD)] if k in printer_oids else v)
            for n, (k, v) in enumerate(full.items())
        }
        assert_well_formed(convert(walked))
    half = {k: v for n, (k, v) in enumerate(full.items()) if n % 2}  # missing columns
    assert_well_formed(convert(half))
