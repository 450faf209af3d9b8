"""``netmon report supplies``: the weekly digest's "what to order" list, on demand.

The same list as the ``alerts.digests`` email (:func:`alerts.digest.build_report`):
supplies low or forecast to run out within ``--days-ahead`` days, waste containers
nearly full, printers silent all week; ``--all`` lists every supply with its forecast.
Reads the history file read-only (:func:`monitor.cli.report.open_or_say`).
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import sys
import time
from typing import TYPE_CHECKING, Any

from monitor.cli.app import EXIT_OK, EXIT_PROBLEM

if TYPE_CHECKING:
    from alerts.digest import SuppliesReport

EXAMPLES = """\
examples:
  netmon report supplies -c /etc/netmon/netmon.yml                # what to order
  netmon report supplies -c netmon.yml --days-ahead 30 --format csv > order.csv
  netmon report supplies -c netmon.yml --all --format json        # every supply's forecast

Days left come from the history: the level since the last cartridge change, fitted
robustly (refills detected); "not falling" means no use was seen, "too little data"
that there is under a day of it (or under four readings) since the last change."""

CSV_FIELDS = ("kind", "target", "building", "room", "supply", "level", "days_left",
              "confidence", "forecast", "pages_last_week", "reason", "last_answered")


def add_parser(reports: Any, options: Any) -> None:
    """Add ``supplies`` to ``netmon report``; ``options(parser)`` adds the config,
    history and format options the reports share."""
    parser = reports.add_parser(
        "supplies", help="supplies to order: low, running out soon (forecast), waste nearly full",
        description="Supplies low or forecast to run out, waste containers nearly full, "
                    "printers silent all week: the weekly digest's list, now.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    options(parser)
    parser.add_argument("--days-ahead", type=int, default=14, metavar="N",
                        help="list supplies forecast to run out within N days (default 14)")
    parser.add_argument("--all", action="store_true", help="every supply, due or not")
    parser.set_defaults(handler=report_supplies)


def report_supplies(opts: argparse.Namespace) -> int:
    from alerts.digest import build_report
    from alerts.rules import RuleSet, TargetInfo
    from monitor.cli.report import open_or_say
    from monitor.config import resolve_targets

    opened = open_or_say(opts)
    if isinstance(opened, int):
        return opened
    cfg, history = opened
    printers = [TargetInfo(t.name, {"group": t.group, "role": t.role, **t.labels})
                for t in resolve_targets(cfg)]
    try:
        report = build_report(history, printers, time.time(), days_ahead=opts.days_ahead,
                              rules=RuleSet.from_settings(cfg.alerts), everything=opts.all)
    except sqlite3.DatabaseError as exc:
        print(f"netmon: {history.path}: cannot read the history file ({exc})", file=sys.stderr)
        return EXIT_PROBLEM
    finally:
        history.close()
    if opts.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    elif opts.format == "csv":
        out = csv.DictWriter(sys.stdout, CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
        out.writeheader()
        out.writerows(_flat_rows(report))
    else:
        _print_tables(report)
    return EXIT_OK


def _flat_rows(report: SuppliesReport) -> list[dict[str, Any]]:
    """One CSV row per supply, waste container and silent printer (``kind`` tells)."""
    rows = [r.to_json() for r in [*report.supplies, *report.waste]]
    rows += [{"kind": "silent", "target": p.target, "building": p.building, "room": p.room,
              "reason": "did not answer all week",
              "last_answered": "" if p.last_answered is None else f"{p.last_answered:.0f}"}
             for p in report.silent]  # fmt: skip
    return rows


def _print_tables(report: SuppliesReport) -> None:
    from rich.console import Console
    from rich.table import Table

    from monitor.cli.output import device_text

    console = Console(highlight=False)
    if report.empty:
        console.print(f"Nothing to order: no supply is low or forecast to run out within "
                      f"{report.days_ahead} days, no waste container is nearly full, and "
                      "every printer answered this week.")
        return
    for title, rows, waste in ((f"To order (within {report.days_ahead} days)", report.supplies, False),
                               ("Waste containers", report.waste, True)):  # fmt: skip
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        columns = ["printer", "room", "supply", "full" if waste else "level", "forecast",
                   *([] if waste else ["pages last week"]), "why"]
        for name in columns:
            table.add_column(name, overflow="fold", justify="right"
                             if name in ("level", "full", "pages last week") else "left")
        for r in rows:
            pages = "–" if r.pages_last_week is None else str(r.pages_last_week)
            table.add_row(
                device_text(r.target), device_text(r.room), device_text(r.supply),
                "–" if r.level is None else f"{r.level:.0%}", r.forecast.words(),
                *([] if waste else [pages]), r.reason or "–",
            )  # fmt: skip
        console.print(table)
    if report.silent:
        table = Table(title="Printers that did not answer all week", title_justify="left")
        for name in ("printer", "room", "last answered"):
            table.add_column(name, overflow="fold")
        for p in report.silent:
            last = "not in 8 weeks" if p.last_answered is None else time.strftime(
                "%Y-%m-%d %H:%M", time.localtime(p.last_answered))
            table.add_row(device_text(p.target), device_text(p.room), last)
        console.print(table)
