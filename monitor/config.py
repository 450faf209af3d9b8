"""The inventory config file (YAML): what to probe, how often, and with which credentials.

::

    defaults:    interval, labels, icmp/snmp/tcp settings every group starts from
    credentials: name -> SNMP credentials (secrets inline, {env: VAR} or {file: PATH};
                 a relative PATH is relative to the config file's directory)
    schedules:   name -> {days, hours, timezone, terms, holidays, ical} (when devices
                 are expected online; see alerts.schedule)
    groups:      a list of {name, role, labels, modules, probes, tcp_ports, interval,
                 parent, credentials, expected_online, targets}
    alerts:      rules, overrides, custom rules, state file, flapping, SMTP, receivers,
                 route, Alertmanagers (alerts.settings.AlertsSettings)
    server:      listen (HOST:PORT), web_config (TLS/basic auth file),
                 allow_any_probe_target, external_url (for `netmon run`)
    dashboards:  grafana_url (links from alert emails to the generated dashboards)
    history:     enabled, path, max_size, retention (the embedded history store,
                 monitor.store.history.HistorySettings)

:func:`load_config` reports every mistake at once, one line each, as
``file:line: field.path: what is wrong and what is allowed`` (blackbox_exporter's strict
config, with line numbers). Line numbers come from composing the YAML with PyYAML and
following pydantic's error locations through the node tree. Messages are built from the
error kind, never from the input value, so a secret can never end up in one.
:func:`resolve_targets` turns groups into flat :class:`InventoryTarget` rows with the
effective settings (target overrides group, group overrides defaults).

``load_config(path, resolve_secrets=False)`` is for commands that need no secret
(``inventory list``, ``alerts export-rules``, ``check-config --no-secrets``): every
``{env: VAR}`` / ``{file: PATH}`` secret is left unread and stands as
:data:`UNRESOLVED_SECRET`; everything else is checked as usual.
"""

from __future__ import annotations

import ipaddress
import re
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    model_validator,
)

from alerts.schedule import Schedule, check_schedules
from alerts.settings import AlertsSettings
from alerts.settings import check_references as check_alert_references
from monitor.redaction import redact, secret_values
from monitor.store.history import HistorySettings
from probes.errors import ConfigError
from probes.settings import Duration, StrictModel
from probes.snmp.credentials import SnmpCredentials
from probes.target import Target
from probes.tcp import TcpSettings

try:
    from probes.icmp import IcmpSettings
except ImportError:  # the ICMP probe is written in parallel; until it lands:

    class IcmpSettings(StrictModel):  # type: ignore[no-redef]
        """Stand-in with the ICMP probe's expected fields."""

        count: int = Field(default=3, ge=1, le=100)
        timeout: Duration = 1.0
        interval: Duration = 0.2


#: A range may expand to at most this many addresses (a /16).
MAX_RANGE = 65_536
#: SNMP modules by name, used only while probes.snmp.modules.MODULES is not importable.
FALLBACK_MODULES = ("system", "interfaces", "printer", "host", "ups", "topology")
Role = Literal["switch", "printer", "lab", "server", "ups", "other"]
ProbeName = Literal["icmp", "snmp", "tcp"]
#: SNMP modules a group gets when it does not list its own.
ROLE_MODULES: dict[str, tuple[str, ...]] = {
    "switch": ("system", "interfaces", "topology"),
    "printer": ("system", "printer"),
    "server": ("system", "host"),
    "ups": ("system", "ups"),
    "lab": (),
    "other": (),
}
#: Default ``defaults.snmp.module_intervals``: seconds between polls of slow modules.
MODULE_INTERVALS: dict[str, float] = {"topology": 900.0}
#: ``parent:`` values that are not a target: ``auto`` (the default: the parent the
#: topology infers, see monitor/topology.py) and ``none`` (no parent, none inferred).
PARENT_AUTO, PARENT_NONE = "auto", "none"
#: Labels netmon sets itself; the config may not redefine them.
RESERVED_LABELS = frozenset({"target", "group", "role", "probe", "module", "instance", "job"})
#: Keys whose values are secrets; ``urls`` for apprise receivers (a URL holds its token).
_SECRET_KEYS = frozenset({"community", "password", "urls"})
#: What an unread ``{env: ...}`` / ``{file: ...}`` secret holds with
#: ``resolve_secrets=False``. No real secret can equal it: an environment variable cannot
#: hold a NUL character. Long enough for the SNMPv3 8-character minimum.
UNRESOLVED_SECRET = "\0unresolved secret\0"

# --- field types ----------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            "a name uses letters, digits, '.', '_' and '-' and starts with a letter or "
            "digit (e.g. lab-pc-12)"
        )
    return value


def _check_label_name(value: str) -> str:
    if not _LABEL.match(value) or value.startswith("__"):
        raise ValueError("a label name uses letters, digits and '_' (e.g. building, room)")
    if value in RESERVED_LABELS:
        raise ValueError(
            f"label '{value}' is set by netmon; reserved: {', '.join(sorted(RESERVED_LABELS))}"
        )
    return value


def _label_value(value: Any) -> Any:
    # `room: 204` is a number in YAML but a label value is text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _check_address(value: str) -> str:
    text = value.strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    parts = text.rstrip(".").split(".")
    if text.count(":") == 1:
        raise ValueError("an address is a host name or IP address without a port; use port:")
    if all(p.isdigit() for p in parts):
        raise ValueError("not a valid IPv4 address (four numbers 0-255, e.g. 192.0.2.10)")
    if len(text) > 253 or not all(_HOST_LABEL.match(p) for p in parts):
        raise ValueError(
            "not an IP address or host name (e.g. 192.0.2.10, 2001:db8::5, printer.school.example)"
        )
    return text


def _check_interval(value: float) -> float:
    if value < 1:
        raise ValueError("an interval must be at least 1s (e.g. 30s, 5m)")
    return value


def _check_module(value: str) -> str:
    known = module_names()
    if value not in known:
        raise ValueError(f"unknown SNMP module '{value}'; available: {', '.join(known)}")
    return value


def _check_range(value: str) -> str:
    expand_range(value)
    return value


def _as_list(value: Any) -> Any:
    # `targets: {range: ...}` is a common shorthand for a one-item list.
    return [value] if isinstance(value, dict) else value


Name = Annotated[str, AfterValidator(_check_name)]
LabelName = Annotated[str, AfterValidator(_check_label_name)]
Labels = dict[LabelName, Annotated[str, BeforeValidator(_label_value)]]
Address = Annotated[str, AfterValidator(_check_address)]
Port = Annotated[int, Field(ge=1, le=65535)]
Interval = Annotated[Duration, AfterValidator(_check_interval)]
ModuleName = Annotated[str, AfterValidator(_check_module)]


def module_names() -> tuple[str, ...]:
    """Names ``modules:`` may list: the SNMP module registry, imported on first use."""
    try:
        from probes.snmp.modules import MODULES
    except ImportError:
        return FALLBACK_MODULES
    return tuple(MODULES)


# --- ranges ---------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def expand_range(text: str) -> list[IPAddress]:
    """``10.1.4.10-10.1.4.40``, ``10.1.4.10-40`` or ``10.1.4.0/28`` -> the addresses.

    Refuses more than :data:`MAX_RANGE` addresses, so a typo cannot build a huge inventory.
    """
    text = text.strip()
    usage = "a range is FIRST-LAST (10.1.4.10-10.1.4.40 or 10.1.4.10-40) or a network (10.1.4.0/28)"
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(usage) from None
        if net.num_addresses > MAX_RANGE:
            raise ValueError(f"{net.num_addresses} addresses; a range may have at most {MAX_RANGE}")
        return list(net.hosts())
    first_text, sep, last_text = text.partition("-")
    try:
        first = ipaddress.ip_address(first_text.strip())
        last_text = last_text.strip()
        if first.version == 4 and last_text.isdigit():  # short form: 10.1.4.10-40
            last_text = first_text.strip().rsplit(".", 1)[0] + "." + last_text
        last = ipaddress.ip_address(last_text)
    except ValueError:
        raise ValueError(usage) from None
    if not sep or first.version != last.version:
        raise ValueError(usage)
    count = int(last) - int(first) + 1
    if count < 1:
        raise ValueError("the range's last address comes before its first")
    if count > MAX_RANGE:
        raise ValueError(f"{count} addresses; a range may have at most {MAX_RANGE}")
    return [ipaddress.ip_address(int(first) + i) for i in range(count)]


def _range_hosts(text: str, prefix: str) -> list[tuple[str, str]]:
    """(name, address) for each address: the prefix plus the address parts that vary."""
    addresses = expand_range(text)
    if not addresses:
        return []

    def parts(a: IPAddress) -> list[str]:
        if a.version == 4:
            return str(a).split(".")
        return [g.lstrip("0") or "0" for g in a.exploded.split(":")]

    first, last = parts(addresses[0]), parts(addresses[-1])
    common = 0
    while common < len(first) - 1 and first[common] == last[common]:
        common += 1
    return [(f"{prefix}-{'-'.join(parts(a)[common:])}", str(a)) for a in addresses]


# --- the models -----------------------------------------------------------------------


class SnmpOptions(StrictModel):
    """SNMP settings shared by all targets (``defaults.snmp``)."""

    credentials: str | None = None
    timeout: Duration = 2.0
    retries: int = Field(default=1, ge=0, le=10)
    max_repetitions: int = Field(default=25, ge=1, le=200)
    port: Port = 161
    #: Modules polled less often than their target's interval, in a job of their own
    #: (``<target>/<module>``): the topology tables change slowly and are long.
    module_intervals: dict[ModuleName, Interval] = Field(
        default_factory=lambda: dict(MODULE_INTERVALS)
    )


class Defaults(StrictModel):
    interval: Interval = 60.0
    labels: Labels = Field(default_factory=dict)
    icmp: IcmpSettings = Field(default_factory=IcmpSettings)
    snmp: SnmpOptions = Field(default_factory=SnmpOptions)
    tcp: TcpSettings = Field(default_factory=TcpSettings)


class TargetEntry(StrictModel):
    """One device (``name`` + ``address``) or many (``range``)."""

    name: Name | None = None
    address: Address | None = None
    range: Annotated[str, AfterValidator(_check_range)] | None = None
    name_prefix: Name | None = None
    port: Port | None = None
    credentials: str | None = None
    parent: str | None = None
    labels: Labels = Field(default_factory=dict)
    modules: list[ModuleName] | None = None

    @model_validator(mode="after")
    def _one_or_many(self) -> TargetEntry:
        if self.range is not None:
            if self.address is not None:
                raise ValueError("give either address (one device) or range (many), not both")
            if self.name is not None:
                raise ValueError("targets of a range are named from name_prefix, not name")
        elif self.address is None:
            raise ValueError("a target needs an address (one device) or a range (many)")
        elif self.name is None:
            raise ValueError("a target needs a name (e.g. library-mfp)")
        elif self.name_prefix is not None:
            raise ValueError("name_prefix goes with range; one device has a name")
        return self


def _unique_ports(ports: list[int]) -> list[int]:
    twice = sorted({p for p in ports if ports.count(p) > 1})
    if twice:
        raise ValueError(f"port {', '.join(map(str, twice))} is listed twice; list each port once")
    return ports


class Group(StrictModel):
    name: Name
    role: Role = "other"
    labels: Labels = Field(default_factory=dict)
    #: None: the role's modules (ROLE_MODULES).
    modules: list[ModuleName] | None = None
    #: None: icmp, plus snmp when there are modules, plus tcp when there are tcp_ports.
    probes: list[ProbeName] | None = None
    tcp_ports: Annotated[list[Port], AfterValidator(_unique_ports)] | None = None
    interval: Interval | None = None
    parent: str | None = None
    credentials: str | None = None
    expected_online: str | None = None
    targets: Annotated[list[TargetEntry], BeforeValidator(_as_list)] = Field(default_factory=list)


def _check_listen(value: str) -> str:
    _, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("listen is HOST:PORT, e.g. 0.0.0.0:10190, 127.0.0.1:10190 or [::]:10190")
    return value


def _check_url(value: str) -> str:
    if not re.match(r"https?://[^/\s]+(/\S*)?\Z", value):
        raise ValueError("a URL like https://netmon.school.example or http://10.0.0.5:10190")
    return value.rstrip("/")


class ServerOptions(StrictModel):
    """The web server of ``netmon run``; its command-line flags override these."""

    #: HOST:PORT; None: the web module's default port on all addresses.
    listen: Annotated[str, AfterValidator(_check_listen)] | None = None
    #: exporter-toolkit web config (TLS, basic auth); relative to this file's directory.
    web_config: str | None = None
    #: Let ``/probe`` reach addresses that are not in the inventory.
    allow_any_probe_target: bool = False
    #: The address people open netmon at (``https://netmon.school.example``): alert
    #: emails link to its device pages and acknowledge page. None: no links.
    external_url: Annotated[str, AfterValidator(_check_url)] | None = None


class DashboardsOptions(StrictModel):
    """Where the generated Grafana dashboards are served (for links in alert emails)."""

    #: Grafana's base URL, e.g. ``https://grafana.school.example``; None: no links.
    grafana_url: Annotated[str, AfterValidator(_check_url)] | None = None


class NetmonConfig(StrictModel):
    """The whole inventory file."""

    defaults: Defaults = Field(default_factory=Defaults)
    credentials: dict[Name, SnmpCredentials] = Field(default_factory=dict)
    schedules: dict[Name, Schedule] = Field(default_factory=dict)
    groups: list[Group] = Field(default_factory=list)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    server: ServerOptions = Field(default_factory=ServerOptions)
    history: HistorySettings = Field(default_factory=HistorySettings)
    dashboards: DashboardsOptions = Field(default_factory=DashboardsOptions)


# --- errors ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigFileError(ConfigError):
    """The config file has mistakes; ``problems`` lists every one of them."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


Loc = tuple[str | int, ...]


def _field_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Lines:
    """Maps an error location (pydantic's loc tuple) to a line of the YAML file."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def __call__(self, loc: Loc) -> int | None:
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                if part == 0:  # a mapping given where a one-item list was expected
                    continue
                # the last of duplicate keys is the one PyYAML (and so pydantic) kept
                pair = next((kv for kv in reversed(node.value) if kv[0].value == str(part)), None)
                if pair is None:
                    break
                line, node = pair[0].start_mark.line + 1, pair[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line


def _unwrap(tp: Any) -> Any:
    """Strip Optional/Annotated so a field's type can be followed into models."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys the model at ``loc`` accepts (for 'unknown key' messages)."""
    tp: Any = NetmonConfig
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(part, str) or part not in tp.model_fields:
                return []
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    if get_origin(tp) is list:  # `targets: {...}` shorthand
        tp = _unwrap(get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _message(err: Any) -> str:
    kind, msg, loc = err["type"], str(err["msg"]), tuple(err["loc"])
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"unknown key '{loc[-1]}'" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if kind == "missing":
        return "required but missing"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _secret_values(node: yaml.Node | None, under_secret: bool = False) -> Iterator[str]:
    """Every scalar written under a ``community:``/``password:`` key (to redact)."""
    if isinstance(node, yaml.ScalarNode):
        if under_secret and node.value:
            yield node.value
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            # {env: NAME} / {file: PATH} name where a secret is, they are not secret
            secret = key.value in _SECRET_KEYS or (
                under_secret and key.value not in ("env", "file")
            )
            yield from _secret_values(value, secret)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _secret_values(item, under_secret)


def _duplicate_keys(node: yaml.Node | None, loc: Loc = ()) -> Iterator[tuple[Loc, int, str]]:
    """PyYAML silently keeps the last of two equal keys; we call it a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in seen:
                yield (
                    loc,
                    line,
                    f"duplicate key '{key.value}' (first at line {seen[key.value]}); keep one",
                )
            else:
                seen[key.value] = line
            yield from _duplicate_keys(value, loc + (str(key.value),))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, loc + (i,))


# --- loading --------------------------------------------------------------------------


def load_config(path: Path, *, resolve_secrets: bool = True) -> NetmonConfig:
    """Read, validate and cross-check a config file; raise :class:`ConfigFileError` with
    every problem found (never a traceback, never a secret).

    ``resolve_secrets=False``: ``{env: VAR}`` / ``{file: PATH}`` secrets are not read
    (nor reported when missing) and hold :data:`UNRESOLVED_SECRET`; for commands that
    use no secret. Their shape is still checked, and inline secrets are kept."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(
            [ConfigProblem(file, None, "", f"cannot read: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigFileError([ConfigProblem(file, None, "", "not UTF-8 text")]) from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else {}
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        # Built from the parser's description only: its snippet could show a secret.
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark:
            what += f" ({exc.context} at line {exc.context_mark.line + 1})"
        if "'\\t'" in what:  # PyYAML writes the tab as the two characters \t
            what += "; indent with spaces, not tabs"
        line = mark.line + 1 if mark else None
        raise ConfigFileError(
            [ConfigProblem(file, line, "", f"YAML syntax error: {what}")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigFileError([ConfigProblem(file, None, "", f"not valid YAML: {exc}")]) from None

    if isinstance(data, dict):
        for section in ("credentials", "alerts"):
            if not resolve_secrets:
                _leave_secrets_unread(data.get(section))
            _anchor_secret_files(data.get(section), Path(path).parent)
    lines = _Lines(root)
    issues: list[tuple[Loc, int | None, str]] = [
        (loc, line, msg) for loc, line, msg in _duplicate_keys(root)
    ]
    cfg: NetmonConfig | None = None
    if not isinstance(data, dict):
        allowed = ", ".join(NetmonConfig.model_fields)
        issues.append(((), lines(()), f"the file must be a mapping with the sections {allowed}"))
    else:
        try:
            cfg = NetmonConfig.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False):
                loc = tuple(err["loc"])
                issues.append((loc, lines(loc), _message(err)))
        issues += [(loc, lines(loc), msg) for loc, msg in _cross_check(data, lines)]
        if cfg is not None:
            issues += [(loc, lines(loc), msg) for loc, msg in _alert_checks(cfg, Path(path).parent)]

    if issues:
        secrets = set(_secret_values(root))
        problems = [
            ConfigProblem(file, line, _field_path(loc), redact(msg, secrets))
            for loc, line, msg in sorted(issues, key=lambda i: (i[1] or 0, _field_path(i[0])))
        ]
        raise ConfigFileError(problems)
    assert cfg is not None
    return cfg


def _alert_checks(cfg: NetmonConfig, base: Path) -> list[tuple[Loc, str]]:
    """Names the ``alerts:`` section refers to (groups, targets, schedules, receivers)
    exist, and iCalendar files of schedules are readable."""
    # Expanding every range is only needed when an alert override names a target.
    named = any(o.target is not None for o in cfg.alerts.overrides)
    targets = {t.name for t in resolve_targets(cfg)} if named else set()
    found = check_alert_references(
        cfg.alerts, groups={g.name for g in cfg.groups}, targets=targets,
        schedules=set(cfg.schedules),
    )  # fmt: skip
    issues: list[tuple[Loc, str]] = [(("alerts", *loc), msg) for loc, msg in found]
    issues += [(("schedules", *loc), msg) for loc, msg in check_schedules(dict(cfg.schedules), base_dir=base)]
    return issues


def _is_reference(value: Any) -> bool:
    """``{env: VAR}`` or ``{file: PATH}``: where a secret is, not the secret."""
    return isinstance(value, dict) and len(value) == 1 and (
        isinstance(value.get("env"), str) or isinstance(value.get("file"), str)
    )


def _leave_secrets_unread(node: Any) -> None:
    """Replace every ``{env: ...}`` / ``{file: ...}`` under a secret key by
    :data:`UNRESOLVED_SECRET` (``resolve_secrets=False``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _SECRET_KEYS and _is_reference(value):
                node[key] = UNRESOLVED_SECRET
            elif key in _SECRET_KEYS and isinstance(value, list):  # apprise urls
                node[key] = [UNRESOLVED_SECRET if _is_reference(v) else v for v in value]
            else:
                _leave_secrets_unread(value)
    elif isinstance(node, list):
        for item in node:
            _leave_secrets_unread(item)


def config_secrets(cfg: NetmonConfig) -> set[str]:
    """Every secret value of ``cfg`` (to hide them in logs): communities, SNMPv3, SMTP
    and webhook passwords, and passwords written into URLs."""
    return secret_values(cfg) - {UNRESOLVED_SECRET}


def _anchor_secret_files(node: Any, base: Path) -> None:
    """Make relative ``{file: PATH}`` secrets relative to the config file's directory,
    not to wherever netmon happens to be started."""
    if isinstance(node, dict):
        items: Iterable[tuple[Any, Any]] = list(node.items())
    elif isinstance(node, list):  # alerts.receivers[*].webhook.password, apprise.urls[*]
        items = list(enumerate(node))
    else:
        return
    for key, value in items:
        if isinstance(value, dict) and set(value) == {"file"} and isinstance(value["file"], str):
            node[key] = {"file": str(base / value["file"])}  # an absolute path stays as it is
        else:
            _anchor_secret_files(value, base)


def _default_probes(modules: tuple[str, ...], tcp_ports: tuple[int, ...]) -> tuple[str, ...]:
    return ("icmp",) + (("snmp",) if modules else ()) + (("tcp",) if tcp_ports else ())


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _cross_check(data: dict[str, Any], lines: _Lines) -> list[tuple[Loc, str]]:
    """Checks across sections, on the raw data so they run even when some part failed
    validation: references, duplicates, parent cycles, SNMP without credentials."""
    issues: list[tuple[Loc, str]] = []
    creds = {k for k in (_get(data, "credentials") or {}) if isinstance(k, str)}
    schedules = {k for k in (_get(data, "schedules") or {}) if isinstance(k, str)}
    defaults = _get(data, "defaults")
    default_cred = _text(_get(_get(defaults, "snmp"), "credentials"))
    default_tcp_port = _get(_get(defaults, "tcp"), "port")

    def ref(loc: Loc, name: Any, known: set[str], kind: str, hint: str) -> None:
        if isinstance(name, str) and name not in known:
            defined = ", ".join(sorted(known)) or f"none ({hint})"
            issues.append((loc, f"unknown {kind} '{name}'; defined: {defined}"))

    ref(
        ("defaults", "snmp", "credentials"),
        default_cred,
        creds,
        "credentials",
        "add a credentials: section",
    )
    groups = _get(data, "groups")
    names: dict[str, Loc] = {}
    addresses: dict[tuple[str, Any], Loc] = {}
    parents: dict[str, tuple[str, Loc]] = {}
    group_names: dict[str, Loc] = {}
    for gi, group in enumerate(groups if isinstance(groups, list) else []):
        if not isinstance(group, dict):
            continue
        gloc: Loc = ("groups", gi)
        gname = _text(group.get("name")) or f"group{gi}"
        if gname in group_names:
            issues.append(
                (
                    gloc + ("name",),
                    f"duplicate group name '{gname}' (first at line {lines(group_names[gname])})",
                )
            )
        group_names.setdefault(gname, gloc + ("name",))
        ref(
            gloc + ("credentials",),
            group.get("credentials"),
            creds,
            "credentials",
            "add a credentials: section",
        )
        ref(
            gloc + ("expected_online",),
            group.get("expected_online"),
            schedules,
            "schedule",
            "add a schedules: section",
        )
        modules = group.get("modules")
        modules = (
            tuple(modules)
            if isinstance(modules, list)
            else ROLE_MODULES.get(str(group.get("role", "other")), ())
        )
        ports = group.get("tcp_ports")
        ports = (
            tuple(ports)
            if isinstance(ports, list)
            else ((default_tcp_port,) if default_tcp_port else ())
        )
        probes = group.get("probes")
        targets = _as_list(group.get("targets"))
        targets = targets if isinstance(targets, list) else []
        group_cred = _text(group.get("credentials")) or default_cred
        uncredentialed = 0
        if isinstance(probes, list) and "tcp" in probes and not ports:
            msg = (f"group '{gname}' probes tcp but has no port; "
                   "set tcp_ports (e.g. [22, 3389]) or defaults.tcp.port")  # fmt: skip
            issues.append((gloc + ("probes",), msg))
        for ti, entry in enumerate(targets):
            if not isinstance(entry, dict):
                continue
            tloc = gloc + ("targets", ti)
            t_modules = (
                tuple(entry["modules"]) if isinstance(entry.get("modules"), list) else modules
            )
            t_probes = (
                tuple(probes) if isinstance(probes, list) else _default_probes(t_modules, ports)
            )
            if "snmp" in t_probes and not (group_cred or entry.get("credentials")):
                uncredentialed += 1
            ref(
                tloc + ("credentials",),
                entry.get("credentials"),
                creds,
                "credentials",
                "add a credentials: section",
            )
            parent = _text(entry.get("parent")) or _text(group.get("parent"))
            parent_loc = tloc + ("parent",) if entry.get("parent") else gloc + ("parent",)
            for name, address, name_loc, address_loc in _entry_hosts_raw(entry, gname, tloc):
                if name in names:
                    first = lines(names[name])
                    issues.append(
                        (name_loc, f"duplicate target name '{name}' (first at line {first})")
                    )
                    break
                names[name] = name_loc
                key = (_address_key(address), entry.get("port"))
                if key in addresses:
                    first = lines(addresses[key])
                    issues.append(
                        (address_loc, f"address {address} is already used at line {first}")
                    )
                    break
                addresses[key] = address_loc
                if parent is not None and parent not in (PARENT_AUTO, PARENT_NONE):
                    parents[name] = (parent, parent_loc)
        if uncredentialed:
            msg = (f"group '{gname}' probes snmp but {uncredentialed} of its targets have no "
                   "credentials; set credentials on the group or its targets, or "
                   "defaults.snmp.credentials")  # fmt: skip
            issues.append((gloc, msg))
    issues += _parent_issues(names, parents)
    return issues


def _entry_hosts_raw(
    entry: dict[str, Any], group: str, loc: Loc
) -> Iterator[tuple[str, str, Loc, Loc]]:
    """(name, address, where the name is, where the address is) of each host an entry
    stands for; invalid entries are skipped (pydantic reports those)."""
    if isinstance(entry.get("range"), str):
        prefix = _text(entry.get("name_prefix")) or group
        try:
            hosts = _range_hosts(entry["range"], prefix)
        except ValueError:
            return
        for name, address in hosts:
            yield name, address, loc + ("range",), loc + ("range",)
    elif isinstance(entry.get("name"), str) and isinstance(entry.get("address"), str):
        yield entry["name"], entry["address"], loc + ("name",), loc + ("address",)


def _address_key(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return address.strip().rstrip(".").lower()


def _parent_issues(
    names: dict[str, Loc], parents: dict[str, tuple[str, Loc]]
) -> list[tuple[Loc, str]]:
    issues: list[tuple[Loc, str]] = []
    reported_locs: set[Loc] = set()
    for parent, loc in parents.values():
        if parent not in names and loc not in reported_locs:
            reported_locs.add(loc)
            msg = (f"unknown parent '{parent}'; a parent is the name of another target "
                   "(e.g. the switch the devices hang off)")  # fmt: skip
            issues.append((loc, msg))
    seen_cycles: set[frozenset[str]] = set()
    for start in parents:
        chain, node = [start], parents[start][0]
        while node in parents and node not in chain:
            chain.append(node)
            node = parents[node][0]
        if node in chain:
            cycle = chain[chain.index(node) :]
            if frozenset(cycle) not in seen_cycles:
                seen_cycles.add(frozenset(cycle))
                path = " -> ".join(cycle + [node])
                issues.append(
                    (
                        parents[cycle[0]][1],
                        f"parent cycle: {path}; a device cannot depend on itself",
                    )
                )
    return issues


# --- the resolved inventory -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InventoryTarget:
    """One device with its effective settings (target > group > defaults)."""

    name: str
    address: str
    #: The port written on the target (the SNMP agent's port when not the default).
    port: int | None
    group: str
    role: str
    labels: dict[str, str]
    modules: tuple[str, ...]
    probes: tuple[str, ...]
    credentials: SnmpCredentials | None
    credentials_name: str | None
    interval: float
    #: The configured parent (a target name); None when none is written or it is auto/none.
    parent: str | None
    tcp_ports: tuple[int, ...]
    expected_online: str | None = None
    #: Effective SNMP settings (port and credentials name filled in).
    snmp: SnmpOptions = field(default_factory=SnmpOptions)
    icmp: IcmpSettings = field(default_factory=IcmpSettings)
    tcp: TcpSettings = field(default_factory=TcpSettings)
    #: The parent may be inferred from the topology (no parent written, or ``auto``).
    auto_parent: bool = True

    def as_target(self, port: int | None = None) -> Target:
        """The probe-level target; labels carry the role and the static labels."""
        return Target(self.name, self.address, port, {"role": self.role, **self.labels})


def resolve_targets(cfg: NetmonConfig) -> list[InventoryTarget]:
    """Every target of every group, ranges expanded, with effective settings."""
    d = cfg.defaults
    out: list[InventoryTarget] = []
    for group in cfg.groups:
        modules = tuple(group.modules) if group.modules is not None else ROLE_MODULES[group.role]
        if group.tcp_ports is not None:
            tcp_ports = tuple(group.tcp_ports)
        else:
            tcp_ports = (d.tcp.port,) if d.tcp.port else ()
        for entry in group.targets:
            t_modules = tuple(entry.modules) if entry.modules is not None else modules
            probes = (
                tuple(group.probes)
                if group.probes is not None
                else _default_probes(t_modules, tcp_ports)
            )
            cred_name = entry.credentials or group.credentials or d.snmp.credentials
            snmp = d.snmp.model_copy(
                update={"credentials": cred_name, "port": entry.port or d.snmp.port}
            )
            if entry.range is not None:
                hosts = _range_hosts(entry.range, entry.name_prefix or group.name)
            else:
                assert entry.name is not None and entry.address is not None
                hosts = [(entry.name, entry.address)]
            written = entry.parent or group.parent
            parent = None if written in (PARENT_AUTO, PARENT_NONE) else written
            for name, address in hosts:
                out.append(InventoryTarget(
                    name=name, address=address, port=entry.port, group=group.name,
                    role=group.role, labels={**d.labels, **group.labels, **entry.labels},
                    modules=t_modules, probes=probes,
                    credentials=cfg.credentials.get(cred_name) if cred_name else None,
                    credentials_name=cred_name, interval=group.interval or d.interval,
                    parent=parent, tcp_ports=tcp_ports,
                    expected_online=group.expected_online, snmp=snmp, icmp=d.icmp, tcp=d.tcp,
                    auto_parent=written in (None, PARENT_AUTO),
                ))  # fmt: skip
    return out


def find_target(cfg: NetmonConfig, name_or_address: str) -> InventoryTarget | None:
    """The target with this name, else the first with this address (any spelling)."""
    targets = resolve_targets(cfg)
    for t in targets:
        if t.name == name_or_address:
            return t
    key = _address_key(name_or_address)
    return next((t for t in targets if _address_key(t.address) == key), None)
