"""``netmon alerts replay TIMELINE.yml -c netmon.yml``: what netmon would have sent.

The config supplies the targets, their probe jobs (the scheduler's phases), the rules,
schedules and routes; the timeline (:mod:`alerts.timeline`) what the devices do.
:mod:`alerts.replay` runs the real alerting under a virtual clock and this prints
every notification and a summary (``--json``: one object).

``--from-history SINCE [--until UNTIL]`` makes the timeline from the embedded history
store (:mod:`monitor.store.history`) instead: every probe status change (with the
probe's own explanation), the kept series the rules read (round-trip time, loss,
supply levels, port status and error rates, the UPS), the silences, and the gaps when
netmon was not running (replayed as restarts). The store keeps only those series, so
rules on others (disk and memory use, CPU, printer conditions) cannot fire in such a
replay; a supply's class (consumable or waste container) comes from the store, or from
"waste" in its description in files written before the store kept it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from monitor.cli.app import (
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    ConfigProblem,
    _load_config,
    _problems,
)

EXAMPLES = """\
examples:
  netmon alerts replay examples/replay-toner.yml -c examples/netmon.yml
  netmon alerts replay week.yml -c netmon.yml --json > week.json
  netmon alerts replay --from-history 7d -c new.yml --history /var/lib/netmon/netmon-history.db
  netmon alerts replay --from-history "2026-09-07 00:00" --until "2026-09-12 00:00" -c netmon.yml
The timeline's format is described in the README (Alert replay) and in alerts/timeline.py."""


def add_replay(actions: Any) -> None:
    """Register ``alerts replay`` on the ``alerts`` subcommands."""
    replay = actions.add_parser(
        "replay", help="what netmon would have sent for a timeline of device states",
        description="Run the real rules, engine and routing over a scripted timeline of "
                    "device states under a virtual clock (no network, no sleeping) and print "
                    "every notification that would be sent, and a summary.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    replay.add_argument("timeline", metavar="TIMELINE.yml", nargs="?", help="the timeline (YAML)")
    replay.add_argument("-c", "--config", metavar="FILE", required=True, help="the netmon config (YAML)")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    replay.add_argument("--from-history", metavar="SINCE",
                        help="replay the recorded history since SINCE (7d = a week ago, or a time)")
    replay.add_argument("--until", metavar="UNTIL", help="with --from-history: up to then (default: now)")
    replay.add_argument("--history", metavar="FILE",
                        help="with --from-history: the history file (default: the config's, "
                             "as netmon run writes it)")
    replay.add_argument("--timezone", default="UTC",
                        help="with --from-history: for times without an offset and the output (default UTC)")
    replay.set_defaults(handler=alerts_replay)


def build_replay(cfg: Any, loaded: Any, config_path: Path, *, exhaustive: bool = False) -> Any:
    """The :class:`alerts.replay.Replay` of a loaded timeline through a loaded config:
    its targets and probe jobs as ``netmon run`` plans them (the scheduler's phases, the
    daemon's first-run wait). Raises :class:`alerts.timeline.TimelineError` when the
    timeline names what the config lacks (``file:line`` each)."""
    from alerts.replay import Replay, check_timeline, replay_job
    from alerts.timeline import TimelineError
    from monitor.config import resolve_targets
    from monitor.daemon import FIRST_RUN_SLACK, _target_infos
    from monitor.scheduler import _EPOCH, plan_jobs

    targets = resolve_targets(cfg)
    infos = _target_infos(targets)
    jobs = [replay_job(j.target.name, j, _EPOCH.timestamp()) for j in plan_jobs(targets)]
    problems = check_timeline(loaded.timeline, infos, jobs)
    if problems:
        raise TimelineError([loaded.problem(loc, msg) for loc, msg in problems])
    return Replay(
        loaded.timeline, settings=cfg.alerts, schedules=cfg.schedules, targets=infos, jobs=jobs,
        base_dir=Path(config_path).resolve().parent, first_run_slack=FIRST_RUN_SLACK,
        external_url=cfg.server.external_url or "", exhaustive=exhaustive,
    )  # fmt: skip


def alerts_replay(opts: argparse.Namespace) -> int:
    from alerts.replay import text_report
    from alerts.timeline import TimelineError, load_timeline

    if (opts.timeline is None) == (opts.from_history is None):
        print("netmon alerts replay: give a TIMELINE.yml or --from-history SINCE", file=sys.stderr)
        return EXIT_USAGE
    try:
        cfg = _load_config(opts.config, secrets=False)
    except ConfigProblem as exc:
        return _problems(exc.problems, f"config error in {opts.config}")
    source = opts.timeline or "--from-history"
    try:
        if opts.timeline is not None:
            loaded = load_timeline(Path(opts.timeline))
        else:
            loaded = history_timeline(cfg, Path(opts.config), opts.from_history, opts.until,
                                      opts.timezone, opts.history)  # fmt: skip
        replay = build_replay(cfg, loaded, Path(opts.config))
    except TimelineError as exc:
        return _problems(exc.problems, f"timeline error in {source}")
    except HistoryUnavailable as exc:
        print(f"netmon: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    report = replay.run()
    zone = loaded.timeline.zone
    if opts.json:
        print(json.dumps(report.to_json(zone), indent=2))
    else:
        for line in text_report(report, zone):
            print(line)
    return EXIT_OK


# --- the timeline of the recorded history -------------------------------------------------


class HistoryUnavailable(Exception):
    """There is no history to replay (disabled, never written, unreadable)."""


#: Kept series the rules read: metric -> (probe kind, value step below which changes are
#: ignored). Interface counters are stored as per-second rates.
HISTORY_SERIES: dict[str, tuple[str, float]] = {
    "netmon_icmp_rtt_seconds": ("icmp", 0.01),
    "netmon_icmp_packet_loss_ratio": ("icmp", 0.05),
    "netmon_printer_supply_level_ratio": ("snmp", 0.01),
    "netmon_interface_oper_up": ("snmp", 0.5),
    "netmon_interface_receive_errors_total": ("snmp", 0.01),
    "netmon_interface_transmit_errors_total": ("snmp", 0.01),
    "netmon_ups_on_battery": ("snmp", 0.5),
    "netmon_ups_battery_charge_ratio": ("snmp", 0.05),
}
#: How far before SINCE a probe's last status change is looked for.
LOOKBACK = 400 * 86400.0


def _moment(text: str, zone: Any, now: float) -> float:
    """``7d`` / ``36h`` (that long ago) or a time (``2026-09-07 08:00``, in ``zone``)."""
    from datetime import datetime

    from alerts.timeline import parse_span

    try:
        return now - parse_span(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HistoryUnavailable(
            f"{text!r} is neither a duration ago (7d, 36h) nor a time (2026-09-07 08:00)") from None
    return (when if when.tzinfo else when.replace(tzinfo=zone)).timestamp()


def history_timeline(cfg: Any, config_path: Path, since_text: str, until_text: str | None,
                     timezone: str, history_file: str | None = None) -> Any:
    """The timeline of what the history store recorded in [SINCE, UNTIL): the config's
    (``history:``, beside its alert state file), or ``history_file``."""
    import time
    import zoneinfo

    from alerts.service import state_path
    from alerts.timeline import LoadedTimeline, Timeline
    from monitor.store.history import HistoryError, HistoryStore, history_path

    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise HistoryUnavailable(f"--timezone {timezone}: unknown time zone") from None
    if not cfg.history.enabled and history_file is None:
        raise HistoryUnavailable(f"{config_path}: history.enabled is false: there is no "
                                 "recorded history to replay (replay a TIMELINE.yml, or name "
                                 "a history file with --history)")
    base_dir = Path(config_path).resolve().parent
    path = Path(history_file) if history_file else history_path(
        cfg.history, base_dir, state_path(cfg.alerts, base_dir))
    now = time.time()
    since = _moment(since_text, zone, now)
    until = _moment(until_text, zone, now) if until_text else now
    if until <= since:
        raise HistoryUnavailable("--until is not after --from-history")
    try:
        store = HistoryStore.open_readonly(path, cfg.history)
    except HistoryError as exc:
        raise HistoryUnavailable(str(exc)) from None
    try:
        doc = _recorded(store, cfg, since, until)
    finally:
        store.close()
    if doc is None:
        raise HistoryUnavailable(f"{path}: netmon was not running (recording) between "
                                 f"{_shown(since, zone)} and {_shown(until, zone)}")
    timeline = Timeline.model_validate({**doc, "timezone": timezone})
    return LoadedTimeline(timeline, path, lambda loc: None)


def _shown(ts: float, zone: Any) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")


def _recorded(store: Any, cfg: Any, since: float, until: float) -> dict[str, Any] | None:
    """The timeline document (offsets from the first recorded moment), or None when
    netmon recorded nothing in the period."""
    from datetime import UTC, datetime

    from alerts.replay import replay_job
    from monitor.config import resolve_targets
    from monitor.scheduler import _EPOCH, plan_jobs

    runs = store.running(since, until)
    if not runs:
        return None
    start = runs[0][0]
    changes: list[dict[str, Any]] = []
    jobs = {(j.target.name, j.store_name): replay_job(j.target.name, j, _EPOCH.timestamp())
            for j in plan_jobs(resolve_targets(cfg))}  # fmt: skip

    def begun(at: float, name: str, probe: str) -> float:
        """The start of the run whose result was recorded at ``at`` (a change then holds
        for that run, as it did)."""
        job = jobs.get((name, probe)) or next(
            (j for (t, _), j in jobs.items() if t == name and j.probe == probe), None)
        return max(0.0, (job.next_start(at - job.interval) if job else at) - start)

    for name, probe in jobs:
        before = store.changes(name, probe=probe, since=start - LOOKBACK, until=start)
        for c in before[-1:] + store.changes(name, probe=probe, since=start, until=until):
            changes.append({"at": begun(c.at, name, probe), "target": name, "probe": probe,
                            "status": c.status, "explanation": c.explanation})  # fmt: skip
    for name in {t for t, _ in jobs}:
        for metric, (probe, step) in HISTORY_SERIES.items():
            for series in store.series(name, metric, since=start, until=until):
                for t, samples in _series_changes(metric, series, step):
                    # raw points are results (aligned to their run); rollups are buckets
                    at = begun(t, name, probe) if series.step == 0 else max(0.0, t - start)
                    changes.append({"at": at, "target": name, "probe": probe, "samples": samples})
    restarts = [{"at": b - start, "down": max(1.0, a - b)}
                for (_, b), (a, _) in itertools.pairwise(runs)]  # fmt: skip
    silences = [{"at": max(0.0, s.starts_at - start), "duration": s.ends_at - max(s.starts_at, start),
                 "matchers": list(s.matchers), "comment": f"recorded silence {s.id}"}
                for s in store.silences(start, until)]  # fmt: skip
    changes.sort(key=lambda c: c["at"])
    return {"start": datetime.fromtimestamp(start, UTC), "end": until - start,
            "changes": changes, "silences": silences, "restarts": restarts}  # fmt: skip


def _series_changes(metric: str, series: Any, step: float) -> list[tuple[float, list[dict[str, Any]]]]:
    """A kept series as (time, sample settings): only where its value moves by ``step``
    or more (counters stored as rates become counters growing at that rate), with the
    labels the probe gives the sample."""
    kept = series.labels
    if metric == "netmon_icmp_rtt_seconds":
        labels = {"stat": "avg"}
    elif metric == "netmon_printer_supply_level_ratio":
        from alerts.digest import is_waste

        labels = {"index": kept.get("supply", ""), "supply": kept.get("description", ""),
                  "class": "receptacle" if is_waste(kept) else "consumable"}  # fmt: skip
    elif "ifindex" in kept:
        labels = {"if_index": kept["ifindex"], "if_name": kept.get("interface", "")}
    else:
        labels = {}
    counter = metric.endswith("_total")
    out: list[tuple[float, list[dict[str, Any]]]] = []
    last: float | None = None
    total = 0.0
    previous_t = series.points[0].t if series.points else 0.0
    for point in series.points:
        total += (last or 0.0) * max(0.0, point.t - previous_t) if counter else 0.0
        previous_t = point.t
        if last is not None and abs(point.value - last) < step:
            continue
        last = point.value
        setting = {"metric": metric, "labels": labels, "value": total if counter else point.value}
        if counter:
            setting["rate"] = point.value
        out.append((point.t, [setting]))
        if metric == "netmon_interface_oper_up" and len(out) == 1:  # not kept: say it is up
            out[0][1].append({"metric": "netmon_interface_admin_up", "labels": labels, "value": 1})
    return out
