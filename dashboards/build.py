"""Render the dashboards into committed JSON and check the committed JSON is current.

Output is stable (sorted keys, indent 2, trailing newline), so a rebuild without
changes to :mod:`dashboards.boards` leaves git clean.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.boards import DASHBOARDS

JSON_DIR = Path(__file__).resolve().parent / "json"
#: A netmon metric name inside a PromQL expression.
METRIC_NAME = re.compile(r"\bnetmon_[a-z0-9_]+\b")


def load(directory: Path = JSON_DIR) -> dict[str, dict[str, Any]]:
    """The committed dashboards: file name -> parsed JSON."""
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows and the panels inside collapsed rows included."""
    for panel in doc.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of every panel."""
    for panel in panels(doc):
        for target in panel.get("targets", []):
            yield panel, target


def render_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        name: json.dumps(factory().build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"
        for name, factory in DASHBOARDS.items()
    }


def stale_files(directory: Path = JSON_DIR) -> list[Path]:
    """Files in ``directory`` that differ from a fresh build, are missing, or are left
    over from a dashboard that no longer exists."""
    rendered = render_all()
    stale = [
        directory / name for name, text in rendered.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]  # fmt: skip
    extra = [p for p in directory.glob("*.json") if p.name not in rendered]
    return sorted(stale + extra)


def write_all(directory: Path = JSON_DIR) -> list[Path]:
    """Write every dashboard into ``directory``; returns the files that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in render_all().items():
        path = directory / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 listing stale files, write nothing")
    parser.add_argument("-o", "--output", type=Path, default=JSON_DIR, help=f"directory (default {JSON_DIR})")
    opts = parser.parse_args(argv)
    return run(opts.output, opts.check)


def run(directory: Path, check: bool) -> int:
    """``netmon dashboards build [--check]``; returns the exit code."""
    if check:
        stale = stale_files(directory)
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        if stale:
            print("run `netmon dashboards build` to regenerate", file=sys.stderr)
        return 1 if stale else 0
    changed = write_all(directory)
    print(f"{len(DASHBOARDS)} dashboards in {directory}, {len(changed)} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
