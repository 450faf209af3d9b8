"""``netmon where NAME|IP|MAC``: which switch port a device is on (issue 14).

It reads the topology the running ``netmon run`` of the same config keeps next to its
alert state (``netmon-topology.json``), so it answers at once, without polling any
switch, and also while a switch is down (its last tables stay).
"""

from __future__ import annotations

import argparse
import json
import sys
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


def _where(opts: argparse.Namespace) -> int:
    from pathlib import Path

    from monitor.topology import for_config, sentence

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
