"""``netmon check-config``, ``netmon inventory list|import|export-sd`` and ``netmon run``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any

from monitor.cli.app import (
    EXIT_OK,
    EXIT_PROBLEM,
    ConfigProblem,
    UsageError,
    _load_config,
    _problems,
    _RedactFilter,
    _write_atomically,
)
from probes.errors import TargetSyntaxError
from probes.target import parse_host_port

# --- check-config, inventory, run ------------------------------------------------------

SERVICE_COMMANDS = ("check-config", "inventory", "run")
#: Modules that add commands: each has ``add_commands(subparsers)`` and gives every parser
#: it adds ``set_defaults(handler=fn)``, ``fn(opts) -> exit code``.
PLUGIN_COMMANDS = ("monitor.cli.alerts", "monitor.cli.dashboards", "monitor.cli.discover",
                   "monitor.cli.topology", "monitor.cli.report")
INVENTORY_ACTIONS = ("list", "import", "export-sd")
#: Shown for `netmon run --listen` only if monitor.web.server (which owns the real default) is missing.
PLACEHOLDER_PORT = 10190

MAIN_EPILOG = """\
commands in a few lines:
  netmon probe printer 10.1.2.20 --community-env SNMP_COMMUNITY   # one-off checks
  netmon check-config -c /etc/netmon/netmon.yml                  # validate the inventory
  netmon inventory list -c /etc/netmon/netmon.yml                # what will be probed
  netmon inventory import hosts.csv --role printer -o printers.yml
  netmon inventory export-sd -c netmon.yml -o /etc/prometheus/netmon-targets.json
  netmon run -c /etc/netmon/netmon.yml                           # the monitor service
  netmon discover 10.20.0.0/22 -c netmon.yml --write             # find devices, add them
  netmon alerts list -c /etc/netmon/netmon.yml                   # what is firing, and why
  netmon alerts ack -c netmon.yml 3f2a9c --comment "toner ordered"   # I'm on it
  netmon alerts replay week.yml -c netmon.yml                    # what would it have sent?
  netmon where lab-204-12 -c netmon.yml                          # which switch port is it on?
  netmon report availability -c netmon.yml --since 30d --by room # for the head teacher
  netmon report supplies -c netmon.yml                           # what toner to order
  netmon silence add -c netmon.yml -m target=lab-204-07 --duration 2h --comment reimaging
  netmon dashboards build                                        # regenerate Grafana JSON

Run `netmon COMMAND --help` (e.g. `netmon probe printer --help`) for details."""

SERVICE_EXIT_CODES = """\
exit codes:
  0  done
  1  the config (or CSV) file has problems: each one printed as FILE:LINE: field: message
  2  usage error"""

SERVICE_HELP: dict[str, tuple[str, str]] = {
    "check-config": (
        "Check a config file: every mistake at once, as FILE:LINE: field: message.",
        """\
examples:
  netmon check-config -c /etc/netmon/netmon.yml
  netmon check-config -c netmon.yml && sudo systemctl reload netmon

Secrets ({env: VAR} / {file: PATH}) are looked up, so run it with the same environment
as the service; their values are never printed. With --no-secrets they are not read
(everything else is checked, and a line on stderr says the secrets were not):
  netmon check-config -c netmon.yml --no-secrets   # in CI, or on a laptop""",
    ),
    "list": (
        "Show every target with its effective settings (credential names, never secrets).",
        """\
examples:
  netmon inventory list -c /etc/netmon/netmon.yml
  netmon inventory list -c netmon.yml --json | jq '.[] | select(.role == "printer") | .name'

Needs no secrets: {env: VAR} / {file: PATH} secrets are not read (a line on stderr
says so), so it works without the service's environment.""",
    ),
    "import": (
        "Turn a host spreadsheet (CSV) into a `groups:` section for the config file.",
        """\
columns (first row; case does not matter, common spellings are understood):
  name (hostname, host)   address (ip, ip address)   role   group   site   building
  room   modules (e.g. "system,printer")   credentials (a name from the config)   parent
Other columns are ignored (with a warning). Comma, semicolon or tab separated; UTF-8
(Excel: Save As > CSV UTF-8). Every bad row is reported at once as hosts.csv:LINE:
column: message, and nothing is written. Rows without a group go into a group named
after their role (printers, switches, ...); --group/--role fill empty cells.

examples:
  netmon inventory import hosts.csv                          # YAML to the screen
  netmon inventory import printers.csv --role printer -o printers.yml
  netmon inventory import lab-204.csv --group lab-204 --role lab -o lab-204.yml""",
    ),
    "export-sd": (
        "Write Prometheus file_sd JSON: one entry per target for the /probe pattern.",
        """\
Each entry: targets [NAME], labels group, role, site/building/room..., and
__param_target=NAME (so Prometheus asks /probe?target=NAME). See
examples/prometheus.yml for the matching scrape job and relabelling.

examples:
  netmon inventory export-sd -c netmon.yml -o /etc/prometheus/netmon-targets.json
  netmon inventory export-sd -c netmon.yml --netmon-address netmon.school.example:10190 \\
      -o /etc/prometheus/netmon-targets.json
  netmon inventory export-sd -c netmon.yml --per-probe   # adds __param_probe=icmp|snmp|tcp

Needs no secrets: {env: VAR} / {file: PATH} secrets are not read (a line on stderr
says so).""",
    ),
    "run": (
        "Run the monitor: probe the inventory on schedule, alert, and serve the status page, /metrics and /probe.",
        """\
examples:
  netmon run -c /etc/netmon/netmon.yml
  netmon run -c netmon.yml --listen 127.0.0.1:10190 --web-config /etc/netmon/web.yml
  netmon run -c netmon.yml --shard 0/2     # on a second machine: --shard 1/2

signals: SIGHUP reloads the config (a bad one is rejected, the old one kept);
SIGTERM / Ctrl-C stop cleanly. Shards are numbered 0..N-1, like Prometheus's hashmod;
N instances with --shard 0/N ... N-1/N probe every target exactly once.""",
    ),
}


class _DefaultListen:
    """``--listen`` not given: the daemon then uses the config's ``server.listen``, else
    :func:`default_listen`. Its text is worked out only when help shows it, because it
    needs monitor.web.server (and so aiohttp), which `netmon probe` should not import."""

    def __str__(self) -> str:
        return f"server.listen from the config, else {default_listen()}"


def default_listen() -> str:
    """All addresses on monitor.web.server's DEFAULT_PORT (a placeholder port until it exists)."""
    try:
        from monitor.web.server import DEFAULT_PORT
    except ImportError:
        return f"0.0.0.0:{PLACEHOLDER_PORT}"
    return f"0.0.0.0:{DEFAULT_PORT}"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` (all addresses) -> (host, port)."""
    text = text.strip()
    if text.startswith(":"):
        text = "0.0.0.0" + text
    try:
        host, port = parse_host_port(text)
    except TargetSyntaxError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if port is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST:PORT, e.g. 0.0.0.0:{PLACEHOLDER_PORT} or :{PLACEHOLDER_PORT}")
    return host, port


def _listen(text: str) -> str:
    host, port = parse_listen(text)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_shard(text: str) -> tuple[int, int]:
    """``i/N`` -> (i, N), shards numbered 0..N-1."""
    i_text, sep, n_text = text.strip().partition("/")
    if not sep or not i_text.isdigit() or not n_text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give i/N, e.g. 0/2 and 1/2 for two instances")
    i, n = int(i_text), int(n_text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: N (the number of shards) must be at least 1")
    if i >= n:
        raise argparse.ArgumentTypeError(f"{text!r}: i must be 0..{n - 1} (shards are numbered from 0, like Prometheus's hashmod)")
    return i, n


def add_service_commands(commands: Any) -> None:
    """The check-config, inventory and run subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter

    def add(group: Any, name: str, key: str | None = None) -> argparse.ArgumentParser:
        description, examples = SERVICE_HELP[key or name]
        epilog = examples if name == "run" else f"{examples}\n\n{SERVICE_EXIT_CODES}"
        sub: argparse.ArgumentParser = group.add_parser(
            name, help=description, description=description, epilog=epilog, formatter_class=fmt
        )
        return sub

    def config_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-c", "--config", metavar="FILE", required=True, help="the netmon config (YAML)")

    check = add(commands, "check-config")
    config_option(check)
    check.add_argument("--no-secrets", action="store_true",
                       help="do not read {env:}/{file:} secrets (check everything else), e.g. on a laptop "
                            "without the service's environment")  # fmt: skip

    inventory = commands.add_parser(
        "inventory", help="list, import (CSV) and export (Prometheus file_sd) the inventory",
        description="Work with the inventory: list targets, import a CSV, export Prometheus file_sd.",
        epilog=MAIN_EPILOG.split("\n\n")[0], formatter_class=fmt,
    )  # fmt: skip
    actions = inventory.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = add(actions, "list")
    config_option(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")

    from monitor.inventory import ROLES

    imp = add(actions, "import")
    imp.add_argument("csv", metavar="FILE.csv", help="the spreadsheet, saved as CSV")
    imp.add_argument("--group", metavar="G", help="group for rows with an empty group cell")
    imp.add_argument("--role", choices=ROLES, help="role for rows with an empty role cell")
    imp.add_argument("-o", "--output", metavar="OUT.yml", help="write the YAML here (default: print it)")

    export = add(actions, "export-sd")
    config_option(export)
    export.add_argument("-o", "--output", metavar="FILE.json", help="write here, atomically (default: print it)")
    export.add_argument("--netmon-address", type=_listen, metavar="HOST:PORT",
                        help="where Prometheus reaches netmon; stored as __tmp_netmon_address")  # fmt: skip
    export.add_argument("--per-probe", action="store_true", help="one entry per target and probe, with __param_probe")

    run = add(commands, "run")
    config_option(run)
    run.add_argument("--listen", type=_listen, default=_DefaultListen(), metavar="HOST:PORT",
                     help="address for /metrics, /probe, /-/ready ... (default: %(default)s; :PORT = all addresses)")  # fmt: skip
    run.add_argument("--shard", type=parse_shard, metavar="i/N", help="probe only shard i of N (0-based)")
    run.add_argument("--state-file", metavar="FILE",
                     help="alert state (SQLite) of this instance (default: alerts.state_file; with --shard, one file per shard)")  # fmt: skip
    run.add_argument("--web-config", metavar="FILE",
                     help="TLS and basic auth, exporter-toolkit web-config format (default: server.web_config from the config)")  # fmt: skip

    import importlib

    for name in PLUGIN_COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_commands(commands)


def run_service_command(opts: argparse.Namespace) -> int:
    """check-config, inventory list/import/export-sd and run; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = getattr(opts, "handler", None)
    if handler is not None:  # a command from a PLUGIN_COMMANDS module
        code: int = handler(opts)
        return code
    if opts.command == "run":
        # A SIGHUP's default action ends the process; `run` catches it from before it
        # reads the config again, so one that comes now loses no reload.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        if opts.command == "inventory" and opts.action == "import":
            return _import_csv(opts)
        # Only the service and a full check-config need the secrets; the others print
        # the inventory and must work without the service's environment.
        needs_secrets = opts.command == "run" or (opts.command == "check-config" and not opts.no_secrets)
        cfg = _load_config(opts.config, secrets=needs_secrets)
        if opts.command == "check-config":
            return _check_config(cfg, secrets_checked=needs_secrets)
        if opts.command == "run":
            return _run(opts, cfg)
        if opts.action == "list":
            return _inventory_list(cfg, opts.json, opts.config)
        return _export_sd(cfg, opts)
    except ConfigProblem as exc:
        return _problems(exc.problems, f"config error in {opts.config}")
    except OSError as exc:
        print(f"netmon: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_PROBLEM


def _check_config(cfg: Any, *, secrets_checked: bool = True) -> int:
    from monitor.config import resolve_targets
    from monitor.inventory import probe_jobs

    targets = resolve_targets(cfg)
    jobs = sum(len(probe_jobs(t)) for t in targets)
    verdict = "config OK" if secrets_checked else "config OK (secrets not checked)"
    print(f"{verdict}: {len(targets)} targets, {jobs} probe jobs")
    return EXIT_OK


def _inventory_list(cfg: Any, as_json: bool, config_path: str) -> int:
    from pathlib import Path

    from monitor.config import resolve_targets
    from monitor.inventory import format_interval, target_rows
    from monitor.topology import for_config

    inferred = for_config(cfg, Path(config_path)).inferred_parents()
    rows = target_rows(resolve_targets(cfg), inferred)
    if as_json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} targets", title_justify="left")
    for column in ("name", "address", "group", "role", "labels", "probes", "modules", "credentials", "interval", "parent"):
        table.add_column(column, overflow="fold")
    for r in rows:
        probes = ", ".join(p if p != "tcp" else f"tcp {','.join(map(str, r['tcp_ports']))}" for p in r["probes"])
        address = r["address"] if r["port"] is None else f"{r['address']} (port {r['port']})"
        table.add_row(
            r["name"], address, r["group"], r["role"],
            " ".join(f"{k}={v}" for k, v in r["labels"].items()), probes, ",".join(r["modules"]),
            r["credentials"] or "", format_interval(r["interval_seconds"]),
            f"{r['parent']} ({r['parent_source']})" if r["parent"] else "",
        )  # fmt: skip
    Console(highlight=False).print(table)
    return EXIT_OK


def _import_csv(opts: argparse.Namespace) -> int:
    from pathlib import Path

    from monitor.inventory import CsvImportError, groups_yaml, read_hosts_csv

    try:
        imported = read_hosts_csv(Path(opts.csv), group=opts.group, role=opts.role)
    except CsvImportError as exc:
        return _problems(exc.problems, f"nothing imported from {opts.csv}")
    if imported.ignored_columns:
        print(f"note: ignored columns: {', '.join(imported.ignored_columns)}", file=sys.stderr)
    return _emit(groups_yaml(imported.hosts, opts.csv), opts.output, f"{len(imported.hosts)} devices")


def _export_sd(cfg: Any, opts: argparse.Namespace) -> int:
    from monitor.config import resolve_targets
    from monitor.inventory import file_sd

    groups = file_sd(resolve_targets(cfg), netmon_address=opts.netmon_address, per_probe=opts.per_probe)
    return _emit(json.dumps(groups, indent=2) + "\n", opts.output, f"{len(groups)} target groups")


def _emit(text: str, output: str | None, what: str) -> int:
    """Write ``text`` to ``output`` (atomically, saying what was written) or to stdout."""
    if output:
        _write_atomically(output, text)
        print(f"wrote {what} to {output}", file=sys.stderr)
    else:
        print(text, end="")
    return EXIT_OK


def _run(opts: argparse.Namespace, cfg: Any) -> int:
    """Start the monitor service (monitor.daemon, imported only now). Its log hides the
    secrets of ``cfg`` (the config at start-up) wherever a library echoes one."""
    from pathlib import Path

    from monitor.config import config_secrets

    redactor = _RedactFilter(config_secrets(cfg))
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)

    web_config = Path(opts.web_config) if opts.web_config else None
    if web_config is not None and not web_config.is_file():
        raise UsageError(f"--web-config {web_config}: no such file")
    try:
        from monitor.daemon import run
    except ModuleNotFoundError as exc:
        if exc.name != "monitor.daemon":
            raise
        print("netmon: `netmon run` is not available in this build (monitor.daemon is missing)", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        listen = None if isinstance(opts.listen, _DefaultListen) else opts.listen
        state = Path(opts.state_file) if opts.state_file else None
        return asyncio.run(
            run(Path(opts.config), listen, opts.shard, web_config, state_file=state,
                on_config=lambda loaded: redactor.learn(config_secrets(loaded)))
        )  # fmt: skip
    except KeyboardInterrupt:
        return 130


# --- main ------------------------------------------------------------------------------


