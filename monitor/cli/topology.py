"""``netmon where NAME|IP|MAC``: which switch port a device is on, and ``netmon topology
suggest-parents [--write]``: the inferred parents written into the config (issue 14).

Both read the topology the running ``netmon run`` of the same config keeps next to its
alert state (``netmon-topology.json``), so it answers at once, without polling any
switch, and also while a switch is down (its last tables stay).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from monitor.cli.app import EXIT_OK, EXIT_PROBLEM, _load_config

WHERE_EPILOG = """\
examples:
  netmon where lab-204-12 -c /etc/netmon/netmon.yml      # by inventory name
  netmon where 10.1.4.12 -c netmon.yml                   # by IP address
  netmon where 3c:52:82:04:00:0c -c netmon.yml --json    # by MAC, as JSON

It reads what `netmon run` saved (netmon-topology.json beside the alert state file), so
`netmon run` must have polled the switches' topology module at least once (every 15 min).
exit codes: 0 found on a switch port, 1 not located (yet) or unknown, 2 usage error"""

SUGGEST_EPILOG = """\
examples:
  netmon topology suggest-parents -c /etc/netmon/netmon.yml          # show them
  netmon topology suggest-parents -c /etc/netmon/netmon.yml --write  # write them in

Without --write nothing changes: inferred parents already apply (parent: auto, the
default). --write only makes them visible and fixed in the file."""


def add_commands(commands: Any) -> None:
    """Add ``where`` to the ``netmon`` subparsers."""
    where = commands.add_parser(
        "where", help="which switch port a device is plugged into",
        description="Find a device by inventory name, IP address or MAC address in the "
                    "topology netmon run learnt from the switches (LLDP, forwarding tables, ARP).",
        epilog=WHERE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    where.add_argument("query", metavar="NAME|IP|MAC")
    where.add_argument("-c", "--config", default="netmon.yml", metavar="FILE",
                       help="netmon config (default: netmon.yml)")  # fmt: skip
    where.add_argument("--json", action="store_true", help="print one JSON document")
    where.set_defaults(handler=_where)
    add_topology_commands(commands)


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
    return EXIT_OK if found.place is not None else EXIT_PROBLEM  # known, not located yet


# --- netmon topology suggest-parents ---------------------------------------------------


def add_topology_commands(commands: Any) -> None:
    group = commands.add_parser(
        "topology", help="what the switches' topology says about the inventory",
        description="Use the topology netmon run learnt from the switches.",
    )  # fmt: skip
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    suggest = actions.add_parser(
        "suggest-parents", help="the inferred parents, as config text",
        description="List the parents the topology infers for targets that have none written; "
                    "--write puts them into the config (comments and layout kept, the result "
                    "validated before it replaces the file). A group whose targets all share "
                    "one parent gets it on the group.",
        epilog=SUGGEST_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    suggest.add_argument("-c", "--config", default="netmon.yml", metavar="FILE",
                         help="netmon config (default: netmon.yml)")  # fmt: skip
    suggest.add_argument("--write", action="store_true", help="write them into the config")
    suggest.set_defaults(handler=_suggest)


def parent_edits(
    text: str, cfg: Any, inferred: Mapping[str, str]
) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with ``parent:`` written where the topology infers one and none is
    written (on the group when all its targets share it, else on each target entry), and
    the (where, parent) pairs written. Comments and layout are kept: only new keys are
    inserted, into block or flow mappings alike."""
    from monitor.config import _range_hosts

    root = yaml.compose(text)
    nodes = _value(root, "groups")
    edits: list[tuple[int, str]] = []
    done: list[tuple[str, str]] = []
    if not isinstance(nodes, yaml.SequenceNode):
        return text, done
    for group, gnode in zip(cfg.groups, nodes.value, strict=False):
        if group.parent is not None or not isinstance(gnode, yaml.MappingNode):
            continue
        entries = group.targets
        names = [[n for n, _ in _range_hosts(e.range, e.name_prefix or group.name)] if e.range
                 else [e.name] for e in entries]  # fmt: skip
        wanted = [{inferred.get(n) for n in ns} if e.parent is None else {None}
                  for e, ns in zip(entries, names, strict=True)]  # fmt: skip
        together = set().union(*wanted) if wanted else set()
        if len(together) == 1 and None not in together:
            parent = together.pop()
            edits.append(_insert(text, gnode, parent))
            done.append((f"group {group.name}", parent))
            continue
        tnodes = _value(gnode, "targets")
        items = tnodes.value if isinstance(tnodes, yaml.SequenceNode) else [tnodes]
        for entry, want, enode in zip(entries, wanted, items, strict=False):
            if len(want) == 1 and None not in want and isinstance(enode, yaml.MappingNode):
                parent = next(iter(want))
                edits.append(_insert(text, enode, parent))
                done.append((entry.name or f"{group.name} {entry.range}", parent))
    for at, chunk in sorted(edits, reverse=True):
        text = text[:at] + chunk + text[at:]
    return text, done


def _value(node: Any, key: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _insert(text: str, node: yaml.MappingNode, parent: str) -> tuple[int, str]:
    """Where and what to insert to add ``parent: NAME`` to a mapping node."""
    if node.flow_style:  # {name: a, address: b} -> {name: a, address: b, parent: P}
        close = text.rindex("}", 0, node.end_mark.index)
        return close, f", parent: {parent}"
    first_key, first_value = node.value[0]
    line_end = text.find("\n", first_value.end_mark.index)
    line_end = len(text) if line_end < 0 else line_end
    return line_end, f"\n{' ' * first_key.start_mark.column}parent: {parent}"


def _suggest(opts: argparse.Namespace) -> int:
    from pathlib import Path

    from monitor.cli.discover import _write
    from monitor.topology import for_config

    cfg = _load_config(opts.config, secrets=False)
    topo = for_config(cfg, Path(opts.config))
    text = Path(opts.config).read_text(encoding="utf-8")
    new_text, done = parent_edits(text, cfg, topo.inferred_parents())
    if not done:
        print("no parent to suggest (none inferred for targets without one; is netmon run "
              "polling the switches' topology?)", file=sys.stderr)  # fmt: skip
        return EXIT_OK
    for where, parent in done:
        print(f"{where}: parent {parent}")
    if not opts.write:
        return EXIT_OK
    return _write(opts.config, new_text, Path(opts.config).parent)
