"""The embedded history store: what people look at over time, in one SQLite file.

Without Prometheus a school still wants "was it down last night?", a week's latency and
a month of toner. :class:`HistoryStore` keeps exactly that, beside the alert state file
(``history:`` in the config), and nothing else:

======================================  =========================================  =======
series (netmon's exported metric name)  labels kept (the distinguishing ones only)  stored
======================================  =========================================  =======
netmon_probe_success                    (none; the probe is the series' ``probe``)  0 or 1
netmon_icmp_rtt_seconds                 (none; the average of the run's echoes)     value
netmon_icmp_packet_loss_ratio           (none)                                      value
netmon_printer_supply_level_ratio       ``supply`` (Printer-MIB index, e.g. 1.1),   value
                                        ``description`` (the supply's own text),
                                        ``class`` (consumable or receptacle)
netmon_printer_pages_total              ``marker`` when the printer has several     counter
netmon_interface_receive_bytes_total,   ``interface`` (ifName, else ifDescr),       per-
..._transmit_bytes_total,               ``ifindex``                                 second
..._receive_errors_total,                                                           rate
..._transmit_errors_total
netmon_interface_oper_up                ``interface``, ``ifindex``                  0 or 1
netmon_host_storage_used_bytes          ``storage`` (hrStorageDescr)                value
netmon_ups_battery_charge_ratio         (none)                                      value
netmon_ups_on_battery                   (none)                                      0 or 1
======================================  =========================================  =======

Interface counters become rates between two runs; a counter that went down (a reset,
a 32-bit wrap, a reboot) gives no point rather than a spike, and so does a port whose
``oper_up`` is 0 in the same run (no link, no traffic: on an access switch that is
often half the ports, and the rates are most of a switch's history). Page counts stay
raw (the forecasts want the counter itself).

Besides samples, the store writes rows when things change, so pages never re-derive
them from samples: a **change** per probe status change (with its explanation), an
**outage** per device-level DOWN period (every fresh ICMP, SNMP and TCP probe of the
target failed, the status page's raw DOWN; start, end, reason), a **run** per period netmon was running
(a heartbeat moves its end), so time between runs is "unknown", not up or down, and
the **silences** the alert state file held (it forgets expired ones after a week; the
availability report needs them for a month).

Write path: :meth:`HistoryStore.record` (a result store listener, on the asyncio loop)
only appends the stored result to a bounded deque (a full one drops and counts). A
writer thread drains it every :data:`FLUSH_SECONDS`: it picks the kept series of each
result (a plan per interned result shape, and series ids interned in memory), writes
the batch with ``executemany`` in one transaction into ``WITHOUT ROWID`` tables keyed
``(series_id, t)`` with integer timestamps.

Downsampling: raw points are kept ``retention.raw`` (48 h), 5-minute rollups (sum, min,
max, count, so averages merge exactly) ``retention.five_minutes`` (35 d) and hourly
ones ``retention.hourly`` (400 d). A point at ``t`` belongs to the 5-minute bucket
``floor(t / 300) * 300`` and the hour ``floor(t / 3600) * 3600``. The writer folds each
point into an in-memory bucket and writes a bucket once it is complete (its end is
:data:`GRACE_SECONDS` in the past), hours from their 5-minute buckets, in the same
transaction as the raw rows and with the watermark up to which buckets were written:
after a crash the open buckets are rebuilt from the raw rows past the watermark. A
point that arrives for a bucket already written is merged into it (an upsert), so the
rollups always equal the raw data.

Trimming runs in the writer thread every :data:`TRIM_SECONDS` (and whenever the file
passes ``max_size``): rows older than their tier's retention go first; if the file is
still over ``max_size``, every tier gives up its oldest data in proportion (each keeps
the same share of its span) until it is under :data:`TRIM_TARGET` of the bound. The
file uses incremental auto-vacuum and the WAL is truncated after each trim, so it
really shrinks.

Readers (the status page, the JSON API, ``netmon report``) use one read-only
connection per thread; :meth:`HistoryStore.open_readonly` opens the file of a running
daemon from another process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from monitor.store.results import Shape, StoredResult
from probes.errors import NetmonError
from probes.result import Labels, Sample
from probes.settings import StrictModel, parse_duration

log = logging.getLogger("netmon.history")

#: Seconds between the writer's transactions (each rewrites the last page of every
#: series it touches, so fewer, bigger ones cost less I/O).
FLUSH_SECONDS = 2.0
#: Results waiting for the writer at most; more are dropped (and counted).
QUEUE_MAX = 100_000
#: A bucket is written once its end is this far in the past (results arrive late by the
#: queue's delay and a probe run's duration at most).
GRACE_SECONDS = 30.0
#: Seconds between trims (and at most this long over ``max_size`` between two checks).
TRIM_SECONDS = 600.0
#: Seconds between size checks (cheap: two PRAGMAs).
SIZE_CHECK_SECONDS = 10.0
#: A trim forced by ``max_size`` goes down to this share of it.
TRIM_TARGET = 0.9
#: The tiers: bucket seconds (0 = raw) and their table.
RAW, FIVE_MINUTES, HOURLY = 0, 300, 3600
TABLES = {RAW: "raw", FIVE_MINUTES: "rollup_5m", HOURLY: "rollup_1h"}
SCHEMA_VERSION = 1
#: What a trim forced by ``max_size`` keeps at least, per tier (raw: the rows the open
#: buckets are rebuilt from after a restart).
_MIN_SPAN = {RAW: 900.0, FIVE_MINUTES: 3600.0, HOURLY: 86400.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_LONG_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|w)\s*$")


def parse_size(value: Any) -> int:
    """``"500MB"``, ``"2GiB"``, ``1048576`` -> bytes (MB = 10^6, MiB = 2^20)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 500MB or 2GB")  # noqa: TRY004
    if isinstance(value, int | float):
        size = float(value)
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = float(m.group(1)) * _SIZE_UNITS[m.group(2) and m.group(2).lower()]
    else:
        raise ValueError(f"{value!r} is not a size; use e.g. 500MB, 2GB or 800MiB")
    if size < 1_000_000:
        raise ValueError("history.max_size must be at least 1MB")
    return int(size)


def parse_long_duration(value: Any) -> float:
    """A duration that may also be days or weeks: ``48h``, ``35d``, ``2w``, ``90m``."""
    if isinstance(value, str) and (m := _LONG_DURATION.match(value)):
        return float(m.group(1)) * (86400.0 if m.group(2) == "d" else 7 * 86400.0)
    return parse_duration(value)


LongDuration = Annotated[float, BeforeValidator(parse_long_duration)]
ByteSize = Annotated[int, BeforeValidator(parse_size)]


class HistoryRetention(StrictModel):
    """How long each resolution is kept."""

    raw: LongDuration = 48 * 3600.0
    five_minutes: LongDuration = 35 * 86400.0
    hourly: LongDuration = 400 * 86400.0

    @model_validator(mode="after")
    def _ordered(self) -> HistoryRetention:
        if self.raw < 600:
            raise ValueError("history.retention.raw must be at least 10m")
        if not self.raw <= self.five_minutes <= self.hourly:
            raise ValueError(
                "retention must not shrink with coarser data: raw <= five_minutes <= hourly"
            )
        return self


class HistorySettings(StrictModel):
    """``history:`` in the config: the embedded history store (on by default)."""

    enabled: bool = True
    #: The SQLite file, relative to the config's directory; default: beside the alert
    #: state file (``netmon-history.db``, per shard like the state file).
    path: str | None = None
    #: The file is kept under this size (oldest data first, see the module docstring).
    max_size: ByteSize = 1_000_000_000
    retention: HistoryRetention = Field(default_factory=HistoryRetention)


def history_path(
    settings: HistorySettings,
    base_dir: Path,
    state_file: Path,
    shard: tuple[int, int] | None = None,
) -> Path:
    """Where the history file is: ``history.path`` (relative to the config's directory;
    a shard adds ``.shardIofN`` before the suffix, as the state file does), else beside
    the alert state file, named after it (``netmon-alerts.shard0of2.db`` ->
    ``netmon-history.shard0of2.db``; another name gets ``-history``)."""
    if settings.path is not None:
        path = Path(settings.path)
        path = path if path.is_absolute() else Path(base_dir) / path
        if shard is not None:
            path = path.with_name(f"{path.stem}.shard{shard[0]}of{shard[1]}{path.suffix}")
        return path
    name = state_file.name
    if name.startswith("netmon-alerts"):
        return state_file.with_name("netmon-history" + name.removeprefix("netmon-alerts"))
    return state_file.with_name(f"{state_file.stem}-history{state_file.suffix or '.db'}")


class HistoryError(NetmonError):
    """The history file cannot be used; the text says what is wrong and what to do."""


@dataclass(frozen=True, slots=True)
class Point:
    """One point: a raw sample (``min == max == value``) or a rollup bucket starting at
    ``t`` (``value`` is the bucket's average)."""

    t: float
    value: float
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class Series:
    """The points of one kept series (``labels`` as in the module docstring's table)."""

    labels: dict[str, str]
    points: list[Point]
    probe: str = ""
    metric: str = ""
    #: The resolution the points came from: 0 (raw), 300 or 3600.
    step: int = 0


@dataclass(frozen=True, slots=True)
class Outage:
    """A device-level DOWN period; ``end`` None: still down (as far as netmon knows)."""

    target: str
    start: float
    end: float | None
    reason: str
    status: str

    def duration(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start


@dataclass(frozen=True, slots=True)
class Change:
    """A probe's status changed at ``at`` (its first result counts as a change)."""

    target: str
    probe: str
    at: float
    status: str
    explanation: str


@dataclass(frozen=True, slots=True)
class SilencePeriod:
    """A silence as the alert state file had it (matchers as text, ``label=value``)."""

    id: str
    matchers: tuple[str, ...]
    starts_at: float
    ends_at: float


# --- which series are kept ----------------------------------------------------------

#: metric -> (labels kept (source label -> stored label), is a counter stored as a rate)
_INTERFACE = {"if_index": "ifindex"}
KEPT: dict[str, tuple[dict[str, str], bool]] = {
    "netmon_probe_success": ({}, False),
    "netmon_icmp_rtt_seconds": ({}, False),
    "netmon_icmp_packet_loss_ratio": ({}, False),
    # ``class``: a waste container (receptacle) fills up while a toner empties.
    "netmon_printer_supply_level_ratio": (
        {"index": "supply", "supply": "description", "class": "class"}, False),
    "netmon_printer_pages_total": ({"marker": "marker"}, False),
    "netmon_interface_receive_bytes_total": (_INTERFACE, True),
    "netmon_interface_transmit_bytes_total": (_INTERFACE, True),
    "netmon_interface_receive_errors_total": (_INTERFACE, True),
    "netmon_interface_transmit_errors_total": (_INTERFACE, True),
    "netmon_interface_oper_up": (_INTERFACE, False),
    "netmon_host_storage_used_bytes": ({"storage": "storage"}, False),
    "netmon_ups_battery_charge_ratio": ({}, False),
    "netmon_ups_on_battery": ({}, False),
}


def kept_labels(metric: str, labels: Labels) -> Labels | None:
    """The stored labels of a sample, or None when the sample is not kept."""
    spec = KEPT.get(metric)
    if spec is None:
        return None
    if metric == "netmon_icmp_rtt_seconds":
        return () if ("stat", "avg") in labels else None
    names, _ = spec
    given = dict(labels)
    out = [(names[k], v) for k, v in labels if k in names]
    if names is _INTERFACE:
        out.insert(0, ("interface", given.get("if_name") or given.get("if_descr", "")))
    return tuple(sorted(out))


def is_reachability(probe: str) -> bool:
    """Whether a probe's results decide if the device is DOWN: its ICMP, SNMP and TCP
    probes, as on the status page; not a slow module's own job (``topology``, every
    15 minutes), whose last success would hold a dead switch up for 45 minutes."""
    return probe in ("icmp", "snmp") or probe.startswith("tcp-")


@dataclass(slots=True)
class _Plan:
    """For one result shape: the indexes of its kept samples, their metrics, labels,
    whether each is a counter stored as a rate, and for a rate the index of its
    interface's ``netmon_interface_oper_up`` sample (-1: none)."""

    indexes: list[int]
    keys: list[tuple[str, Labels]]
    rates: list[bool]
    gates: list[int]


_plans: weakref.WeakKeyDictionary[Shape, _Plan] = weakref.WeakKeyDictionary()
_plans_lock = threading.Lock()


def _plan(shape: Shape) -> _Plan:
    plan = _plans.get(shape)
    if plan is None:
        plan = _Plan([], [], [], [])
        oper = {
            dict(labels).get("if_index"): i
            for i, (metric, labels) in enumerate(zip(shape.metrics, shape.labels, strict=True))
            if metric == "netmon_interface_oper_up"
        }
        for i, (metric, labels) in enumerate(zip(shape.metrics, shape.labels, strict=True)):
            kept = kept_labels(metric, labels)
            if kept is not None:
                rate = KEPT[metric][1]
                plan.indexes.append(i)
                plan.keys.append((metric, kept))
                plan.rates.append(rate)
                plan.gates.append(oper.get(dict(labels).get("if_index"), -1) if rate else -1)
        with _plans_lock:
            _plans[shape] = plan
    return plan


# --- schema -------------------------------------------------------------------------

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY, target TEXT NOT NULL, probe TEXT NOT NULL,
        metric TEXT NOT NULL, labels TEXT NOT NULL, UNIQUE (target, probe, metric, labels))""",
    """CREATE TABLE IF NOT EXISTS raw (series_id INTEGER NOT NULL, t INTEGER NOT NULL,
        v REAL NOT NULL, PRIMARY KEY (series_id, t)) WITHOUT ROWID""",
    *(
        f"""CREATE TABLE IF NOT EXISTS {table} (series_id INTEGER NOT NULL, t INTEGER NOT NULL,
        sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (series_id, t)) WITHOUT ROWID"""
        for table in ("rollup_5m", "rollup_1h")
    ),
    """CREATE TABLE IF NOT EXISTS changes (target TEXT NOT NULL, probe TEXT NOT NULL,
        at REAL NOT NULL, status TEXT NOT NULL, explanation TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS changes_by_target ON changes (target, at)",
    """CREATE TABLE IF NOT EXISTS outages (target TEXT NOT NULL, start REAL NOT NULL,
        "end" REAL, reason TEXT NOT NULL, status TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS outages_by_target ON outages (target, start)",
    "CREATE INDEX IF NOT EXISTS outages_by_start ON outages (start)",
    """CREATE TABLE IF NOT EXISTS runs (start REAL NOT NULL, "end" REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, matchers TEXT NOT NULL,
        starts_at REAL NOT NULL, ends_at REAL NOT NULL)""",
)
_UPSERT = """INSERT INTO {table} (series_id, t, sum, min, max, n) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (series_id, t) DO UPDATE SET sum = sum + excluded.sum,
    min = MIN(min, excluded.min), max = MAX(max, excluded.max), n = n + excluded.n"""
_ROLLUP_SQL = {step: _UPSERT.format(table=TABLES[step]) for step in (FIVE_MINUTES, HOURLY)}

#: An in-memory bucket: [sum, min, max, count].
Bucket = list[float]


def _fold(buckets: dict[tuple[int, int], Bucket], key: tuple[int, int], s: float,
          lo: float, hi: float, n: float) -> None:  # fmt: skip
    b = buckets.get(key)
    if b is None:
        buckets[key] = [s, lo, hi, n]
    else:
        b[0] += s
        b[1] = min(b[1], lo)
        b[2] = max(b[2], hi)
        b[3] += n


@dataclass(slots=True)
class _ProbeState:
    success: bool
    status: str
    explanation: str
    at: float
    stale_after: float


@dataclass(slots=True)
class _Stats:
    writes: int = 0
    dropped: int = 0
    errors: int = 0
    write_seconds: float = 0.0
    size: int = 0


@dataclass(slots=True)
class _Writer:
    """State only the writer thread touches."""

    series_ids: dict[tuple[str, str, str, Labels], int] = field(default_factory=dict)
    #: (target, probe) -> (the shape the ids below belong to, the plan's series ids)
    by_pair: dict[tuple[str, str], tuple[Shape, list[int]]] = field(default_factory=dict)
    #: counter series id -> (t, value) of its previous sample
    counters: dict[int, tuple[float, float]] = field(default_factory=dict)
    five: dict[tuple[int, int], Bucket] = field(default_factory=dict)
    hours: dict[tuple[int, int], Bucket] = field(default_factory=dict)
    #: Buckets before these starts are written (the watermarks, also in ``meta``).
    five_done: int = 0
    hours_done: int = 0
    probes: dict[str, dict[str, _ProbeState]] = field(default_factory=dict)
    last_status: dict[tuple[str, str], str] = field(default_factory=dict)
    #: target -> (start, reason) of its open outage
    open_outages: dict[str, tuple[float, str]] = field(default_factory=dict)
    #: open outages carried over from the previous run: closed at that run's end if the
    #: device turns out to be up, continued if it is still down.
    carried: set[str] = field(default_factory=set)
    previous_run_end: float | None = None
    run_id: int | None = None
    last_trim: float = -math.inf
    last_size_check: float = -math.inf
    created: float = 0.0


class HistoryStore:
    """Samples, rollups, status changes, outages and running periods in one file."""

    def __init__(
        self,
        path: Path,
        settings: HistorySettings | None = None,
        clock: Callable[[], float] = time.time,
        *,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.settings = settings or HistorySettings()
        self.clock = clock
        self.readonly = readonly
        self._queue: deque[StoredResult | tuple[str, Any]] = deque()
        self._stats = _Stats()
        self._w = _Writer()
        self._conn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error_log = -math.inf
        self._last_size_warning = -math.inf

    # --- life cycle -------------------------------------------------------------------

    @classmethod
    def open_readonly(cls, path: Path, settings: HistorySettings | None = None) -> HistoryStore:
        """Open an existing history file to read it (another process may be writing).

        Raises :class:`HistoryError` if the file is missing or not a history file."""
        path = Path(path)
        if not path.exists():
            raise HistoryError(
                f"{path}: no history file (history is written by `netmon run` with "
                "history.enabled; has it run with this config?)"
            )
        store = cls(path, settings, readonly=True)
        try:
            conn = store._reader()
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.OperationalError as exc:
            store.close()
            if "no such table" in str(exc):
                raise HistoryError(f"{path}: not a netmon history file") from None
            if "unable to open" in str(exc) or not os.access(path, os.R_OK):
                raise HistoryError(
                    f"{path}: cannot open it ({exc}); reading needs read access to it and "
                    "write access to its directory (SQLite's -shm file): run as the user "
                    "netmon runs as"
                ) from None
            raise HistoryError(f"{path}: not a netmon history file (corrupt?): {exc}") from None
        except sqlite3.DatabaseError as exc:
            store.close()
            raise HistoryError(f"{path}: not a netmon history file (corrupt?): {exc}") from None
        if row is None:
            store.close()
            raise HistoryError(f"{path}: not a netmon history file")
        return store

    def start(self, *, background: bool = True) -> None:
        """Open (creating) the file and start the writer thread; with ``background``
        False no thread runs and the caller calls :meth:`flush` (tests, the demo).

        Raises :class:`HistoryError` when the file cannot be opened or is not ours."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            # Before any table exists: freed pages go back to the OS (incremental vacuum).
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA cache_size = -8192")
            # The WAL counts towards max_size: checkpoint (and truncate it) at 1/20 of it.
            wal_pages = max(100, min(1000, self.settings.max_size // 20 // 4096))
            conn.execute(f"PRAGMA wal_autocheckpoint = {wal_pages}")
            conn.execute(f"PRAGMA journal_size_limit = {wal_pages * 4096}")
            with conn:
                for stmt in _SCHEMA:
                    conn.execute(stmt)
            self._conn = conn
            self._load(conn)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                f"{self.path}: cannot use the history file ({exc}); move it away to start "
                "a new one, or set history.path"
            ) from None
        if background:
            self._thread = threading.Thread(target=self._run, name="netmon-history", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Flush what is queued, end the running period, close every connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._conn is not None:
            try:
                self.flush(final=True)
            finally:
                self._conn.close()
                self._conn = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # a bug must not end history for good
                log.exception("history writer failed")

    def _load(self, conn: sqlite3.Connection) -> None:
        """Read what a previous run left: watermarks, series ids, open outages, last
        statuses, and rebuild the open buckets from the raw rows past the watermark."""
        w = self._w
        now = self.clock()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if "schema" not in meta:
            conn.execute("INSERT INTO meta VALUES ('schema', ?), ('created', ?)",
                         (SCHEMA_VERSION, now))  # fmt: skip
            meta = {"schema": SCHEMA_VERSION, "created": now}
        w.created = meta["created"]
        w.five_done = int(meta.get("five_done", 0))
        w.hours_done = int(meta.get("hours_done", 0))
        for sid, target, probe, metric, labels in conn.execute("SELECT * FROM series"):
            w.series_ids[(target, probe, metric, tuple(map(tuple, json.loads(labels))))] = sid
        for target, start, reason in conn.execute(
            'SELECT target, start, reason FROM outages WHERE "end" IS NULL'
        ):
            w.open_outages[target] = (start, reason)
            w.carried.add(target)
        for target, probe, status, _ in conn.execute(
            "SELECT target, probe, status, MAX(at) FROM changes GROUP BY target, probe"
        ):
            w.last_status[(target, probe)] = status
        row = conn.execute('SELECT MAX("end") FROM runs').fetchone()
        w.previous_run_end = row[0] if row else None
        for sid, t, v in conn.execute(
            "SELECT r.series_id, r.t, r.v FROM series s JOIN raw r ON r.series_id = s.id "
            "AND r.t >= ?",
            (w.five_done,),
        ):
            _fold(w.five, (sid, t - t % FIVE_MINUTES), v, v, v, 1)
        for sid, t, s, lo, hi, n in conn.execute(
            "SELECT r.series_id, r.t, r.sum, r.min, r.max, r.n FROM series s "
            "JOIN rollup_5m r ON r.series_id = s.id AND r.t >= ? AND r.t < ?",
            (w.hours_done, w.five_done),
        ):
            _fold(w.hours, (sid, t - t % HOURLY), s, lo, hi, n)
        w.run_id = conn.execute(
            'INSERT INTO runs (start, "end") VALUES (?, ?)', (now, now)
        ).lastrowid
        self._stats.size = self._file_size()

    # --- the write path ---------------------------------------------------------------

    def record(self, stored: StoredResult) -> None:
        """Queue one stored result (a :class:`ResultStore` listener): O(1), never
        blocks, never raises; a full queue drops the result and counts it."""
        if len(self._queue) >= QUEUE_MAX or self._stop.is_set():
            self._stats.dropped += 1
            return
        self._queue.append(stored)

    def forget_targets(self, keep: Iterable[str]) -> None:
        """Targets not in ``keep`` left the inventory (a reload): their open outages end
        now (netmon no longer watches them)."""
        self._queue.append(("keep", frozenset(keep)))

    def record_silences(self, silences: Iterable[SilencePeriod]) -> None:
        """Keep a copy of the alert state file's silences (it forgets expired ones after
        a week; availability reports need them as long as the history)."""
        self._queue.append(("silences", list(silences)))

    def flush(self, *, final: bool = False) -> None:
        """Write everything queued in one transaction (the writer thread calls this every
        :data:`FLUSH_SECONDS`; ``final``: the last one, which also ends the running
        period)."""
        conn = self._conn
        if conn is None:
            return
        with self._flush_lock:
            now = self.clock()
            started = time.perf_counter()
            batch: list[tuple[int, int, float]] = []
            events: list[tuple[str, tuple[Any, ...]]] = []
            late: dict[int, dict[tuple[int, int], Bucket]] = {FIVE_MINUTES: {}, HOURLY: {}}
            queue = self._queue
            try:
                conn.execute("BEGIN IMMEDIATE")
                while queue:
                    item = queue.popleft()
                    if isinstance(item, StoredResult):
                        self._ingest(conn, item, batch, events, late)
                    else:
                        self._command(item, events, now)
                conn.executemany("INSERT OR REPLACE INTO raw VALUES (?, ?, ?)", batch)
                for sql, args in events:
                    conn.execute(sql, args)
                self._roll(conn, now, late)
                # The heartbeat: this running period lasts at least until now.
                conn.execute('UPDATE runs SET "end" = ? WHERE rowid = ?', (now, self._w.run_id))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._stats.errors += 1
                self._stats.dropped += len(batch)
                if now - self._last_error_log >= 60:
                    log.error("history not written to %s (%s); %d samples dropped, retrying",
                              self.path, exc, len(batch))  # fmt: skip
                    self._last_error_log = now
                return
            self._stats.writes += len(batch)
            self._stats.write_seconds += time.perf_counter() - started
            self._maintain(conn, now, final)

    def _ingest(
        self,
        conn: sqlite3.Connection,
        stored: StoredResult,
        batch: list[tuple[int, int, float]],
        events: list[tuple[str, tuple[Any, ...]]],
        late: dict[int, dict[tuple[int, int], Bucket]],
    ) -> None:
        w = self._w
        result = stored.result
        at = stored.finished_at
        self._status(stored, events)
        shape = result.shape
        pair = (stored.target, stored.probe)
        plan = _plan(shape)
        known = w.by_pair.get(pair)
        if known is not None and known[0] is shape:
            sids = known[1]
        else:
            sids = [
                self._series_id(conn, stored.target, stored.probe, m, lk) for m, lk in plan.keys
            ]
            w.by_pair[pair] = (shape, sids)
        t = int(at)
        five_bucket = t - t % FIVE_MINUTES
        is_late = five_bucket < w.five_done
        values = result.values
        counters = w.counters
        five = late[FIVE_MINUTES] if is_late else w.five
        for i, sid, rate, gate in zip(plan.indexes, sids, plan.rates, plan.gates, strict=True):
            v = values[i]
            if rate:
                previous = counters.get(sid)
                counters[sid] = (at, v)
                if previous is None or at <= previous[0] or v < previous[1]:
                    continue
                if gate >= 0 and values[gate] == 0:
                    continue  # a port without link: no traffic to keep (half a switch's ports)
                v = (v - previous[1]) / (at - previous[0])
            if math.isnan(v):  # nothing to keep
                continue
            batch.append((sid, t, v))
            key = (sid, five_bucket)
            b = five.get(key)
            if b is None:
                five[key] = [v, v, v, 1]
            else:
                b[0] += v
                b[1] = min(b[1], v)
                b[2] = max(b[2], v)
                b[3] += 1

    def _series_id(self, conn: sqlite3.Connection, target: str, probe: str, metric: str,
                   labels: Labels) -> int:  # fmt: skip
        key = (target, probe, metric, labels)
        sid = self._w.series_ids.get(key)
        if sid is None:
            cur = conn.execute(
                "INSERT INTO series (target, probe, metric, labels) VALUES (?, ?, ?, ?)",
                (target, probe, metric, json.dumps([list(p) for p in labels])),
            )
            sid = self._w.series_ids[key] = int(cur.lastrowid or 0)
        return sid

    def _status(self, stored: StoredResult, events: list[tuple[str, tuple[Any, ...]]]) -> None:
        """A probe's status change, and the device's DOWN state (outage rows)."""
        w = self._w
        result = stored.result
        at = stored.finished_at
        status = result.status.value
        if w.last_status.get((stored.target, stored.probe)) != status:
            w.last_status[(stored.target, stored.probe)] = status
            events.append(("INSERT INTO changes VALUES (?, ?, ?, ?, ?)",
                           (stored.target, stored.probe, at, status, result.explanation)))  # fmt: skip
        if not is_reachability(stored.probe):
            return
        probes = w.probes.setdefault(stored.target, {})
        probes[stored.probe] = _ProbeState(
            result.status.success, status, result.explanation, at, stored.stale_after
        )
        fresh = [p for p in probes.values() if at - p.at <= p.stale_after]
        down = not any(p.success for p in fresh)
        target = stored.target
        is_open = target in w.open_outages
        carried = target in w.carried
        w.carried.discard(target)
        if down and not is_open:
            icmp = probes.get("icmp")
            why = icmp if icmp is not None and icmp in fresh else probes[stored.probe]
            w.open_outages[target] = (at, why.explanation)
            events.append(("INSERT INTO outages VALUES (?, ?, NULL, ?, ?)",
                           (target, at, why.explanation, why.status)))  # fmt: skip
        elif not down and is_open:
            start, _ = w.open_outages.pop(target)
            end = at
            if carried and w.previous_run_end is not None and w.previous_run_end > start:
                end = w.previous_run_end  # down until then; netmon saw nothing after it
            events.append(('UPDATE outages SET "end" = ? WHERE target = ? AND "end" IS NULL',
                           (end, target)))  # fmt: skip

    def _command(self, item: tuple[str, Any], events: list[tuple[str, tuple[Any, ...]]],
                 now: float) -> None:  # fmt: skip
        kind, arg = item
        w = self._w
        if kind == "keep":
            for target in [t for t in w.open_outages if t not in arg]:
                del w.open_outages[target]
                events.append(('UPDATE outages SET "end" = ? WHERE target = ? AND "end" IS NULL',
                               (now, target)))  # fmt: skip
            for target in [t for t in w.probes if t not in arg]:
                del w.probes[target]
        elif kind == "silences":
            for s in arg:
                events.append(("INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?)",
                               (s.id, "\n".join(s.matchers), s.starts_at, s.ends_at)))  # fmt: skip

    def _roll(self, conn: sqlite3.Connection, now: float,
              late: dict[int, dict[tuple[int, int], Bucket]]) -> None:  # fmt: skip
        """Write the complete 5-minute buckets and the hours they complete, and merge
        late points into buckets already written. Open buckets stay in memory (after a
        restart they are rebuilt from the raw rows past the watermark)."""
        w = self._w
        for (sid, t), b in late[FIVE_MINUTES].items():
            hour = (sid, t - t % HOURLY)
            _fold(late[HOURLY] if hour[1] < w.hours_done else w.hours, hour, *b)
        rows5 = [(*k, *b) for k, b in late[FIVE_MINUTES].items()]
        rows1 = [(*k, *b) for k, b in late[HOURLY].items()]
        edge = int(now - GRACE_SECONDS)
        five_edge = edge - edge % FIVE_MINUTES
        if five_edge > w.five_done:
            for k in [k for k in w.five if k[1] < five_edge]:
                b = w.five.pop(k)
                rows5.append((*k, *b))
                _fold(w.hours, (k[0], k[1] - k[1] % HOURLY), *b)
            w.five_done = five_edge
            hour_edge = five_edge - five_edge % HOURLY
            if hour_edge > w.hours_done:
                for k in [k for k in w.hours if k[1] < hour_edge]:
                    rows1.append((*k, *w.hours.pop(k)))
                w.hours_done = hour_edge
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             [("five_done", w.five_done), ("hours_done", w.hours_done)])  # fmt: skip
        if rows5:
            conn.executemany(_ROLLUP_SQL[FIVE_MINUTES], rows5)
        if rows1:
            conn.executemany(_ROLLUP_SQL[HOURLY], rows1)

    # --- trimming ---------------------------------------------------------------------

    def _maintain(self, conn: sqlite3.Connection, now: float, final: bool) -> None:
        w = self._w
        over = False
        if now - w.last_size_check >= SIZE_CHECK_SECONDS or final:
            w.last_size_check = now
            self._stats.size = self._file_size()
            over = self._stats.size > self.settings.max_size
        if over or now - w.last_trim >= TRIM_SECONDS:
            w.last_trim = now
            try:
                self.trim(now)
            except sqlite3.Error as exc:
                self._stats.errors += 1
                log.error("history not trimmed (%s); will retry", exc)

    def _used_bytes(self, conn: sqlite3.Connection) -> int:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def trim(self, now: float | None = None) -> None:
        """Drop rows past their retention, then, while the file is over ``max_size``,
        the oldest data of every tier in proportion; give the space back to the OS."""
        conn = self._conn
        if conn is None:
            return
        at = self.clock() if now is None else now
        r = self.settings.retention
        spans = {RAW: r.raw, FIVE_MINUTES: r.five_minutes, HOURLY: r.hourly}
        self._delete_before(conn, {k: at - v for k, v in spans.items()})
        bound = self.settings.max_size
        if self._used_bytes(conn) > bound * TRIM_TARGET:
            floors = {k: min(_MIN_SPAN[k], v) for k, v in spans.items()}
            # The data's real span (the file may be younger than the retention).
            spans = {k: max(min(v, at - self._w.created), floors[k]) for k, v in spans.items()}
            while self._used_bytes(conn) > bound * TRIM_TARGET and any(
                v > floors[k] for k, v in spans.items()
            ):
                spans = {k: max(v * 0.8, floors[k]) for k, v in spans.items()}
                self._delete_before(conn, {k: at - v for k, v in spans.items()})
            if at - self._last_size_warning >= 3600:
                self._last_size_warning = at
                log.warning(
                    "history file at history.max_size (%d bytes): now keeps %.1f h of raw, "
                    "%.1f h of 5-minute and %.1f h of hourly data; raise max_size to keep more",
                    bound, spans[RAW] / 3600, spans[FIVE_MINUTES] / 3600, spans[HOURLY] / 3600,
                )  # fmt: skip
        conn.execute("PRAGMA incremental_vacuum")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._stats.size = self._file_size()

    def _delete_before(self, conn: sqlite3.Connection, cutoffs: Mapping[int, float]) -> None:
        ids = [(sid,) for sid in self._w.series_ids.values()]
        oldest = min(cutoffs.values())
        conn.execute("BEGIN IMMEDIATE")
        try:
            for step, cutoff in cutoffs.items():
                conn.executemany(
                    f"DELETE FROM {TABLES[step]} WHERE series_id = ? AND t < {int(cutoff)}", ids
                )
            conn.execute('DELETE FROM outages WHERE "end" < ?', (oldest,))
            conn.execute("DELETE FROM changes WHERE at < ?", (oldest,))
            conn.execute('DELETE FROM runs WHERE "end" < ?', (oldest,))
            conn.execute("DELETE FROM silences WHERE ends_at < ?", (oldest,))
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _file_size(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += Path(f"{self.path}{suffix}").stat().st_size
            except OSError:
                pass
        return total

    # --- reading ----------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, check_same_thread=False, timeout=5.0
            )
            conn.execute("PRAGMA busy_timeout = 5000")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _step_for(self, since: float, now: float) -> int:
        r = self.settings.retention
        if since >= now - r.raw:
            return RAW
        return FIVE_MINUTES if since >= now - r.five_minutes else HOURLY

    def series(
        self,
        target: str,
        metric: str,
        *,
        probe: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: float,
        until: float | None = None,
        step: int | None = None,
    ) -> list[Series]:
        """The points of a target's series named ``metric`` in ``[since, until)``; one
        :class:`Series` per label set (and probe), only those matching ``labels``.

        ``step``: None picks the finest resolution still kept for ``since`` (raw within
        48 h, 5-minute within 35 d, else hourly); 0, 300 or 3600 forces one."""
        now = self.clock()
        end = now + 1 if until is None else until
        if step is None:
            step = self._step_for(since, now)
        if step not in TABLES:
            raise ValueError(f"step must be 0 (raw), 300 or 3600, not {step}")
        conn = self._reader()
        query = "SELECT id, probe, labels FROM series WHERE target = ? AND metric = ?"
        args: list[Any] = [target, metric]
        if probe is not None:
            query += " AND probe = ?"
            args.append(probe)
        out = []
        lo, hi = math.floor(since), math.ceil(end)
        for sid, probe_name, labels_text in conn.execute(
            query + " ORDER BY probe, labels", args
        ).fetchall():
            kept = dict(tuple(p) for p in json.loads(labels_text))
            if labels and any(kept.get(k) != v for k, v in labels.items()):
                continue
            if step == RAW:
                rows = conn.execute(
                    "SELECT t, v FROM raw WHERE series_id = ? AND t >= ? AND t < ? ORDER BY t",
                    (sid, lo, hi),
                ).fetchall()
                points = [Point(t, v, v, v) for t, v in rows]
            else:
                rows = conn.execute(
                    f"SELECT t, sum, min, max, n FROM {TABLES[step]} WHERE series_id = ? "
                    "AND t >= ? AND t < ? ORDER BY t", (sid, lo - lo % step, hi),
                ).fetchall()  # fmt: skip
                points = [Point(t, s / n, mn, mx) for t, s, mn, mx, n in rows]
            out.append(Series(kept, points, probe_name, metric, step))
        return out

    def catalog(self, target: str) -> list[tuple[str, str, dict[str, str]]]:
        """Every kept series of a target: (probe, metric, labels)."""
        rows = (
            self._reader()
            .execute(
                "SELECT probe, metric, labels FROM series WHERE target = ? ORDER BY probe, metric, labels",
                (target,),
            )
            .fetchall()
        )
        return [(p, m, dict(tuple(x) for x in json.loads(lab))) for p, m, lab in rows]

    def targets(self) -> list[str]:
        """Every target the history has series of."""
        rows = self._reader().execute("SELECT DISTINCT target FROM series ORDER BY target")
        return [r[0] for r in rows]

    def outages(
        self, target: str | None = None, *, since: float, until: float | None = None
    ) -> list[Outage]:
        """Outages overlapping ``[since, until)``, oldest first (open ones included)."""
        end = math.inf if until is None else until
        query = 'SELECT target, start, "end", reason, status FROM outages WHERE start < ? AND ("end" IS NULL OR "end" > ?)'
        args: list[Any] = [end, since]
        if target is not None:
            query += " AND target = ?"
            args.append(target)
        rows = self._reader().execute(query + " ORDER BY start, target", args).fetchall()
        return [Outage(*row) for row in rows]

    def changes(
        self, target: str, *, probe: str | None = None, since: float, until: float | None = None
    ) -> list[Change]:
        """A target's probe status changes in ``[since, until)``, oldest first."""
        query = "SELECT target, probe, at, status, explanation FROM changes WHERE target = ? AND at >= ? AND at < ?"
        args: list[Any] = [target, since, math.inf if until is None else until]
        if probe is not None:
            query += " AND probe = ?"
            args.append(probe)
        return [Change(*row) for row in self._reader().execute(query + " ORDER BY at", args)]

    def first_seen(self) -> dict[str, float]:
        """When each target's first result was recorded (its first status change)."""
        rows = self._reader().execute("SELECT target, MIN(at) FROM changes GROUP BY target")
        return dict(rows.fetchall())

    def running(self, since: float, until: float) -> list[tuple[float, float]]:
        """The periods netmon was running and recording, clipped to ``[since, until)``;
        a period still running ends at its last heartbeat (the writer's last
        transaction, at most :data:`FLUSH_SECONDS` ago), or at ``until`` for this
        process's own."""
        rows = (
            self._reader()
            .execute(
                'SELECT start, "end", rowid FROM runs WHERE start < ? AND "end" >= ? ORDER BY start',
                (until, since),
            )
            .fetchall()
        )
        out = []
        for start, end, rowid in rows:
            if rowid == self._w.run_id and not self.readonly:
                end = until
            a, b = max(start, since), min(end, until)
            if b > a:
                out.append((a, b))
        return out

    def silences(self, since: float, until: float) -> list[SilencePeriod]:
        """The silences overlapping ``[since, until)``."""
        rows = self._reader().execute(
            "SELECT id, matchers, starts_at, ends_at FROM silences WHERE starts_at < ? "
            "AND ends_at > ? ORDER BY starts_at", (until, since),
        ).fetchall()  # fmt: skip
        return [SilencePeriod(i, tuple(m.split("\n")), a, b) for i, m, a, b in rows]

    def size_bytes(self) -> int:
        """The file's size on disk, WAL included (as of the last check, ~10 s)."""
        return self._stats.size if self._conn is not None else self._file_size()

    def samples(self) -> list[Sample]:
        """netmon's own metrics about the store, for ``/metrics``."""
        s = self._stats
        return [
            Sample.of("netmon_history_writes_total", s.writes),
            Sample.of("netmon_history_dropped_total", s.dropped),
            Sample.of("netmon_history_errors_total", s.errors),
            Sample.of("netmon_history_write_seconds_total", s.write_seconds),
            Sample.of("netmon_history_size_bytes", s.size),
            Sample.of("netmon_history_queue", len(self._queue)),
        ]
