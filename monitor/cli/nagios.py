"""Nagios/Icinga/Checkmk plugin mode: thresholds, states, perfdata and the status line.

Pure functions over :class:`probes.result.ProbeResult`, so the whole plugin logic is
unit-tested without a device. Conventions (Nagios Plugin Development Guidelines):

* one status line ``NETMON ICMP OK - summary | perfdata`` on stdout, further lines are
  long output; exit code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN;
* perfdata ``'label'=value[UOM];warn;crit;min;max`` with UOM ``s``, ``%`` or ``c``;
  labels are quoted when they contain spaces, quotes inside doubled.

How a probe status maps to a plugin state:

* ``ok`` -> OK (thresholds may raise it), ``partial`` -> WARNING;
* ``timeout``, ``unreachable``, ``refused``, ``dns_error``, ``auth_error``,
  ``protocol_error`` -> CRITICAL: the device or service is not usable as configured;
* ``permission_error``, ``config_error``, ``error`` -> UNKNOWN: the check itself could
  not run, so nothing is known about the device.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from probes.result import ProbeResult, Status
from probes.settings import parse_duration


class NagiosState(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class ThresholdError(ValueError):
    """A ``--warning``/``--critical`` value that cannot be used; the message says why."""


STATUS_STATE: dict[Status, NagiosState] = {
    Status.OK: NagiosState.OK,
    Status.PARTIAL: NagiosState.WARNING,
    Status.TIMEOUT: NagiosState.CRITICAL,
    Status.UNREACHABLE: NagiosState.CRITICAL,
    Status.REFUSED: NagiosState.CRITICAL,
    Status.DNS_ERROR: NagiosState.CRITICAL,
    Status.AUTH_ERROR: NagiosState.CRITICAL,
    Status.PROTOCOL_ERROR: NagiosState.CRITICAL,
    Status.PERMISSION_ERROR: NagiosState.UNKNOWN,
    Status.CONFIG_ERROR: NagiosState.UNKNOWN,
    Status.ERROR: NagiosState.UNKNOWN,
}


def state_of(status: Status) -> NagiosState:
    return STATUS_STATE.get(status, NagiosState.UNKNOWN)


# --- thresholds ------------------------------------------------------------------------


def _milliseconds(text: str) -> float:
    """``100`` (ms), ``100ms``, ``0.5s`` -> seconds."""
    text = text.strip()
    try:
        return float(text) / 1000.0
    except ValueError:
        pass
    try:
        return parse_duration(text)
    except ValueError:
        raise ThresholdError(f"{text!r} is not a time; use milliseconds (100) or 100ms/0.5s") from None


def _percent(text: str) -> float:
    """``20`` or ``20%`` -> 20.0 (0-100)."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ThresholdError(f"{text!r} is not a percentage; use e.g. 20 or 20%") from None
    if not 0 <= value <= 100:
        raise ThresholdError(f"{text!r} is not a percentage from 0 to 100")
    return value


Parser = Callable[[str], float]

#: Threshold keys each command accepts, with their parser (values stored in base units:
#: seconds for times, 0-100 for percentages).
THRESHOLD_KEYS: dict[str, dict[str, Parser]] = {
    "icmp": {"rtt": _milliseconds, "loss": _percent},
    "tcp": {"time": _milliseconds},
    "printer": {"supply": _percent},
    "snmp": {},
}

#: Keys where a *lower* value is worse (alert when below the threshold).
LOWER_IS_WORSE = {"supply"}

THRESHOLD_HELP = """\
thresholds (--nagios): KEY=VALUE[,KEY=VALUE], one list for --warning, one for --critical
  icmp     rtt=MS      average round-trip time above MS milliseconds (or 100ms, 0.5s)
           loss=PCT    packet loss above PCT percent
  tcp      time=MS     connect time above MS milliseconds
  printer  supply=PCT  any consumable (toner, ink, drum) below PCT percent
example: --warning rtt=100,loss=20 --critical rtt=500,loss=60"""


def parse_thresholds(text: str | None, kind: str) -> dict[str, float]:
    """Parse ``rtt=100,loss=20`` for the command ``kind``; raise ThresholdError."""
    allowed = THRESHOLD_KEYS.get(kind, {})
    out: dict[str, float] = {}
    if not text:
        return out
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key or not value.strip():
            raise ThresholdError(f"{part.strip()!r}: expected KEY=VALUE, e.g. {_example(kind)}")
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none (status only)"
            raise ThresholdError(f"unknown threshold {key!r} for {kind}; allowed: {names}")
        out[key] = allowed[key](value)
    return out


def check_threshold_order(warning: Mapping[str, float], critical: Mapping[str, float]) -> None:
    """A critical threshold must be at least as bad as the warning one."""
    for key in warning.keys() & critical.keys():
        w, c = warning[key], critical[key]
        if (c > w) if key in LOWER_IS_WORSE else (c < w):
            raise ThresholdError(f"critical {key}={c:g} is less severe than warning {key}={w:g}")


def _example(kind: str) -> str:
    return {"icmp": "rtt=100,loss=20", "tcp": "time=200", "printer": "supply=20"}.get(kind, "-")


# --- perfdata --------------------------------------------------------------------------


def perf_label(label: str) -> str:
    """Quote a label when needed; ``=`` and ``'`` are not allowed bare."""
    label = label.replace("=", "_").replace("\n", " ")
    if re.search(r"[\s']", label):
        return "'" + label.replace("'", "''") + "'"
    return label


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


@dataclass(frozen=True, slots=True)
class Perf:
    """One perfdata item; ``warn``/``crit`` are already in Nagios range syntax."""

    label: str
    value: float
    uom: str = ""
    warn: str = ""
    crit: str = ""
    min: float | None = None
    max: float | None = None

    def format(self) -> str:
        value = f"{self.value:.6f}" if self.uom == "s" else _num(self.value)
        fields = [self.warn, self.crit, _opt(self.min), _opt(self.max)]
        while fields and not fields[-1]:
            fields.pop()
        return ";".join([f"{perf_label(self.label)}={value}{self.uom}", *fields])


def _opt(value: float | None) -> str:
    return "" if value is None else _num(value)


def _upper(thresholds: Mapping[str, float], key: str, scale: float = 1.0) -> str:
    """Nagios range ``N`` = alert above N."""
    return _num(thresholds[key] * scale) if key in thresholds else ""


def _lower(thresholds: Mapping[str, float], key: str) -> str:
    """Nagios range ``N:`` = alert below N."""
    return f"{_num(thresholds[key])}:" if key in thresholds else ""


# --- reports ---------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    """A plugin answer: state, one-line summary, perfdata, extra lines."""

    state: NagiosState
    summary: str
    perfdata: list[Perf] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def render(self, service: str) -> str:
        line = f"NETMON {service.upper()} {self.state.name} - {one_line(self.summary)}"
        if self.perfdata:
            line += " | " + " ".join(p.format() for p in self.perfdata)
        return "\n".join([line, *(one_line(d) for d in self.details)])


def one_line(text: str) -> str:
    """No newlines and no ``|`` (it starts perfdata) in plugin text."""
    return re.sub(r"\s+", " ", text.replace("|", "/")).strip()


#: Severity order OK < WARNING < UNKNOWN < CRITICAL (a known outage beats "could not check").
SEVERITY = {NagiosState.OK: 0, NagiosState.WARNING: 1, NagiosState.UNKNOWN: 2, NagiosState.CRITICAL: 3}


def _worse(a: NagiosState, b: NagiosState) -> NagiosState:
    return a if SEVERITY[a] >= SEVERITY[b] else b


def worst(states: Iterable[NagiosState]) -> NagiosState:
    out = NagiosState.OK
    for state in states:
        out = _worse(out, state)
    return out


def _grade(value: float, key: str, warning: Mapping[str, float], critical: Mapping[str, float]) -> NagiosState:
    lower = key in LOWER_IS_WORSE
    if key in critical and (value < critical[key] if lower else value > critical[key]):
        return NagiosState.CRITICAL
    if key in warning and (value < warning[key] if lower else value > warning[key]):
        return NagiosState.WARNING
    return NagiosState.OK


def _sample(result: ProbeResult, metric: str, **labels: str) -> float | None:
    for s in result.samples_named(metric):
        if all(s.label_dict.get(k) == v for k, v in labels.items()):
            return s.value
    return None


#: One target's contribution to a report: its state, its text, its perfdata.
Part = tuple[NagiosState, str, list[Perf]]


def _combine(name: str, parts: Sequence[Part]) -> Report:
    """One report from per-target parts: worst state, problems first in the summary."""
    state = worst(p[0] for p in parts)
    perf = [pf for p in parts for pf in p[2]]
    if len(parts) == 1:
        return Report(state, parts[0][1], perf)
    bad = [p[1] for p in parts if p[0] is not NagiosState.OK]
    counts = ", ".join(
        f"{sum(p[0] is s for p in parts)} {s.name}" for s in NagiosState if any(p[0] is s for p in parts)
    )
    summary = f"{len(parts)} {name}: {counts}" + (f"; {'; '.join(bad)}" if bad else "")
    return Report(state, summary, perf, [p[1] for p in parts])


def check_icmp(
    results: Sequence[ProbeResult], warning: Mapping[str, float], critical: Mapping[str, float]
) -> Report:
    """Loss (%) and average rtt (s) against the thresholds, per host."""
    parts: list[Part] = []
    for r in results:
        prefix = f"{r.target} " if len(results) > 1 else ""
        sent = _sample(r, "netmon_icmp_packets_sent")
        received = _sample(r, "netmon_icmp_packets_received")
        loss = _sample(r, "netmon_icmp_packet_loss_ratio")
        avg = _sample(r, "netmon_icmp_rtt_seconds", stat="avg")
        perf = []
        state = state_of(r.status)
        if loss is not None:
            pl = loss * 100
            perf.append(Perf(f"{prefix}pl", pl, "%", _upper(warning, "loss"), _upper(critical, "loss"), 0, 100))
        if avg is not None and not math.isnan(avg):
            perf.insert(0, Perf(f"{prefix}rtt", avg, "s", _upper(warning, "rtt"), _upper(critical, "rtt"), 0))
        if r.status.success:
            graded = [state]
            if loss is not None:
                graded.append(_grade(loss * 100, "loss", warning, critical))
            if avg is not None:
                graded.append(_grade(avg, "rtt", warning, critical))
            state = worst(graded)
            replies = f"{_num(received or 0)}/{_num(sent or 0)} replies"
            text = f"{r.target}: {replies}"
            if avg is not None:
                text += f", rtt {avg * 1000:.2f} ms"
            if loss:
                text += f", {loss * 100:.0f}% loss"
        else:
            text = f"{r.target}: {r.status.value} - {r.explanation}"
        parts.append((state, text, perf))
    return _combine("hosts", parts)


def check_tcp(
    results: Sequence[ProbeResult], warning: Mapping[str, float], critical: Mapping[str, float]
) -> Report:
    parts: list[Part] = []
    for r in results:
        prefix = f"{r.target} " if len(results) > 1 else ""
        seconds = _sample(r, "netmon_tcp_connect_seconds")
        state = state_of(r.status)
        perf = []
        if r.status.success and seconds is not None:
            state = worst([state, _grade(seconds, "time", warning, critical)])
            perf.append(Perf(f"{prefix}time", seconds, "s", _upper(warning, "time"), _upper(critical, "time"), 0))
            text = f"{r.target}: connected in {seconds * 1000:.2f} ms"
        else:
            text = f"{r.target}: {r.status.value} - {r.explanation}"
        parts.append((state, text, perf))
    return _combine("ports", parts)


def check_snmp(results: Sequence[ProbeResult]) -> Report:
    """Status only, plus the run time as perfdata."""
    parts: list[Part] = []
    for r in results:
        prefix = f"{r.target} " if len(results) > 1 else ""
        perf = [Perf(f"{prefix}time", r.duration_seconds, "s", min=0)] if r.status.success else []
        name = r.facts.get("sys_name") or ""
        who = f"{r.target} ({name})" if name and name != r.target else r.target
        parts.append((state_of(r.status), f"{who}: {r.status.value} - {r.explanation}", perf))
    return _combine("devices", parts)


#: hrPrinterDetectedErrorState conditions that stop the printer (CRITICAL); every
#: other active condition is a WARNING.
CRITICAL_CONDITIONS = {
    "no_paper", "no_toner", "jammed", "door_open", "offline", "output_full",
    "marker_supply_missing", "input_tray_missing", "output_tray_missing",
}  # fmt: skip


#: prtAlertSeverityLevel -> state; "other" and binary change events are not graded.
ALERT_STATES = {"critical": NagiosState.CRITICAL, "warning": NagiosState.WARNING}


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def check_printer(
    results: Sequence[ProbeResult], warning: Mapping[str, float], critical: Mapping[str, float]
) -> Report:
    """Supplies, trays and conditions of each printer.

    Consumables: level below ``supply`` thresholds, or the printer's own state ``low``
    (WARNING) / ``empty`` (CRITICAL). Receptacles (waste toner): ``nearly_full`` WARNING,
    ``full`` CRITICAL. Active conditions: see :data:`CRITICAL_CONDITIONS`, others
    WARNING. Alert table rows by their severity; an open cover is CRITICAL. Paper trays
    are shown but not graded: a bypass tray is empty most of the time, and a real lack
    of paper is reported by the printer as a condition.
    """
    parts: list[Part] = []
    for r in results:
        if not r.status.success:
            parts.append((state_of(r.status), f"{r.target}: {r.status.value} - {r.explanation}", []))
            continue
        model = r.facts.get("model") or r.target
        problems: list[tuple[NagiosState, str]] = []
        perf: list[Perf] = []
        lowest: tuple[float, str] | None = None
        supplies = _rows(r, "supplies")
        names = [str(row.get("description") or "supply") for row in supplies]
        for row, desc in zip(supplies, names, strict=True):
            if names.count(desc) > 1:  # perfdata labels must be unique
                desc = f"{desc} {row.get('index', '')}".strip()
            state_word = str(row.get("state") or "unknown")
            ratio = _as_float(row.get("ratio"))
            receptacle = row.get("class") == "receptacle"
            pct = None if ratio is None else ratio * 100
            if receptacle:
                grade = {"full": NagiosState.CRITICAL, "nearly_full": NagiosState.WARNING}.get(
                    state_word, NagiosState.OK
                )
                if pct is not None:
                    perf.append(Perf(desc, round(pct, 1), "%", min=0, max=100))
            else:
                grade = {"empty": NagiosState.CRITICAL, "low": NagiosState.WARNING}.get(
                    state_word, NagiosState.OK
                )
                if pct is not None:
                    grade = worst([grade, _grade(pct, "supply", warning, critical)])
                    perf.append(
                        Perf(desc, round(pct, 1), "%", _lower(warning, "supply"), _lower(critical, "supply"), 0, 100)
                    )
                    if lowest is None or pct < lowest[0]:
                        lowest = (pct, desc)
            if grade is not NagiosState.OK:
                level = f"{pct:.0f}%" if pct is not None else state_word.replace("_", " ")
                problems.append((grade, f"{desc} {level}"))
        for row in _rows(r, "alerts"):
            alert_state = ALERT_STATES.get(str(row.get("severity")))
            if alert_state is not None:
                words = row.get("description") or row.get("meaning") or "printer alert"
                problems.append((alert_state, str(words)))
        for row in _rows(r, "covers"):
            if row.get("open") is True:
                problems.append((NagiosState.CRITICAL, f"{row.get('name') or 'cover'} open"))
        for row in _rows(r, "conditions"):
            cond = str(row.get("condition") or "")
            grade = NagiosState.CRITICAL if cond in CRITICAL_CONDITIONS else NagiosState.WARNING
            problems.append((grade, str(row.get("description") or cond.replace("_", " "))))
        state = worst([state_of(r.status), *(p[0] for p in problems)])
        if problems:
            problems.sort(key=lambda p: -SEVERITY[p[0]])
            text = f"{model}: " + ", ".join(p[1] for p in problems)
        elif lowest is not None:
            text = f"{model}: supplies ok, lowest {lowest[1]} {lowest[0]:.0f}%"
        else:
            text = f"{model}: {r.explanation}"
        parts.append((state, text, perf))
    return _combine("printers", parts)


def _rows(result: ProbeResult, key: str) -> list[Mapping[str, Any]]:
    rows = result.records.get(key) or []
    return [row for row in rows if isinstance(row, Mapping)]


def report_for(
    kind: str, results: Sequence[ProbeResult], warning: Mapping[str, float], critical: Mapping[str, float]
) -> Report:
    if not results:
        return Report(NagiosState.UNKNOWN, "no target given")
    if kind == "icmp":
        return check_icmp(results, warning, critical)
    if kind == "tcp":
        return check_tcp(results, warning, critical)
    if kind == "printer":
        return check_printer(results, warning, critical)
    return check_snmp(results)
