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
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _go_float

from monitor.store import ResultStore, StoredResult
from probes.metrics import METRICS, MetricDef
from probes.result import Sample

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
    "netmon_snmp_varbinds": (),
    "netmon_snmp_requests": (),
    "netmon_scheduler_lag_seconds": ("stat",),
    "netmon_scheduler_jobs": ("probe",),
    "netmon_probe_runs_total": ("probe", "status"),
    "netmon_scheduler_skipped_runs_total": ("probe", "reason"),
    "netmon_probe_last_run_timestamp_seconds": (),
    "netmon_alerts": ("state", "severity", "suppressed"),
    "netmon_notifications_total": ("receiver", "integration", "outcome"),
    "netmon_notifications_pending": ("receiver", "integration"),
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
        for sample in stored.result.samples:
            add(sample.metric, series_labels(identity, sample.labels), sample.value)
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


def _result_lines(stored: StoredResult) -> dict[str, list[bytes]]:
    """One stored result's exposition lines, by metric name."""
    identity = identity_labels(stored)
    lines: dict[str, list[bytes]] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for sample in stored.result.samples:
        metric = sample.metric
        if metric not in METRICS:
            log.warning("not exporting %s: it is not in probes.metrics.METRICS", metric)
            continue
        items = tuple(sorted(series_labels(identity, sample.labels).items()))
        if (metric, items) in seen:
            log.warning("not exporting a duplicate series %s%s", metric, dict(items))
            continue
        seen.add((metric, items))
        lines.setdefault(metric, []).append(_line(metric, items, sample.value))
    last_run = "netmon_probe_last_run_timestamp_seconds"
    lines[last_run] = [_line(last_run, sorted(identity.items()), stored.finished_at)]
    return lines


class RenderCache:
    """Rendered lines of each stored result, reused by the next scrape while the result
    is unchanged: a result lives one interval (e.g. 60 s) and Prometheus scrapes every
    15 s, so most of a scrape is already written."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[StoredResult, dict[str, list[bytes]]]] = {}


def render(
    store: ResultStore,
    now: float | None = None,
    extra: Iterable[Sample] = (),
    cache: RenderCache | None = None,
) -> bytes:
    """The Prometheus text exposition of ``store`` plus ``extra`` samples (``/metrics``).

    Written directly rather than through client_python's metric objects: a district's
    scrape holds a quarter of a million series, and building an object per sample cost
    seconds of CPU and hundreds of MB per scrape. The output is byte for byte what
    client_python's ``generate_latest`` writes for :class:`NetmonCollector` (a test
    compares them): labels sorted by name, values in Go's float format. With a
    ``cache``, results unchanged since the last call are not rendered again.
    """
    at = time.time() if now is None else now
    old = cache.entries if cache is not None else {}
    entries: dict[tuple[str, str], tuple[StoredResult, dict[str, list[bytes]]]] = {}
    by_metric: dict[str, list[bytes]] = {}
    for stored in store.snapshot(at):
        key = (stored.target, stored.probe)
        hit = old.get(key)
        lines = hit[1] if hit is not None and hit[0] is stored else _result_lines(stored)
        entries[key] = (stored, lines)
        for metric, metric_lines in lines.items():
            by_metric.setdefault(metric, []).extend(metric_lines)
    if cache is not None:
        cache.entries = entries  # results that left the snapshot are dropped
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
    out: list[bytes] = []
    for name in _catalogue_order(by_metric):
        definition = METRICS.get(name) or EXPORTER_METRICS[name]
        help_text = definition.help.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {definition.type}\n".encode())
        out.extend(by_metric[name])
    return b"".join(out)  # bytes throughout: no second 40 MB copy of a large scrape


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
