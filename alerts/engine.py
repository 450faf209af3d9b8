"""The alert engine: rule observations in, alert states out, kept in SQLite.

Per alert instance (one label set): inactive -> pending (the rule's ``for``) -> firing ->
resolved (kept :data:`RESOLVED_RETENTION` seconds, then deleted). ``for: 0`` fires at once;
a resolved instance that becomes active again starts pending anew. :meth:`AlertEngine.observe`
takes the complete set of a target's observations: an instance of that target not in the
list is inactive. Suppressed alerts keep their state (they still show everywhere, with a
reason); only the notifier ignores them. One suppression is shown, by priority:

1. ``parent_down`` (reachability alerts only). A target is *down* while one of its
   reachability alerts is pending or firing. A child is suppressed while any ancestor is
   down ("unreachable because parent sw-closet-b2 is down"; the topmost down ancestor is
   named, as it is the cause). Two races are closed:

   - the child reports before its parent: a child's reachability alert stays *pending*
     (never fires unsuppressed) until every ancestor has been observed since the child's
     alert became active. Then the ancestor is either down (the child fires suppressed)
     or up (the child fires normally);
   - the parent comes back before the children are probed again: an alert that was
     active while the parent was down stays suppressed ("parent ... is back up; waiting
     for ...'s next check") until the alert is observed on data measured after the
     parent's recovery (:attr:`Observation.as_of`: its rule's probe runs started after
     it). So a closet switch going down with 30 children gives one unsuppressed alert,
     and when it comes back the children resolve without ever firing unsuppressed; a
     child still down at its next check then fires. Per alert, not per target: a
     printer's ping every minute says nothing new of its TCP port checked every 5.

   Both waits end after ``parent_wait`` (default 10m), so an unmonitored or slow parent
   delays alerts but never hides them.
2. ``out_of_schedule`` (reachability alerts only): the target's ``expected_online``
   schedule says it may be off now.
3. ``silenced``: a ``netmon silence`` matches the alert's labels.
4. ``flapping``: the instance's condition changed ``flapping.changes`` times within
   ``flapping.window``. It is then held *firing* (suppressed ``flapping``; the notifier
   sends one notice) whatever the condition does, until the condition has been stable
   for a whole window; then it resolves, or stays firing unsuppressed if still active.

Restart: every state change is committed before the call returns; a new engine on the
same file (or the same connection, after a reload) continues where the last one stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeGuard

from pydantic import Field

from alerts.db import StateStore, as_store
from alerts.model import (
    TARGET_LABELS,
    Alert,
    AlertState,
    Observation,
    Severity,
    Suppression,
    fingerprint,
)
from alerts.schedule import Schedule, is_expected_online, next_change
from alerts.silences import (
    SILENCE_SCHEMA,
    Matcher,
    Silence,
    add_silence,
    expire_silence,
    list_silences,
    restore_silences,
)
from probes.result import Sample
from probes.settings import Duration, StrictModel

log = logging.getLogger("netmon.alerts.engine")

#: Resolved alerts stay visible (and available for resolved notices) this long.
RESOLVED_RETENTION = 3600.0
DEFAULT_STATE_FILE = "netmon-alerts.db"
_ACTIVE = (AlertState.PENDING, AlertState.FIRING)
_MAX_DEPTH = 32
_NEVER = float("-inf")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS alerts (
        fingerprint TEXT PRIMARY KEY, target TEXT NOT NULL, state TEXT NOT NULL,
        data TEXT NOT NULL, reachability INTEGER NOT NULL, for_seconds REAL NOT NULL,
        condition INTEGER NOT NULL, flapping INTEGER NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS alert_flips (fingerprint TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS alert_flips_fp ON alert_flips (fingerprint)",
    """CREATE TABLE IF NOT EXISTS alert_targets (
        name TEXT PRIMARY KEY, observed_at REAL, up_since REAL)""",
)
#: Each alert's data time (``_Instance.observed``): a table and schema part of its own, so
#: that older files gain it and an older netmon still writes its ``alerts`` rows.
_OBSERVED_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS alert_observed (fingerprint TEXT PRIMARY KEY, as_of REAL NOT NULL)",
)


class FlappingSettings(StrictModel):
    """``alerts.flapping``: damping for instances that keep changing state."""

    enabled: bool = True
    window: Duration = 900.0
    changes: int = Field(default=6, ge=2)


class EngineSettings(StrictModel):
    """The engine's fields of ``alerts:``."""

    #: SQLite state file, relative to the config file's directory.
    state_file: str = DEFAULT_STATE_FILE
    flapping: FlappingSettings = Field(default_factory=FlappingSettings)
    #: Longest a child's reachability alert waits for news of its parent (see module doc).
    parent_wait: Duration = 600.0


def check_references(
    settings: EngineSettings, *, groups: set[str], targets: set[str], schedules: set[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """The engine's settings name nothing else in the config: always fine."""
    return []


class TargetLike(Protocol):
    """What the engine needs of :class:`alerts.rules.TargetInfo`."""

    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def parent(self) -> str | None: ...
    @property
    def expected_online(self) -> str | None: ...


@dataclass(slots=True)
class _Instance:
    alert: Alert
    reachability: bool
    for_seconds: float
    #: The rule's latest verdict (differs from the state while pending or flapping).
    condition: bool
    flapping: bool = False
    #: When the data of its latest observation was measured (``Observation.as_of``, else
    #: the observation's time).
    observed: float = _NEVER

    def row(self) -> tuple[object, ...]:
        a = self.alert
        return (a.fingerprint, a.target, a.state.value, json.dumps(a.to_json(), sort_keys=True),
                int(self.reachability), self.for_seconds, int(self.condition), int(self.flapping))  # fmt: skip


class AlertEngine:
    """Alert states of every instance; see the module docstring for the rules."""

    def __init__(
        self,
        conn: sqlite3.Connection | StateStore,
        settings: EngineSettings,
        *,
        schedules: Mapping[str, Schedule],
        base_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        #: The state file; while it is faulty, an in-memory copy (see alerts.db).
        self.store = as_store(conn)
        self.settings = settings
        self.schedules = dict(schedules)
        self.base_dir = Path(base_dir)
        self.clock = clock
        self.store.ensure_schema("engine", 1, _SCHEMA)
        self.store.ensure_schema("engine_observed", 1, _OBSERVED_SCHEMA)
        self.store.ensure_schema("silences", 1, SILENCE_SCHEMA)
        self._generation = self.store.generation
        conn = self.store.conn
        self._targets: dict[str, TargetLike] = {}
        self._instances: dict[str, _Instance] = {}
        #: Fingerprints of each target's instances (observe touches only these).
        self._by_target: dict[str, set[str]] = {}
        #: A digest of each instance's row as last written (the row itself, JSON included,
        #: doubled the engine's memory per instance).
        self._written: dict[str, bytes] = {}
        for row in conn.execute("SELECT * FROM alerts"):
            inst = _Instance(
                Alert.from_json(json.loads(row["data"])), bool(row["reachability"]),
                row["for_seconds"], bool(row["condition"]), bool(row["flapping"]),
            )  # fmt: skip
            self._instances[inst.alert.fingerprint] = inst
            self._by_target.setdefault(inst.alert.target, set()).add(inst.alert.fingerprint)
            self._written[inst.alert.fingerprint] = _digest(inst.row())
        self._flips: dict[str, list[float]] = {}
        for row in conn.execute("SELECT fingerprint, at FROM alert_flips ORDER BY at"):
            self._flips.setdefault(row["fingerprint"], []).append(row["at"])
        self._new_flips: list[tuple[str, float]] = []
        self._observed: dict[str, float] = {}
        self._up_since: dict[str, float] = {}
        for row in conn.execute("SELECT * FROM alert_targets"):
            if row["observed_at"] is not None:
                self._observed[row["name"]] = row["observed_at"]
            if row["up_since"] is not None:
                self._up_since[row["name"]] = row["up_since"]
        # A file from before alert_observed: the target's last observation, as then.
        for inst in self._instances.values():
            inst.observed = self._observed.get(inst.alert.target, _NEVER)
        for row in conn.execute("SELECT fingerprint, as_of FROM alert_observed"):
            if (found := self._instances.get(row["fingerprint"])) is not None:
                found.observed = row["as_of"]
        self._dirty_targets: set[str] = set()
        #: Instances changed since the last write (only these are serialised) ...
        self._touched: set[str] = set()
        #: ... and those whose ``observed`` changed.
        self._dirty_observed: set[str] = set()
        self._in_schedule: dict[str, bool] = {}
        self._down = self._down_targets()
        self._silences: list[Silence] = list_silences(conn, now=self.clock())

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn

    # --- public API ------------------------------------------------------------------

    def set_targets(self, targets: Sequence[TargetLike]) -> None:
        """The inventory (labels, parents, schedules); call again after a reload."""
        self._targets = {t.name: t for t in targets}

    def observe(
        self,
        target: str,
        observations: Sequence[Observation],
        now: float | None = None,
        *,
        settle: bool = True,
    ) -> list[Alert]:
        """Apply one target's complete observations; return the alerts whose state or
        suppression changed. Call it for every new result, even with no observations.

        ``settle=False`` only records the conditions (cost: this target's instances) and
        leaves promotions, suppressions and persistence to the next :meth:`tick`, which
        the daemon runs every second; it returns ``[]``. A district's thousands of results
        a minute then do not each walk every alert instance."""
        at = self.clock() if now is None else now
        before = self._snapshot() if settle else {}
        seen: set[str] = set()
        for obs in observations:
            seen.add(self._apply(obs, at))
        for fp in list(self._by_target.get(target, ())):
            inst = self._instances[fp]
            if fp not in seen:
                if inst.condition:
                    self._flip(inst, False, at)
                if inst.alert.state in _ACTIVE:  # held while flapping: nothing to wait for
                    self._saw(inst, at)
        self._observed[target] = at
        self._dirty_targets.add(target)
        return self._settle(at, before) if settle else []

    def tick(self, now: float | None = None) -> list[Alert]:
        """Time passes: ``for`` elapsed, schedules, silences, flapping, resolved expiry."""
        at = self.clock() if now is None else now
        self._silences = self.store.read(lambda conn: list_silences(conn, now=at))
        return self._settle(at, self._snapshot())

    def next_due(self, now: float) -> float:
        """The earliest time after ``now`` at which a :meth:`tick` without any new
        observation may change an alert's state or suppression (``inf``: none). A virtual
        clock (:mod:`alerts.replay`) skips the ticks before it; schedules matter at their
        edges while a scheduled target has a reachability alert. (Resolved alerts are
        forgotten at the first tick after :data:`RESOLVED_RETENTION`, whenever it is.)"""
        due = [t + self.settings.flapping.window for flips in self._flips.values() for t in flips[:1]]
        wait = self.settings.parent_wait
        scheduled: set[str] = set()
        for inst in self._instances.values():
            a = inst.alert
            if a.state not in _ACTIVE or a.active_since is None:
                continue
            if a.state is AlertState.PENDING:
                due += [a.active_since + inst.for_seconds, a.active_since + inst.for_seconds + wait]
            if inst.reachability:
                due += [self._up_since[p] + wait for p in self._ancestors(a.target)
                        if p in self._up_since]  # fmt: skip
                info = self._targets.get(a.target)
                if info is not None and info.expected_online in self.schedules:
                    scheduled.add(info.expected_online)
        due += [next_change(self.schedules[name], now, base_dir=self.base_dir) for name in scheduled]
        due += [t for s in self._silences for t in (s.starts_at, s.ends_at)]
        return min((t for t in due if t > now), default=float("inf"))

    def watching(self, now: float) -> set[str]:
        """Targets whose next observation may change a parent verdict even when their
        conditions stay the same: ancestors not observed since a reachability alert of
        a descendant became active, and targets with an alert not observed on data from
        after their parent came back (see the module docstring). Observations of other
        targets with unchanged conditions change nothing (:mod:`alerts.replay` skips them)."""
        found: set[str] = set()
        wait = self.settings.parent_wait
        for inst in self._instances.values():
            a = inst.alert
            if not inst.reachability or a.state not in _ACTIVE:
                continue
            chain = self._ancestors(a.target)
            since = a.active_since or now
            if now - since < inst.for_seconds + wait:
                found.update(p for p in chain if self._observed.get(p, _NEVER) < since)
            if any(inst.observed < self._up_since.get(p, _NEVER) > now - wait for p in chain):
                found.add(a.target)
        return found

    def alerts(self) -> list[Alert]:
        """Pending, firing and resolved (kept :data:`RESOLVED_RETENTION`) alerts, copies."""
        found = [i.alert for i in self._instances.values() if i.alert.state in _ORDER]
        return [_copy(a) for a in sorted(found, key=_sort_key)]

    def samples(self) -> list[Sample]:
        """``netmon_alerts{state,severity,suppressed}``: every combination, zeros included."""
        counts: dict[tuple[str, str, str], int] = {
            (state.value, sev.value, sup.value or "none"): 0
            for state in _ACTIVE
            for sev in Severity
            for sup in Suppression
        }
        for inst in self._instances.values():
            a = inst.alert
            if a.state in _ACTIVE:
                key = (a.state.value, a.severity, a.suppressed.value or "none")
                counts[key] = counts.get(key, 0) + 1
        return [
            Sample.of("netmon_alerts", n, state=state, severity=sev, suppressed=sup)
            for (state, sev, sup), n in sorted(counts.items())
        ]

    def add_silence(
        self, matchers: Sequence[Matcher | str], *, ends_at: float, author: str, comment: str,
        starts_at: float | None = None,
    ) -> Silence:  # fmt: skip
        """Store a silence (it applies from the next observe/tick)."""
        now = self.clock()
        silence = self.store.write(lambda conn: add_silence(
            conn, matchers, starts_at=now if starts_at is None else starts_at,
            ends_at=ends_at, author=author, comment=comment, now=now,
        ))  # fmt: skip
        self._silences = self.store.read(lambda conn: list_silences(conn, now=now))
        return silence

    def list_silences(self, *, include_expired: bool = False) -> list[Silence]:
        return self.store.read(lambda conn: list_silences(
            conn, now=self.clock(), include_expired=include_expired))

    def expire_silence(self, silence_id: str) -> Silence | None:
        now = self.clock()
        found = self.store.write(lambda conn: expire_silence(conn, silence_id, now=now))
        self._silences = self.store.read(lambda conn: list_silences(conn, now=now))
        return found

    # --- state machine ---------------------------------------------------------------

    def _apply(self, obs: Observation, now: float) -> str:
        info = self._targets.get(obs.target)
        labels = {"target": obs.target}
        if info is not None:
            labels.update({k: v for k, v in info.labels.items() if k in TARGET_LABELS})
        labels.update(obs.labels)
        fp = fingerprint(labels)
        inst = self._instances.get(fp)
        if inst is None and not obs.active:
            return fp
        self._touched.add(fp)
        if inst is None:
            alert = Alert(fp, obs.rule, obs.target, labels, {}, AlertState.INACTIVE)
            inst = _Instance(alert, obs.reachability, obs.for_seconds, condition=False)
            self._instances[fp] = inst
            self._by_target.setdefault(obs.target, set()).add(fp)
        if inst.alert.labels is not obs.labels and _same(obs.labels, inst.alert.labels):
            # The rules keep this observation: one labels dict for both, not two.
            inst.alert.labels = obs.labels
        inst.alert.annotations = {"summary": obs.summary, "description": obs.description}
        inst.alert.value = obs.value
        inst.reachability = obs.reachability
        inst.for_seconds = obs.for_seconds
        as_of = obs.as_of
        self._saw(inst, now if as_of is None else as_of)
        if obs.active != inst.condition:
            self._flip(inst, obs.active, now)
        return fp

    def _saw(self, inst: _Instance, as_of: float) -> None:
        if inst.observed != as_of:
            inst.observed = as_of
            self._dirty_observed.add(inst.alert.fingerprint)

    def _flip(self, inst: _Instance, active: bool, now: float) -> None:
        inst.condition = active
        self._touched.add(inst.alert.fingerprint)
        self._flips.setdefault(inst.alert.fingerprint, []).append(now)
        self._new_flips.append((inst.alert.fingerprint, now))
        a = inst.alert
        if active and a.state in (AlertState.INACTIVE, AlertState.RESOLVED):
            a.state, a.active_since, a.starts_at, a.ends_at = AlertState.PENDING, now, None, None
            a.suppressed, a.suppressed_reason = Suppression.NONE, ""
        elif not active and not inst.flapping:
            if a.state is AlertState.PENDING:
                a.state = AlertState.INACTIVE
            elif a.state is AlertState.FIRING:
                a.state, a.ends_at = AlertState.RESOLVED, now

    def _settle(self, now: float, before: dict[str, tuple[str, str, str]]) -> list[Alert]:
        """Derived state after any change: flapping, down targets, promotions,
        suppressions, expiry; then persist and report what changed."""
        self._update_flapping(now)
        self._update_down(now)
        self._in_schedule = {}
        for inst in self._instances.values():
            a = inst.alert
            if (
                a.state is AlertState.PENDING
                and now - (a.active_since or now) >= inst.for_seconds
                and not (inst.reachability and self._parent_verdict(inst, now)[0] == "wait")
            ):
                a.state, a.starts_at = AlertState.FIRING, now
        for inst in self._instances.values():
            if inst.alert.state in _ACTIVE:
                inst.alert.suppressed, inst.alert.suppressed_reason = self._suppression(inst, now)
        changed = []
        for fp, inst in self._instances.items():
            a = inst.alert
            if before.get(fp) != (a.state.value, a.suppressed.value, a.suppressed_reason):
                a.updated_at = now
                changed.append(_copy(a))
                self._touched.add(fp)
        self._persist(now)
        return changed

    def _update_flapping(self, now: float) -> None:
        window = self.settings.flapping.window
        for fp, flips in list(self._flips.items()):
            while flips and flips[0] <= now - window:
                flips.pop(0)
            if not flips:
                del self._flips[fp]
        if not self.settings.flapping.enabled:
            for inst in self._instances.values():
                inst.flapping = False
            return
        for fp, inst in self._instances.items():
            flips = self._flips.get(fp, [])
            a = inst.alert
            if not inst.flapping and len(flips) >= self.settings.flapping.changes:
                inst.flapping = True
                self._touched.add(fp)
                if a.state is not AlertState.FIRING:
                    a.state, a.starts_at, a.ends_at = AlertState.FIRING, now, None
                    a.active_since = a.active_since or now
            elif inst.flapping and not flips:
                inst.flapping = False
                self._touched.add(fp)
                if not inst.condition:
                    a.state, a.ends_at = AlertState.RESOLVED, now

    def _down_targets(self) -> set[str]:
        return {
            i.alert.target
            for i in self._instances.values()
            if i.reachability and i.alert.state in _ACTIVE
        }

    def _update_down(self, now: float) -> None:
        down = self._down_targets()
        for target in self._down - down:
            self._up_since[target] = now
            self._dirty_targets.add(target)
        self._down = down

    def _ancestors(self, target: str) -> list[str]:
        chain: list[str] = []
        info = self._targets.get(target)
        while (
            info is not None
            and info.parent
            and info.parent not in chain
            and len(chain) < _MAX_DEPTH
        ):
            chain.append(info.parent)
            info = self._targets.get(info.parent)
        return chain

    def _parent_verdict(self, inst: _Instance, now: float) -> tuple[str, str]:
        """("down" | "recovering", reason), ("wait", "") or ("clear", "")."""
        target = inst.alert.target
        chain = self._ancestors(target)
        down = [a for a in chain if a in self._down]
        if down:
            cause = down[-1]
            if cause == chain[0]:
                return "down", f"unreachable because parent {cause} is down"
            return "down", f"unreachable because {cause} (upstream of parent {chain[0]}) is down"
        since = inst.alert.active_since or now
        wait = self.settings.parent_wait
        for ancestor in chain:
            up = self._up_since.get(ancestor)
            if up is not None and since <= up and inst.observed < up and now - up < wait:
                return (
                    "recovering",
                    f"parent {ancestor} is back up; waiting for {target}'s next check",
                )
            seen = self._observed.get(ancestor)
            if (seen is None or seen < since) and now - since < inst.for_seconds + wait:
                return "wait", ""
        return "clear", ""

    def _suppression(self, inst: _Instance, now: float) -> tuple[Suppression, str]:
        a = inst.alert
        if inst.reachability:
            verdict, reason = self._parent_verdict(inst, now)
            if verdict in ("down", "recovering"):
                return Suppression.PARENT_DOWN, reason
            info = self._targets.get(a.target)
            name = info.expected_online if info is not None else None
            schedule = self.schedules.get(name) if name else None
            if name and schedule is not None and not self._schedule_on(name, schedule, now):
                return (
                    Suppression.OUT_OF_SCHEDULE,
                    f"outside schedule {name} ({schedule.describe()})",
                )
        for silence in self._silences:
            if silence.is_active(now) and silence.matches(a.labels):
                until = datetime.fromtimestamp(silence.ends_at).strftime("%Y-%m-%d %H:%M")
                return Suppression.SILENCED, (
                    f"silenced by {silence.author} until {until}: {silence.comment} ({silence.id})"
                )
        if inst.flapping:
            n = len(self._flips.get(a.fingerprint, []))
            window = _minutes(self.settings.flapping.window)
            return Suppression.FLAPPING, f"flapping: changed state {n} times in {window}"
        return Suppression.NONE, ""

    def _schedule_on(self, name: str, schedule: Schedule, now: float) -> bool:
        """is_expected_online, once per schedule and settle."""
        found = self._in_schedule.get(name)
        if found is None:
            found = self._in_schedule[name] = is_expected_online(
                schedule, now, base_dir=self.base_dir
            )
        return found

    # --- persistence -----------------------------------------------------------------

    def _snapshot(self) -> dict[str, tuple[str, str, str]]:
        return {
            fp: (i.alert.state.value, i.alert.suppressed.value, i.alert.suppressed_reason)
            for fp, i in self._instances.items()
        }

    def _persist(self, now: float) -> None:
        if self._generation != self.store.generation:
            self._rewrite_all()
        gone = [
            fp
            for fp, inst in self._instances.items()
            if inst.alert.state is AlertState.INACTIVE
            or (inst.alert.state is AlertState.RESOLVED
                and now - (inst.alert.ends_at or now) >= RESOLVED_RETENTION)
        ]  # fmt: skip
        for fp in gone:
            removed = self._instances.pop(fp)
            self._by_target.get(removed.alert.target, set()).discard(fp)
        rows = {fp: self._instances[fp].row() for fp in self._touched if fp in self._instances}
        self._touched = set()
        observed = [(fp, self._instances[fp].observed) for fp in self._dirty_observed
                    if fp in self._instances]  # fmt: skip
        self._dirty_observed = set()
        digests = {fp: _digest(row) for fp, row in rows.items()}
        changed = [row for fp, row in rows.items() if self._written.get(fp) != digests[fp]]
        deleted = [fp for fp in gone if fp in self._written]
        flips, self._new_flips = self._new_flips, []
        targets = [(t, self._observed.get(t), self._up_since.get(t)) for t in self._dirty_targets]
        self._dirty_targets = set()
        if not (changed or deleted or flips or targets or observed):
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO alerts VALUES (?,?,?,?,?,?,?,?)", changed)
            conn.executemany("INSERT OR REPLACE INTO alert_observed VALUES (?, ?)", observed)
            gone_rows = [(fp,) for fp in deleted]
            conn.executemany("DELETE FROM alerts WHERE fingerprint = ?", gone_rows)
            conn.executemany("DELETE FROM alert_observed WHERE fingerprint = ?", gone_rows)
            conn.executemany("INSERT INTO alert_flips VALUES (?, ?)", flips)
            if flips:
                conn.execute(
                    "DELETE FROM alert_flips WHERE at <= ?", (now - self.settings.flapping.window,)
                )
            conn.executemany("INSERT OR REPLACE INTO alert_targets VALUES (?, ?, ?)", targets)

        self.store.write(write)
        for fp in deleted:
            del self._written[fp]
        for row in changed:
            self._written[str(row[0])] = digests[str(row[0])]

    def _rewrite_all(self) -> None:
        """The store lost what it held (its file was unreadable): write everything
        this engine knows again at this persist (instances, flips, targets, silences)."""
        self._generation = self.store.generation
        self._written = {}
        self._touched = set(self._instances)
        self._dirty_observed = set(self._instances)
        self._new_flips = [(fp, at) for fp, flips in self._flips.items() for at in flips]
        self._dirty_targets = set(self._observed) | set(self._up_since)
        silences = self._silences
        self.store.write(lambda conn: restore_silences(conn, silences))


def read_alerts(conn: sqlite3.Connection) -> list[Alert]:
    """The stored alerts, without an engine (for ``netmon alerts list`` in another process)."""
    try:
        rows = conn.execute("SELECT data FROM alerts").fetchall()
    except sqlite3.OperationalError:  # the daemon has not created the table yet
        return []
    alerts = [Alert.from_json(json.loads(r["data"])) for r in rows]
    return sorted((a for a in alerts if a.state in _ORDER), key=_sort_key)


_ORDER = {AlertState.FIRING: 0, AlertState.PENDING: 1, AlertState.RESOLVED: 2}
_SEVERITY = {Severity.CRITICAL.value: 0, Severity.WARNING.value: 1, Severity.INFO.value: 2}


def _sort_key(a: Alert) -> tuple[object, ...]:
    """Firing before pending before resolved; unsuppressed and critical first."""
    return (_ORDER[a.state], a.suppressed is not Suppression.NONE, _SEVERITY.get(a.severity, 3),
            a.target, a.rule, a.fingerprint)  # fmt: skip


def _same(other: Mapping[str, str], labels: dict[str, str]) -> TypeGuard[dict[str, str]]:
    """``other`` is a dict with the same labels as ``labels``, in the same order."""
    return isinstance(other, dict) and other == labels and list(other) == list(labels)


def _digest(row: tuple[object, ...]) -> bytes:
    return hashlib.blake2b(repr(row).encode(), digest_size=16).digest()


def _copy(a: Alert) -> Alert:
    """A copy the caller may keep (``dataclasses.replace``, but several times faster: the
    notifier takes a copy of every alert at every tick)."""
    return Alert(
        fingerprint=a.fingerprint, rule=a.rule, target=a.target, labels=dict(a.labels),
        annotations=dict(a.annotations), state=a.state, suppressed=a.suppressed,
        suppressed_reason=a.suppressed_reason, value=a.value, active_since=a.active_since,
        starts_at=a.starts_at, ends_at=a.ends_at, updated_at=a.updated_at, extra=a.extra,
    )  # fmt: skip


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 60 else f"{seconds:g}s"
