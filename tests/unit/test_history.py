"""The history store on a real SQLite file with a virtual clock: which series it keeps,
rates, downsampling at every bucket boundary, late points, restarts, outages, running
periods, the size bound and retention after a million inserts."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store import history as history_module
from monitor.store.history import (
    GRACE_SECONDS,
    HistoryError,
    HistorySettings,
    HistoryStore,
    Point,
    kept_labels,
    parse_size,
)
from monitor.store.results import ResultStore
from probes.result import ProbeResult, Sample, Status

#: An hour boundary, so offsets read as bucket positions.
T0 = 1_700_000_000 - 1_700_000_000 % 3600


class Lab:
    """A history store fed through a real ResultStore, on a clock the test moves."""

    def __init__(
        self, path: Path, settings: HistorySettings | None = None, start: float = T0
    ) -> None:
        self.path = path
        self.settings = settings or HistorySettings()
        self.now = float(start)
        self.results = ResultStore()
        self.store = self._open()

    def _open(self) -> HistoryStore:
        store = HistoryStore(self.path, self.settings, clock=lambda: self.now)
        store.start(background=False)
        self.results = ResultStore()
        self.results.subscribe(store.record)
        return store

    def restart(self, gap: float = 0.0) -> None:
        self.store.close()
        self.now += gap
        self.store = self._open()

    def put(
        self,
        t: float,
        samples: list[Sample],
        *,
        ok: bool = True,
        target: str = "pc1",
        probe: str = "icmp",
        why: str = "",
        interval: float = 60.0,
    ) -> None:
        self.now = max(self.now, t)
        status = Status.OK if ok else Status.TIMEOUT
        result = ProbeResult(
            status, why or status.value, samples=samples, probe=probe, target=target,
            started_at=t, duration_seconds=0.0,
        )  # fmt: skip
        self.results.put(result, {}, interval)

    def at(self, t: float) -> None:
        """Move the clock to ``t`` and let the writer run."""
        self.now = t
        self.store.flush()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path / "history.db")
    yield lab
    lab.store.close()


def loss(value: float) -> list[Sample]:
    return [Sample.of("netmon_icmp_packet_loss_ratio", value)]


def points(lab: Lab, step: int, metric: str = "netmon_icmp_packet_loss_ratio") -> list[Point]:
    (series,) = lab.store.series("pc1", metric, since=T0 - 86400, step=step)
    return series.points


@pytest.mark.parametrize(
    ("metric", "labels", "kept"),
    [
        ("netmon_probe_success", (), ()),
        ("netmon_icmp_rtt_seconds", (("stat", "avg"),), ()),
        ("netmon_icmp_rtt_seconds", (("stat", "max"),), None),
        ("netmon_icmp_jitter_seconds", (), None),
        (
            "netmon_printer_supply_level_ratio",
            (("supply", "Black Toner"), ("index", "1.1"), ("type", "toner"), ("color", "black")),
            (("description", "Black Toner"), ("supply", "1.1")),
        ),
        (
            "netmon_interface_receive_bytes_total",
            (("if_index", "3"), ("if_name", ""), ("if_alias", "uplink"), ("if_descr", "ge-0/0/3")),
            (("ifindex", "3"), ("interface", "ge-0/0/3")),
        ),
        ("netmon_interface_speed_bytes", (("if_index", "3"),), None),
        (
            "netmon_host_storage_used_bytes",
            (("index", "1"), ("storage", "/"), ("kind", "disk")),
            (("storage", "/"),),
        ),
        ("netmon_ups_on_battery", (), ()),
    ],
)
def test_kept_series_and_their_labels(metric: str, labels: tuple, kept: tuple | None) -> None:
    assert kept_labels(metric, labels) == kept


@pytest.mark.parametrize(
    ("text", "size"),
    [("500MB", 500_000_000), ("2GiB", 2 * 2**30), (" 1.5 gb ", 1_500_000_000), (10**7, 10**7)],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "-5MB", "10KB", True, "5 parsecs"])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError, match="size|at least"):
        parse_size(text)


def test_retention_accepts_days_and_must_not_shrink() -> None:
    settings = HistorySettings.model_validate({"retention": {"raw": "24h", "five_minutes": "2w"}})
    assert (settings.retention.raw, settings.retention.five_minutes) == (86400, 14 * 86400)
    with pytest.raises(ValueError, match="shrink"):
        HistorySettings.model_validate({"retention": {"raw": "40d"}})


def test_downsampling_at_every_boundary(lab: Lab) -> None:
    # Offsets on both sides of 5-minute and hour boundaries, each with its own value.
    offsets = [0, 1, 299, 300, 301, 599, 600, 3299, 3300, 3599, 3600, 3601, 7199]
    for i, off in enumerate(offsets):
        lab.put(T0 + off, loss(i / 100))
        lab.store.flush()
    lab.at(T0 + 7200 + GRACE_SECONDS)
    value = {off: i / 100 for i, off in enumerate(offsets)}

    def bucket(start: int, size: int) -> Point:
        vs = [value[o] for o in offsets if start <= o < start + size]
        return Point(T0 + start, pytest.approx(sum(vs) / len(vs)), min(vs), max(vs))

    five = [bucket(s, 300) for s in (0, 300, 600, 3000, 3300, 3600, 6900)]
    assert points(lab, 300) == five
    assert points(lab, 3600) == [bucket(0, 3600), bucket(3600, 3600)]
    assert [p.t - T0 for p in points(lab, 0)] == offsets


def test_only_complete_buckets_are_written(lab: Lab) -> None:
    lab.put(T0 + 10, loss(0.5))
    lab.at(T0 + 300 + GRACE_SECONDS - 1)
    assert points(lab, 300) == []
    lab.at(T0 + 300 + GRACE_SECONDS)
    assert points(lab, 300) == [Point(T0, 0.5, 0.5, 0.5)]
    assert points(lab, 3600) == []  # the hour is not over
    lab.at(T0 + 3600 + GRACE_SECONDS)
    assert points(lab, 3600) == [Point(T0, 0.5, 0.5, 0.5)]


def test_a_late_point_is_merged_into_its_written_bucket(lab: Lab) -> None:
    lab.put(T0 + 10, loss(0.2))
    lab.at(T0 + 3600 + GRACE_SECONDS)
    lab.put(T0 + 20, loss(0.6))  # e.g. a result queued across the boundary
    lab.store.flush()
    expected = Point(T0, pytest.approx(0.4), 0.2, 0.6)
    assert points(lab, 300) == [expected]
    assert points(lab, 3600) == [expected]


def test_rollups_equal_the_raw_data_across_restarts(lab: Lab) -> None:
    rng = random.Random(12)
    t = float(T0)
    port = Sample.of("netmon_interface_oper_up", 1, if_index=2, if_name="uplink")
    for _ in range(400):
        t += rng.uniform(5, 90)
        lab.put(t, [*loss(rng.random()), port])
        if rng.random() < 0.3:
            lab.store.flush()
        if rng.random() < 0.02:
            lab.restart()
    lab.at(t + 3600 + GRACE_SECONDS)
    raw = points(lab, 0)
    assert len(raw) == 400
    assert len(lab.store.catalog("pc1")) == 2  # the labelled series kept its id
    for step in (300, 3600):
        buckets: dict[int, list[float]] = {}
        for p in raw:
            buckets.setdefault(int(p.t) - int(p.t) % step, []).append(p.value)
        expected = [
            Point(k, pytest.approx(sum(v) / len(v)), min(v), max(v))
            for k, v in sorted(buckets.items())
        ]
        assert points(lab, step) == expected, step


def test_counters_become_rates_and_resets_give_no_point(lab: Lab) -> None:
    def octets(value: float) -> list[Sample]:
        return [
            Sample.of("netmon_interface_receive_bytes_total", value, if_index=1, if_name="eth0")
        ]

    for off, value in [(0, 1000), (60, 7000), (120, 7000), (180, 10), (240, 610)]:
        lab.put(T0 + off, octets(value), probe="snmp")
    lab.store.flush()
    (series,) = lab.store.series("pc1", "netmon_interface_receive_bytes_total", since=T0, step=0)
    assert series.labels == {"interface": "eth0", "ifindex": "1"}
    assert [(p.t - T0, p.value) for p in series.points] == [(60, 100.0), (120, 0.0), (240, 10.0)]


def test_ports_without_link_keep_their_status_but_no_rates(lab: Lab) -> None:
    def port(octets: float, up: int) -> list[Sample]:
        labels = {"if_index": 7, "if_name": "ge7"}
        return [Sample.of("netmon_interface_oper_up", up, **labels),
                Sample.of("netmon_interface_transmit_bytes_total", octets, **labels)]  # fmt: skip

    for off, octets, up in [(0, 0, 1), (60, 600, 1), (120, 600, 0), (180, 600, 0), (240, 1200, 1)]:
        lab.put(T0 + off, port(octets, up), probe="snmp")
    lab.store.flush()
    (rates,) = lab.store.series("pc1", "netmon_interface_transmit_bytes_total", since=T0, step=0)
    assert [(p.t - T0, p.value) for p in rates.points] == [(60, 10.0), (240, 10.0)]
    (status,) = lab.store.series("pc1", "netmon_interface_oper_up", since=T0, step=0)
    assert [p.value for p in status.points] == [1, 1, 0, 0, 1]


def test_series_picks_the_resolution_by_age(lab: Lab) -> None:
    lab.put(T0, loss(0.1))
    lab.at(T0 + 3 * 86400)
    store = lab.store
    assert store.series("pc1", "netmon_icmp_packet_loss_ratio", since=lab.now - 3600)[0].step == 0
    assert store.series("pc1", "netmon_icmp_packet_loss_ratio", since=T0)[0].step == 300
    assert (
        store.series("pc1", "netmon_icmp_packet_loss_ratio", since=T0 - 40 * 86400)[0].step == 3600
    )
    with pytest.raises(ValueError, match="step"):
        store.series("pc1", "netmon_icmp_packet_loss_ratio", since=T0, step=60)


def test_status_changes_and_outages_are_rows(lab: Lab) -> None:
    up, down = [Sample.of("netmon_probe_success", 1)], [Sample.of("netmon_probe_success", 0)]
    lab.put(T0, up)
    lab.put(T0 + 1, up, probe="snmp")
    lab.put(T0 + 60, down, ok=False, why="no echo reply")
    lab.put(T0 + 61, up, probe="snmp")  # SNMP still answers: not down
    assert lab.store.outages(since=T0) == []
    lab.put(T0 + 121, down, ok=False, probe="snmp", why="snmp silent")
    lab.put(T0 + 180, down, ok=False, why="no echo reply")
    lab.put(T0 + 240, up)
    lab.store.flush()
    (outage,) = lab.store.outages(since=T0)
    assert (outage.start, outage.end, outage.reason) == (T0 + 121, T0 + 240, "no echo reply")
    assert [(c.probe, c.at - T0, c.status) for c in lab.store.changes("pc1", since=T0)] == [
        ("icmp", 0, "ok"), ("snmp", 1, "ok"), ("icmp", 60, "timeout"),
        ("snmp", 121, "timeout"), ("icmp", 240, "ok"),
    ]  # fmt: skip


def test_a_slow_module_job_does_not_hold_a_dead_device_up(lab: Lab) -> None:
    lab.put(T0, [Sample.of("netmon_probe_success", 1)], probe="topology", interval=900)
    lab.put(T0 + 60, [Sample.of("netmon_probe_success", 0)], ok=False, probe="icmp")
    lab.put(T0 + 61, [Sample.of("netmon_probe_success", 0)], ok=False, probe="snmp")
    lab.store.flush()
    assert [o.start for o in lab.store.outages(since=T0)] == [T0 + 60]


def test_an_outage_continues_across_a_restart(lab: Lab) -> None:
    down = [Sample.of("netmon_probe_success", 0)]
    lab.put(T0, down, ok=False)
    lab.at(T0 + 30)
    lab.restart(gap=600)  # netmon off for 10 minutes
    lab.put(T0 + 660, down, ok=False)
    lab.put(T0 + 720, [Sample.of("netmon_probe_success", 1)])
    lab.store.flush()
    assert [(o.start, o.end) for o in lab.store.outages(since=T0)] == [(T0, T0 + 720)]
    assert len(lab.store.changes("pc1", since=T0)) == 2  # the restart is no change
    assert lab.store.running(T0, T0 + 800) == [(T0, T0 + 30), (T0 + 630, T0 + 800)]


def test_an_outage_seen_over_at_restart_ends_with_the_last_run(lab: Lab) -> None:
    lab.put(T0, [Sample.of("netmon_probe_success", 0)], ok=False)
    lab.at(T0 + 30)
    lab.restart(gap=3600)
    lab.put(T0 + 3660, [Sample.of("netmon_probe_success", 1)])
    lab.store.flush()
    assert [(o.start, o.end) for o in lab.store.outages(since=T0)] == [(T0, T0 + 30)]


def test_a_target_leaving_the_inventory_ends_its_outage(lab: Lab) -> None:
    lab.put(T0, [Sample.of("netmon_probe_success", 0)], ok=False)
    lab.now = T0 + 50
    lab.store.forget_targets({"other"})
    lab.store.flush()
    assert [o.end for o in lab.store.outages(since=T0)] == [T0 + 50]


def test_readonly_open_of_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="no history file"):
        HistoryStore.open_readonly(tmp_path / "none.db")
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(HistoryError, match="not a netmon history file"):
        HistoryStore.open_readonly(tmp_path / "junk.db")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(HistoryError, match="not a netmon history file"):
        HistoryStore.open_readonly(tmp_path / "other.db")


def test_a_full_queue_drops_and_counts(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_module, "QUEUE_MAX", 2)
    for i in range(5):
        lab.put(T0 + i, loss(0))
    lab.store.flush()
    counts = {s.metric: s.value for s in lab.store.samples()}
    assert counts["netmon_history_dropped_total"] == 3
    assert counts["netmon_history_writes_total"] == 2


def test_size_bound_and_retention_after_a_million_inserts(tmp_path: Path) -> None:
    settings = HistorySettings.model_validate(
        {"max_size": "4MB", "retention": {"raw": "1h", "five_minutes": "2h", "hourly": "3h"}}
    )
    lab = Lab(tmp_path / "history.db", settings)
    ports = 2500
    samples = [Sample.of("netmon_interface_oper_up", 1, if_index=i, if_name=f"p{i}")
               for i in range(ports)]  # fmt: skip
    runs = 1_000_000 // ports
    for i in range(runs):
        lab.put(T0 + 30 * i, samples, probe="snmp", target="core")
        lab.store.flush()
    store = lab.store
    assert store.samples()[0].value == runs * ports
    last = T0 + 30 * (runs - 1)
    lab.store.close()
    size = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("history.db"))
    assert size <= settings.max_size
    reader = HistoryStore.open_readonly(lab.path, settings)
    try:
        oldest = {
            table: reader._reader().execute(f"SELECT MIN(t), MAX(t) FROM {table}").fetchone()
            for table in ("raw", "rollup_5m", "rollup_1h")
        }
        assert oldest["raw"][1] == last  # the newest data is kept
        assert oldest["raw"][0] >= last - 3600
        assert oldest["rollup_5m"][0] >= last - 7200 - 300
        assert oldest["rollup_1h"][0] >= last - 3 * 3600 - 3600
        assert reader.series("core", "netmon_interface_oper_up", labels={"interface": "p7"},
                             since=last - 60, step=0)[0].points[-1].t == last  # fmt: skip
    finally:
        reader.close()


def test_config_history_section_errors_name_file_line_and_field(tmp_path: Path) -> None:
    from monitor.config import ConfigFileError, load_config

    path = tmp_path / "netmon.yml"
    path.write_text(
        "groups: []\nhistory:\n  max_size: lots\n  retention: {raw: 1m}\n  colour: red\n"
    )
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"{path}:3: history.max_size") and "size" in p for p in problems), (
        problems
    )
    assert any(":4: history.retention" in p and "10m" in p for p in problems), problems
    assert any(":5: history.colour" in p for p in problems), problems


def test_history_path_follows_the_state_file(tmp_path: Path) -> None:
    from monitor.store.history import history_path

    state = tmp_path / "netmon-alerts.shard1of3.db"
    assert (
        history_path(HistorySettings(), tmp_path, state) == tmp_path / "netmon-history.shard1of3.db"
    )
    assert (
        history_path(HistorySettings(), tmp_path, tmp_path / "a.sqlite").name == "a-history.sqlite"
    )
    own = HistorySettings(path="h/hist.db")
    assert history_path(own, tmp_path, state, (0, 2)) == tmp_path / "h" / "hist.shard0of2.db"
