"""Alert replay: what ``netmon run`` would have sent for a timeline of device states.

:class:`Replay` runs the real pipeline of ``netmon run`` -- :class:`alerts.service.AlertService`
with its rules (:mod:`alerts.rules`), engine (:mod:`alerts.engine`) and notifier
(routing, grouping and the outbox of :mod:`alerts.notify`) on a state file of its own --
under a virtual clock. Probe results are built from the timeline (:mod:`alerts.timeline`)
the way the probes build them (the ICMP probe's own packet counts and explanation, the
runner's ``netmon_probe_*`` series) and arrive at each job's scheduled times (the
scheduler's phases). Nothing is sent: every outbox row is recorded, with the subject the
email renderer makes, and marked delivered.

A week in seconds, exactly as a run would go (up to the daemon's sub-second jitter):

- Ticks. The daemon ticks every second; a tick with no new condition and no deadline
  changes nothing, so the replay ticks only after an observation that changed
  something and at the deadlines the engine (:meth:`AlertEngine.next_due`) and the
  dispatcher (:meth:`Dispatcher.next_due`) report.
- Probe runs. A target whose results have not changed for long enough (three of its
  longest interval, plus the longest ``rate`` window reading a metric that changed)
  gives the same observations at every run, so its runs are skipped -- unless the
  engine is watching it for a parent verdict (:meth:`AlertEngine.watching`); then its
  last observations are observed again, as read from that run (:func:`rerun`: the
  engine tells each alert's news from after a parent's recovery by the runs its rule
  read). A ``max_over_time`` or ``resets`` window wakes the target again shortly
  before the points from before a change leave it. Before a skipped target's results
  change, the rules' memory is rebuilt as continuous probing would have left it: the
  skipped runs of its longest ``rate`` window are evaluated again (observations not
  used); for ``max_over_time`` and ``resets`` of a steady series only the newest point
  matters, so the last run is.
- Restarts stop the service (its state file stays) and start a new one, whose rules
  wait for the first result of each of a target's jobs, as ``netmon run`` does.

``exhaustive=True`` evaluates every run and ticks every second (the daemon's way; the
tests check that both give the same notifications). One difference remains on purpose:
a resolved alert is forgotten at the first tick after its hour of retention, which
changes no notification unless ``group_interval`` is longer than that hour.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import math
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from alerts.model import AlertState, Observation, Suppression
from alerts.notify.webhook import shown_url
from alerts.rules import TargetInfo
from alerts.schedule import Schedule
from alerts.service import AlertService
from alerts.settings import AlertsSettings
from alerts.timeline import Change, Timeline
from probes.icmp import IcmpSettings, _judge, icmp_samples
from probes.icmp_engine import PingStats
from probes.registry import runner_samples
from probes.result import Labels, ProbeResult, Sample, Status

#: Seconds a successful replayed probe run takes.
OK_SECONDS = 0.05
#: Metrics every probe result carries (the runner's).
RUNNER_METRICS = ("netmon_probe_success", "netmon_probe_duration_seconds", "netmon_probe_status")
_ICMP_METRICS = ("netmon_icmp_packets_sent", "netmon_icmp_packets_received",
                 "netmon_icmp_packet_loss_ratio", "netmon_icmp_rtt_seconds",
                 "netmon_icmp_jitter_seconds")  # fmt: skip
#: Alerts listed under each notification in the text output.
SHOWN_ALERTS = 5
#: Runs of a target after its results change before it counts as steady, in intervals.
SETTLE_INTERVALS = 3
_INF = float("inf")


# --- jobs ---------------------------------------------------------------------------------


class PlannedJob(Protocol):
    """What the replay needs of :class:`monitor.scheduler.ProbeJob`."""

    @property
    def probe(self) -> str: ...
    @property
    def store_name(self) -> str: ...
    @property
    def interval(self) -> float: ...
    @property
    def phase(self) -> float: ...
    @property
    def settings(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class ReplayJob:
    """One scheduled probe of one target, on the scheduler's grid."""

    target: str
    store_name: str
    probe: str
    interval: float
    #: Runs start at the times ``offset + k * interval``.
    offset: float
    #: How long a run that timed out takes (its result arrives that much later).
    fail_seconds: float
    icmp: IcmpSettings | None = None

    def next_start(self, at: float) -> float:
        """The first run start at or after ``at``."""
        # (a start computed as start + interval must not round up to the one after)
        return self.offset + math.ceil((at - self.offset) / self.interval - 1e-9) * self.interval

    def last_finish(self, at: float, state: JobState) -> float:
        """The start of the last run finished by ``at`` (its content ``state``)."""
        start = self.next_start(at) - self.interval
        if start + self.duration(state) > at:
            start -= self.interval
        return start

    def duration(self, state: JobState) -> float:
        """A run waits out its timeouts only when something did not answer (a refused
        connection or a rejected community comes back at once)."""
        slow = state.status is Status.TIMEOUT or (self.probe == "icmp" and state.status is Status.PARTIAL)
        return self.fail_seconds if slow else OK_SECONDS


def replay_job(target: str, job: PlannedJob, epoch: float) -> ReplayJob:
    """A scheduler job as the replay runs it: its phase from the scheduler's ``epoch``
    and how long a run that times out takes from its settings (the probe's own timeouts)."""
    s = job.settings
    if job.probe == "icmp":
        fail = (s.count - 1) * s.interval + s.timeout
    elif job.probe == "snmp":
        fail = s.timeout * (s.retries + 1)
    else:
        fail = float(getattr(s, "timeout", OK_SECONDS))
    icmp = s if isinstance(s, IcmpSettings) else None
    return ReplayJob(target, job.store_name, job.probe, job.interval,
                     (epoch + job.phase) % job.interval, fail, icmp)  # fmt: skip


# --- device state ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Value:
    value: float
    rate: float
    since: float


@dataclass(slots=True)
class JobState:
    """What one probe of one target reports from the last change on."""

    status: Status = Status.OK
    explanation: str | None = None
    samples: dict[tuple[str, Labels], _Value] = field(default_factory=dict)

    def apply(self, change: Change, at: float) -> set[str]:
        """Take a change; returns the metrics whose samples it touched."""
        touched: set[str] = set()
        if change.status is not None and change.status is not self.status:
            self.status, self.explanation = change.status, change.explanation  # a new story
            touched.add(RUNNER_METRICS[0])
        elif change.explanation is not None:
            self.explanation = change.explanation
        for setting in change.samples:
            touched.add(setting.metric)
            wanted = setting.labels.items()
            keys = [k for k in self.samples if k[0] == setting.metric and wanted <= dict(k[1]).items()]
            if setting.value is None:
                for key in keys:
                    del self.samples[key]
                continue
            for key in keys or [(setting.metric, tuple(setting.labels.items()))]:
                self.samples[key] = _Value(setting.value, setting.rate, at)
        return touched

    @property
    def growing(self) -> bool:
        return self.status.success and any(v.rate for v in self.samples.values())

    def values(self, at: float) -> dict[tuple[str, Labels], float]:
        return {k: v.value + v.rate * (at - v.since) for k, v in self.samples.items()}


def build_result(job: ReplayJob, state: JobState, started: float) -> ProbeResult:
    """The result the job's probe would return at ``started``, with the runner's fields."""
    values = state.values(started)
    if job.probe == "icmp":
        result = _icmp_result(job.icmp or IcmpSettings(), state.status, values)
    elif state.status.success:
        samples = [Sample(m, labels, v) for (m, labels), v in values.items()]
        if job.probe == "tcp" and "netmon_tcp_connect_seconds" not in {m for m, _ in values}:
            samples.append(Sample.of("netmon_tcp_connect_seconds", 0.001, port=job.store_name[4:]))
        result = ProbeResult(state.status, state.explanation or f"{job.probe} {state.status.value}",
                             samples)  # fmt: skip
    else:
        result = ProbeResult(state.status, state.explanation or _failure(job, state.status))
    result = result.with_runner_fields(probe=job.probe, target=job.target,
                                       duration_seconds=job.duration(state), started_at=started)  # fmt: skip
    result.samples.extend(runner_samples(result))
    return result


def _failure(job: ReplayJob, status: Status) -> str:
    what = {"snmp": "the SNMP agent", "tcp": f"TCP port {job.store_name[4:]}"}.get(job.probe, job.probe)
    return f"{what}: {status.value.replace('_', ' ')} (replayed)"


def _icmp_result(settings: IcmpSettings, status: Status, values: Mapping[tuple[str, Labels], float]) -> ProbeResult:
    """Echo statistics for the status (and the timeline's loss and round-trip time),
    judged and turned into samples by the ICMP probe's own functions."""
    loss = next((v for (m, _), v in values.items() if m == "netmon_icmp_packet_loss_ratio"), None)
    rtt = next((v for (m, labels), v in values.items()
                if m == "netmon_icmp_rtt_seconds" and ("stat", "avg") in labels), 0.001)  # fmt: skip
    count = settings.count
    if status is Status.OK:
        received = count
    elif status is Status.PARTIAL:
        lost = loss if loss is not None else 1 / count
        received = min(count - 1, max(1, round(count * (1 - lost))))
    else:
        received = 0
    if status not in (Status.OK, Status.PARTIAL, Status.TIMEOUT, Status.UNREACHABLE):
        return ProbeResult(status, f"icmp: {status.value.replace('_', ' ')} (replayed)")
    errors = ["Destination host unreachable"] if status is Status.UNREACHABLE else []
    stats = PingStats("replay", count, received, [rtt] * received, errors)
    judged, explanation = _judge(stats, settings)
    samples = icmp_samples(stats)
    own = {(s.metric, s.labels) for s in samples}
    samples += [Sample(m, labels, v) for (m, labels), v in values.items()
                if (m, labels) not in own and m not in _ICMP_METRICS]  # fmt: skip
    return ProbeResult(judged, explanation, samples)


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """One notification that would have been sent."""

    at: float
    receiver: str
    kind: str
    subject: str
    #: (alertname, target, status): firing, resolved or flapping.
    alerts: tuple[tuple[str, str, str], ...]

    def to_json(self, zone: Any) -> dict[str, Any]:
        return {"at": iso(self.at, zone), "receiver": self.receiver, "kind": self.kind,
                "subject": self.subject,
                "alerts": [{"alertname": n, "target": t, "status": s} for n, t, s in self.alerts]}  # fmt: skip


@dataclass(slots=True)
class ReplayReport:
    start: float
    end: float
    notifications: list[Sent]
    #: Alert episodes (an instance from pending to resolved) that fired unsuppressed, and
    #: of those the ones that resolved; episodes suppressed at some point, by reason.
    fired: int
    resolved: int
    suppressed: dict[str, int]
    #: Probe runs whose rules were evaluated, and runs skipped as steady.
    evaluated: int
    skipped: int

    def summary(self) -> dict[str, Any]:
        per = Counter(n.receiver for n in self.notifications)
        return {"notifications": dict(sorted(per.items())),
                "alerts": {"fired": self.fired, "resolved": self.resolved,
                           "suppressed": dict(self.suppressed)}}  # fmt: skip

    def to_json(self, zone: Any) -> dict[str, Any]:
        return {"start": iso(self.start, zone), "end": iso(self.end, zone),
                "notifications": [n.to_json(zone) for n in self.notifications],
                "summary": self.summary()}  # fmt: skip


def iso(ts: float, zone: Any) -> str:
    return datetime.fromtimestamp(round(ts, 3), zone).isoformat(timespec="seconds")


# --- the replay -----------------------------------------------------------------------------

Loc = tuple[str | int, ...]


def select(change: Change, targets: Sequence[TargetInfo]) -> list[TargetInfo]:
    """The targets a change names (by name, group or labels)."""
    if change.target is not None:
        return [t for t in targets if t.name == change.target]
    if change.group is not None:
        return [t for t in targets if t.labels.get("group") == change.group]
    wanted = (change.match or {}).items()
    return [t for t in targets if wanted <= {"target": t.name, **t.labels}.items()]


def _probe_of(job: ReplayJob, probe: str | None) -> bool:
    return probe is None or job.store_name == probe or job.probe == probe


def check_timeline(timeline: Timeline, targets: Sequence[TargetInfo],
                   jobs: Sequence[ReplayJob]) -> list[tuple[Loc, str]]:
    """What the timeline names that the config lacks, as (location, message)."""
    problems: list[tuple[Loc, str]] = []
    start, end = timeline.start_ts, timeline.end_ts()
    if end <= start:
        problems.append((("end",), "the end is not after the start"))
    for i, change in enumerate(timeline.changes):
        found = {t.name for t in select(change, targets)}
        key = "target" if change.target else "group" if change.group else "match"
        if not found:
            wanted = getattr(change, key)
            problems.append((("changes", i, key), f"no target of the config matches {wanted!r}"))
        elif not any(j.target in found and _probe_of(j, change.probe) for j in jobs):
            what = f"{change.probe} probe" if change.probe else "probe"
            problems.append((("changes", i, "probe" if change.probe else key),
                             f"the selected targets have no {what} in the config"))  # fmt: skip
        if timeline.seconds(change.at) < start:
            problems.append((("changes", i, "at"), "before the start"))
    return problems


@dataclass(slots=True)
class _Target:
    info: TargetInfo
    jobs: list[int]
    interval: float
    #: Metric -> the longest ``rate`` window reading it (every point in it matters) ...
    rates: dict[str, float] = field(default_factory=dict)
    #: ... and the longest ``max_over_time`` or ``resets`` window (only the newest point of
    #: a steady series matters; a verdict changes when older points leave the window).
    maxima: dict[str, float] = field(default_factory=dict)
    latest: dict[str, ProbeResult] = field(default_factory=dict)
    #: The last evaluation's observations (None: none since the service started).
    observations: list[Observation] | None = None
    settle_until: float = 0.0
    last_eval: float = 0.0
    last_observed: float = 0.0
    queued: set[int] = field(default_factory=set)
    #: Store names still awaited after a start, and until when (the daemon's first-run wait).
    awaiting: tuple[set[str], float] | None = None


class Replay:
    """One replay of a timeline through a config's alerting (see the module docstring)."""

    def __init__(self, timeline: Timeline, *, settings: AlertsSettings,
                 schedules: Mapping[str, Schedule], targets: Sequence[TargetInfo],
                 jobs: Sequence[ReplayJob], base_dir: Path, first_run_slack: float = 30.0,
                 external_url: str = "", exhaustive: bool = False) -> None:
        self.timeline = timeline
        #: Evaluate every run and tick every second, like the daemon: the reference the
        #: skipping is tested against (slow: a week of a school takes minutes).
        self.exhaustive = exhaustive
        self.settings = settings
        self.schedules = dict(schedules)
        self.infos = list(targets)
        self.jobs = list(jobs)
        self.base_dir = base_dir
        self.first_run_slack = first_run_slack
        self.external_url = external_url
        self.now = timeline.start_ts
        self.states = [JobState() for _ in self.jobs]
        self.targets: dict[str, _Target] = {}
        by_target: dict[str, list[int]] = {}
        for i, job in enumerate(self.jobs):
            by_target.setdefault(job.target, []).append(i)
        for info in self.infos:
            mine = by_target.get(info.name, [])
            interval = max((self.jobs[i].interval for i in mine), default=60.0)
            self.targets[info.name] = _Target(info, mine, interval)
        self._service: AlertService | None = None
        self._heap: list[tuple[float, int, int, str, Any]] = []
        self._seq = 0
        self._gen = 0
        self._origin = self.now
        self._tick_due = _INF
        #: Some target's observations changed since the last tick.
        self._observed_change = False
        self._watching: set[str] = set()
        self._sent: list[Sent] = []
        self._fired: set[tuple[str, float | None]] = set()
        self._resolved: set[tuple[str, float | None]] = set()
        self._suppressed: dict[str, set[tuple[str, float | None]]] = {
            s.value: set() for s in Suppression if s.value}
        self._evaluated = 0
        self._skipped = 0

    # --- driving ---

    def run(self) -> ReplayReport:
        """Replay the whole timeline (once per instance: it owns a temporary state file)."""
        tl = self.timeline
        start, end = tl.start_ts, tl.end_ts()
        for i, change in enumerate(tl.changes):
            self._push(tl.seconds(change.at), 0, "change", i)
        for i, silence in enumerate(tl.silences):
            self._push(tl.seconds(silence.at), 2, "silence", i)
        for restart in tl.restarts:
            self._push(tl.seconds(restart.at), 3, "stop", restart.down)
        with tempfile.TemporaryDirectory(prefix="netmon-replay-") as tmp:
            self.settings = self.settings.model_copy(
                update={"state_file": str(Path(tmp) / "replay-alerts.db")})
            # Changes at the start are the devices' state when netmon starts.
            while self._heap and self._heap[0][0] <= start and self._heap[0][3] == "change":
                self._change(heapq.heappop(self._heap)[4], start)
            self._start(start)
            while True:
                at = self._heap[0][0] if self._heap else _INF
                if self._tick_due <= min(at, end):
                    self._tick(self._tick_due)
                    continue
                if at > end:
                    break
                _, _, _, kind, payload = heapq.heappop(self._heap)
                self.now = at
                getattr(self, f"_{kind}")(payload, at)
            if self._service is not None:
                asyncio.run(self._service.stop())
        ordered = sorted(self._sent, key=lambda n: (n.at, n.receiver, n.kind, n.subject, n.alerts))
        return ReplayReport(start, end, ordered, len(self._fired), len(self._resolved),
                            {k: len(v) for k, v in self._suppressed.items()},
                            self._evaluated, self._skipped)  # fmt: skip

    def _push(self, at: float, order: int, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, order, self._seq, kind, payload))

    def _clock(self) -> float:
        return self.now

    def _need_tick(self, at: float) -> None:
        """A tick at the first second of the daemon's tick grid not before ``at``."""
        self._tick_due = min(self._tick_due, self._origin + math.ceil(at - self._origin))

    # --- the service's life ---

    def _start(self, at: float) -> None:
        self.now = self._origin = at
        service = AlertService(self.settings, base_dir=self.base_dir, schedules=self.schedules,
                               clock=self._clock, external_url=self.external_url)  # fmt: skip
        service.set_targets(self.infos)
        self._service = service
        self._watching = set()
        self._gen += 1
        if self.exhaustive:
            self._need_tick(at + 1.0)
        for t in self.targets.values():
            self._windows(t)
            t.latest, t.observations, t.queued = {}, None, set()
            t.last_eval = t.last_observed = at
            t.settle_until = _INF if self.exhaustive or any(self.states[i].growing for i in t.jobs) else (
                at + SETTLE_INTERVALS * t.interval + self.first_run_slack)
            names = {self.jobs[i].store_name for i in t.jobs}
            t.awaiting = (names, at + t.interval + self.first_run_slack) if len(names) > 1 else None
            self._wake(t, at)

    def _stop(self, down: float, at: float) -> None:
        assert self._service is not None
        asyncio.run(self._service.stop())
        self._service = None
        self._gen += 1
        self._tick_due = _INF
        self._push(at + down, 3, "up", None)

    def _up(self, _: None, at: float) -> None:
        self._start(at)

    def _windows(self, t: _Target) -> None:
        """The longest ``rate`` window, and ``max_over_time``/``resets`` window, of the
        target's effective rules per metric they read."""
        assert self._service is not None
        info = t.info
        t.rates, t.maxima = {}, {}
        rules = self._service.rules.effective(info.labels.get("role", ""),
                                              info.labels.get("group", ""), info.name)  # fmt: skip
        for rule in rules:
            for clause in rule.clauses:
                for series in (clause, *clause.and_, *clause.unless, clause.divide_by):
                    if series is None or series.fn == "value":
                        continue
                    found = t.rates if series.fn == "rate" else t.maxima
                    for metric in series.metrics:
                        found[metric] = max(found.get(metric, 0.0), series.window)

    # --- events ---

    def _change(self, index: int, at: float) -> None:
        change = self.timeline.changes[index]
        for info in select(change, self.infos):
            t = self.targets[info.name]
            mine = [i for i in t.jobs if _probe_of(self.jobs[i], change.probe)]
            if not mine:
                continue
            if self._service is not None:
                self._catch_up(t, at)
            touched: set[str] = set()
            for i in mine:
                touched |= self.states[i].apply(change, at)
                if self.jobs[i].probe == "icmp" and RUNNER_METRICS[0] in touched:
                    touched.update(_ICMP_METRICS)
            if self._service is None:
                continue
            rates = maxima = 0.0
            if t.last_eval > self._origin:  # its rules remember points from before the change
                rates = max((t.rates.get(m, 0.0) for m in touched), default=0.0)
                maxima = max((t.maxima.get(m, 0.0) for m in touched), default=0.0)
            if maxima:  # the verdict may change when the last point before `at` leaves
                self._push(at + maxima - 2 * t.interval, 0, "rewake", info.name)
            self._settle(t, at + rates)
            self._wake(t, at)

    def _settle(self, t: _Target, at: float) -> None:
        """Keep evaluating the target's runs until a few intervals after ``at``."""
        settle = at + SETTLE_INTERVALS * t.interval + OK_SECONDS
        growing = any(self.states[i].growing for i in t.jobs)
        t.settle_until = _INF if growing or self.exhaustive else max(
            settle, t.settle_until if t.settle_until < _INF else settle)

    def _rewake(self, name: str, at: float) -> None:
        if self._service is not None:
            t = self.targets[name]
            self._catch_up(t, at)
            self._settle(t, at + 2 * t.interval)
            self._wake(t, at)

    def _catch_up(self, t: _Target, at: float) -> None:
        """Before a steady target's results change, make the rules' memory and its latest
        results what continuous probing would have left: the skipped runs of the
        longest ``rate`` window reading its metrics are evaluated again (observations not
        used); for ``max_over_time`` and ``resets`` only the newest point of a steady
        series matters, so the last run is; for value rules the latest results suffice."""
        assert self._service is not None
        if t.last_eval >= at - t.interval:
            return
        present = {m for i in t.jobs for m, _ in self.states[i].samples} | set(_ICMP_METRICS)
        window = max((t.rates.get(m, 0.0) for m in present), default=0.0)
        evaluate = bool(window) or any(m in t.maxima for m in present)
        runs: list[tuple[float, float, int]] = []
        for i in t.jobs:
            job, state = self.jobs[i], self.states[i]
            duration = job.duration(state)
            start = job.last_finish(at, state)
            oldest = max(at - window - job.interval, t.last_eval - duration) if window else start
            while start >= max(oldest, self._origin) and start + duration > t.last_eval:
                runs.append((start + duration, start, i))
                start -= job.interval
        for finish, start, i in sorted(runs):
            job = self.jobs[i]
            t.latest[job.store_name] = build_result(job, self.states[i], start)
            if evaluate:
                self._service.rules.evaluate(t.info, dict(t.latest), finish)
        if runs and evaluate:
            t.last_eval = max(f for f, _, _ in runs)

    def _wake(self, t: _Target, at: float) -> None:
        for i in t.jobs:
            if i not in t.queued:
                self._push(self.jobs[i].next_start(at), 1, "begin", (i, self._gen))
                t.queued.add(i)

    def _begin(self, payload: tuple[int, int], at: float) -> None:
        """A job's run starts: its result (from the state now) arrives when it ends; a
        steady target's run is skipped, or only observed again while it is watched."""
        i, gen = payload
        if gen != self._gen:
            return
        job = self.jobs[i]
        t = self.targets[job.target]
        if at < t.settle_until or t.awaiting is not None or t.observations is None:
            result: ProbeResult | None = build_result(job, self.states[i], at)
        elif job.target in self._watching:
            result = None
        else:
            t.queued.discard(i)  # steady and nobody waits for it: asleep until a change
            self._skipped += 1
            return
        ends = at + job.duration(self.states[i])
        self._push(ends, 1, "end", (i, gen, result, at))
        # A run still going when the next is due skips it (the scheduler's max_instances).
        self._push(job.next_start(max(at + job.interval, ends)), 1, "begin", (i, gen))

    def _end(self, payload: tuple[int, int, ProbeResult | None, float], at: float) -> None:
        i, gen, result, start = payload
        if gen != self._gen:
            return
        assert self._service is not None
        job = self.jobs[i]
        t = self.targets[job.target]
        watched = job.target in self._watching
        if result is not None:
            t.latest[job.store_name] = result
            if self._evaluate(t, job.store_name, at):
                self._observed_change = True
                self._need_tick(at)
            elif watched:
                self._need_tick(at)
        elif t.observations is not None:
            t.observations = rerun(t.observations, {job.store_name: (start, at - start)})
            self._service.engine.observe(job.target, t.observations, at, settle=False)
            t.last_observed = at
            self._need_tick(at)
            self._skipped += 1

    def _evaluate(self, t: _Target, name: str, at: float) -> bool:
        """Evaluate the target's rules as the daemon does; True if its observations changed."""
        assert self._service is not None
        if t.awaiting is not None:
            names, until = t.awaiting
            names.discard(name)
            if names and at < until:
                return False
            t.awaiting = None
        observations = self._service.evaluate(t.info.name, dict(t.latest), at)
        self._evaluated += 1
        t.last_eval = t.last_observed = at
        changed = observations != t.observations
        t.observations = observations
        return changed

    def _silence(self, index: int, at: float) -> None:
        if self._service is None:
            return
        s = self.timeline.silences[index]
        self._service.engine.add_silence(s.matchers, ends_at=at + s.duration, author=s.author,
                                         comment=s.comment, starts_at=at)  # fmt: skip
        self._need_tick(at)

    def _tick(self, at: float) -> None:
        assert self._service is not None
        self.now = at
        self._tick_due = _INF
        service = self._service
        for name in service.engine.watching(at) - self._watching:
            self._backfill(self.targets[name], at)
        changed = service.tick(at)
        # Observations resolve alerts (and start pending ones) before the tick: after
        # those, every alert is looked at; after a deadline, what the tick changed.
        for a in service.engine.alerts() if self._observed_change else changed:
            episode = (a.fingerprint, a.active_since)
            if a.state is AlertState.FIRING and not a.suppressed.value:
                self._fired.add(episode)
            elif a.state in (AlertState.PENDING, AlertState.FIRING) and a.suppressed.value:
                self._suppressed[a.suppressed.value].add(episode)
            elif a.state is AlertState.RESOLVED and episode in self._fired:
                self._resolved.add(episode)
        self._observed_change = False
        self._record(at)
        self._watching = service.engine.watching(at)
        for name in self._watching:
            if name in self.targets:
                self._wake(self.targets[name], at)
        due = min(service.engine.next_due(at), service.notifier.dispatcher.next_due(at))
        if self.exhaustive:
            due = at + 1.0
        if due < _INF:
            self._need_tick(due)

    def _backfill(self, t: _Target, at: float) -> None:
        """A target the engine starts watching may have had runs the replay skipped since
        the alert it matters to became pending: its last one is observed (as it was)."""
        assert self._service is not None
        last = max((self.jobs[i].last_finish(at, self.states[i]) + self.jobs[i].duration(self.states[i])
                    for i in t.jobs), default=_INF)  # fmt: skip
        if (t.observations is not None and t.last_observed < last <= at
                and last - self.jobs[t.jobs[0]].interval >= self._origin):
            runs: dict[str, tuple[float, float]] = {}
            for i in t.jobs:
                job, state = self.jobs[i], self.states[i]
                if (start := job.last_finish(at, state)) >= self._origin:
                    runs[job.store_name] = (start, job.duration(state))
            t.observations = rerun(t.observations, runs)
            self._service.engine.observe(t.info.name, t.observations, last, settle=False)
            t.last_observed = last
            self._skipped += 1

    def _record(self, at: float) -> None:
        """Every outbox row queued by now: one notification per receiver and message
        (a receiver's integrations share it), marked delivered."""
        assert self._service is not None
        notifier = self._service.notifier
        seen: set[tuple[str, str, str, float]] = set()
        for row in notifier.outbox.due(at):
            n = row.notification
            assert n.id is not None
            notifier.outbox.mark_delivered(n.id, at)
            if row.integration == "alertmanager":
                items = row.data.get("items", {}).values()
                alerts = tuple(sorted(
                    (i["labels"].get("alertname", ""), i["labels"].get("target", ""),
                     "resolved" if _ts(i.get("endsAt")) <= at else "firing")
                    for i in items))  # fmt: skip
                self._sent.append(Sent(n.created_at, shown_url(n.receiver), "alertmanager", "", alerts))
                continue
            key = (n.receiver, n.group_key, n.kind, n.created_at)
            if key in seen:
                continue
            seen.add(key)
            subject = notifier.renderer.render(n, row.data.get("group_labels", {}),
                                               self.external_url).subject  # fmt: skip
            alerts = tuple(
                (a.rule, a.target, "flapping" if a.suppressed is Suppression.FLAPPING else a.state.value)
                for a in n.alerts)  # fmt: skip
            self._sent.append(Sent(n.created_at, n.receiver, n.kind, subject, alerts))


def rerun(
    observations: list[Observation], runs: Mapping[str, tuple[float, float]]
) -> list[Observation]:
    """``observations`` as the rules would give them after these runs (store name ->
    start, duration) found what the previous ones did: the same verdicts, read from the
    new runs (the engine tells news from after a parent's recovery by them)."""
    out = []
    for obs in observations:
        if obs.inputs is not None and any(name in runs for name, _, _ in obs.inputs):
            inputs: list[tuple[str, float, float]] = []
            for name, started, took in obs.inputs:
                new = runs.get(name)
                inputs.append((name, *new) if new is not None and new[0] > started
                              else (name, started, took))  # fmt: skip
            obs = dataclasses.replace(obs, inputs=tuple(inputs))
        out.append(obs)
    return out


def _ts(text: str | None) -> float:
    """An Alertmanager time (``...Z``) as a Unix time (none: never)."""
    return datetime.fromisoformat(text).timestamp() if text else _INF


def text_report(report: ReplayReport, zone: Any) -> Iterable[str]:
    """The human form: one block per notification, then the summary."""
    for n in report.notifications:
        when = datetime.fromtimestamp(n.at, zone).strftime("%a %Y-%m-%d %H:%M:%S")
        yield f"{when}  {n.receiver}  {n.subject or n.kind}"
        for name, target, status in n.alerts[:SHOWN_ALERTS]:
            yield f"    {status:<9} {target}  {name}"
        if len(n.alerts) > SHOWN_ALERTS:
            yield f"    ... and {len(n.alerts) - SHOWN_ALERTS} more"
    s = report.summary()
    per = ", ".join(f"{r} {c}" for r, c in s["notifications"].items()) or "none"
    sup = ", ".join(f"{k} {v}" for k, v in s["alerts"]["suppressed"].items() if v) or "none"
    yield (f"summary: {len(report.notifications)} notifications ({per}); alerts fired "
           f"{report.fired}, resolved {report.resolved}; suppressed: {sup}")
