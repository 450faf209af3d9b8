"""``netmon discover CIDR``: find and classify devices, then propose or write inventory."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.config import NetmonConfig
    from monitor.discover import CredentialSet, Discovery

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2

DESCRIPTION = "Sweep a subnet, classify what answers (printer, switch, host, UPS, AP), propose inventory."
EPILOG = """\
Pings every address, asks the ones that answer over SNMP (credential sets tried in
order; the first that works is remembered per device), optionally checks TCP ports,
and shows what each device probably is, how sure netmon is, and why. Nothing is
written without --write.

examples:
  export SNMP_COMMUNITY=…
  netmon discover 10.20.0.0/22 --community-env SNMP_COMMUNITY --ports
  netmon discover 10.20.0.0/22 -c netmon.yml                  # all credential sets of the config
  netmon discover 10.20.4.0/24 -c netmon.yml --credentials school core --write
  netmon discover 10.20.4.0/24 --community-env SNMP_COMMUNITY --format yaml -o found.yml --write
  netmon discover 10.20.0.0/22 -c netmon.yml --format file_sd --write -o targets.json

--write merges new devices into the -c config (or writes -o): one group per role
(discovered-printers, ...) appended as text, so the file's comments and order stay;
devices the inventory already has (same address, name/sysName, MAC or serial) are
skipped. The result is validated like `netmon check-config` before it replaces the file.

exit codes:
  0  done
  1  the config file has problems, or the merged result would not be valid
  2  usage error (bad network, network above the --max-prefix cap, unknown credentials)"""


def _ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give ports as 9100,631,22") from None
    if not ports or not all(0 < p < 65536 for p in ports):
        raise argparse.ArgumentTypeError(f"{text!r}: ports are 1-65535, e.g. 9100,631,22")
    return ports


def _seconds(text: str) -> float:
    from probes.settings import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_commands(commands: Any) -> None:
    """Register ``netmon discover`` with the main parser."""
    from monitor.discover import DEFAULT_MAX_PREFIX, DEFAULT_PORTS

    p = commands.add_parser("discover", help="sweep a subnet and classify devices (proposes inventory)",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("network", metavar="CIDR", help="network to sweep, e.g. 10.20.0.0/22")
    p.add_argument("-c", "--config", metavar="FILE", help="netmon config: credential sets, devices already known, --write target")
    p.add_argument("--credentials", nargs="+", metavar="NAME", help="credential sets of the config to try, in this order (default: all)")
    p.add_argument("--community-env", metavar="VAR", help="also try the SNMP v2c community in environment variable VAR (first)")
    p.add_argument("--ports", nargs="?", const=DEFAULT_PORTS, type=_ports, metavar="P,…",
                   help=f"check TCP ports (default list: {','.join(map(str, DEFAULT_PORTS))})")
    p.add_argument("--format", choices=["table", "yaml", "file_sd", "json"], default="table", help="output (default: table)")
    p.add_argument("--write", action="store_true", help="merge into the -c config (or write -o) instead of printing")
    p.add_argument("-o", "--output", metavar="FILE", help="with --write: write here instead of the -c file")
    p.add_argument("--max-prefix", type=int, default=DEFAULT_MAX_PREFIX, metavar="N",
                   help=f"refuse networks larger than /N (default {DEFAULT_MAX_PREFIX})")
    p.add_argument("--snmp-port", type=int, metavar="PORT", help="agents' UDP port (default: the config's, else 161)")
    p.add_argument("--timeout", type=_seconds, default=1.0, metavar="DUR", help="ICMP and SNMP timeout (default 1s)")
    p.set_defaults(handler=run)


def _error(message: str, code: int = EXIT_USAGE) -> int:
    print(f"netmon discover: {message}", file=sys.stderr)
    return code


def _credential_sets(opts: argparse.Namespace, cfg: NetmonConfig | None) -> tuple[list[CredentialSet], dict[str, Any]]:
    """Credential sets to try, and config entries for sets not in the config."""
    from monitor.discover import CredentialSet, DiscoverError
    from probes.snmp.credentials import community

    sets: list[CredentialSet] = []
    extra: dict[str, Any] = {}
    if opts.community_env:
        value = os.environ.get(opts.community_env)
        if not value:
            raise DiscoverError(f"--community-env: environment variable {opts.community_env} is not set")
        name = f"env-{opts.community_env.lower().replace('_', '-')}"
        sets.append(CredentialSet(name, community(value)))
        extra[name] = {"version": "2c", "community": {"env": opts.community_env}}
    available = dict(cfg.credentials) if cfg is not None else {}
    if opts.credentials:
        unknown = [n for n in opts.credentials if n not in available]
        if unknown:
            have = ", ".join(available) or "none (give -c with a config that defines credentials)"
            raise DiscoverError(f"--credentials: unknown {', '.join(unknown)}; defined: {have}")
        names = list(opts.credentials)
    else:
        first = cfg.defaults.snmp.credentials if cfg is not None else None
        names = ([first] if first in available else []) + [n for n in available if n != first]
    sets += [CredentialSet(n, available[n]) for n in names]
    return sets, extra


def run(opts: argparse.Namespace) -> int:
    """The ``discover`` handler; returns the exit code (never a traceback for bad input)."""
    from monitor.config import ConfigFileError, load_config
    from monitor.discover import DiscoverError, DiscoverSettings, parse_network

    if opts.max_prefix < 0 or opts.max_prefix > 32:
        return _error(f"--max-prefix {opts.max_prefix}: give 0-32 (e.g. 16 for at most 65,536 addresses)")
    if opts.write and not (opts.config or opts.output):
        return _error("--write needs -c CONFIG (to merge into) or -o FILE")
    if opts.write and opts.format == "file_sd" and not opts.output:
        return _error("--format file_sd --write needs -o FILE.json")
    try:
        network = parse_network(opts.network, opts.max_prefix)
    except DiscoverError as exc:
        return _error(str(exc))
    cfg = None
    text = ""
    if opts.config:
        try:
            cfg = load_config(Path(opts.config))
            text = Path(opts.config).read_text(encoding="utf-8")
        except ConfigFileError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return _error(f"config error in {opts.config}", EXIT_PROBLEM)
    try:
        sets, extra = _credential_sets(opts, cfg)
    except DiscoverError as exc:
        return _error(str(exc))
    port = opts.snmp_port or (cfg.defaults.snmp.port if cfg is not None else 161)
    settings = DiscoverSettings(icmp_timeout=opts.timeout, snmp_timeout=opts.timeout, snmp_port=port,
                                ports=opts.ports)  # fmt: skip
    show_progress = sys.stderr.isatty() and opts.format != "json"
    try:
        discovery = asyncio.run(_discover(network, sets, settings, show_progress))
    except DiscoverError as exc:
        return _error(str(exc), EXIT_PROBLEM)
    except KeyboardInterrupt:
        return 130
    return _output(opts, discovery, cfg, text, settings, sets, extra)


async def _discover(network: Any, sets: list[CredentialSet], settings: Any, show_progress: bool) -> Discovery:
    from monitor.discover import discover
    from probes.context import ProbeContext

    async with ProbeContext() as ctx:
        if not show_progress:
            return await discover(network, sets, settings, ctx)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), transient=True) as bar:  # fmt: skip
            tasks: dict[str, Any] = {}
            labels = {"ping": f"pinging {network}", "identify": "identifying (SNMP/TCP)"}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
                bar.update(tasks[stage], completed=done, total=total)

            return await discover(network, sets, settings, ctx, progress)


def _output(opts: argparse.Namespace, discovery: Discovery, cfg: NetmonConfig | None, text: str,
            settings: Any, sets: list[CredentialSet], extra: dict[str, Any]) -> int:  # fmt: skip
    from monitor.discover import file_sd_groups, fragment, group_entries, known_from

    known = known_from(cfg, text)
    for device in discovery.devices:
        device.known_as = known.match(device)
    taken_groups = [g.name for g in cfg.groups] if cfg is not None else []
    entries = group_entries(discovery.devices, settings, taken_groups, known.names.values())
    used = {t.get("credentials") for _, targets in entries for t, _ in targets}
    have = set(cfg.credentials) if cfg is not None else set()
    extra = {k: v for k, v in extra.items() if k in used and k not in have}
    new = sum(len(t) for _, t in entries)
    summary = (
        f"{len(discovery.devices)} of {discovery.scanned} addresses in {discovery.network} answered ping"
        f" ({discovery.icmp_mode} ICMP); {sum(1 for d in discovery.devices if d.credentials)} answered SNMP"
        + ("" if sets else " (SNMP not tried: no credentials; give -c or --community-env)")
        + f"; {new} new, {len(discovery.devices) - new} already in the inventory"
    )
    print(summary, file=sys.stderr)
    for n in discovery.neighbours:  # LLDP/CDP neighbours of its switches, outside the range
        print(f"suggestion: {n['address']} ({n['name'] or 'no name'}) is a neighbour of "
              f"{n['seen_from']} port {n['port']}, outside {discovery.network}: "
              f"netmon discover {n['address']}/32 ...", file=sys.stderr)  # fmt: skip
    if opts.format == "file_sd":
        body = json.dumps(file_sd_groups(entries), indent=2) + "\n"
        return _write(opts.output, body, None) if opts.write else _print(body)
    if opts.write:
        if not new:
            print("nothing new to write", file=sys.stderr)
            return EXIT_OK
        if opts.config:
            from monitor.discover import DiscoverError, merge_text

            try:
                body = merge_text(text, entries, extra)
            except DiscoverError as exc:
                return _error(f"cannot merge into {opts.config}: {exc}", EXIT_PROBLEM)
        else:
            body = fragment(discovery, entries, extra)
        return _write(opts.output or opts.config, body, Path(opts.config or opts.output).parent)
    if opts.format == "json":
        return _print(json.dumps([d.to_json() for d in discovery.devices], indent=2) + "\n")
    if opts.format == "yaml":
        return _print(fragment(discovery, entries, extra))
    _table(discovery)
    return EXIT_OK


def _print(text: str) -> int:
    print(text, end="")
    return EXIT_OK


def _write(path: str, body: str, validate_in: Path | None) -> int:
    """Write ``body`` atomically; a config is first validated as a temporary file next
    to the target (so relative secret files resolve the same way)."""
    from monitor.config import ConfigFileError, load_config

    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(body, encoding="utf-8")
        if validate_in is not None:
            try:
                load_config(tmp)
            except ConfigFileError as exc:
                for problem in exc.problems:
                    print(str(problem).replace(str(tmp), str(target)), file=sys.stderr)
                tmp.unlink(missing_ok=True)
                return _error(f"not written: the result would not be a valid config ({target} unchanged)", EXIT_PROBLEM)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return _error(f"cannot write {target}: {exc.strerror}", EXIT_PROBLEM)
    print(f"wrote {target}", file=sys.stderr)
    return EXIT_OK


def _table(discovery: Discovery) -> None:
    from rich.console import Console
    from rich.table import Table

    from monitor.discover import suggested_name

    table = Table(title=f"discovered in {discovery.network} (dry run: nothing written)", title_justify="left")
    for column in ("address", "name", "class", "vendor / model", "conf.", "reason", "credentials", "modules"):
        table.add_column(column, overflow="fold")
    for d in discovery.devices:
        c = d.classification
        name = suggested_name(d) if d.known_as is None else f"{d.known_as} (known)"
        table.add_row(d.address, name, c.label, " ".join(filter(None, [c.vendor, c.model])),
                      f"{c.confidence:.2f}", c.reason, d.credentials or ("-" if not d.snmp_note else "none worked"),
                      ",".join(d.modules))  # fmt: skip
    Console(highlight=False).print(table)
