"""``netmon alerts replay TIMELINE.yml -c netmon.yml``: what netmon would have sent.

The config supplies the targets, their probe jobs (the scheduler's phases), the rules,
schedules and routes; the timeline (:mod:`alerts.timeline`) what the devices do.
:mod:`alerts.replay` runs the real alerting under a virtual clock and this prints
every notification and a summary (``--json``: one object).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from monitor.cli.app import EXIT_OK, ConfigProblem, _load_config, _problems

EXAMPLES = """\
examples:
  netmon alerts replay examples/replay-toner.yml -c examples/netmon.yml
  netmon alerts replay week.yml -c netmon.yml --json > week.json
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
    replay.add_argument("timeline", metavar="TIMELINE.yml", help="the timeline (YAML)")
    replay.add_argument("-c", "--config", metavar="FILE", required=True, help="the netmon config (YAML)")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
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

    try:
        cfg = _load_config(opts.config, secrets=False)
    except ConfigProblem as exc:
        return _problems(exc.problems, f"config error in {opts.config}")
    try:
        loaded = load_timeline(Path(opts.timeline))
        replay = build_replay(cfg, loaded, Path(opts.config))
    except TimelineError as exc:
        return _problems(exc.problems, f"timeline error in {opts.timeline}")
    report = replay.run()
    zone = loaded.timeline.zone
    if opts.json:
        print(json.dumps(report.to_json(zone), indent=2))
    else:
        for line in text_report(report, zone):
            print(line)
    return EXIT_OK
