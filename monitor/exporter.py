"""The Prometheus exporter: one Collector that renders the result store's latest results.

:func:`render` reads one snapshot of the store and writes the text format directly, one
family per catalogued metric name, so there are no per-probe global metric objects and
no stale series (:class:`NetmonCollector` yields the same series as client_python
metric families, for code that wants a registry).

Every series carries the identity labels ``target`` and ``probe`` plus the target's
static labels (role, site, building, room, group, ...), so dashboards and alerts need no
joins. A sample's own label never overrides an identity label: if one clashes, it is
kept as ``exported_<name>`` (Prometheus's own rule for scraped labels that clash).

``python -m monitor.exporter --write-metrics-doc`` regenerates METRICS.md.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import threading
import time
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import metadata
from itertools import groupby
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _go_float

from monitor.store.results import ResultStore, Shape, StoredResult
from probes.metrics import METRICS, MetricDef
from probes.result import Labels, Sample

log = logging.getLogger("netmon.exporter")

METRICS_DOC = Path(__file__).resolve().parents[1] / "METRICS.md"

#: Metrics the exporter itself adds (not emitted by probes).
EXPORTER_METRICS: dict[str, MetricDef] = {
    "netmon_probe_last_run_timestamp_seconds": MetricDef(
        "gauge", "Unix time the last probe run of this target finished."
    ),
    "netmon_build_info": MetricDef(
        "gauge", "Version of netmon serving these metrics; value is always 1."
    ),
}

#: The labels each metric's samples may carry besides the identity labels; some appear
#: only when they tell rows apart (``device`` when a printer has several, ``marker``).
SAMPLE_LABELS: dict[str, tuple[str, ...]] = {
    "netmon_probe_success": (),
    "netmon_probe_duration_seconds": (),
    "netmon_probe_status": ("status",),
    "netmon_icmp_packets_sent": (),
    "netmon_icmp_packets_received": (),
    "netmon_icmp_packet_loss_ratio": (),
    "netmon_icmp_rtt_seconds": ("stat",),
    "netmon_icmp_jitter_seconds": (),
    "netmon_tcp_connect_seconds": ("port",),
    "netmon_device_info": ("sys_name", "sys_descr", "sys_object_id", "location", "contact"),
    "netmon_device_uptime_seconds": ("source",),
    "netmon_interface_info": ("if_index", "if_name", "if_alias", "if_descr", "if_type"),
    "netmon_interface_oper_up": ("if_index", "if_name", "if_alias", "if_descr"),
    "netmon_interface_admin_up": ("if_index", "if_name", "if_alias", "if_descr"),
    "netmon_interface_oper_status": ("if_index", "if_name", "if_alias", "if_descr", "state"),
    "netmon_interface_speed_bytes": ("if_index", "if_name", "if_alias", "if_descr"),
    "netmon_interface_receive_bytes_total": ("if_index", "if_name", "if_alias", "if_descr"),
    "netmon_interface_transmit_bytes_total": ("if_index", "if_name", "if_alias", "if_descr"),
    "netmon_interface_receive_errors_total": ("if_index", "if_name", "if_alias", "if_descr"),
    "netmon_interface_transmit_errors_total": ("if_index", "if_name", "if_alias", "if_descr"),
    "netmon_interface_receive_discards_total": ("if_index", "if_name", "if_alias", "if_descr"),
    "netmon_interface_transmit_discards_total": ("if_index", "if_name", "if_alias", "if_descr"),
    "netmon_printer_supply_level_ratio": ("index", "supply", "type", "color", "class"),
    "netmon_printer_supply_state": ("index", "supply", "type", "color", "class", "state"),
    "netmon_printer_tray_level_ratio": ("index", "tray"),
    "netmon_printer_tray_state": ("index", "tray", "state"),
    "netmon_printer_condition": ("device", "condition"),
    "netmon_printer_status": ("device", "status"),
    "netmon_printer_alert_info": ("index", "severity", "group", "code", "description"),
    "netmon_printer_cover_open": ("index", "cover"),
    "netmon_printer_pages_total": ("marker",),
    "netmon_host_cpu_load_ratio": ("cpu",),
    "netmon_host_storage_size_bytes": ("index", "storage", "kind"),
    "netmon_host_storage_used_bytes": ("index", "storage", "kind"),
    "netmon_host_processes": (),
    "netmon_host_users": (),
    "netmon_ups_on_battery": (),
    "netmon_ups_battery_status": ("state",),
    "netmon_ups_battery_charge_ratio": (),
    "netmon_ups_battery_runtime_seconds": (),
    "netmon_ups_battery_replace_needed": (),
    "netmon_ups_load_ratio": ("line",),
    "netmon_ups_input_voltage_volts": ("line",),
    "netmon_ups_output_voltage_volts": ("line",),
    "netmon_topology_link_info": ("protocol", "if_index", "if_name", "remote_name", "remote_port",
                                  "remote_chassis"),
    "netmon_topology_fdb_entries": ("if_index", "if_name"),
    "netmon_topology_table_rows": ("table",),
    "netmon_interface_uplink": ("if_index", "if_name", "neighbour"),
    "netmon_interface_quiet": ("if_index", "if_name"),
    "netmon_snmp_varbinds": (),
    "netmon_snmp_requests": (),
    "netmon_scheduler_lag_seconds": ("stat",),
    "netmon_scheduler_jobs": ("probe",),
    "netmon_probe_runs_total": ("probe", "status"),
    "netmon_scheduler_skipped_runs_total": ("probe", "reason"),
    "netmon_event_loop_tasks": (),
    "netmon_process_open_fds": (),
    "netmon_config_last_reload_successful": (),
    "netmon_config_last_reload_success_timestamp_seconds": (),
    "netmon_config_reloads_total": ("result",),
    "netmon_web_auth_failures_total": (),
    "netmon_web_auth_rate_limited_total": ("reason",),
    "netmon_probe_last_run_timestamp_seconds": (),
    "netmon_alerts": ("state", "severity", "suppressed"),
    "netmon_notifications_total": ("receiver", "integration", "outcome"),
    "netmon_notifications_pending": ("receiver", "integration"),
    "netmon_state_store_ok": (),
    "netmon_state_store_faults_total": ("reason",),
    "netmon_history_writes_total": (),
    "netmon_history_dropped_total": (),
    "netmon_history_errors_total": (),
    "netmon_history_write_seconds_total": (),
    "netmon_history_size_bytes": (),
    "netmon_history_queue": (),
    "netmon_build_info": ("version",),
}


def version() -> str:
    try:
        return metadata.version("netmon")
    except metadata.PackageNotFoundError:
        return "unknown"


def identity_labels(stored: StoredResult) -> dict[str, str]:
    """``target``, ``probe`` and the target's static labels, in that order."""
    return {"target": stored.target, "probe": stored.probe, **stored.labels}


def series_labels(identity: Mapping[str, str], own: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Identity labels plus a sample's own; a clashing own label becomes ``exported_<name>``."""
    merged = dict(identity)
    for name, value in own:
        while name in merged:
            name = f"exported_{name}"
        merged[name] = value
    return merged


def _family(name: str, definition: MetricDef) -> Metric:
    if definition.type == "counter":
        # client_python names a counter family without the suffix it adds to samples.
        return CounterMetricFamily(name.removesuffix("_total"), definition.help)
    return GaugeMetricFamily(name, definition.help)


def _series(
    store: ResultStore, now: float, extra: Iterable[Sample], version_: str
) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every series to export, by metric name: the store's fresh results, the ``extra``
    (self-)samples and ``netmon_build_info``. Uncatalogued names and duplicate series are
    left out with a warning."""
    by_metric: dict[str, list[tuple[dict[str, str], float]]] = {}
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()

    def add(metric: str, labels: dict[str, str], value: float) -> None:
        if metric not in by_metric and metric not in METRICS and metric not in EXPORTER_METRICS:
            log.warning("not exporting %s: it is not in probes.metrics.METRICS", metric)
            return
        key = (metric, frozenset(labels.items()))
        if key in seen:
            log.warning("not exporting a duplicate series %s%s", metric, labels)
            return
        seen.add(key)
        by_metric.setdefault(metric, []).append((labels, value))

    for stored in store.snapshot(now):
        identity = identity_labels(stored)
        for metric, labels, value in stored.result.series():
            add(metric, series_labels(identity, labels), value)
        add("netmon_probe_last_run_timestamp_seconds", identity, stored.finished_at)
    for sample in extra:
        add(sample.metric, sample.label_dict, sample.value)
    add("netmon_build_info", {"version": version_}, 1.0)
    return by_metric


def _catalogue_order(by_metric: Mapping[str, object]) -> list[str]:
    return [name for name in [*METRICS, *EXPORTER_METRICS] if name in by_metric]


class NetmonCollector(Collector):
    """The same series as :func:`render`, as client_python metric families (for code
    that wants a registry); reads the store, never probes."""

    def __init__(
        self,
        store: ResultStore,
        clock: Callable[[], float] = time.time,
        extra: Callable[[], Iterable[Sample]] = tuple,
    ) -> None:
        self.store = store
        self.clock = clock
        #: Samples not tied to a target (the scheduler's self-metrics), read per collect.
        self.extra = extra
        self.version = version()

    def describe(self) -> list[Metric]:
        """Nothing: registering this collector must not trigger a collection."""
        return []

    def collect(self) -> Iterator[Metric]:
        by_metric = _series(self.store, self.clock(), self.extra(), self.version)
        for name in _catalogue_order(by_metric):
            family = _family(name, METRICS.get(name) or EXPORTER_METRICS[name])
            for labels, value in by_metric[name]:
                family.add_sample(name, labels, value)
            yield family


def _go(value: float) -> str:
    """A sample value as Go formats it (``+Inf``, ``NaN``, ``1e+06``)."""
    text: str = _go_float(value)  # type: ignore[no-untyped-call]
    return text


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def _line(name: str, items: Iterable[tuple[str, str]], value: float) -> bytes:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
    text = f"{name}{{{inner}}} {_go(value)}\n" if inner else f"{name} {_go(value)}\n"
    return text.encode("utf-8")


# --- the rendering of stored results -----------------------------------------------------
#
# A series' line is written as pieces: the metric name, the label fragments, the value.
# Fragments are runs of consecutive labels in name order: a run of the sample's own
# labels is rendered once per shape (so every target with that shape shares it), a run
# of identity labels (target, probe, static labels) once per target. A target's
# template (the pieces of all its series, values left out) lives as long as its shape
# and labels do; a new result of the same shape only formats its values. A scrape
# extends one list per family with templates and values and joins them in chunks.

_LAST_RUN = "netmon_probe_last_run_timestamp_seconds"
_EMPTY = b""
#: Formatted values worth keeping: integral, small (0/1 states, counts, indexes).
_VALUES: dict[float, bytes] = {}
_VALUES_MAX = 1 << 16
_NAMES: dict[str, bytes] = {}
#: An identity fragment: labels [start:stop] of the sorted identity labels, first, last.
_IdFragment = tuple[int, int, bool, bool]
#: One family's run of a template: metric, pieces [start:stop], pieces per series
#: (the last one the value), values [start:stop].
_Span = tuple[str, int, int, int, int, int]
Key = tuple[str, str]
#: Own-label runs by their labels and whether they open and close the label set.
_Runs = dict[tuple[Labels, bool, bool], bytes]
#: A shape and the sorted names of the identity labels it is written with.
_ShapeKey = tuple[Shape, tuple[str, ...]]


def _value(value: float) -> bytes:
    """``value`` as Go formats it, with the line's newline."""
    text = _VALUES.get(value)
    if text is None or (not value and math.copysign(1.0, value) < 0):  # -0.0 == 0.0
        text = f"{_go(value)}\n".encode()
        keep = value.is_integer() and abs(value) <= 1e6 and len(_VALUES) < _VALUES_MAX
        if keep and (value or math.copysign(1.0, value) > 0):
            _VALUES[value] = text
    return text


def _name(metric: str) -> bytes:
    text = _NAMES.get(metric)
    if text is None:
        text = _NAMES[metric] = metric.encode()
    return text


def _items_text(items: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in items)


def _punctuate(text: str, first: bool, last: bool) -> bytes:
    return f"{'{' if first else ''}{text}{'} ' if last else ','}".encode()


class _ShapeLayout:
    """How the series of one :class:`Shape` are written for targets whose identity
    labels have the names ``names``: which samples are exported in which order, grouped
    by family (``spans``), and the identity fragments a target fills in. The first
    target's pieces come from a template in which ints stand for identity fragments;
    later targets' are the first target's (the prototype) with its fragments swapped."""

    __slots__ = ("_template", "id_fragments", "order", "prototype", "spans", "warnings")

    def __init__(self, shape: Shape, names: tuple[str, ...]) -> None:
        codes: dict[_IdFragment, int] = {}
        runs: _Runs = {}  # one object per own-label run
        # A label set serves several metrics (a port's counters): named and cut once;
        # label sets with the same names (every port) are cut by one plan.
        own_of: dict[Labels, tuple[Labels, list[bytes | int]]] = {}
        plans: dict[tuple[str, ...], _Plan] = {}
        families: dict[str, list[tuple[int, list[bytes | int]]]] = {}
        seen: set[tuple[str, Labels]] = set()
        #: (metric, None) for an uncatalogued sample, (metric, own items) for a duplicate.
        self.warnings: list[tuple[str, Labels | None]] = []
        for i, (metric, labels) in enumerate(zip(shape.metrics, shape.labels, strict=True)):
            if metric not in METRICS:
                self.warnings.append((metric, None))
                continue
            known = own_of.get(labels)
            if known is None:
                label_names = tuple(name for name, _ in labels)
                plan = plans.get(label_names)
                if plan is None:
                    plan = plans[label_names] = _Plan(names, label_names, codes)
                known = own_of[labels] = plan.cut(labels, runs)
            items, fragments = known
            if (metric, items) in seen:
                self.warnings.append((metric, items))
                continue
            seen.add((metric, items))
            families.setdefault(metric, []).append((i, fragments))
        families[_LAST_RUN] = [(-1, _Plan(names, (), codes).cut((), runs)[1])]
        template: list[bytes | int] = []
        order = array("i")  # the sample behind each value, in template order
        spans: list[_Span] = []
        for metric, rows in families.items():
            width = max(len(fragments) for _, fragments in rows)
            name = _name(metric)
            start, first_value = len(template), len(order)
            for i, fragments in rows:
                template.append(name)
                template += fragments
                template += [_EMPTY] * (width - len(fragments) + 1)  # padding; the value
                order.append(i)
            spans.append((metric, start, len(template), width + 2, first_value, len(order)))
        order.pop()  # the last run's value is the result's finish time, not a sample
        self._template: list[bytes | int] | None = template
        self.order = order
        self.spans = tuple(spans)
        self.id_fragments = tuple(sorted(codes, key=codes.__getitem__))
        self.prototype: _Layout | None = None

    def pieces(self, fragments: list[bytes]) -> list[bytes]:
        """A target's pieces (values left empty) given its identity fragments."""
        if self.prototype is None:
            assert self._template is not None
            template, self._template = self._template, None
            return [fragments[p] if isinstance(p, int) else p for p in template]
        swap = {id(old): new for old, new in zip(self.prototype.fragments, fragments, strict=True)}
        return [swap.get(id(p), p) for p in self.prototype.pieces]


class _Plan:
    """How series whose own labels have these names (in this order) are cut into
    fragments: the labels renamed as :func:`series_labels` does (a clash with an
    identity label, or an earlier own label, becomes ``exported_<name>``) and sorted,
    then runs of consecutive own or identity labels in name order."""

    __slots__ = ("names", "order", "runs")

    def __init__(
        self, identity: tuple[str, ...], own: tuple[str, ...], codes: dict[_IdFragment, int]
    ) -> None:
        taken = set(identity)
        renamed = []
        for name in own:
            while name in taken:
                name = f"exported_{name}"
            taken.add(name)
            renamed.append(name)
        #: The own labels' positions in name order, and their names in that order.
        self.order = sorted(range(len(renamed)), key=renamed.__getitem__)
        self.names = [renamed[i] for i in self.order]
        # (name, -1) for an identity label, (name, j) for the j-th own label in order.
        merged = sorted([*((name, -1) for name in identity), *zip(self.names, range(len(own)))])
        groups = [list(group) for _, group in groupby(merged, key=lambda item: item[1] < 0)]
        #: An identity fragment's code, or (start, stop, first, last) over the own labels.
        self.runs: list[int | tuple[int, int, bool, bool]] = []
        position = 0  # identity labels before this run
        last = len(groups) - 1
        for r, group in enumerate(groups):
            if group[0][1] < 0:
                stop = position + len(group)
                self.runs.append(codes.setdefault((position, stop, r == 0, r == last), len(codes)))
                position = stop
            else:
                self.runs.append((group[0][1], group[-1][1] + 1, r == 0, r == last))

    def cut(self, labels: Labels, runs: _Runs) -> tuple[Labels, list[bytes | int]]:
        """The sorted own items (renamed) of one label set, and its fragments: codes
        for identity runs, bytes (one object per run in ``runs``) for own runs."""
        items = tuple(zip(self.names, [labels[i][1] for i in self.order], strict=True))
        if not self.runs:  # no label at all (never for stored results: target, probe)
            return items, [b" "]
        out: list[bytes | int] = []
        for run in self.runs:
            if isinstance(run, int):
                out.append(run)
            else:
                start, stop, first, last = run
                key = (items[start:stop], first, last)
                text = runs.get(key)
                if text is None:
                    text = runs[key] = _punctuate(_items_text(key[0]), first, last)
                out.append(text)
        return items, out


class _Layout:
    """One target's pieces: its shape layout with its identity fragments filled in."""

    __slots__ = ("fragments", "key", "labels", "pieces", "shape", "shaped")

    def __init__(self, stored: StoredResult, shaped: _ShapeLayout, key: _ShapeKey) -> None:
        self.shape = stored.shape
        self.labels = stored.labels
        self.shaped = shaped
        self.key = key
        items = sorted(identity_labels(stored).items())
        self.fragments = [
            _punctuate(_items_text(items[start:stop]), first, last)
            for start, stop, first, last in shaped.id_fragments
        ]
        self.pieces = shaped.pieces(self.fragments)
        if shaped.prototype is None:
            shaped.prototype = self

    def fits(self, stored: StoredResult) -> bool:
        return self.shape is stored.shape and self.labels == stored.labels


class _Cached:
    __slots__ = ("layout", "ref", "values")

    def __init__(self, stored: StoredResult, layout: _Layout) -> None:
        self.ref = weakref.ref(stored)
        self.layout = layout
        shaped = layout.shaped
        values = stored.values
        self.values = [_value(values[i]) for i in shaped.order]
        self.values.append(_value(stored.finished_at))
        if shaped.warnings:
            _warn(stored, shaped.warnings)


def _warn(stored: StoredResult, warnings: Iterable[tuple[str, Labels | None]]) -> None:
    for metric, items in warnings:
        if items is None:
            log.warning("not exporting %s: it is not in probes.metrics.METRICS", metric)
        else:
            labels = dict(sorted({**identity_labels(stored), **dict(items)}.items()))
            log.warning("not exporting a duplicate series %s%s", metric, labels)


class RenderCache:
    """Templates and formatted values of each stored result, reused by the next scrape:
    a result lives one interval (e.g. 60 s) and Prometheus scrapes every 15 s, so most of
    a scrape is already written; a target's next result of the same shape reuses its
    template and only formats its values. Thread-safe (one render at a time)."""

    def __init__(self) -> None:
        self.entries: dict[Key, _Cached] = {}
        self._shaped: dict[_ShapeKey, _ShapeLayout] = {}
        self._lock = threading.Lock()

    def collect(self, snapshot: Iterable[StoredResult]) -> dict[str, list[bytes]]:
        """Every series of ``snapshot`` by family, as pieces; forgets the rest."""
        with self._lock:
            return self._collect(snapshot)

    def _collect(self, snapshot: Iterable[StoredResult]) -> dict[str, list[bytes]]:
        old, entries = self.entries, {}
        shaped_used: dict[_ShapeKey, _ShapeLayout] = {}
        by_metric: dict[str, list[bytes]] = {}
        for stored in snapshot:
            key = (stored.target, stored.probe)
            cached = old.get(key)
            if cached is None or cached.ref() is not stored:
                if cached is not None and cached.layout.fits(stored):
                    layout = cached.layout
                else:
                    names = tuple(sorted(["target", "probe", *stored.labels]))
                    shape_key = (stored.shape, names)
                    shaped = shaped_used.get(shape_key) or self._shaped.get(shape_key)
                    shaped = shaped or _ShapeLayout(stored.shape, names)
                    layout = _Layout(stored, shaped, shape_key)
                cached = _Cached(stored, layout)
            entries[key] = cached
            layout = cached.layout
            shaped_used[layout.key] = layout.shaped
            pieces, values = layout.pieces, cached.values
            for metric, start, stop, width, first, end in layout.shaped.spans:
                lines = by_metric.get(metric)
                if lines is None:
                    lines = by_metric[metric] = []
                n = len(lines)
                lines += pieces[start:stop]
                lines[n + width - 1 :: width] = values[first:end]
        self.entries = entries  # results that left the snapshot are dropped
        self._shaped = shaped_used
        return by_metric


#: Pieces joined at a time: one join of millions of pieces costs CPython ~80 bytes of
#: bookkeeping per piece (hundreds of MB at district scale) and runs slower.
CHUNK_PIECES = 1 << 14


def render_chunks(
    store: ResultStore,
    now: float | None = None,
    extra: Iterable[Sample] = (),
    cache: RenderCache | None = None,
) -> Iterator[bytes]:
    """:func:`render`'s output in consecutive chunks (to write or compress as they
    come, without one buffer of the whole exposition)."""
    at = time.time() if now is None else now
    by_metric = (cache or RenderCache()).collect(store.snapshot(at))
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for sample in extra:
        if sample.metric not in METRICS and sample.metric not in EXPORTER_METRICS:
            log.warning("not exporting %s: it is not in probes.metrics.METRICS", sample.metric)
            continue
        items = tuple(sorted(sample.labels))
        if (sample.metric, items) in seen:
            log.warning("not exporting a duplicate series %s%s", sample.metric, dict(items))
            continue
        seen.add((sample.metric, items))
        by_metric.setdefault(sample.metric, []).append(_line(sample.metric, items, sample.value))
    by_metric["netmon_build_info"] = [_line("netmon_build_info", [("version", version())], 1.0)]
    for name in _catalogue_order(by_metric):
        definition = METRICS.get(name) or EXPORTER_METRICS[name]
        help_text = definition.help.replace("\\", r"\\").replace("\n", r"\n")
        yield f"# HELP {name} {help_text}\n# TYPE {name} {definition.type}\n".encode()
        lines = by_metric.pop(name)  # freed as it is written
        for i in range(0, len(lines), CHUNK_PIECES):
            yield b"".join(lines[i : i + CHUNK_PIECES])


def render(
    store: ResultStore,
    now: float | None = None,
    extra: Iterable[Sample] = (),
    cache: RenderCache | None = None,
) -> bytes:
    """The Prometheus text exposition of ``store`` plus ``extra`` samples (``/metrics``).

    Written directly rather than through client_python's metric objects: a district's
    scrape holds half a million series, and building an object per sample cost seconds
    of CPU and hundreds of MB per scrape. The output is byte for byte what
    client_python's ``generate_latest`` writes for :class:`NetmonCollector` (a test
    compares them): labels sorted by name, values in Go's float format. With a
    ``cache``, results unchanged since the last call are not rendered again, and a
    target's new result of an unchanged shape only has its values formatted.
    """
    out = io.BytesIO()
    for chunk in render_chunks(store, now, extra, cache):
        out.write(chunk)
    return out.getvalue()  # BytesIO hands over its buffer: no second copy of the scrape


def metrics_markdown() -> str:
    """METRICS.md: every metric netmon exports, its type, labels and meaning."""
    lines = [
        "# Metrics",
        "",
        "Every metric netmon's `/metrics` exporter can serve. Generated from",
        "`probes/metrics.py` and `monitor/exporter.py`; do not edit by hand, run",
        "`.venv/bin/python -m monitor.exporter --write-metrics-doc` instead.",
        "",
        "Every series except `netmon_build_info` also carries the identity labels `target`",
        "(the inventory name), `probe` (the probe that produced it: `icmp`, `snmp`, `tcp`)",
        "and the target's static labels from the inventory (`role`, `site`, `building`,",
        "`room`, `group`, ...), so dashboards and alerts need no joins. A metric's own label",
        "never overrides them: one that clashes is renamed `exported_<name>`.",
        "",
        "A result is served until it is `max(3 × interval, 3 min)` old; after that its",
        "series disappear rather than pretend to be fresh. A device that is down has no",
        "latency or device series, only `netmon_probe_success 0` and `netmon_probe_status`.",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for name, definition in [*METRICS.items(), *EXPORTER_METRICS.items()]:
        labels = ", ".join(f"`{label}`" for label in SAMPLE_LABELS.get(name, ()))
        meaning = definition.help.replace("|", "\\|")
        lines.append(f"| `{name}` | {definition.type} | {labels or '–'} | {meaning} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.exporter", description=__doc__)
    parser.add_argument(
        "--write-metrics-doc", action="store_true", help=f"regenerate {METRICS_DOC.name}"
    )
    args = parser.parse_args(argv)
    if not args.write_metrics_doc:
        parser.print_help()
        return 2
    METRICS_DOC.write_text(metrics_markdown(), encoding="utf-8")
    print(f"wrote {METRICS_DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
