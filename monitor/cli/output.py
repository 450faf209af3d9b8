"""Human-readable rendering of probe results for the terminal (rich), and small helpers.

Every string a device sent (sysDescr, supply names, interface aliases) goes through
:func:`device_text`: control characters are stripped and the string becomes a rich
``Text``, never markup, so ``[bold]`` in a sysDescr prints literally. Record shapes the
renderers do not expect fall back to a generic table instead of failing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from probes.result import ProbeResult, Status

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")

STATUS_STYLE = {Status.OK: "bold green", Status.PARTIAL: "bold yellow", Status.ERROR: "bold magenta"}

STATE_STYLE = {
    "ok": "green", "low": "yellow", "nearly_full": "yellow", "empty": "bold red", "full": "bold red",
    "some_remaining": "cyan", "unknown": "dim", "unlimited": "cyan",
}  # fmt: skip

STATE_WORDS = {
    "ok": "OK", "low": "low", "empty": "EMPTY", "some_remaining": "some remaining",
    "unknown": "unknown", "unlimited": "unlimited", "nearly_full": "nearly full", "full": "FULL",
}  # fmt: skip


# --- plain helpers ---------------------------------------------------------------------


def clean(value: object) -> str:
    """A device-supplied value as one safe line: control characters removed, tabs and
    newlines turned into spaces."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = re.sub(r"[\t\n\r]+", " ", str(value))
    return _CONTROL.sub("", text).strip()


def device_text(value: object, style: str = "") -> Text:
    """Device strings as literal rich Text (never parsed as markup)."""
    return Text(clean(value), style=style)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return float(value)


def human_bytes(value: Any) -> str:
    """``1536`` -> ``"1.5 KiB"``; binary units as operating systems report storage."""
    n = _number(value)
    if n is None:
        return ""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    i = 0
    while abs(n) >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{int(n)} B" if i == 0 else f"{significant(n)} {units[i]}"


def human_speed(bps: Any) -> str:
    """Interface speed in bits per second -> ``"1 Gb/s"``, ``"100 Mb/s"``, ``"2.5 Gb/s"``."""
    n = _number(bps)
    if n is None:
        return ""
    units = ["b/s", "kb/s", "Mb/s", "Gb/s", "Tb/s"]
    i = 0
    while abs(n) >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{significant(n)} {units[i]}"


def significant(n: float) -> str:
    """At most 3 significant digits, no trailing zeros: 1.0 -> 1, 2.50 -> 2.5, 123.4 -> 123."""
    text = f"{n:.3g}" if abs(n) < 1000 else f"{n:.0f}"
    if "e" in text:
        text = f"{n:.0f}"
    return text


def human_duration(seconds: Any) -> str:
    """``90061`` -> ``"1d 1h 1m"``."""
    n = _number(seconds)
    if n is None:
        return clean(seconds)
    total = int(n)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def milliseconds(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return ""
    ms = seconds * 1000
    return f"{ms:.3f}" if ms < 1 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def percent(ratio: Any) -> str:
    n = _number(ratio)
    return "" if n is None else f"{n * 100:.0f}%"


def bar(ratio: float, width: int = 8) -> str:
    """``0.45`` -> ``"████░░░░ 45%"`` (ratio clamped to 0-1)."""
    r = min(max(ratio, 0.0), 1.0)
    full = int(r * width + 0.5)
    return "█" * full + "░" * (width - full) + f" {r * 100:.0f}%"


def level_cell(row: Mapping[str, Any]) -> Text:
    """A supply or tray level a non-expert reads: a bar when the level is known, else
    the printer's words (some remaining, unknown, unlimited)."""
    ratio = _number(row.get("ratio"))
    state = str(row.get("state") or "unknown")
    if ratio is not None:
        return Text(bar(ratio), style=STATE_STYLE.get(state, ""))
    # The module's own words know a waste box ("some space left") from a toner.
    words = device_text(row.get("level_text") or STATE_WORDS.get(state, state))
    words.stylize(STATE_STYLE.get(state, ""))
    return words


def state_cell(state: Any) -> Text:
    word = str(state or "unknown")
    return Text(STATE_WORDS.get(word, clean(word).replace("_", " ")), style=STATE_STYLE.get(word, ""))


def status_text(status: Status) -> Text:
    return Text(status.value, style=STATUS_STYLE.get(status, "bold red"))


def sample_value(result: ProbeResult, metric: str, **labels: str) -> float | None:
    for s in result.samples_named(metric):
        if all(s.label_dict.get(k) == v for k, v in labels.items()):
            return s.value
    return None


# --- ICMP and TCP ----------------------------------------------------------------------


def icmp_table(results: Sequence[ProbeResult]) -> Table:
    table = Table(title="ICMP echo", title_justify="left")
    table.add_column("host", overflow="fold")
    for name, justify in [("status", "left"), ("sent/recv", "right"), ("loss", "right"),
                          ("rtt ms min/avg/max", "right"), ("jitter ms", "right")]:  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True, min_width=len(name))  # type: ignore[arg-type]
    for r in results:
        sent = sample_value(r, "netmon_icmp_packets_sent")
        received = sample_value(r, "netmon_icmp_packets_received")
        loss = sample_value(r, "netmon_icmp_packet_loss_ratio")
        rtts = [sample_value(r, "netmon_icmp_rtt_seconds", stat=s) for s in ("min", "avg", "max")]
        rtt = "/".join(milliseconds(v) for v in rtts) if received and all(v is not None for v in rtts) else ""
        counts = f"{int(sent)}/{int(received or 0)}" if sent is not None else ""
        table.add_row(
            device_text(r.target), status_text(r.status), counts,
            percent(loss), rtt, milliseconds(sample_value(r, "netmon_icmp_jitter_seconds")) if received else "",
        )  # fmt: skip
    return table


def tcp_table(results: Sequence[ProbeResult]) -> Table:
    table = Table(title="TCP connect", title_justify="left")
    table.add_column("target", overflow="fold")
    table.add_column("status", no_wrap=True, min_width=11)
    table.add_column("connect ms", justify="right", no_wrap=True)
    for r in results:
        seconds = sample_value(r, "netmon_tcp_connect_seconds")
        table.add_row(device_text(r.target), status_text(r.status), milliseconds(seconds))
    return table


def problem_notes(results: Sequence[ProbeResult]) -> Text | None:
    """``target: explanation`` lines for every result that is not ok (below a table, so
    they stay readable on a narrow terminal; an ok row's explanation only repeats it)."""
    lines = [r for r in results if r.status is not Status.OK]
    if not lines:
        return None
    notes = Text()
    for i, r in enumerate(lines):
        if i:
            notes.append("\n")
        notes.append(clean(r.target), style="bold")
        notes.append(": ")
        notes.append(clean(r.explanation), style=STATUS_STYLE.get(r.status, "red"))
    return notes


# --- SNMP ------------------------------------------------------------------------------

SYSTEM_FACTS = [
    ("sys_name", "name"), ("sys_descr", "description"), ("location", "location"),
    ("contact", "contact"), ("sys_object_id", "object id"), ("uptime", "uptime"),
]  # fmt: skip
PRINTER_FACTS = [
    ("model", "model"), ("serial", "serial"), ("printer_status", "printer status"),
    ("device_status", "device status"), ("page_count", "pages printed"),
]  # fmt: skip


def header(result: ProbeResult) -> Text:
    line = Text()
    line.append(clean(result.target), style="bold")
    line.append("  ")
    line.append_text(status_text(result.status))
    line.append(f"  ({result.duration_seconds:.2f}s)  ", style="dim")
    line.append(clean(result.explanation))
    return line


def facts_grid(facts: Mapping[str, Any], order: Sequence[tuple[str, str]], title: str) -> Table | None:
    """Key/value grid of the facts in ``order`` (unknown facts are added at the end)."""
    rows = [(label, facts[key]) for key, label in order if facts.get(key) not in (None, "")]
    if not rows:
        return None
    grid = Table.grid(padding=(0, 2))
    grid.title = title
    grid.title_justify = "left"
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in rows:
        if label == "uptime" and _number(value) is not None:
            value = human_duration(value)
        grid.add_row(label, device_text(value))
    return grid


def interfaces_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Interfaces", title_justify="left")
    for name, justify in [("index", "right"), ("name", "left"), ("alias", "left"), ("admin", "left"),
                          ("oper", "left"), ("speed", "right"), ("in", "right"), ("out", "right"),
                          ("errors in/out", "right")]:  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        oper = str(row.get("oper") or "")
        errors = [row.get("in_errors"), row.get("out_errors")]
        table.add_row(
            clean(row.get("index")), device_text(row.get("name") or row.get("descr")), device_text(row.get("alias")),
            device_text(row.get("admin")), device_text(oper, "green" if oper == "up" else "red" if oper == "down" else ""),
            human_speed(row.get("speed_bps")), human_bytes(row.get("in_octets")), human_bytes(row.get("out_octets")),
            "/".join("" if e is None else clean(e) for e in errors) if any(e is not None for e in errors) else "",
        )  # fmt: skip
    return table


def storage_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Storage", title_justify="left")
    for name, justify in [("description", "left"), ("kind", "left"), ("size", "right"),
                          ("used", "right"), ("% used", "right")]:  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        ratio = _number(row.get("used_ratio"))
        style = "red" if ratio is not None and ratio >= 0.9 else ""
        table.add_row(
            device_text(row.get("description")), device_text(row.get("kind")), human_bytes(row.get("size_bytes")),
            human_bytes(row.get("used_bytes")), Text(percent(ratio), style=style),
        )  # fmt: skip
    return table


def cpus_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="CPU load (last minute)", title_justify="left")
    table.add_column("cpu")
    table.add_column("load", justify="right")
    for row in rows:
        load = _number(row.get("load_ratio", row.get("load")))
        if load is not None and load > 1:  # hrProcessorLoad is a percentage
            load /= 100
        table.add_row(clean(row.get("index", row.get("cpu", ""))), bar(load) if load is not None else "")
    return table


def key_value_table(rows: Sequence[Mapping[str, Any]], title: str) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.title = title
    grid.title_justify = "left"
    grid.add_column(style="bold")
    grid.add_column()
    for row in rows:
        for key, value in row.items():
            if value is None or value == "":
                continue
            grid.add_row(field_label(key), device_text(show_value(key, value)))
    return grid


def field_label(key: str) -> str:
    """``charge_ratio`` -> ``charge``, ``runtime_seconds`` -> ``runtime`` (units show in values)."""
    for suffix in ("_ratio", "_seconds", "_bytes", "_bps"):
        if key.endswith(suffix) and len(key) > len(suffix):
            key = key.removesuffix(suffix)
            break
    return clean(key).replace("_", " ")


def show_value(key: str, value: Any) -> str:
    """A record value in words: ratios as %, seconds as durations, yes/no, lists joined,
    per-line dicts as ``line: value``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{clean(k)}: {show_value(key, v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(show_value(key, v) for v in value) or "none"
    if _number(value) is not None and key.endswith("ratio"):
        return percent(value)
    if _number(value) is not None and key.endswith("seconds"):
        return human_duration(value)
    if key.endswith("bytes"):
        return human_bytes(value)
    if key.endswith("bps"):
        return human_speed(value)
    return clean(value)


def supplies_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Supplies", title_justify="left")
    table.add_column("supply")
    table.add_column("colour")
    table.add_column("level")
    table.add_column("state")
    for row in rows:
        desc = row.get("description") or row.get("type") or f"supply {clean(row.get('index'))}"
        kind = " (waste)" if row.get("class") == "receptacle" else ""
        text = device_text(desc)
        text.append(kind, style="dim")
        table.add_row(text, device_text(row.get("color")), level_cell(row), state_cell(row.get("state")))
    return table


def trays_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Paper trays", title_justify="left")
    table.add_column("tray")
    table.add_column("paper")
    table.add_column("level")
    table.add_column("state")
    for row in rows:
        table.add_row(
            device_text(row.get("name") or f"tray {clean(row.get('index'))}"), device_text(row.get("media")),
            level_cell(row), state_cell(row.get("state")),
        )  # fmt: skip
    return table


def conditions_view(rows: Sequence[Mapping[str, Any]]) -> Text:
    """Active conditions in words, one per line ("Paper jam", "Toner low")."""
    out = Text("Active conditions:", style="bold")
    for row in rows:
        words = row.get("description") or clean(row.get("condition")).replace("_", " ").capitalize()
        out.append("\n  ⚠ ")
        out.append(clean(words), style="yellow")
    return out


SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow"}


def alerts_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Printer alerts", title_justify="left")
    table.add_column("severity", no_wrap=True)
    table.add_column("alert")
    table.add_column("where")
    for row in rows:
        severity = clean(row.get("severity") or "other")
        where = " ".join(clean(v) for v in (row.get("group"), row.get("group_index")) if v not in (None, ""))
        table.add_row(
            Text(severity.replace("_", " "), style=SEVERITY_STYLE.get(severity, "")),
            device_text(row.get("description") or row.get("meaning") or row.get("code")),
            device_text(where.replace("_", " ")),
        )
    return table


def covers_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Covers", title_justify="left")
    table.add_column("cover")
    table.add_column("status")
    for row in rows:
        style = "bold red" if row.get("open") is True else "green" if row.get("open") is False else ""
        table.add_row(device_text(row.get("name")), device_text(row.get("status"), style))
    return table


def generic_table(rows: Sequence[Any], title: str) -> Table:
    """Any list of records: columns are the keys in order of first appearance."""
    table = Table(title=clean(title).replace("_", " ").capitalize(), title_justify="left")
    columns: list[str] = []
    for row in rows:
        for key in row if isinstance(row, Mapping) else ["value"]:
            if key not in columns:
                columns.append(key)
    for col in columns:
        table.add_column(clean(col))
    for row in rows:
        data = row if isinstance(row, Mapping) else {"value": row}
        table.add_row(*(device_text(show_value(str(c), data.get(c))) for c in columns))
    return table


#: Record group -> its view and the keys a row must have some of to fit that view.
RENDERERS: dict[str, tuple[Callable[[Sequence[Mapping[str, Any]]], RenderableType], frozenset[str]]] = {
    "interfaces": (interfaces_table, frozenset({"name", "descr", "oper", "admin"})),
    "storage": (storage_table, frozenset({"description", "size_bytes", "used_bytes"})),
    "cpus": (cpus_table, frozenset({"load_ratio", "load"})),
    "ups": (lambda rows: key_value_table(rows, "UPS"), frozenset()),
    "supplies": (supplies_table, frozenset({"description", "ratio", "state"})),
    "trays": (trays_table, frozenset({"name", "ratio", "state"})),
    "conditions": (conditions_view, frozenset({"condition", "description"})),
    "alerts": (alerts_table, frozenset({"severity", "description", "meaning", "code"})),
    "covers": (covers_table, frozenset({"name", "status"})),
}


def _fits(rows: Sequence[Any], keys: frozenset[str]) -> bool:
    return all(isinstance(r, Mapping) and (not keys or keys & r.keys()) for r in rows)


PRINTER_ORDER = ["supplies", "trays", "conditions", "alerts", "covers"]


def records_view(records: Mapping[str, Any], order: Iterable[str] = ()) -> list[RenderableType]:
    """One table per record group: known shapes get their table, others a generic one."""
    keys = [k for k in order if k in records] + [k for k in records if k not in order]
    out: list[RenderableType] = []
    for key in keys:
        rows = records[key]
        if not isinstance(rows, list) or not rows:
            continue
        renderer, needed = RENDERERS.get(key, (None, frozenset()))
        table: RenderableType | None = None
        if renderer is not None and _fits(rows, needed):
            try:
                table = renderer(rows)
            except (KeyError, TypeError, ValueError, AttributeError):
                table = None
        out.append(table if table is not None else generic_table(rows, key))
    return out


def snmp_view(result: ProbeResult, printer: bool = False) -> RenderableType:
    parts: list[RenderableType] = [header(result)]
    known = [k for k, _ in (PRINTER_FACTS + SYSTEM_FACTS)] if printer else [k for k, _ in SYSTEM_FACTS]
    order = (PRINTER_FACTS + SYSTEM_FACTS) if printer else SYSTEM_FACTS
    extra = [(k, k.replace("_", " ")) for k in result.facts if k not in known]
    grid = facts_grid(result.facts, [*order, *extra], "Printer" if printer else "System")
    if grid is not None:
        parts.append(grid)
    parts.extend(records_view(result.records, PRINTER_ORDER if printer else ()))
    if printer and result.status.success and not result.records.get("conditions"):
        if result.samples_named("netmon_printer_condition"):
            parts.append(Text("No active conditions: no jam, no paper or toner problem, doors closed.",
                              style="green"))
        else:
            parts.append(Text("This printer does not report error conditions "
                              "(no hrPrinterDetectedErrorState); check it in person if in doubt.",
                              style="dim"))
    return Group(*parts)


def render(kind: str, results: Sequence[ProbeResult], console: Console) -> None:
    """Print results of one command (``icmp``, ``tcp``, ``snmp``, ``printer``)."""
    if kind in ("icmp", "tcp"):
        console.print(icmp_table(results) if kind == "icmp" else tcp_table(results))
        notes = problem_notes(results)
        if notes is not None:
            console.print(notes)
    else:
        for i, result in enumerate(results):
            if i:
                console.print()
            console.print(snmp_view(result, printer=kind == "printer"))
