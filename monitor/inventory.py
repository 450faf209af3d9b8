"""Inventory helpers behind ``netmon inventory …``: pure functions, no printing.

* :func:`read_hosts_csv` / :func:`groups_yaml` turn the host spreadsheet IT staff already
  keep into a YAML ``groups:`` fragment for the config file. Every bad row is reported at
  once as ``hosts.csv:LINE: column: message``, checked with the config loader's own rules.
* :func:`target_rows` is what ``inventory list`` shows (credential names, never secrets).
* :func:`file_sd` builds Prometheus file_sd JSON for the ``/probe`` multi-target pattern.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml

from monitor.config import (
    InventoryTarget,
    Role,
    _check_address,
    _check_module,
    _check_name,
)

#: Canonical column -> header spellings accepted for it (compared after :func:`_norm`).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "hostname", "host name", "host", "device", "device name", "target"),
    "address": ("address", "ip", "ip address", "ipaddress", "ipv4", "ipv4 address", "addr"),
    "role": ("role", "type", "device type", "kind"),
    "group": ("group", "group name"),
    "site": ("site", "school", "campus"),
    "building": ("building", "block"),
    "room": ("room", "room number", "location"),
    "modules": ("modules", "snmp modules", "module"),
    "credentials": ("credentials", "credential", "snmp credentials", "creds"),
    "parent": ("parent", "uplink", "upstream"),
}
REQUIRED_COLUMNS = ("name", "address")
LABEL_COLUMNS = ("site", "building", "room")
ROLES: tuple[str, ...] = get_args(Role)
#: Group name when neither the row nor ``--group`` gives one and the role gives none.
DEFAULT_GROUP = "imported"


def _norm(header: str) -> str:
    return " ".join(re.sub(r"[_\-.]+", " ", header).lower().split())


_ALIAS_TO_COLUMN = {_norm(a): col for col, aliases in COLUMN_ALIASES.items() for a in aliases}


@dataclass(frozen=True, slots=True)
class CsvProblem:
    """One mistake in the spreadsheet, printed as ``file:line: column: message``."""

    file: str
    line: int | None
    column: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"
        )


class CsvImportError(Exception):
    """The spreadsheet has mistakes; ``problems`` lists all of them."""

    def __init__(self, problems: list[CsvProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class CsvHost:
    """One valid row of the spreadsheet."""

    line: int
    name: str
    address: str
    role: str
    group: str
    labels: dict[str, str] = field(default_factory=dict)
    modules: tuple[str, ...] | None = None
    credentials: str | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class CsvImport:
    """The valid hosts and the header columns that were ignored (unknown names)."""

    hosts: list[CsvHost]
    ignored_columns: list[str]


def _sniff_dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """Comma, semicolon (Excel in many European locales) or tab separated."""
    first = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _check(func: Any, value: str) -> str | None:
    """The message of a config-rule failure, or None when ``value`` passes."""
    try:
        func(value)
    except ValueError as exc:
        return str(exc)
    return None


def _split_modules(text: str) -> list[str]:
    return [m for m in re.split(r"[\s,;|]+", text.strip().lower()) if m]


def read_hosts_csv(path: Path, *, group: str | None = None, role: str | None = None) -> CsvImport:
    """Read and check a host spreadsheet; raise :class:`CsvImportError` with every problem.

    ``group``/``role`` fill rows that leave those cells empty. Rows without a group go
    into a group named after their role (``printer`` -> ``printers``)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CsvImportError([CsvProblem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        hint = "not UTF-8 text; in Excel use 'Save As' > 'CSV UTF-8 (Comma delimited)'"
        raise CsvImportError([CsvProblem(file, None, "", hint)]) from None
    problems: list[CsvProblem] = []
    if role is not None and role.lower() not in ROLES:
        problems.append(
            CsvProblem(file, None, "--role", f"unknown role '{role}'; roles: {', '.join(ROLES)}")
        )
    if group is not None and (msg := _check(_check_name, group)):
        problems.append(CsvProblem(file, None, "--group", msg))

    reader = csv.reader(io.StringIO(text, newline=""), _sniff_dialect(text))
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    last_line = 0
    for record in reader:
        start, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if header is None:
            header, header_line = record, start
        else:
            rows.append((start, record))
    if header is None:
        raise CsvImportError(
            [
                CsvProblem(
                    file,
                    None,
                    "",
                    "empty file; the first row names the columns, e.g. name,address,role",
                )
            ]
        )

    columns: dict[int, str] = {}
    seen: dict[str, str] = {}
    ignored: list[str] = []
    for index, raw in enumerate(header):
        col = _ALIAS_TO_COLUMN.get(_norm(raw))
        if col is None:
            if raw.strip():
                ignored.append(raw.strip())
            continue
        if col in seen:
            clash = f"columns '{seen[col]}' and '{raw.strip()}' both mean {col}; keep one"
            problems.append(CsvProblem(file, header_line, raw.strip(), clash))
            continue
        seen[col] = raw.strip()
        columns[index] = col
    for col in REQUIRED_COLUMNS:
        if col not in seen:
            known = ", ".join(COLUMN_ALIASES[col][:4])
            problems.append(
                CsvProblem(
                    file, header_line, col, f"required column missing; name it one of: {known}"
                )
            )
    if any(p.line == header_line for p in problems):
        raise CsvImportError(problems)

    hosts: list[CsvHost] = []
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    group_roles: dict[str, tuple[str, int]] = {}
    for line, record in rows:
        cells = {col: (record[i].strip() if i < len(record) else "") for i, col in columns.items()}
        before = len(problems)

        def bad(col: str, msg: str, line: int = line) -> None:
            problems.append(CsvProblem(file, line, col, msg))

        if len(record) > len(header) and any(c.strip() for c in record[len(header) :]):
            bad(
                "",
                f"{len(record)} cells but the header has {len(header)} columns; check for an unquoted comma",
            )
        name, address = cells.get("name", ""), cells.get("address", "")
        if not name:
            bad("name", "empty; every device needs a name (e.g. library-mfp)")
        elif msg := _check(_check_name, name):
            bad("name", msg)
        elif name in names:
            bad("name", f"duplicate name '{name}' (first at line {names[name]})")
        else:
            names[name] = line
        if not address:
            bad("address", "empty; give an IP address or host name (e.g. 192.0.2.20)")
        elif msg := _check(_check_address, address):
            bad("address", msg)
        else:
            address = _check_address(address)
            if address.lower() in addresses:
                bad(
                    "address",
                    f"address {address} is already used at line {addresses[address.lower()]}",
                )
            else:
                addresses[address.lower()] = line
        row_role = (cells.get("role") or role or "other").lower()
        if row_role not in ROLES:
            bad("role", f"unknown role '{cells.get('role')}'; roles: {', '.join(ROLES)}")
        row_group = (
            cells.get("group")
            or group
            or (_plural(row_role) if cells.get("role") or role else DEFAULT_GROUP)
        )
        if msg := _check(_check_name, row_group):
            bad("group", msg)
        elif (
            row_group in group_roles and group_roles[row_group][0] != row_role and row_role in ROLES
        ):
            first_role, first_line = group_roles[row_group]
            bad("role", f"group '{row_group}' is '{first_role}' (line {first_line}); a group has one role, "
                        f"so put this device in another group")  # fmt: skip
        modules = _split_modules(cells.get("modules", ""))
        for module in modules:
            if msg := _check(_check_module, module):
                bad("modules", msg)
        for col in ("credentials", "parent"):
            if cells.get(col) and (msg := _check(_check_name, cells[col])):
                bad(col, msg)
        if cells.get("parent") and cells["parent"] == name:
            bad("parent", "a device cannot be its own parent")
        if len(problems) > before:
            continue
        group_roles.setdefault(row_group, (row_role, line))
        labels = {col: cells[col] for col in LABEL_COLUMNS if cells.get(col)}
        hosts.append(CsvHost(
            line=line, name=name, address=address, role=row_role, group=row_group, labels=labels,
            modules=tuple(modules) if modules else None, credentials=cells.get("credentials") or None,
            parent=cells.get("parent") or None,
        ))  # fmt: skip
    if not rows:
        problems.append(
            CsvProblem(file, None, "", "no devices: the file has a header row but no rows below it")
        )
    if problems:
        raise CsvImportError(problems)
    return CsvImport(hosts, ignored)


def _plural(role: str) -> str:
    return {"switch": "switches", "printer": "printers", "server": "servers", "ups": "ups",
            "lab": "lab"}.get(role, DEFAULT_GROUP)  # fmt: skip


def hosts_to_groups(hosts: Sequence[CsvHost]) -> list[dict[str, Any]]:
    """Config ``groups:`` entries, one per group in the order groups first appear."""
    groups: dict[str, dict[str, Any]] = {}
    for host in hosts:
        entry = groups.setdefault(
            host.group, {"name": host.group, "role": host.role, "targets": []}
        )
        target: dict[str, Any] = {"name": host.name, "address": host.address}
        if host.credentials:
            target["credentials"] = host.credentials
        if host.parent:
            target["parent"] = host.parent
        if host.modules:
            target["modules"] = list(host.modules)
        if host.labels:
            target["labels"] = dict(host.labels)
        entry["targets"].append(target)
    return list(groups.values())


def groups_yaml(hosts: Sequence[CsvHost], source: str) -> str:
    """The YAML fragment ``netmon inventory import`` writes (with a short how-to header)."""
    groups = hosts_to_groups(hosts)
    body = yaml.safe_dump({"groups": groups}, sort_keys=False, default_flow_style=None, width=200)
    head = (
        f"# {_count(len(hosts), 'device')} in {_count(len(groups), 'group')}, imported from {Path(source).name} by\n"
        "# `netmon inventory import`. Paste these groups into your netmon config, which\n"
        "# must define any credentials named here (or defaults.snmp.credentials), then run\n"
        "# `netmon check-config -c netmon.yml`.\n"
    )
    return head + body


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


# --- inventory list -------------------------------------------------------------------


def format_interval(seconds: float) -> str:
    """60 -> 1m, 300 -> 5m, 90 -> 90s, 3600 -> 1h (how the config file writes them)."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def probe_jobs(target: InventoryTarget) -> list[str]:
    """The probe jobs of a target as the scheduler names them (``tcp-PORT`` per port)."""
    out: list[str] = []
    for probe in target.probes:
        if probe == "tcp":
            out += [f"tcp-{port}" for port in target.tcp_ports]
        else:
            out.append(probe)
    return out


def target_rows(
    targets: Iterable[InventoryTarget], inferred: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One JSON-ready row per target: effective settings, credential names, no secrets;
    ``parent_source`` says whether the parent is written (config) or was inferred from
    the topology (``inferred``: the topology's parents)."""
    from monitor.topology import effective_parents

    targets = list(targets)
    parents = effective_parents(targets, inferred or {})
    return [
        {
            "name": t.name, "address": t.address, "port": t.port, "group": t.group, "role": t.role,
            "labels": dict(t.labels), "probes": list(t.probes), "jobs": probe_jobs(t),
            "modules": list(t.modules) if "snmp" in t.probes else [],
            "tcp_ports": list(t.tcp_ports) if "tcp" in t.probes else [],
            "credentials": t.credentials_name if "snmp" in t.probes else None,
            "interval_seconds": t.interval, "parent": parents.get(t.name, (None, None))[0],
            "parent_source": parents.get(t.name, (None, None))[1],
            "expected_online": t.expected_online,
        }
        for t in targets
    ]  # fmt: skip


# --- Prometheus file_sd -----------------------------------------------------------------


def file_sd(
    targets: Iterable[InventoryTarget],
    *,
    netmon_address: str | None = None,
    per_probe: bool = False,
) -> list[dict[str, Any]]:
    """Prometheus file_sd target groups for ``/probe?target=NAME``.

    One group per target (``targets: [NAME]``), labelled with group, role and the static
    labels; ``__param_target`` names the target so the URL needs no relabelling to get it.
    ``netmon_address`` goes into ``__tmp_netmon_address`` for the relabel rule that points
    ``__address__`` at netmon (see examples/prometheus.yml). ``per_probe``: one group per
    target and probe kind with ``__param_probe``, to scrape kinds in separate jobs."""
    out: list[dict[str, Any]] = []
    for t in targets:
        labels = {**t.labels, "group": t.group, "role": t.role, "__param_target": t.name}
        if netmon_address:
            labels["__tmp_netmon_address"] = netmon_address
        if per_probe:
            out += [
                {"targets": [t.name], "labels": {**labels, "__param_probe": p}} for p in t.probes
            ]
        else:
            out.append({"targets": [t.name], "labels": labels})
    return out
