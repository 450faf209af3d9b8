"""The result store: the latest result of every (target, probe) pair, and a short history.

The scheduler writes into it from the asyncio loop; the exporter's synchronous
``collect()`` (and later the alert engine and the status page) read a snapshot of it,
possibly from another thread. A lock guards every access, and readers get immutable
copies, so a scrape never sees half an update.

Staleness rule: a result is served for ``stale_after = max(3 * interval, 3 minutes)``
after the run that produced it finished. A result older than that is left out of
snapshots (it stays in the history), so a target whose probes stopped running
disappears from ``/metrics`` instead of being reported as if fresh.

Compact samples: a district holds half a million samples, and a ``Sample`` object with
its own label tuple per sample cost ~200 bytes each, rebuilt on every poll. The store
keeps a result's samples as a :class:`Shape` (the ordered metric names and label sets,
interned: a target's next poll with the same series reuses the same object, and targets
with equal series share one) plus the values in an ``array('d')``; the stored
:class:`CompactResult` is still a :class:`~probes.result.ProbeResult` whose ``samples``
are built on demand (the status page, the JSON API). The exporter renders from the
shape and the values directly (``CompactResult.series()``), never from ``Sample``
objects.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import weakref
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from probes.result import Labels, ProbeResult, Sample, Status

#: Results are served for at least this long, whatever the interval.
MIN_STALE_AFTER = 180.0
#: ... and at least this many intervals: two missed runs are tolerated, three are not.
STALE_INTERVALS = 3
#: Entries kept per (target, probe) in the history.
HISTORY_LENGTH = 10

#: Labels the exporter sets itself; a target's static labels must not use them.
RESERVED_LABELS = frozenset({"target", "probe", "job", "instance"})
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

Key = tuple[str, str]
Listener = Callable[["StoredResult"], None]
log = logging.getLogger("netmon.store")


def stale_after(interval: float) -> float:
    """Seconds a result of a probe run every ``interval`` seconds stays fresh."""
    return max(STALE_INTERVALS * interval, MIN_STALE_AFTER)


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Shape:
    """The ordered keys of a result's samples: ``metrics[i]`` with ``labels[i]``.

    Interned by :func:`intern_shape`: equal keys give the same object for as long as
    some stored result uses it, so comparing shapes is ``is``. Within a shape, equal
    label sets (and equal ``(name, value)`` pairs) are one object.
    """

    metrics: tuple[str, ...]
    labels: tuple[Labels, ...]

    def __len__(self) -> int:
        return len(self.metrics)


_shapes: weakref.WeakValueDictionary[tuple[tuple[str, ...], tuple[Labels, ...]], Shape] = (
    weakref.WeakValueDictionary()
)
_shapes_lock = threading.Lock()
_metric_of = attrgetter("metric")
_labels_of = attrgetter("labels")
_value_of = attrgetter("value")


def intern_shape(samples: Sequence[Sample], previous: Shape | None = None) -> Shape:
    """The interned shape of ``samples``; ``previous`` (the pair's last shape) is the
    usual answer and is checked first."""
    metrics = tuple(map(_metric_of, samples))
    labels = tuple(map(_labels_of, samples))
    if previous is not None and previous.metrics == metrics and previous.labels == labels:
        return previous
    with _shapes_lock:
        shape = _shapes.get((metrics, labels))
        if shape is None:
            shape = Shape(metrics, _interned_label_sets(labels))
            _shapes[(shape.metrics, shape.labels)] = shape
    return shape


def _interned_label_sets(label_sets: tuple[Labels, ...]) -> tuple[Labels, ...]:
    pairs: dict[tuple[str, str], tuple[str, str]] = {}
    sets: dict[Labels, Labels] = {}
    out = []
    for labels in label_sets:
        canonical = sets.get(labels)
        if canonical is None:
            canonical = tuple(pairs.setdefault(pair, pair) for pair in labels)
            sets[canonical] = canonical
        out.append(canonical)
    return tuple(out)


_OTHER_FIELDS = tuple(f.name for f in dataclasses.fields(ProbeResult) if f.name != "samples")


class CompactResult(ProbeResult):
    """A :class:`ProbeResult` as the store keeps it: its samples are a :class:`Shape`
    and an ``array('d')`` of values, and ``samples`` builds ``Sample`` objects only when
    read (a new list each time: changing it does not change the stored result).
    :meth:`series` reads them without building objects."""

    __slots__ = ("_live", "shape", "values")

    shape: Shape
    values: array[float]
    #: The put's own Sample list while the store's listeners run (they read it as is).
    _live: list[Sample] | None

    @classmethod
    def of(cls, result: ProbeResult, previous: Shape | None = None) -> CompactResult:
        """A compact copy of ``result`` (which is left unchanged); facts and records are
        shared with it, as the store always did."""
        new = cls.__new__(cls)
        for name in _OTHER_FIELDS:
            setattr(new, name, getattr(result, name))
        new._compact(result.samples, previous)
        return new

    def _compact(self, samples: Sequence[Sample], previous: Shape | None = None) -> None:
        self.shape = intern_shape(samples, previous)
        self.values = array("d", map(_value_of, samples))
        self._live = None

    @property
    def samples(self) -> list[Sample]:
        if self._live is not None:
            return self._live
        shape = self.shape
        return list(map(Sample, shape.metrics, shape.labels, self.values))

    @samples.setter
    def samples(self, samples: Sequence[Sample]) -> None:
        self._compact(samples)

    def series(self) -> Iterator[tuple[str, Labels, float]]:
        """``(metric, labels, value)`` of every sample, in order, without Sample objects."""
        return zip(self.shape.metrics, self.shape.labels, self.values, strict=True)

    def samples_named(self, metric: str) -> list[Sample]:
        return [Sample(m, labels, v) for m, labels, v in self.series() if m == metric]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProbeResult):
            return NotImplemented
        return self.samples == other.samples and all(
            getattr(self, name) == getattr(other, name) for name in _OTHER_FIELDS
        )

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in _OTHER_FIELDS}
        state["samples"] = self.samples
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in _OTHER_FIELDS:
            setattr(self, name, state[name])
        self._compact(state["samples"])


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One past run: when it finished, its status and its explanation."""

    at: float
    status: Status
    explanation: str


@dataclass(frozen=True, slots=True, weakref_slot=True)
class StoredResult:
    """A probe result with what the exporter needs around it."""

    target: str
    probe: str
    result: CompactResult
    #: The target's static labels (role, site, building, room, group, ...).
    labels: Mapping[str, str]
    #: Seconds between runs of this probe on this target.
    interval: float
    #: When the run finished (Unix time).
    finished_at: float

    @property
    def stale_after(self) -> float:
        return stale_after(self.interval)

    def is_stale(self, now: float) -> bool:
        return now - self.finished_at > self.stale_after

    @property
    def shape(self) -> Shape:
        return self.result.shape

    @property
    def values(self) -> array[float]:
        return self.result.values


_STATUSES = tuple(Status)
_STATUS_INDEX = {status: i for i, status in enumerate(_STATUSES)}
#: Explanations shared between runs and targets ("3 of 3 echo replies, avg 0.21 ms"):
#: a district's history holds ~100,000 of them and far fewer distinct ones.
_TEXTS: dict[str, str] = {}
_TEXTS_MAX = 1 << 14


def _shared_text(text: str) -> str:
    shared = _TEXTS.get(text)
    if shared is None:
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        shared = _TEXTS[text] = text
    return shared


@dataclass(slots=True)
class _Entry:
    latest: StoredResult
    #: The last :data:`HISTORY_LENGTH` runs, oldest first, in columns: 17 bytes a run
    #: plus its (often shared) explanation; a deque of HistoryEntry objects took ~150.
    ats: array[float] = field(default_factory=lambda: array("d"))
    statuses: bytearray = field(default_factory=bytearray)
    explanations: list[str] = field(default_factory=list)

    def record(self, at: float, status: Status, explanation: str) -> None:
        if len(self.ats) >= HISTORY_LENGTH:
            del self.ats[0], self.statuses[0], self.explanations[0]
        self.ats.append(at)
        self.statuses.append(_STATUS_INDEX[status])
        self.explanations.append(explanation)

    def history(self) -> list[HistoryEntry]:
        return [
            HistoryEntry(at, _STATUSES[i], why)
            for at, i, why in zip(self.ats, self.statuses, self.explanations, strict=True)
        ]


class ResultStore:
    """Latest :class:`StoredResult` per (target name, probe name); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Key, _Entry] = {}
        #: The same entries by target name, then probe name (for :meth:`latest_for`).
        self._by_target: dict[str, dict[str, _Entry]] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(stored)`` after every :meth:`put`, in the putting thread (the
        alert engine evaluates its rules as results arrive). A listener that raises is
        logged and does not stop the others."""
        self._listeners.append(listener)

    def put(
        self,
        result: ProbeResult,
        labels: Mapping[str, str],
        interval: float,
        *,
        probe: str | None = None,
        now: float | None = None,
    ) -> StoredResult:
        """Store ``result`` as the latest of (``result.target``, ``probe``).

        ``probe`` defaults to ``result.probe`` (the probe kind); a scheduler running two
        probes of one kind on a target (two TCP ports) passes distinct names. The run's
        finish time is ``started_at + duration_seconds`` as the runner filled them in,
        or ``now`` when the result has no start time.
        """
        name = probe or result.probe
        if not result.target or not name:
            raise ValueError("a stored result needs a target and a probe name")
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval}")
        _check_labels(labels)
        finished = result.started_at + result.duration_seconds if result.started_at else None
        if finished is None:
            finished = time.time() if now is None else now
        key = (result.target, name)
        with self._lock:
            previous = self._entries.get(key)
            # The target's labels as another of its results holds them, if they are equal.
            siblings = [e.latest.labels for e in self._by_target.get(result.target, {}).values()]
        shared: Mapping[str, str] | None = next((s for s in siblings if s == labels), None)
        compact = CompactResult.of(result, previous.latest.shape if previous else None)
        compact.explanation = _shared_text(result.explanation)
        stored = StoredResult(
            target=result.target,
            probe=name,
            result=compact,
            labels=shared if shared is not None else MappingProxyType(dict(labels)),
            interval=float(interval),
            finished_at=finished,
        )
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(stored)
                self._by_target.setdefault(stored.target, {})[name] = entry
            else:
                entry.latest = stored
            entry.record(finished, result.status, compact.explanation)
        # Listeners (the alert rules) read this result's samples at once: give them the
        # probe's own list rather than building it again; later readers get a new one.
        compact._live = result.samples
        try:
            for listener in list(self._listeners):
                try:
                    listener(stored)
                except Exception:
                    log.exception(
                        "result listener %r failed on %s/%s", listener, stored.target, name
                    )
        finally:
            compact._live = None
        return stored

    def snapshot(self, now: float | None = None) -> list[StoredResult]:
        """The fresh latest results, sorted by target then probe; stale ones left out."""
        at = time.time() if now is None else now
        with self._lock:
            latest = [e.latest for e in self._entries.values()]
        return sorted((s for s in latest if not s.is_stale(at)), key=lambda s: (s.target, s.probe))

    def get(self, target: str, probe: str) -> StoredResult | None:
        """The latest result of one pair, stale or not (``None`` if never stored)."""
        with self._lock:
            entry = self._entries.get((target, probe))
            return entry.latest if entry else None

    def latest_for(self, target: str, now: float | None = None) -> dict[str, StoredResult]:
        """The fresh latest result of every probe of one target, by probe name."""
        at = time.time() if now is None else now
        with self._lock:
            latest = [e.latest for e in self._by_target.get(target, {}).values()]
        return {s.probe: s for s in latest if not s.is_stale(at)}

    def history(self, target: str, probe: str) -> list[HistoryEntry]:
        """The last :data:`HISTORY_LENGTH` runs of one pair, oldest first."""
        with self._lock:
            entry = self._entries.get((target, probe))
            return entry.history() if entry else []

    def remove_target(self, name: str) -> int:
        """Forget every result and history of a target (it left the inventory)."""
        with self._lock:
            keys = [k for k in self._entries if k[0] == name]
            for k in keys:
                del self._entries[k]
            self._by_target.pop(name, None)
        return len(keys)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _check_labels(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        if not _LABEL_NAME.match(key) or key.startswith("__"):
            raise ValueError(f"{key!r} is not a valid label name (letters, digits, '_')")
        if key in RESERVED_LABELS:
            raise ValueError(f"label {key!r} is set by netmon itself; choose another name")
        if not isinstance(value, str):
            raise TypeError(f"label {key!r} must be a string, not {type(value).__name__}")
