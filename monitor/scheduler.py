"""Scheduled probing: one apscheduler job per target x probe (one per TCP port).

:func:`plan_jobs` turns the inventory into :class:`ProbeJob` rows (pure, so tests and
``check-config`` can count them); :class:`ProbeScheduler` runs them on apscheduler 3's
``AsyncIOScheduler`` and writes every result into the :class:`~monitor.store.ResultStore`.

Scheduling rules:

* Each job's first run is spread over its interval by a phase derived from a hash of
  its id, so 5,000 targets do not all fire at start-up, and a restart keeps the phases.
* ``max_instances=1``: a run still going when the next is due makes apscheduler skip that
  one (counted as ``still_running``); ``coalesce=True`` folds runs missed while the loop
  was busy into one; ``misfire_grace_time`` = the interval (later than that: counted as
  ``missed``). Every run is bounded by run_probe's deadline and runs as its own asyncio
  task, so a hanging target never delays another; per-kind concurrency is the context's.
* Sharding: ``--shard i/N`` keeps the targets with ``shard_of(name, N) == i`` (0-based),
  a sha256 of the name, so N instances cover every target exactly once on any machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import BaseModel

from monitor.config import InventoryTarget
from monitor.store.results import ResultStore
from probes.context import ProbeContext
from probes.registry import run_probe
from probes.result import Sample, Status
from probes.snmp.probe import SnmpSettings
from probes.target import Target

log = logging.getLogger("netmon.scheduler")

#: Fixed origin of every job's phase, so phases survive restarts and reloads.
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
#: Lag statistics cover this many recent runs.
LAG_WINDOW = 1000
#: SNMP modules used when a group lists ``probes: [snmp]`` but no modules.
DEFAULT_SNMP_MODULES = ("system",)


@dataclass(frozen=True)
class ProbeJob:
    """One scheduled probe of one target: what to run and where its results go."""

    #: Stable, derived from the config: ``target/probe`` or ``target/tcp-PORT``.
    id: str
    target: InventoryTarget
    probe: str
    #: The ``probe=`` name in the result store (``icmp``, ``snmp``, ``tcp-9100``).
    store_name: str
    settings: BaseModel
    interval: float
    #: The port the probe connects to (TCP only; SNMP's port is in its settings).
    port: int | None = None
    #: Start-up waits for this job's first run (readiness, a target's first alert
    #: evaluation); not for slow modules' jobs (topology: every 15 minutes).
    awaited: bool = True

    @property
    def probe_target(self) -> Target:
        return self.target.as_target(self.port)

    @property
    def labels(self) -> dict[str, str]:
        """Static labels stored with every result: role, group and the inventory labels."""
        return {"role": self.target.role, "group": self.target.group, **self.target.labels}

    @property
    def phase(self) -> float:
        """Seconds into each interval at which this job runs (stable per id)."""
        return _unit_hash(self.id) * self.interval


def _unit_hash(text: str) -> float:
    """A stable number in [0, 1) from ``text`` (sha256, not Python's salted hash())."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def shard_of(target_name: str, n: int) -> int:
    """The shard (0..n-1) a target belongs to; the same on every machine and run."""
    if n < 1:
        raise ValueError("the number of shards must be at least 1")
    return int.from_bytes(hashlib.sha256(target_name.encode()).digest()[:8], "big") % n


def plan_jobs(
    targets: list[InventoryTarget], shard: tuple[int, int] | None = None
) -> list[ProbeJob]:
    """Every job the inventory asks for (only shard ``i`` of ``N`` when given)."""
    if shard is not None:
        i, n = shard
        if not 0 <= i < n:
            raise ValueError(f"shard {i}/{n}: i must be 0..{n - 1}")
    jobs: list[ProbeJob] = []
    for t in targets:
        if shard is not None and shard_of(t.name, shard[1]) != shard[0]:
            continue
        for probe in t.probes:
            if probe == "icmp":
                jobs.append(ProbeJob(f"{t.name}/icmp", t, "icmp", "icmp", t.icmp, t.interval))
            elif probe == "snmp":
                jobs += _snmp_jobs(t)
            elif probe == "tcp":
                for port in dict.fromkeys(t.tcp_ports):  # a port listed twice is one job
                    name = f"tcp-{port}"
                    jobs.append(ProbeJob(f"{t.name}/{name}", t, "tcp", name, t.tcp, t.interval, port))  # fmt: skip
            else:
                raise ValueError(f"{t.name}: unknown probe {probe!r}")
    return jobs


def _snmp_jobs(t: InventoryTarget) -> list[ProbeJob]:
    """The target's SNMP job, plus one job per module with a longer interval of its own
    (``defaults.snmp.module_intervals``), stored under the module's name."""
    slow = {m: every for m in t.modules
            if (every := t.snmp.module_intervals.get(m, 0.0)) > t.interval}  # fmt: skip
    fast = tuple(m for m in t.modules if m not in slow)
    jobs = []
    if fast or not t.modules:
        jobs.append(ProbeJob(f"{t.name}/snmp", t, "snmp", "snmp", snmp_settings(t, fast or None), t.interval))  # fmt: skip
    for module, every in slow.items():
        jobs.append(ProbeJob(f"{t.name}/{module}", t, "snmp", module, snmp_settings(t, (module,)),
                             every, awaited=False))  # fmt: skip
    return jobs


def check_unique(jobs: list[ProbeJob]) -> None:
    """Raise ValueError when two jobs share an id (one would silently replace the other)."""
    seen: set[str] = set()
    for job in jobs:
        if job.id in seen:
            raise ValueError(f"two probe jobs would have the id {job.id!r}")
        seen.add(job.id)


def snmp_settings(t: InventoryTarget, modules: tuple[str, ...] | None = None) -> SnmpSettings:
    """The SNMP probe's settings from a target's effective inventory settings."""
    if t.credentials is None:
        raise ValueError(f"{t.name}: probes snmp but has no SNMP credentials")
    return SnmpSettings(
        modules=modules or t.modules or DEFAULT_SNMP_MODULES,
        credentials=t.credentials,
        port=t.snmp.port,
        timeout=t.snmp.timeout,
        retries=t.snmp.retries,
        max_repetitions=t.snmp.max_repetitions,
    )


class ProbeScheduler:
    """Runs :class:`ProbeJob` rows on apscheduler and stores their results."""

    def __init__(self, store: ResultStore, ctx: ProbeContext) -> None:
        self.store = store
        self.ctx = ctx
        self._jobs: dict[str, ProbeJob] = {}
        self._ran: set[str] = set()
        self._due: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self._runs: Counter[tuple[str, str]] = Counter()
        self._skipped: Counter[tuple[str, str]] = Counter()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)

    @property
    def jobs(self) -> dict[str, ProbeJob]:
        return dict(self._jobs)

    def apply(self, jobs: list[ProbeJob]) -> None:
        """Make the running set equal ``jobs``: add new, replace changed, remove gone.
        A job whose interval is unchanged keeps its schedule (its labels or settings may
        change), and every job keeps its phase."""
        check_unique(jobs)
        wanted = {j.id: j for j in jobs}
        # A running apscheduler wakes its event loop once per added job, each time by a
        # byte through the loop's self-pipe (278 fit on Linux): a few hundred in one go
        # fill it, and a signal (SIGHUP, SIGTERM) that comes while it is full is lost.
        # Paused, it takes them all quietly and wakes once on resume.
        pause = self._scheduler.state == STATE_RUNNING
        if pause:
            self._scheduler.pause()
        try:
            self._apply(wanted)
        finally:
            if pause:
                self._scheduler.resume()

    def _apply(self, wanted: dict[str, ProbeJob]) -> None:
        for job_id in set(self._jobs) - set(wanted):
            del self._jobs[job_id]
            self._ran.discard(job_id)
            if self._scheduler.get_job(job_id) is not None:
                self._scheduler.remove_job(job_id)
        for job_id, job in wanted.items():
            old = self._jobs.get(job_id)
            if old == job:
                continue
            self._jobs[job_id] = job
            if old is not None and old.interval == job.interval:
                continue  # same schedule: apscheduler's job runs what self._jobs holds
            self._scheduler.add_job(
                self._run,
                IntervalTrigger(
                    seconds=job.interval,
                    start_date=_EPOCH + timedelta(seconds=job.phase),
                    timezone=UTC,
                ),
                args=(job_id,),
                id=job_id,
                name=job_id,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(1, round(job.interval)),
                replace_existing=True,
            )

    def start(self) -> None:
        """Start firing jobs; call inside the running event loop."""
        self._scheduler.start()

    async def shutdown(self) -> None:
        """Stop scheduling and cancel the runs in progress."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the next loop turn
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def has_run_all(self) -> bool:
        """True when every current job has stored at least one result."""
        return {i for i, j in self._jobs.items() if j.awaited} <= self._ran

    def max_first_run_wait(self) -> float:
        """Seconds after which every job should have finished its first run."""
        return max(
            (j.interval + _deadline(j) for j in self._jobs.values() if j.awaited),
            default=0.0,
        )

    async def _run(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            due = self._due.pop(job_id, None)
            if due is not None:
                self._lags.append(max(0.0, time.time() - due))
            try:
                result = await run_probe(job.probe, job.probe_target, job.settings, self.ctx)
            except asyncio.CancelledError:
                if self._stopping:
                    return  # shutdown: not a failure worth apscheduler's error log
                raise
            self._runs[(job.probe, result.status.value)] += 1
            if self._jobs.get(job_id) is not job:
                return  # removed or replaced while it ran: its result no longer belongs
            self.store.put(result, job.labels, job.interval, probe=job.store_name)
            self._ran.add(job_id)
        finally:
            self._tasks.discard(task)

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        # Dispatched right after the job's task is created, before it starts.
        if event.scheduled_run_times:
            self._due[event.job_id] = event.scheduled_run_times[-1].timestamp()

    def _on_skipped(self, event: JobEvent) -> None:
        job = self._jobs.get(event.job_id)
        if job is not None:
            reason = "still_running" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
            self._skipped[(job.probe, reason)] += 1
            log.debug("skipped a run of %s: %s", event.job_id, reason)

    def self_samples(self) -> list[Sample]:
        """The scheduler's own metrics: lag over recent runs, runs by outcome, jobs."""
        out: list[Sample] = []
        lags = sorted(self._lags)
        if lags:
            out += [
                Sample.of("netmon_scheduler_lag_seconds", self._lags[-1], stat="last"),
                Sample.of("netmon_scheduler_lag_seconds", _quantile(lags, 0.5), stat="p50"),
                Sample.of("netmon_scheduler_lag_seconds", _quantile(lags, 0.99), stat="p99"),
                Sample.of("netmon_scheduler_lag_seconds", lags[-1], stat="max"),
            ]
        jobs = Counter(j.probe for j in self._jobs.values())
        kinds = sorted(set(jobs) | {p for p, _ in self._runs} | {p for p, _ in self._skipped})
        for probe in kinds:
            out.append(Sample.of("netmon_scheduler_jobs", jobs[probe], probe=probe))
            # Every status from zero, so rate() and absent-series alerts work from the start.
            for status in Status:
                out.append(
                    Sample.of("netmon_probe_runs_total", self._runs[(probe, status.value)],
                              probe=probe, status=status.value)
                )  # fmt: skip
            for reason in ("still_running", "missed"):
                out.append(
                    Sample.of("netmon_scheduler_skipped_runs_total",
                              self._skipped[(probe, reason)], probe=probe, reason=reason)
                )  # fmt: skip
        return out


def _deadline(job: ProbeJob) -> float:
    deadline = getattr(job.settings, "deadline", None)
    return float(deadline()) if callable(deadline) else job.interval


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile of an ascending list."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
