"""``netmon report availability``: the monthly figures for the head teacher, from history
(``netmon report supplies``: :mod:`monitor.cli.supplies_report`).

Reads the history file (``history:`` in the config) read-only, so it runs in a shell
while ``netmon run`` writes. ``report`` is a group: each report is a subcommand that
takes the common options of :func:`common_options` and finds the file with
:func:`open_history`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.cli import supplies_report
from monitor.cli.app import EXIT_OK, EXIT_PROBLEM, ConfigProblem, _load_config, _problems

if TYPE_CHECKING:
    from monitor.store.availability import Availability
    from monitor.store.history import HistoryStore, Outage

EXAMPLES = """\
examples:
  netmon report availability -c /etc/netmon/netmon.yml                  # last 30 days, per device
  netmon report availability -c netmon.yml --since 7d --by room
  netmon report availability -c netmon.yml --since 2026-11-01 --until 2026-12-01 --format csv > nov.csv
  netmon report availability -c netmon.yml --by role --format json

Availability = up / (up + down). Time outside a device's expected_online schedule,
maintenance (a silence of its device_down alert, or a parent down) and unknown time
(netmon not running, or before the device's first result) are shown apart and count
neither way."""

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d|w)\s*$")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def when(text: str, now: float | None = None) -> float:
    """``30d`` / ``24h`` / ``2w`` ago, ``now``, or a local date/time (``2026-11-01``,
    ``2026-11-01 08:00``, ISO 8601 with an offset) -> Unix time."""
    at = time.time() if now is None else now
    if text.strip() == "now":
        return at
    if m := _AGO.match(text):
        return at - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use a span back from now (30d, 24h, 2w) or a date/time (2026-11-01, 2026-11-01 08:00)"
        ) from None
    return parsed.timestamp()  # a naive date/time is local time


def common_options(parser: argparse.ArgumentParser) -> None:
    """The options every report over a period takes: :func:`file_options` and the period."""
    file_options(parser)
    parser.add_argument("--since", default="30d", metavar="WHEN",
                        help="start: a span back from now (30d, 7d, 24h) or a date (2026-11-01); default 30d")  # fmt: skip
    parser.add_argument("--until", default="now", metavar="WHEN", help="end (default now), as --since")


def file_options(parser: argparse.ArgumentParser) -> None:
    """The options every report takes: the config, the history file, the output format."""
    parser.add_argument("-c", "--config", metavar="FILE", required=True, help="the netmon config (YAML)")
    parser.add_argument("--history", metavar="FILE", type=Path,
                        help="the history file (default: history.path, or beside the alert state file)")  # fmt: skip
    parser.add_argument("--state-file", metavar="FILE",
                        help="the alert state file `netmon run` was given, if any (the history file is beside it)")  # fmt: skip
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output (default table)")


def add_commands(commands: Any) -> None:
    """Register ``report`` and its reports on the main parser's subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter
    report = commands.add_parser(
        "report", help="reports from the history (availability, supplies)",
        description="Reports from netmon's own history file (history: in the config).",
        epilog=EXAMPLES, formatter_class=fmt,
    )  # fmt: skip
    reports = report.add_subparsers(dest="action", metavar="REPORT", required=True)
    avail = reports.add_parser(
        "availability", help="availability per device, room or role, and the recent outages",
        description="Availability per device, room or role over a period, and its outages.",
        epilog=EXAMPLES, formatter_class=fmt,
    )  # fmt: skip
    common_options(avail)
    avail.add_argument("--by", choices=("device", "room", "role"), default="device",
                       help="one row per device (default), room (labels building/room) or role")  # fmt: skip
    avail.add_argument("--outages", type=int, default=20, metavar="N", help="list the N latest outages (default 20; 0: none)")
    avail.set_defaults(handler=report_availability)
    supplies_report.add_parser(reports, file_options)


def open_history(opts: argparse.Namespace) -> tuple[Any, HistoryStore]:
    """The config and its history file, opened read-only. Raises :class:`ConfigProblem`
    and :class:`~monitor.store.history.HistoryError` (both one line for the user)."""
    from alerts.service import state_path
    from monitor.store.history import HistoryError, HistoryStore, history_path

    cfg = _load_config(opts.config, secrets=False)
    base_dir = Path(opts.config).resolve().parent
    path = opts.history
    if path is None:
        if not cfg.history.enabled:
            raise HistoryError(f"{opts.config}: history is disabled (history.enabled: false); "
                               "enable it and let `netmon run` record for a while")  # fmt: skip
        alerts = cfg.alerts
        if opts.state_file:
            alerts = alerts.model_copy(update={"state_file": str(Path(opts.state_file).resolve())})
        path = history_path(cfg.history, base_dir, state_path(alerts, base_dir))
    return cfg, HistoryStore.open_readonly(path, cfg.history)


def open_or_say(opts: argparse.Namespace) -> tuple[Any, HistoryStore] | int:
    """:func:`open_history`, or the exit code after saying in one line why it cannot."""
    from monitor.store.history import HistoryError

    try:
        return open_history(opts)
    except ConfigProblem as exc:
        return _problems(exc.problems, f"config error in {opts.config}")
    except HistoryError as exc:
        print(f"netmon: {exc}", file=sys.stderr)
        return EXIT_PROBLEM


def report_availability(opts: argparse.Namespace) -> int:
    import sqlite3

    from monitor.store.availability import availability, devices_from_config, recent_outages

    try:
        since, until = when(opts.since), when(opts.until)
    except argparse.ArgumentTypeError as exc:
        print(f"netmon report: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    if until <= since:
        print("netmon report: --until must be after --since", file=sys.stderr)
        return EXIT_PROBLEM
    opened = open_or_say(opts)
    if isinstance(opened, int):
        return opened
    cfg, history = opened
    try:
        devices = devices_from_config(cfg, Path(opts.config))
        base_dir = Path(opts.config).resolve().parent
        rows = availability(history, devices, since=since, until=until, by=opts.by, base_dir=base_dir)
        outages = recent_outages(history, devices, since=since, until=until, limit=max(opts.outages, 0))
    except sqlite3.DatabaseError as exc:
        print(f"netmon: {history.path}: cannot read the history file ({exc}); is it a netmon history file?",
              file=sys.stderr)  # fmt: skip
        return EXIT_PROBLEM
    finally:
        history.close()
    if opts.format == "json":
        print(json.dumps({
            "since": since, "until": until, "by": opts.by,
            "rows": [r.to_json() for r in rows],
            "outages": [_outage_json(o) for o in outages],
        }, indent=2))  # fmt: skip
    elif opts.format == "csv":
        _write_csv(rows, opts.by)
    else:
        _print_table(rows, outages, since, until, opts.by)
    return EXIT_OK


def percent(ratio: float | None) -> str:
    """``0.99987`` -> ``99.98 %``: never rounded up to 100 %, two decimals from 99 %
    (where the differences that matter are), one below; "–" without counted time."""
    if ratio is None:
        return "–"
    if ratio >= 1:
        return "100 %"
    digits = 2 if ratio >= 0.99 else 1
    scale = 10**digits
    return f"{math.floor(ratio * 100 * scale) / scale:.{digits}f} %"


def _outage_json(o: Outage) -> dict[str, Any]:
    return {"target": o.target, "start": o.start, "end": o.end, "reason": o.reason, "status": o.status}


def _write_csv(rows: list[Availability], by: str) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow([by, "availability", "up_seconds", "down_seconds", "maintenance_seconds",
                  "outside_schedule_seconds", "unknown_seconds", "devices", "outages"])  # fmt: skip
    for r in rows:
        out.writerow([
            r.key, "" if r.ratio is None else f"{r.ratio:.6f}", f"{r.up:.0f}", f"{r.down:.0f}",
            f"{r.maintenance:.0f}", f"{r.outside_schedule:.0f}", f"{r.unknown:.0f}", r.devices, r.outages,
        ])  # fmt: skip


def _local(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _print_table(
    rows: list[Availability], outages: list[Outage], since: float, until: float, by: str
) -> None:
    from rich.console import Console
    from rich.table import Table

    from monitor.cli.output import device_text, human_duration

    console = Console(highlight=False, width=max(Console().width, 110))
    title = f"Availability {_local(since)} – {_local(until)} ({human_duration(until - since)}), by {by}"
    table = Table(title=title, title_justify="left")
    table.add_column(by, no_wrap=True)
    for name in ("availability", "down", "maintenance", "off schedule", "unknown", "outages"):
        table.add_column(name, justify="right")
    if by != "device":
        table.add_column("devices", justify="right")
    for r in rows:
        ratio = r.ratio
        style = "" if ratio is None else "green" if ratio >= 0.99 else "yellow" if ratio >= 0.95 else "red"
        cells = [device_text(r.key), device_text(percent(ratio), style)]
        cells += [device_text(human_duration(s) if s >= 1 else "–")
                  for s in (r.down, r.maintenance, r.outside_schedule, r.unknown)]  # fmt: skip
        cells.append(device_text(str(r.outages)))
        if by != "device":
            cells.append(device_text(str(r.devices)))
        table.add_row(*cells)
    if not rows:
        console.print(f"No {by}s to report (none in the config{' with a room label' * (by == 'room')}).")
    else:
        console.print(table)
    if not outages:
        console.print("No outages in this period.")
        return
    listed = Table(title=f"Latest {len(outages)} outages", title_justify="left")
    for name in ("device", "down from", "to", "for", "reason"):
        listed.add_column(name, overflow="fold")
    for o in outages:
        end = o.end if o.end is not None else until
        listed.add_row(
            device_text(o.target), _local(o.start), "still down" if o.end is None else _local(o.end),
            human_duration(end - o.start), device_text(o.reason),
        )  # fmt: skip
    console.print(listed)
