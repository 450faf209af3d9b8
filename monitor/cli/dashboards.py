"""``netmon dashboards build [--check] [-o DIR]``: regenerate the Grafana dashboard JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_commands(commands: Any) -> None:
    """Add the ``dashboards`` command to the ``netmon`` subparsers."""
    group = commands.add_parser(
        "dashboards", help="build the Grafana dashboards (JSON) from code",
        description="Grafana dashboards as code: dashboards/boards.py -> dashboards/json/*.json.",
    )  # fmt: skip
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="write the dashboard JSON files",
        description="Regenerate the dashboard JSON; --check only reports stale files (exit 1).",
    )  # fmt: skip
    build.add_argument("--check", action="store_true", help="list stale files and exit 1, write nothing")
    build.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                       help="directory for the JSON files (default: dashboards/json in the source tree)")
    build.set_defaults(handler=_build)


def _build(opts: argparse.Namespace) -> int:
    from dashboards.build import JSON_DIR, run

    return run(opts.output or JSON_DIR, opts.check)
