"""``netmon where NAME|IP|MAC``: which switch port a device is on (issue 14).

It reads the topology the running ``netmon run`` of the same config keeps next to its
alert state (``netmon-topology.json``), so it answers at once, without polling any
switch, and also while a switch is down (its last tables stay).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any

from monitor.cli.app import EXIT_OK, EXIT_PROBLEM, _load_config


def add_commands(commands: Any) -> None:
    """Add ``where`` to the ``netmon`` subparsers."""
    where = commands.add_parser(
        "where", help="which switch port a device is plugged into",
        description="Find a device by inventory name, IP address or MAC address in the "
                    "topology netmon run learnt from the switches (LLDP, forwarding tables, ARP).",
    )  # fmt: skip
    where.add_argument("query", metavar="NAME|IP|MAC")
    where.add_argument("-c", "--config", default="netmon.yml", metavar="FILE",
                       help="netmon config (default: netmon.yml)")  # fmt: skip
    where.add_argument("--json", action="store_true", help="print one JSON document")
    where.set_defaults(handler=_where)


def _ago(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _when(at: float, now: float) -> str:
    moment = datetime.fromtimestamp(at)
    return moment.strftime("%H:%M") if now - at < 86400 else moment.strftime("%Y-%m-%d %H:%M")


def sentence(found: Any, now: float | None = None) -> str:
    """``lab-204-12 (10.1.4.12, 3c:52:82:…) is on sw-b2 port 0/12 'Room 204 desk 3' since
    08:12, seen 3 min ago``."""
    now = time.time() if now is None else now
    who = found.name or found.address or found.mac
    ids = ", ".join(x for x in (found.address if found.name else None, found.mac) if x and x != who)
    head = f"{who} ({ids})" if ids else who
    if found.place is None:
        return f"{head}: not seen in any switch's forwarding table yet"
    place = found.place
    text = f"{head} is on {place.switch} port {place.port}"
    if place.alias:
        text += f" '{place.alias}'"
    if place.uplink:
        text += " (only seen on an uplink: the switch behind it is not polled)"
    if found.since:
        text += f" since {_when(found.since, now)}"
    if found.last_seen:
        text += f", seen {_ago(now - found.last_seen)}"
    return text


def _where(opts: argparse.Namespace) -> int:
    from pathlib import Path

    from monitor.topology import for_config

    cfg = _load_config(opts.config, secrets=False)
    topo = for_config(cfg, Path(opts.config))
    found = topo.where(opts.query.strip())
    if found is None:
        if opts.json:
            print(json.dumps(None))
        print(f"{opts.query}: not found (not in the inventory, any ARP table or any switch's "
              "forwarding table that netmon has read)", file=sys.stderr)  # fmt: skip
        return EXIT_PROBLEM
    if opts.json:
        print(json.dumps(found.to_json(), indent=2))
    else:
        print(sentence(found))
    return EXIT_OK
