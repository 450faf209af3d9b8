"""``netmon alerts list|ack|unack|test|export-rules`` and ``netmon silence add|list|expire``.

They work on the alert state file named by the config (``alerts.state_file``, relative
to the config's directory), so they can run in a shell while the daemon runs: SQLite in
WAL mode lets both use it, and the daemon's engine picks new silences up within a second.
Only ``alerts test`` reads the config's secrets (it sends); the others work without the
service's environment and say on stderr that secrets were not checked.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.cli.app import EXIT_OK, EXIT_PROBLEM, ConfigProblem, _duration, _load_config, _problems
from monitor.cli.replay import add_replay

EXAMPLES = """\
examples:
  netmon alerts list -c /etc/netmon/netmon.yml            # pending, firing, suppressed and why
  netmon alerts list -c /etc/netmon/netmon.yml --json
  netmon alerts ack -c /etc/netmon/netmon.yml 3f2a9c --comment "new toner ordered"
  netmon alerts ack -c /etc/netmon/netmon.yml --match target=library-mfp --comment "on my way"
  netmon alerts unack -c /etc/netmon/netmon.yml 3f2a9c
  netmon alerts test -c /etc/netmon/netmon.yml            # a test message to every receiver
  netmon alerts export-rules -c /etc/netmon/netmon.yml -o /etc/prometheus/netmon-rules.yml

Only `alerts test` reads the config's secrets ({env: VAR} / {file: PATH}): it sends.
The others work without the service's environment and say on stderr that secrets
were not checked."""

SILENCE_EXAMPLES = """\
examples:
  netmon silence add -c netmon.yml --match target=lab-204-pc01 --match alertname=device_down \\
      --duration 2h --comment "re-imaging"
  netmon silence add -c netmon.yml --match 'target=~lab-204-.*' --duration 3d --comment "room closed"
  netmon silence list -c netmon.yml
  netmon silence expire -c netmon.yml 3f2a9c
matchers: label=value, label!=value, label=~regex, label!~regex (regexes match the whole value)"""


def add_commands(commands: Any) -> None:
    """Register ``alerts`` and ``silence`` on the main parser's subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter

    def config_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-c", "--config", metavar="FILE", required=True, help="the netmon config (YAML)")
        parser.add_argument("--state-file", metavar="FILE",
                            help="the alert state file, when `netmon run` was given one (default: alerts.state_file)")  # fmt: skip

    alerts = commands.add_parser(
        "alerts", help="list and acknowledge alerts, send test notifications, export Prometheus rules",
        description="Alerts: what is pending/firing/suppressed, test notifications, rule export.",
        epilog=EXAMPLES, formatter_class=fmt,
    )  # fmt: skip
    actions = alerts.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="pending, firing and recently resolved alerts, with suppression reasons")
    config_option(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=alerts_list)
    for name, verb in (("ack", "acknowledge"), ("unack", "take back the acknowledgement of")):
        cmd = actions.add_parser(
            name, help=f"{verb} active alerts (by id or labels)" + (
                ": no repeat notifications until they resolve" if name == "ack" else ""),
            epilog=EXAMPLES, formatter_class=fmt,
        )  # fmt: skip
        config_option(cmd)
        cmd.add_argument("ids", nargs="*", metavar="ID",
                         help="alert ids (the fingerprint `alerts list --json` shows, or a unique prefix)")  # fmt: skip
        cmd.add_argument("--match", "-m", action="append", default=[], metavar="MATCHER",
                         help="label=value, label!=value, label=~regex or label!~regex; repeat: all must match")  # fmt: skip
        if name == "ack":
            cmd.add_argument("--author", "-a", default=None, help="who (default: your login name)")
            cmd.add_argument("--comment", default="", help="what you are doing about it")
        cmd.set_defaults(handler=alerts_ack if name == "ack" else alerts_unack)
    test = actions.add_parser("test", help="send a test notification to every receiver and integration")
    config_option(test)
    test.set_defaults(handler=alerts_test)
    export = actions.add_parser(
        "export-rules", help="write the active built-in rules as a Prometheus rule file",
        description="Write the active built-in rules (with the config's changes) as a Prometheus rule file. "
                    "Needs no secrets: {env:}/{file:} secrets are not read (a line on stderr says so).",
    )  # fmt: skip
    config_option(export)
    export.add_argument("-o", "--output", metavar="FILE", help="write here, atomically (default: print it)")
    export.set_defaults(handler=alerts_export_rules)
    add_replay(actions)

    silence = commands.add_parser(
        "silence", help="silence alerts by label for a while (add, list, expire)",
        description="Silences: no notifications for matching alerts until the silence ends.",
        epilog=SILENCE_EXAMPLES, formatter_class=fmt,
    )  # fmt: skip
    sactions = silence.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sactions.add_parser("add", help="add a silence", epilog=SILENCE_EXAMPLES, formatter_class=fmt)
    config_option(add)
    add.add_argument("--match", "-m", action="append", required=True, metavar="MATCHER",
                     help="label=value, label!=value, label=~regex or label!~regex; repeat: all must match")  # fmt: skip
    add.add_argument("--duration", "-d", type=_duration, default=3600.0, metavar="DUR", help="how long (default 1h; e.g. 30m, 2h)")
    add.add_argument("--author", "-a", default=None, help="who (default: your login name)")
    add.add_argument("--comment", required=True, help="why (shown with the silenced alerts)")
    add.set_defaults(handler=silence_add)
    slist = sactions.add_parser("list", help="active and future silences")
    config_option(slist)
    slist.add_argument("--all", action="store_true", help="include silences that ended in the last 7 days")
    slist.add_argument("--json", action="store_true", help="print a JSON list")
    slist.set_defaults(handler=silence_list)
    expire = sactions.add_parser("expire", help="end a silence now")
    config_option(expire)
    expire.add_argument("id", metavar="ID", help="the silence id (or a unique prefix of it)")
    expire.set_defaults(handler=silence_expire)


# --- config lookup -----------------------------------------------------------------------


def alert_settings(config: str, state: str | None = None, *, secrets: bool = True) -> tuple[Any, Path]:
    """The config's ``alerts:`` section (with ``--state-file`` applied) and the
    directory relative paths start from. ``secrets=False``: secrets are not read (for
    commands that send nothing)."""
    cfg = _load_config(config, secrets=secrets)
    section = cfg.alerts
    if state:
        section = section.model_copy(update={"state_file": str(Path(state).resolve())})
    return section, Path(config).resolve().parent


def state_file(section: Any, base_dir: Path) -> Path:
    from alerts.engine import DEFAULT_STATE_FILE

    name = section.get("state_file") if isinstance(section, dict) else section.state_file
    path = Path(name or DEFAULT_STATE_FILE)
    return path if path.is_absolute() else base_dir / path


def _part(section: Any, model: Any) -> Any:
    """``section`` as one part's settings model (NotifySettings, RulesSettings)."""
    if isinstance(section, model):
        return section
    return model.model_validate({k: v for k, v in section.items() if k in model.model_fields})


def _with_config(fn: Any, *, secrets: bool = False) -> Any:
    """Turn config problems into the CLI's one-line-per-problem output (exit 1). Only
    commands that send notifications (``secrets=True``) read the config's secrets; the
    others work without the service's environment."""

    def run(opts: argparse.Namespace) -> int:
        import sqlite3

        from alerts.db import error_for

        try:
            section, base_dir = alert_settings(opts.config, getattr(opts, "state_file", None), secrets=secrets)
            code: int = fn(opts, section, base_dir)
        except ConfigProblem as exc:
            return _problems(exc.problems, f"config error in {opts.config}")
        except sqlite3.Error as exc:  # the state file: what is wrong and what to do
            print(f"netmon: {error_for(state_file(section, base_dir), exc)}", file=sys.stderr)
            return EXIT_PROBLEM
        return code

    return run


def _with_secrets(fn: Any) -> Any:
    return _with_config(fn, secrets=True)


# --- alerts --------------------------------------------------------------------------------


@_with_config
def alerts_list(opts: argparse.Namespace, section: Any, base_dir: Path) -> int:
    from alerts.db import open_db
    from alerts.engine import read_alerts

    path = state_file(section, base_dir)
    if not path.exists():
        print("[]" if opts.json else f"No alerts (no state file {path} yet).")
        return EXIT_OK
    conn = open_db(path)
    try:
        alerts = _with_acks(conn, read_alerts(conn))
    finally:
        conn.close()
    if opts.json:
        from alerts.ack import alert_json

        print(json.dumps([alert_json(a) for a in alerts], indent=2))
        return EXIT_OK
    if not alerts:
        print("No alerts.")
        return EXIT_OK
    _print_alerts(alerts, time.time())
    return EXIT_OK


def _print_alerts(alerts: Sequence[Any], now: float) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from monitor.cli.output import device_text, human_duration

    style = {"firing": "bold red", "pending": "yellow", "resolved": "green"}
    table = Table(title=f"{len(alerts)} alerts", title_justify="left")
    for column in ("id", "state", "severity", "target", "alert", "for", "summary", "suppressed", "acknowledged"):
        table.add_column(column, overflow="fold")
    for a in alerts:
        since = a.ends_at if a.state.value == "resolved" else a.active_since
        state = Text(a.state.value, style="dim" if a.suppressed.value else style[a.state.value])
        why = Text(f"{a.suppressed.value}: ", style="bold") if a.suppressed.value else Text("")
        why.append(device_text(a.suppressed_reason))
        table.add_row(
            a.fingerprint[:8], state, a.severity, device_text(a.target), a.rule,
            human_duration(now - since) if since else "", device_text(a.annotations.get("summary", "")), why,
            _ack_text(a, now),
        )  # fmt: skip
    Console(highlight=False, width=max(Console().width, 140)).print(table)


def _with_acks(conn: Any, alerts: list[Any]) -> list[Any]:
    from alerts.ack import current_acks, with_acks

    return with_acks(alerts, current_acks(conn, alerts))


def _ack_text(alert: Any, now: float) -> Any:
    from rich.text import Text

    from alerts.ack import ack_of
    from monitor.cli.output import human_duration

    found = ack_of(alert)
    if found is None:
        return ""
    text = f"{found.author}, {human_duration(now - found.acked_at)} ago"
    return Text(text + (f": {found.comment}" if found.comment else ""))


def _chosen(opts: argparse.Namespace, alerts: list[Any], command: str) -> list[Any] | None:
    """The alerts ``ids`` and ``--match`` pick (all of them must hold); None after
    printing why when nothing usable was given or found."""
    from alerts.silences import Matcher

    if not opts.ids and not opts.match:
        print(f"netmon alerts {command}: name alerts by id or with --match (see `netmon alerts list`)",
              file=sys.stderr)  # fmt: skip
        return None
    try:
        matchers = [Matcher.parse(m) for m in opts.match]
    except ValueError as exc:
        print(f"netmon alerts {command}: {exc}", file=sys.stderr)
        return None
    chosen = [a for a in alerts if a.is_active and all(m.matches(a.labels) for m in matchers)]
    for prefix in opts.ids:
        hits = [a for a in alerts if a.is_active and a.fingerprint.startswith(prefix)]
        if len(hits) != 1:
            why = "no active alert" if not hits else f"{len(hits)} active alerts"
            print(f"netmon alerts {command}: {why} with id {prefix!r}", file=sys.stderr)
            return None
    if opts.ids:
        chosen = [a for a in chosen if any(a.fingerprint.startswith(p) for p in opts.ids)]
    if not chosen:
        print(f"netmon alerts {command}: no active alert matches", file=sys.stderr)
        return None
    return chosen


def _change_acks(opts: argparse.Namespace, section: Any, base_dir: Path, command: str,
                 change: Any, words: tuple[str, str]) -> int:
    """``alerts ack`` / ``unack``: ``change(conn, chosen)`` returns the alerts it changed;
    each chosen alert is printed with ``words[0]`` (changed) or ``words[1]`` (was so)."""
    from alerts.db import open_db
    from alerts.engine import read_alerts

    conn = open_db(state_file(section, base_dir))
    try:
        chosen = _chosen(opts, read_alerts(conn), command)
        if chosen is None:
            return EXIT_PROBLEM
        done = change(conn, chosen)
    finally:
        conn.close()
    for a in chosen:
        note = words[0] if a in done else words[1]
        print(f"{a.fingerprint[:8]} {note}: {a.annotations.get('summary') or a.rule}")
    return EXIT_OK


@_with_config
def alerts_ack(opts: argparse.Namespace, section: Any, base_dir: Path) -> int:
    from alerts.ack import acknowledge

    def change(conn: Any, chosen: list[Any]) -> list[Any]:
        return acknowledge(conn, chosen, author=opts.author or getpass.getuser(),
                           comment=opts.comment, via="cli", now=time.time())

    return _change_acks(opts, section, base_dir, "ack", change,
                        ("acknowledged", "already acknowledged"))


@_with_config
def alerts_unack(opts: argparse.Namespace, section: Any, base_dir: Path) -> int:
    from alerts.ack import unacknowledge

    return _change_acks(opts, section, base_dir, "unack", unacknowledge,
                        ("no longer acknowledged", "was not acknowledged"))


@_with_secrets
def alerts_test(opts: argparse.Namespace, section: Any, base_dir: Path) -> int:
    try:
        from alerts.notify import send_test_notifications
        from alerts.notify.settings import NotifySettings
    except ImportError as exc:
        print(f"netmon alerts test: notifications are not available ({exc})", file=sys.stderr)
        return EXIT_PROBLEM
    import asyncio

    settings = _part(section, NotifySettings)
    outcomes = asyncio.run(send_test_notifications(settings, base_dir=base_dir))
    if not outcomes:
        print("No receivers configured (alerts.receivers).")
        return EXIT_PROBLEM
    for receiver, integration, error in outcomes:
        print(f"{receiver} {integration}: {'FAILED: ' + error if error else 'sent'}")
    return EXIT_PROBLEM if any(error for _, _, error in outcomes) else EXIT_OK


@_with_config
def alerts_export_rules(opts: argparse.Namespace, section: Any, base_dir: Path) -> int:
    try:
        from alerts.rules import RuleSet, RulesSettings
    except ImportError as exc:
        print(f"netmon alerts export-rules: rules are not available ({exc})", file=sys.stderr)
        return EXIT_PROBLEM
    import yaml

    from monitor.cli.app import _write_atomically

    rules = RuleSet.from_settings(_part(section, RulesSettings)).export_prometheus()
    text = yaml.safe_dump(rules, sort_keys=False, allow_unicode=True, width=1000)
    if opts.output:
        _write_atomically(opts.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


# --- silences ------------------------------------------------------------------------------


@_with_config
def silence_add(opts: argparse.Namespace, section: Any, base_dir: Path) -> int:
    from alerts.db import open_db
    from alerts.silences import Matcher, add_silence

    try:
        matchers = [Matcher.parse(m) for m in opts.match]
    except ValueError as exc:
        print(f"netmon silence add: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    now = time.time()
    conn = open_db(state_file(section, base_dir))
    try:
        silence = add_silence(
            conn, matchers, starts_at=now, ends_at=now + opts.duration,
            author=opts.author or getpass.getuser(), comment=opts.comment, now=now,
        )  # fmt: skip
    finally:
        conn.close()
    print(f"{silence.id} until {_when(silence.ends_at)}: {' '.join(map(str, matchers))}")
    return EXIT_OK


@_with_config
def silence_list(opts: argparse.Namespace, section: Any, base_dir: Path) -> int:
    from alerts.db import open_db
    from alerts.silences import list_silences

    now = time.time()
    conn = open_db(state_file(section, base_dir))
    try:
        silences = list_silences(conn, now=now, include_expired=opts.all)
    finally:
        conn.close()
    if opts.json:
        print(json.dumps([s.to_json() for s in silences], indent=2))
        return EXIT_OK
    if not silences:
        print("No silences.")
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{len(silences)} silences", title_justify="left")
    for column in ("id", "state", "matchers", "starts", "ends", "author", "comment"):
        table.add_column(column, overflow="fold")
    for s in silences:
        state = "active" if s.is_active(now) else ("expired" if s.ends_at <= now else "pending")
        table.add_row(
            s.id, state, Text(" ".join(map(str, s.matchers))), _when(s.starts_at), _when(s.ends_at),
            Text(s.author), Text(s.comment),
        )  # fmt: skip
    Console(highlight=False, width=max(Console().width, 120)).print(table)
    return EXIT_OK


@_with_config
def silence_expire(opts: argparse.Namespace, section: Any, base_dir: Path) -> int:
    from alerts.db import open_db
    from alerts.silences import expire_silence

    conn = open_db(state_file(section, base_dir))
    try:
        silence = expire_silence(conn, opts.id, now=time.time())
    finally:
        conn.close()
    if silence is None:
        print(f"netmon silence expire: no active silence with id {opts.id!r} (or the prefix is ambiguous)",
              file=sys.stderr)  # fmt: skip
        return EXIT_PROBLEM
    print(f"expired {silence.id}")
    return EXIT_OK


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")
