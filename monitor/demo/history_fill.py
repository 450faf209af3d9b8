"""A plausible past for the demo school, so ``make demo`` shows trends at once.

Before ``netmon run`` starts, :func:`fill` probes every job of the demo inventory once
(the simulated devices are up by then) and writes the day before into a fresh history
file through the store's own write path, as if netmon had been running: the same
series with the same labels the daemon will record, their values varied over the day:
latency higher in school hours, uplink traffic that follows the timetable, a lab PC
down for most of an hour last night and the office copier for 40 minutes yesterday
afternoon. The printers get four weeks: toner used every day, each printer's first
cartridge replaced ten days ago (the supply forecast of issue 13 has a refill to find), page
counts rising accordingly. Values end at what the devices report now, so the charts
join the live data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from alerts.service import state_path
from monitor.config import load_config, resolve_targets
from monitor.scheduler import ProbeJob, plan_jobs
from monitor.store.history import HistorySettings, HistoryStore, history_path, kept_labels
from monitor.store.results import ResultStore
from probes.context import ProbeContext
from probes.registry import run_probe
from probes.result import ProbeResult, Sample, Status

DAY = 86400.0
#: Seconds a made-up outage keeps from the ends of the filled day.
MARGIN = 600.0
#: Seconds between the made-up runs of the last day, and of the printers' four weeks.
STEP = 300.0
SUPPLY_STEP = 3600.0
SUPPLY_DAYS = 28
#: Days before now the demo's printers had a cartridge replaced.
REFILL_DAYS_AGO = 10
Outages = dict[str, list[tuple[float, float]]]


def school_hours(t: float) -> float:
    """0 at night, rising to 1 in lessons (08:30-15:30 local), school days only."""
    local = datetime.fromtimestamp(t)
    if local.weekday() >= 5:
        return 0.05
    hour = local.hour + local.minute / 60
    return max(0.05, min(1.0, (hour - 7.5), (16.5 - hour)))


def demo_outages(now: float, jobs: list[ProbeJob]) -> Outages:
    """Last night a lab PC, yesterday afternoon the office copier: the latest such time
    of day that lies wholly inside the day before ``now`` (the filled span)."""
    today = (
        datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    )

    def latest(start_hour: float, end_hour: float) -> tuple[float, float]:
        start, end = today + start_hour * 3600, today + end_hour * 3600
        if end + MARGIN > now:  # not over yet today: yesterday's, unless that is cut off
            start, end = start - DAY, end - DAY
        if start < now - DAY + MARGIN:  # ``now`` falls in the window: the hour before
            start, end = now - MARGIN - (end - start), now - MARGIN
        return start, end

    names = {j.target.name for j in jobs}
    lab_pc = sorted(j.target.name for j in jobs if j.target.role == "lab")[:1]
    out: Outages = {name: [latest(2.2, 2.95)] for name in lab_pc}
    if "office-copier" in names:
        out["office-copier"] = [latest(14.1, 14.75)]
    return out


class _Past:
    """One job's made-up values at time ``t``, ending at the live result's values."""

    def __init__(
        self, job: ProbeJob, live: ProbeResult, now: float, rng: random.Random, load: _Load
    ) -> None:
        self.job, self.live, self.now, self.load = job, live, now, load
        self.kept = [s for s in live.samples if kept_labels(s.metric, s.labels) is not None]
        self.noise = {i: rng.uniform(0.8, 1.2) for i in range(len(self.kept))}
        #: bytes/s at full load per interface sample (a few busy ports, the rest quiet)
        self.peak = {i: rng.choice((0.0, 0.0, 2e4, 4e5, 3e6)) for i in range(len(self.kept))}
        self.rng = rng
        #: The one cartridge replaced ten days ago: the printer's first supply.
        supplies = [
            i for i, s in enumerate(self.kept) if s.metric == "netmon_printer_supply_level_ratio"
        ]
        self.refilled = supplies[0] if supplies else -1

    def value(self, i: int, s: Sample, t: float) -> float:
        ago = self.now - t
        load = school_hours(t)
        if s.metric == "netmon_icmp_rtt_seconds":
            return s.value * (0.7 + 0.8 * load) * self.rng.uniform(0.85, 1.15)
        if s.metric == "netmon_icmp_packet_loss_ratio":
            return 1 / 3 if load > 0.5 and self.rng.random() < 0.01 else 0.0
        if s.metric.endswith("_bytes_total") and s.metric.startswith("netmon_interface"):
            # Counter = now's value minus what flowed since t (school hours ~ 10 h/day).
            return max(0.0, s.value - self.peak[i] * self.noise[i] * self.load.between(t, self.now))
        if s.metric.endswith("_errors_total"):
            return max(0.0, s.value - int(ago / 3600) * (1 if self.peak[i] > 1e6 else 0))
        if s.metric == "netmon_printer_supply_level_ratio":
            return _toner(s.value, ago / DAY, self.noise[i], refilled=i == self.refilled)
        if s.metric == "netmon_printer_pages_total":
            return max(
                0.0, s.value - round(120 * self.noise[i] * self.load.between(t, self.now) / 3600)
            )
        if s.metric == "netmon_host_storage_used_bytes":
            return s.value * (1 - 0.002 * ago / DAY)
        return s.value

    def result(self, t: float, down: bool) -> ProbeResult:
        if down or not self.live.status.success:
            status = Status.TIMEOUT if down else self.live.status
            why = "no reply within the timeout" if down else self.live.explanation
            samples = [Sample.of("netmon_probe_success", 0)]
            if self.job.probe == "icmp":
                samples.append(Sample.of("netmon_icmp_packet_loss_ratio", 1.0))
            return ProbeResult(status, why, samples, probe=self.job.store_name,
                               target=self.job.target.name, started_at=t)  # fmt: skip
        samples = [
            dataclasses.replace(s, value=self.value(i, s, t)) for i, s in enumerate(self.kept)
        ]
        return dataclasses.replace(self.live, samples=samples, started_at=t, duration_seconds=0.0)


class _Load:
    """Cumulative school-hours load: seconds of full load since ``start`` (15-minute
    steps), so "how much flowed between t and now" is one subtraction."""

    STEP = 900.0

    def __init__(self, start: float, now: float) -> None:
        self.start = start
        self.cumulative = [0.0]
        x = start
        while x < now + self.STEP:
            self.cumulative.append(self.cumulative[-1] + school_hours(x) * self.STEP)
            x += self.STEP

    def at(self, t: float) -> float:
        pos = (t - self.start) / self.STEP
        i = min(max(int(pos), 0), len(self.cumulative) - 2)
        a, b = self.cumulative[i], self.cumulative[i + 1]
        return a + (b - a) * (pos - i)

    def between(self, t: float, now: float) -> float:
        return self.at(now) - self.at(t)


def _toner(now_level: float, days_ago: float, noise: float, *, refilled: bool) -> float:
    """Four weeks of toner ending at ``now_level``: ~2-3 % a school day; a ``refilled``
    cartridge was replaced :data:`REFILL_DAYS_AGO` days ago (nearly empty before)."""
    days = REFILL_DAYS_AGO if refilled else SUPPLY_DAYS
    per_day = max(0.0, min(0.03 * noise, (0.98 - now_level) / days))
    if days_ago <= days:
        return min(1.0, now_level + per_day * days_ago)
    return max(0.0, 0.04 + 0.025 * noise * (days_ago - days))


async def _probe_all(jobs: list[ProbeJob]) -> list[ProbeResult]:
    ctx = ProbeContext()
    try:
        return list(await asyncio.gather(
            *(run_probe(j.probe, j.probe_target, j.settings, ctx) for j in jobs)
        ))  # fmt: skip
    finally:
        await ctx.aclose()


def fill(
    config: Path,
    path: Path | None = None,
    *,
    now: float,
    settings: HistorySettings | None = None,
    seed: int = 204,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Write the demo's past into a new history file (``path``, default the config's
    own history file), replacing one there; returns the number of results written."""
    cfg = load_config(config)
    if path is None:
        base = config.resolve().parent
        path = history_path(cfg.history, base, state_path(cfg.alerts, base))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    jobs = plan_jobs(resolve_targets(cfg))
    live = asyncio.run(_probe_all(jobs))
    rng = random.Random(seed)
    load = _Load(now - SUPPLY_DAYS * DAY - DAY, now)
    pasts = [_Past(j, r, now, rng, load) for j, r in zip(jobs, live, strict=True)]
    outages = demo_outages(now, jobs)
    clock = [now - SUPPLY_DAYS * DAY]
    store = HistoryStore(path, settings or cfg.history, clock=lambda: clock[0])
    store.start(background=False)
    results = ResultStore()
    results.subscribe(store.record)
    written = 0
    try:
        t = clock[0]
        while t < now:
            recent = t >= now - DAY
            for past in pasts:
                if not recent and past.job.target.role != "printer":
                    continue
                down = any(a <= t < b for a, b in outages.get(past.job.target.name, ()))
                results.put(past.result(t, down), past.job.labels, past.job.interval,
                            probe=past.job.store_name)  # fmt: skip
                written += 1
            step = STEP if recent else SUPPLY_STEP
            # Outage edges exactly: the next run after one starts or ends is at the edge.
            edges = [
                e
                for spans in outages.values()
                for a, b in spans
                for e in (a, b)
                if t < e < t + step
            ]
            t = min([t + step, *edges])
            if written and (t - clock[0] >= 6 * 3600 or t >= now):
                clock[0] = t
                store.flush()
                if progress is not None:
                    progress(f"{datetime.fromtimestamp(t):%a %H:%M}")
        clock[0] = now
    finally:
        store.close()
    return written
