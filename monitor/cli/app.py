"""``netmon`` command line: one-off probes from a laptop on site.

``netmon probe icmp|snmp|printer|tcp …`` runs exactly the scheduler's code path
(:func:`probes.registry.run_probe` with one :class:`probes.context.ProbeContext`) and
prints a table, ``--json``, or a Nagios plugin answer (``--nagios``). Heavy imports
(rich, pysnmp) happen only once a command actually runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NoReturn

from probes.errors import TargetSyntaxError
from probes.settings import parse_duration
from probes.target import Target, parse_host_port

if TYPE_CHECKING:
    from pydantic import BaseModel

    from probes.result import ProbeResult
    from probes.snmp.credentials import SnmpCredentials

log = logging.getLogger("netmon.cli")

#: Options whose value is a secret (scanned in raw argv too, so even a usage error
#: caused by a misplaced flag never echoes it).
SECRET_OPTIONS = ("--community", "--auth-password", "--priv-password")

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_NAGIOS_UNKNOWN = 0, 1, 2, 3

EXIT_CODES = """\
exit codes (without --nagios):
  0  every target's status is ok
  1  at least one target is partial or failed (timeout, refused, auth_error, ...)
  2  usage or config file error
with --nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (usage and config errors too).
  ok -> OK, partial -> WARNING; timeout, unreachable, refused, dns_error, auth_error,
  protocol_error -> CRITICAL (device or service not usable); permission_error,
  config_error, error -> UNKNOWN (the check itself could not run)."""


class UsageError(Exception):
    """A command-line mistake; exits 2 (3 with --nagios)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors raise :class:`UsageError` so ``main`` picks the exit code."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("netmon").strip()
        raise UsageError(f"{where}: {message}" if where else message)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _modules(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give module names, e.g. system,interfaces")
    return names


# --- the parser ------------------------------------------------------------------------


def _output_options() -> _Parser:
    from monitor.cli.nagios import THRESHOLD_HELP

    common = _Parser(add_help=False)
    out = common.add_argument_group("output")
    mode = out.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print one JSON document (a list of results)")
    mode.add_argument("--nagios", action="store_true", help="act as a Nagios/Icinga plugin: one status line, exit 0-3")
    out.add_argument("-w", "--warning", metavar="KEY=VAL,…", help="--nagios warning thresholds (see below)")
    out.add_argument("--critical", metavar="KEY=VAL,…", help="--nagios critical thresholds (see below)")
    out.add_argument("-c", "--config", metavar="FILE", help="netmon config: HOST may then be an inventory target name")
    out.add_argument("--debug", action="store_true", help="log what the probe does to stderr (secrets hidden)")
    common.epilog = THRESHOLD_HELP
    return common


def _snmp_options(parser: argparse.ArgumentParser) -> None:
    creds = parser.add_argument_group("SNMP credentials (the *-env forms keep secrets out of `ps`)")
    creds.add_argument("-v", "--snmp-version", dest="version", choices=["1", "2c", "3"], help="SNMP version (default 2c, or 3 with --user)")
    creds.add_argument("--community-env", metavar="VAR", help="read the v1/v2c community from environment variable VAR")
    creds.add_argument("--community", metavar="C", help="v1/v2c community (visible in `ps`; prefer --community-env)")
    creds.add_argument("--user", metavar="U", help="SNMPv3 user name")
    creds.add_argument("--auth-protocol", metavar="P", help="MD5, SHA, SHA224, SHA256 (default SHA), SHA384, SHA512")
    creds.add_argument("--auth-password-env", metavar="VAR", help="SNMPv3 auth password from environment variable VAR")
    creds.add_argument("--auth-password", metavar="P", help="SNMPv3 auth password (visible in `ps`)")
    creds.add_argument("--priv-protocol", metavar="P", help="DES, AES (default), AES192, AES256")
    creds.add_argument("--priv-password-env", metavar="VAR", help="SNMPv3 privacy password from environment variable VAR")
    creds.add_argument("--priv-password", metavar="P", help="SNMPv3 privacy password (visible in `ps`)")
    creds.add_argument("--context", metavar="NAME", help="SNMPv3 context name")
    tuning = parser.add_argument_group("SNMP requests")
    tuning.add_argument("--timeout", type=_duration, default=None, metavar="DUR", help="per request (default 2s)")
    tuning.add_argument("--retries", type=int, default=None, metavar="N", help="retries per request (default 1)")
    tuning.add_argument("--max-repetitions", type=_positive_int, default=None, metavar="N", help="GETBULK size (default 25)")


EXAMPLES = {
    "icmp": """\
examples:
  netmon probe icmp 10.1.4.10 10.1.4.11 lab-pc-12
  netmon probe icmp sw-core --count 10 --interval 100ms
  netmon probe icmp 10.1.4.10 --nagios --warning rtt=100,loss=20 --critical rtt=500,loss=60""",
    "snmp": """\
examples:
  export SNMP_COMMUNITY=…      # keeps the secret out of `ps` and shell history
  netmon probe snmp sw-core --community-env SNMP_COMMUNITY
  netmon probe snmp 10.1.0.2:161 --module system,interfaces --community-env SNMP_COMMUNITY
  netmon probe snmp file-server --module system,host --community-env SNMP_COMMUNITY --json
  netmon probe snmp sw-core -v 3 --user netmon --auth-protocol SHA256 \\
      --auth-password-env NETMON_AUTH --priv-protocol AES --priv-password-env NETMON_PRIV
  netmon probe snmp sw-core -c /etc/netmon/netmon.yml   # credentials from the inventory""",
    "printer": """\
examples:
  netmon probe printer 10.1.2.20 --community-env SNMP_COMMUNITY
  netmon probe printer library-mfp -c /etc/netmon/netmon.yml
  netmon probe printer 10.1.2.20 --community-env SNMP_COMMUNITY --nagios \\
      --warning supply=20 --critical supply=5
shows supplies (toner, drums, waste boxes) with their level, paper trays, active
conditions ("Paper jam", "Toner low") and alerts, with model and serial on top.""",
    "tcp": """\
examples:
  netmon probe tcp 10.1.2.20:9100 10.1.3.5:3389
  netmon probe tcp [2001:db8::5]:443 --timeout 2s
  netmon probe tcp intranet:443 --nagios --warning time=200 --critical time=1000""",
}

DESCRIPTIONS = {
    "icmp": "Ping hosts (all at once): status, loss, round-trip times and jitter.",
    "snmp": "Read SNMP modules from devices: system, interfaces, host, ups, printer, …",
    "printer": "Check printers over SNMP: toner/ink levels, paper trays, jams and alerts.",
    "tcp": "Check that TCP ports accept connections, and how fast.",
}


def build_parser() -> _Parser:
    from monitor.cli import service

    parser = _Parser(
        prog="netmon",
        description="netmon: network and device health monitor for school IT staff.",
        epilog=service.MAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"netmon {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    probe = commands.add_parser(
        "probe", help="probe devices once and print the result",
        description="Probe devices once, with the same code the monitor's scheduler runs.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    kinds = probe.add_subparsers(dest="kind", metavar="KIND", required=True)
    common = _output_options()
    fmt = argparse.RawDescriptionHelpFormatter

    def sub(name: str) -> argparse.ArgumentParser:
        epilog = "\n\n".join([EXAMPLES[name], str(common.epilog), EXIT_CODES])
        return kinds.add_parser(
            name, parents=[common], help=DESCRIPTIONS[name], description=DESCRIPTIONS[name],
            epilog=epilog, formatter_class=fmt,
        )  # fmt: skip

    icmp = sub("icmp")
    icmp.add_argument("hosts", nargs="+", metavar="HOST", help="names or addresses")
    icmp.add_argument("--count", type=_positive_int, default=None, metavar="N", help="echo requests per host (default 3)")
    icmp.add_argument("--interval", type=_duration, default=None, metavar="DUR", help="between requests (default 200ms)")
    icmp.add_argument("--timeout", type=_duration, default=None, metavar="DUR", help="wait for each reply (default 1s)")
    icmp.add_argument("--size", type=int, default=None, metavar="BYTES", help="payload size (default 56)")

    snmp = sub("snmp")
    snmp.add_argument("hosts", nargs="+", metavar="HOST[:PORT]", help="address, name, or inventory target with -c")
    snmp.add_argument("--module", type=_modules, default=None, metavar="M,…", help="modules to read (default system,interfaces)")
    _snmp_options(snmp)

    printer = sub("printer")
    printer.add_argument("hosts", nargs="+", metavar="HOST[:PORT]", help="address, name, or inventory target with -c")
    _snmp_options(printer)

    tcp = sub("tcp")
    tcp.add_argument("hosts", nargs="+", metavar="HOST:PORT", help="e.g. 10.1.2.20:9100 or [2001:db8::5]:443")
    tcp.add_argument("--timeout", type=_duration, default=None, metavar="DUR", help="connect timeout (default 2s)")
    service.add_service_commands(commands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("netmon")
    except PackageNotFoundError:
        return "unknown"


# --- secrets ---------------------------------------------------------------------------


def secrets_in_argv(argv: Sequence[str]) -> set[str]:
    """Values given to secret options, in either ``--opt V`` or ``--opt=V`` form."""
    found: set[str] = set()
    for i, arg in enumerate(argv):
        for opt in SECRET_OPTIONS:
            if arg == opt and i + 1 < len(argv):
                found.add(argv[i + 1])
            elif arg.startswith(opt + "="):
                found.add(arg[len(opt) + 1 :])
    return {s for s in found if s}


def redact(text: str, secrets: Iterable[str]) -> str:
    """Hide secrets where they stand as values in free text (see :mod:`monitor.redaction`)."""
    from monitor.redaction import redact as _redact

    return _redact(text, secrets)


def redact_value(value: Any, secrets: set[str]) -> Any:
    """Strings inside ``value`` redacted; dict keys and structure never touched."""
    from monitor.redaction import redact_value as _redact_value

    return _redact_value(value, secrets)


def redact_result(result: ProbeResult, secrets: set[str]) -> ProbeResult:
    """A copy with secrets hidden in its free text: the explanation (where library and
    device text ends up), the target as typed, and the values of facts and records
    (device strings). Keys, the probe, the status and the samples (metric names and
    netmon's labels, as ``/metrics`` shows them) stay as they are. Belt and braces:
    probes never put a secret anywhere."""
    if not secrets:
        return result
    return replace(
        result,
        explanation=redact(result.explanation, secrets),
        target=redact(result.target, secrets),
        facts=redact_value(dict(result.facts), secrets),
        records=redact_value(dict(result.records), secrets),
    )


class _RedactFilter(logging.Filter):
    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def learn(self, secrets: set[str]) -> None:
        """Hide ``secrets`` too (a reloaded config's); the set is swapped whole, never
        changed while another thread's log call reads it."""
        self.secrets = self.secrets | secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        return True


def _setup_logging(debug: bool, secrets: set[str]) -> _RedactFilter:
    """Log to stderr through a filter that hides ``secrets`` (the returned filter's set
    may grow once the config's secrets are known)."""
    redactor = _RedactFilter(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("netmon").setLevel(logging.DEBUG if debug else logging.WARNING)
    # Escaped probe bugs are logged by the runner; keep them visible without --debug.
    logging.getLogger("netmon.probes").setLevel(logging.DEBUG if debug else logging.ERROR)
    return redactor


# --- building targets and settings ------------------------------------------------------


@dataclass(slots=True)
class Job:
    """One probe run to do: the probe name, its target and validated settings."""

    probe: str
    target: Target
    settings: BaseModel


def _validate(model: type[BaseModel], values: dict[str, Any], what: str) -> BaseModel:
    """Build a settings model; errors become one secret-free usage line."""
    from pydantic import ValidationError

    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            ".".join(str(p) for p in e["loc"]) + ": " * bool(e["loc"]) + e["msg"].removeprefix("Value error, ")
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise UsageError(f"{what}: {problems}") from None


def _env_secret(var: str | None, flag: str) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        raise UsageError(f"{flag}: environment variable {var} is not set")
    return value


def cli_credentials(opts: argparse.Namespace) -> SnmpCredentials | None:
    """Credentials from the flags, or None when no credential flag was given."""
    from probes.snmp.credentials import SnmpCredentials

    community = _env_secret(opts.community_env, "--community-env") or opts.community
    auth_pw = _env_secret(opts.auth_password_env, "--auth-password-env") or opts.auth_password
    priv_pw = _env_secret(opts.priv_password_env, "--priv-password-env") or opts.priv_password
    v3 = opts.user or auth_pw or priv_pw or opts.version == "3"
    if community is None and not v3:
        return None
    version = opts.version or ("3" if v3 and community is None else "2c")
    values: dict[str, Any] = {"version": version, "context": opts.context}
    if version == "3":
        values["user"] = opts.user
        if auth_pw is not None:
            values["auth"] = _drop_none({"password": auth_pw, "protocol": opts.auth_protocol})
        if priv_pw is not None:
            values["priv"] = _drop_none({"password": priv_pw, "protocol": opts.priv_protocol})
        if community is not None:
            values["community"] = community
    else:
        values["community"] = community
        for flag, given in [("--user", opts.user), ("--auth-password", auth_pw), ("--priv-password", priv_pw)]:
            if given:
                raise UsageError(f"{flag} is an SNMPv3 option; add -v 3")
    creds = _validate(SnmpCredentials, {k: v for k, v in values.items() if v is not None}, "credentials")
    return creds  # type: ignore[return-value]


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def secrets_of(creds: SnmpCredentials | None) -> set[str]:
    if creds is None:
        return set()
    found = [creds.community, creds.auth and creds.auth.password, creds.priv and creds.priv.password]
    return {s.get_secret_value() for s in found if s and s.get_secret_value()}


def _load_config(path: str, *, secrets: bool = True) -> Any:
    """The validated config; its problems become :class:`ConfigProblem` lines.

    ``secrets=False`` (commands that use none): ``{env: ...}`` / ``{file: ...}`` secrets
    are not read, and one line on stderr says so."""
    from pathlib import Path

    from monitor.config import ConfigFileError, load_config

    if not secrets:
        print(f"note: secrets not checked ({{env:}}/{{file:}} secrets are not read; "
              f"`netmon check-config -c {path}` checks them)", file=sys.stderr)  # fmt: skip
    try:
        return load_config(Path(path), resolve_secrets=secrets)
    except ConfigFileError as exc:
        raise ConfigProblem([str(p) for p in exc.problems] or [str(exc)]) from None


class ConfigProblem(Exception):
    """The config file cannot be used; ``problems`` are ``file:line: field: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def resolve(text: str, cfg: Any) -> tuple[Target, Any]:
    """``HOST[:PORT]`` or an inventory name (``NAME[:PORT]``) -> (target, inventory entry).

    A port typed on the command line wins over the inventory's."""
    from monitor.config import find_target

    inv = find_target(cfg, text.strip()) if cfg is not None else None
    try:
        host, port = parse_host_port(text)
    except TargetSyntaxError as exc:
        if inv is None:
            raise UsageError(str(exc)) from None
        host, port = text.strip(), None
    if inv is None and cfg is not None and host != text.strip():
        inv = find_target(cfg, host)
    if inv is None:
        return Target(name=text.strip(), host=host, port=port), None
    return inv.as_target(port if port is not None else inv.port), inv


def _merged(spec_settings: type[BaseModel], base: BaseModel | None, flags: dict[str, Any], what: str) -> BaseModel:
    """Settings from the inventory (if any) with the command-line flags on top."""
    values = base.model_dump() if base is not None else {}
    values.update({k: v for k, v in flags.items() if v is not None})
    return _validate(spec_settings, values, what)


def plan(opts: argparse.Namespace, cfg: Any) -> tuple[list[Job], set[str]]:
    """Targets and settings for the command; also the secrets in use (to hide them)."""
    from probes.registry import PROBES

    kind = opts.kind
    jobs: list[Job] = []
    secrets: set[str] = set()
    flag_creds = cli_credentials(opts) if kind in ("snmp", "printer") else None
    for text in opts.hosts:
        target, inv = resolve(text, cfg)
        if kind == "icmp":
            if target.port is not None and inv is None:
                raise UsageError(f"{text!r}: ICMP has no ports; give a host without ':PORT'")
            flags = {"count": opts.count, "interval": opts.interval, "timeout": opts.timeout, "payload_size": opts.size}
            settings = _merged(PROBES["icmp"].settings, getattr(inv, "icmp", None), flags, "icmp settings")
            jobs.append(Job("icmp", replace(target, port=None), settings))
        elif kind == "tcp":
            if target.port is None and inv is not None and inv.tcp_ports:
                target = replace(target, port=inv.tcp_ports[0])
            if target.port is None:
                raise UsageError(f"{text!r}: give a port, e.g. {text}:443")
            settings = _merged(PROBES["tcp"].settings, getattr(inv, "tcp", None), {"timeout": opts.timeout}, "tcp settings")
            jobs.append(Job("tcp", target, settings))
        else:
            creds = flag_creds or (inv.credentials if inv is not None else None)
            if creds is None:
                hint = " or a config target with credentials (-c FILE)" if cfg is None else ""
                raise UsageError(f"{text}: no SNMP credentials; give --community-env VAR, --community C, or -v 3 --user …{hint}")
            secrets |= secrets_of(creds)
            if kind == "printer":
                modules = ["system", "printer"]
            else:
                modules = opts.module or list(getattr(inv, "modules", None) or []) or ["system", "interfaces"]
            base: dict[str, Any] = {}
            if inv is not None:
                base = {k: getattr(inv.snmp, k) for k in ("timeout", "retries", "max_repetitions", "port")}
            flags = {"timeout": opts.timeout, "retries": opts.retries, "max_repetitions": opts.max_repetitions}
            values = {**base, **{k: v for k, v in flags.items() if v is not None},
                      "modules": modules, "credentials": creds}  # fmt: skip
            if target.port is not None:
                values["port"] = target.port
            jobs.append(Job("snmp", target, _validate(PROBES["snmp"].settings, values, f"{text}: snmp settings")))
    return jobs, secrets


async def run_jobs(jobs: Sequence[Job]) -> list[ProbeResult]:
    """All jobs at once, in one ProbeContext, through the scheduler's runner."""
    from probes.context import ProbeContext
    from probes.registry import run_probe

    async with ProbeContext() as ctx:
        for job in jobs:
            log.debug("probing %s (%s) with %s: %r", job.target.display, job.probe, type(job.settings).__name__, job.settings)
        results = await asyncio.gather(*(run_probe(j.probe, j.target, j.settings, ctx) for j in jobs))
    for job, r in zip(jobs, results, strict=True):
        log.debug(
            "%s %s: %s in %.3fs: %s (%d samples, facts %s, records %s)", job.probe, job.target.display,
            r.status.value, r.duration_seconds, r.explanation, len(r.samples), sorted(r.facts),
            {k: len(v) for k, v in r.records.items()},
        )  # fmt: skip
    return list(results)


def _problems(problems: Sequence[object], what: str) -> int:
    """Print every problem (stderr) and a count; exit code 1."""
    for problem in problems:
        print(problem, file=sys.stderr)
    n = len(problems)
    print(f"{what}: {n} problem{'s' * (n != 1)}", file=sys.stderr)
    return EXIT_PROBLEM


def _write_atomically(path: str, text: str) -> None:
    """Write via a temporary file and rename, so a watcher (Prometheus file_sd) never
    reads half a file."""
    from pathlib import Path

    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)


def _service(kind: str | None) -> str:
    return f"NETMON {kind.upper()}" if kind else "NETMON"


def _fail(message: str, nagios: bool, kind: str | None, details: Sequence[str] = ()) -> int:
    """Usage or config error: exit 2, or 3 with an UNKNOWN line in Nagios mode."""
    if nagios:
        from monitor.cli.nagios import one_line

        print(f"{_service(kind)} UNKNOWN - {one_line(message)}")
        for line in details:
            print(one_line(line))
        return EXIT_NAGIOS_UNKNOWN
    print(f"netmon: {message}", file=sys.stderr)
    for line in details:
        print(line, file=sys.stderr)
    return EXIT_USAGE


def _guess_kind(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if a in ("icmp", "snmp", "printer", "tcp")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``netmon`` console script; returns the exit code."""
    from monitor.cli import service

    args = list(sys.argv[1:] if argv is None else argv)
    nagios = "--nagios" in args
    secrets = secrets_in_argv(args)
    kind = _guess_kind(args)
    try:
        opts = build_parser().parse_args(args)
    except UsageError as exc:
        from monitor.redaction import redact_after_options

        if not nagios:
            print(redact(build_usage(args), secrets), file=sys.stderr, end="")
        return _fail(redact_after_options(str(exc), secrets, SECRET_OPTIONS), nagios, kind)
    if opts.command != "probe":
        try:
            return service.run_service_command(opts)
        except UsageError as exc:
            return _fail(str(exc), False, None)
    redactor = _setup_logging(opts.debug, secrets)
    if secrets:
        print(
            "warning: secrets given on the command line are visible to other users in `ps` "
            "and in shell history; prefer --community-env / --auth-password-env / --priv-password-env",
            file=sys.stderr,
        )
    try:
        return run_command(opts, redactor.secrets)
    except UsageError as exc:
        return _fail(redact(str(exc), secrets), opts.nagios, opts.kind)
    except ConfigProblem as exc:
        lines = [redact(p, secrets) for p in exc.problems]
        return _fail(f"config error in {opts.config}" if opts.nagios else "config error:", opts.nagios, opts.kind, lines)
    except KeyboardInterrupt:
        return EXIT_NAGIOS_UNKNOWN if opts.nagios else 130
    except Exception as exc:  # a bug: Nagios must still get UNKNOWN, never a bare traceback
        if not opts.nagios:
            raise
        log.exception("bug in netmon")
        print(f"{_service(opts.kind)} UNKNOWN - internal error in netmon: {redact(repr(exc), secrets)}")
        return EXIT_NAGIOS_UNKNOWN


def build_usage(args: Sequence[str]) -> str:
    """The usage line of the (sub)command the user was typing."""
    from monitor.cli import service

    parser: argparse.ArgumentParser = build_parser()
    kind = _guess_kind(args)
    command = next((a for a in args if a in service.SERVICE_COMMANDS), None)
    if command is not None and "probe" not in args:
        sub = _subparser(parser, command)
        if sub is not None and command == "inventory":
            action = next((a for a in args if a in service.INVENTORY_ACTIONS), None)
            sub = (_subparser(sub, action) if action else None) or sub
        return (sub or parser).format_usage()
    if "probe" in args:
        sub = _subparser(parser, "probe")
        if kind and sub is not None:
            sub = _subparser(sub, kind) or sub
        parser = sub or parser
    return parser.format_usage()


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = action.choices.get(name)
            return found if isinstance(found, argparse.ArgumentParser) else None
    return None


def run_command(opts: argparse.Namespace, secrets: set[str]) -> int:
    """Run a parsed ``netmon probe`` command; ``secrets`` (shared with the log filter)
    grows by the secrets of the credentials in use. Returns the exit code."""
    from monitor.cli.nagios import (
        ThresholdError,
        check_threshold_order,
        parse_thresholds,
        report_for,
    )

    kind: str = opts.kind
    try:
        warning = parse_thresholds(opts.warning, kind)
        critical = parse_thresholds(opts.critical, kind)
        check_threshold_order(warning, critical)
    except ThresholdError as exc:
        raise UsageError(str(exc)) from None
    if (warning or critical) and not opts.nagios:
        raise UsageError("--warning/--critical only apply with --nagios")
    cfg = _load_config(opts.config) if opts.config else None
    jobs, in_use = plan(opts, cfg)
    secrets |= in_use
    results = [redact_result(r, secrets) for r in asyncio.run(run_jobs(jobs))]

    # The results' free text is redacted; what is built from them needs no second pass
    # (which would hide netmon's own words, e.g. a community "snmp" in the probe name).
    if opts.nagios:
        report = report_for(kind, results, warning, critical)
        print(report.render(kind))
        return int(report.state)
    if opts.json:
        print(json.dumps([r.to_json() for r in results], indent=2, default=str))
    else:
        from rich.console import Console

        from monitor.cli.output import render

        render(kind, results, Console(highlight=False))
    return EXIT_OK if all(r.status.value == "ok" for r in results) else EXIT_PROBLEM


if __name__ == "__main__":
    sys.exit(main())
