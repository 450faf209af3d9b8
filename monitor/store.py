"""The result store: the latest result of every (target, probe) pair, and a short history.

The scheduler writes into it from the asyncio loop; the exporter's synchronous
``collect()`` (and later the alert engine and the status page) read a snapshot of it,
possibly from another thread. A lock guards every access, and readers get immutable
copies, so a scrape never sees half an update.

Staleness rule: a result is served for ``stale_after = max(3 * interval, 3 minutes)``
after the run that produced it finished. A result older than that is left out of
snapshots (it stays in the history), so a target whose probes stopped running
disappears from ``/metrics`` instead of being reported as if fresh.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from probes.result import ProbeResult, Status

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


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One past run: when it finished, its status and its explanation."""

    at: float
    status: Status
    explanation: str


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A probe result with what the exporter needs around it."""

    target: str
    probe: str
    result: ProbeResult
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


@dataclass(slots=True)
class _Entry:
    latest: StoredResult
    history: deque[HistoryEntry] = field(default_factory=lambda: deque(maxlen=HISTORY_LENGTH))


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
        stored = StoredResult(
            target=result.target,
            probe=name,
            result=result,
            labels=MappingProxyType(dict(labels)),
            interval=float(interval),
            finished_at=finished,
        )
        with self._lock:
            entry = self._entries.get((stored.target, name))
            if entry is None:
                entry = self._entries[(stored.target, name)] = _Entry(stored)
                self._by_target.setdefault(stored.target, {})[name] = entry
            else:
                entry.latest = stored
            entry.history.append(HistoryEntry(finished, result.status, result.explanation))
        for listener in list(self._listeners):
            try:
                listener(stored)
            except Exception:
                log.exception("result listener %r failed on %s/%s", listener, stored.target, name)
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
            return list(entry.history) if entry else []

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
