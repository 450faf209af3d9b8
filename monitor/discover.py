"""``netmon discover``: sweep a subnet, classify what answers, propose inventory.

Three phases over one :class:`probes.context.ProbeContext`: an ICMP sweep through the
shared ICMP engine (bounded concurrency, silent addresses asked again ``icmp_retries``
times, like fping's ``-r``), SNMP on the hosts that answered (credential sets tried in
order; the first that answers is remembered per device), optional TCP port checks. The
pure :mod:`probes.classify` turns the findings into a class, vendor, model, confidence
and reason. The rest turns devices into inventory: groups per role, merged into an
existing config file as appended text (its comments and order stay) without devices it
already knows by address, name/sysName, MAC or serial, and Prometheus file_sd JSON.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from monitor.config import ROLE_MODULES, NetmonConfig, resolve_targets
from probes.classify import (
    PRESENCE,
    SCALARS,
    SYS_DESCR,
    SYS_OBJECT_ID,
    TABLES,
    Classification,
    DeviceFacts,
    classify,
    facts_from_walked,
)
from probes.context import ProbeContext
from probes.errors import ConfigError, IcmpPermissionError
from probes.registry import run_probe
from probes.snmp.client import SnmpEndpoint
from probes.snmp.credentials import SnmpCredentials
from probes.snmp.modules import topology as lldp
from probes.snmp.types import OID, Value
from probes.target import Target
from probes.tcp import TcpSettings

#: Ports checked with ``--ports``: printing (raw, IPP, LPD), SSH, RDP, SMB, web.
DEFAULT_PORTS = (9100, 631, 515, 22, 3389, 445, 80, 443)
DEFAULT_MAX_PREFIX = 16
#: Device class -> config role.
CLASS_ROLE = {"printer": "printer", "switch": "switch", "host": "server", "ups": "ups",
              "access_point": "other", "other": "other"}  # fmt: skip
GROUP_NAMES = {"printer": "discovered-printers", "switch": "discovered-switches",
               "host": "discovered-hosts", "ups": "discovered-ups",
               "access_point": "discovered-access-points", "other": "discovered-other"}  # fmt: skip
_MARK = "# discovered:"

Progress = Callable[[str, int, int], None]


class DiscoverError(ConfigError):
    """Bad discovery input (network, credentials) or a file that cannot be merged."""


@dataclass(frozen=True, slots=True)
class CredentialSet:
    """Credentials to try, with the name the inventory will refer to them by."""

    name: str
    credentials: SnmpCredentials


@dataclass(frozen=True, slots=True)
class DiscoverSettings:
    icmp_timeout: float = 1.0
    icmp_retries: int = 1
    snmp_port: int = 161
    snmp_timeout: float = 1.0
    snmp_retries: int = 1
    #: None: no TCP checks.
    ports: tuple[int, ...] | None = None
    tcp_timeout: float = 1.0
    #: Devices probed over SNMP / TCP at once.
    device_concurrency: int = 32


@dataclass(slots=True)
class Device:
    address: str
    rtt: float | None
    facts: DeviceFacts
    classification: Classification
    credentials: str | None = None
    snmp_note: str = ""
    #: Name of the inventory target that already covers this device, if any.
    known_as: str | None = None

    @property
    def role(self) -> str:
        return CLASS_ROLE[self.classification.device_class]

    @property
    def modules(self) -> tuple[str, ...]:
        """SNMP modules to poll: the role's, only when SNMP answered."""
        if self.credentials is None:
            return ()
        cls = self.classification.device_class
        if cls == "access_point":
            return ("system", "interfaces")
        return ROLE_MODULES[self.role] or ("system",)

    def to_json(self) -> dict[str, Any]:
        c, f = self.classification, self.facts
        return {
            "address": self.address, "name": suggested_name(self), "class": c.device_class,
            "os": c.os, "vendor": c.vendor, "model": c.model, "confidence": c.confidence,
            "reason": c.reason, "credentials": self.credentials, "snmp": f.snmp,
            "snmp_note": self.snmp_note, "role": self.role, "modules": list(self.modules),
            "sys_name": f.sys_name, "sys_object_id": f.sys_object_id, "serial": f.serial,
            "macs": list(f.macs), "rtt_seconds": self.rtt,
            "open_ports": sorted(f.open_ports) if f.open_ports is not None else None,
            "known_as": self.known_as,
        }  # fmt: skip


@dataclass(slots=True)
class Discovery:
    network: str
    scanned: int
    devices: list[Device] = field(default_factory=list)
    icmp_mode: str = ""
    #: LLDP/CDP neighbours of the switches found whose management address is outside
    #: ``network``: suggestions for another sweep (address, name, seen_from, port).
    neighbours: list[dict[str, Any]] = field(default_factory=list)


# --- input ------------------------------------------------------------------------------


def parse_network(text: str, max_prefix: int = DEFAULT_MAX_PREFIX) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``10.20.0.0/22`` (or one address) -> the network; refuses ones larger than
    ``/max_prefix`` (IPv6: 2^(32-max_prefix) addresses) so a typo cannot sweep a /8."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise DiscoverError(
            f"{text!r} is not a network: give an address with a prefix length, e.g. "
            "10.20.0.0/22 or 192.168.1.0/24"
        ) from None
    limit = 2 ** (32 - max_prefix)
    if net.num_addresses > limit:
        raise DiscoverError(
            f"{net} has {net.num_addresses:,} addresses, more than the /{max_prefix} cap "
            f"({limit:,}); sweep smaller networks, or raise the cap with --max-prefix "
            f"{net.prefixlen if net.version == 4 else max(0, 32 - (net.num_addresses.bit_length() - 1))}"
        )
    return net


# --- the sweep --------------------------------------------------------------------------


async def _pool(items: Sequence[Any], limit: int, work: Callable[[Any], Any]) -> None:
    """Run ``work`` on every item with at most ``limit`` at once."""
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(max(1, min(limit, len(items))))))


async def icmp_sweep(
    ctx: ProbeContext, addresses: Sequence[str], settings: DiscoverSettings,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Address -> RTT (seconds) of every address that answered one echo request.

    Raises :class:`IcmpPermissionError` (with the fix) when ICMP is not allowed."""
    engine = ctx.icmp
    up: dict[str, float] = {}
    todo = list(addresses)
    done = 0
    for _attempt in range(settings.icmp_retries + 1):
        silent: list[str] = []

        async def ping(address: str, silent: list[str] = silent) -> None:
            nonlocal done
            stats = await engine.ping(address, count=1, interval=0.0,
                                      timeout=settings.icmp_timeout, payload_size=56)
            if stats.rtts:
                up[address] = stats.rtts[0]
                done += 1
                if progress:
                    progress("ping", done, len(addresses))
            else:
                silent.append(address)

        await _pool(todo, ctx.limits.icmp, ping)
        todo = silent
        if not todo:
            break
    if progress:
        progress("ping", len(addresses), len(addresses))
    return up


def _endpoint(address: str, creds: SnmpCredentials, settings: DiscoverSettings, max_rows: int = 10_000) -> SnmpEndpoint:
    return SnmpEndpoint(address, creds, port=settings.snmp_port, timeout=settings.snmp_timeout,
                        retries=settings.snmp_retries, max_repetitions=10, max_rows=max_rows)  # fmt: skip


async def snmp_identify(
    ctx: ProbeContext, address: str, credential_sets: Sequence[CredentialSet],
    settings: DiscoverSettings,
) -> tuple[dict[OID, Value], str | None, str]:
    """(what the agent told, name of the credential set that worked, why the sets tried
    before it failed).

    Credential sets are tried in order with one GET of the system scalars; the first
    that answers is used for the presence checks and small table walks."""
    client = ctx.snmp
    notes: list[str] = []
    for cred in credential_sets:
        got = await client.get(_endpoint(address, cred.credentials, settings), SCALARS)
        if got.failure is not None or not ({SYS_DESCR, SYS_OBJECT_ID} & got.values.keys()):
            why = got.failure.explanation if got.failure else "no sysDescr/sysObjectID"
            notes.append(f"{cred.name}: {why}")
            continue
        walked: dict[OID, Value] = dict(got.values)
        # One row shows a MIB is there; the small tables are read whole.
        jobs = [client.walk(_endpoint(address, cred.credentials, settings, 1), base)
                for base in PRESENCE.values()]
        jobs += [client.walk(_endpoint(address, cred.credentials, settings, rows), base)
                 for base, rows in TABLES.items()]
        for result in await asyncio.gather(*jobs):
            walked.update(result.rows)
        return walked, cred.name, "; ".join(notes)
    return {}, None, "; ".join(notes)


async def _open_ports(ctx: ProbeContext, address: str, settings: DiscoverSettings) -> frozenset[int]:
    assert settings.ports is not None
    tcp = TcpSettings(timeout=settings.tcp_timeout)
    results = await asyncio.gather(
        *(run_probe("tcp", Target(address, address, port), tcp, ctx) for port in settings.ports)
    )
    return frozenset(p for p, r in zip(settings.ports, results, strict=True) if r.status.value == "ok")


async def discover(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
    credential_sets: Sequence[CredentialSet],
    settings: DiscoverSettings,
    ctx: ProbeContext,
    progress: Progress | None = None,
) -> Discovery:
    """Sweep ``network`` and classify every address that answers ping."""
    addresses = [str(a) for a in (network.hosts() if network.num_addresses > 2 else network)]
    try:
        up = await icmp_sweep(ctx, addresses, settings, progress)
    except IcmpPermissionError as exc:
        raise DiscoverError(str(exc)) from None
    result = Discovery(str(network), len(addresses), icmp_mode=ctx.icmp.mode)
    found: dict[str, Device] = {}
    done = 0

    async def identify(address: str) -> None:
        nonlocal done
        walked: dict[OID, Value] = {}
        cred_name, note = None, ""
        if credential_sets:
            walked, cred_name, note = await snmp_identify(ctx, address, credential_sets, settings)
        ports = await _open_ports(ctx, address, settings) if settings.ports is not None else None
        if cred_name is not None:
            facts = facts_from_walked(address, walked, ports)
        else:
            facts = DeviceFacts(address, "failed" if credential_sets else "not_tried",
                                open_ports=ports)  # fmt: skip
        found[address] = Device(address, up[address], facts, classify(facts), cred_name, note)
        done += 1
        if progress:
            progress("identify", done, len(up))

    ordered = sorted(up, key=lambda a: ipaddress.ip_address(a))
    await _pool(ordered, settings.device_concurrency, identify)
    result.devices = [found[a] for a in ordered]
    creds = {c.name: c.credentials for c in credential_sets}
    for dev in result.devices:
        if dev.role == "switch" and dev.credentials in creds:
            for link in await switch_neighbours(ctx, dev.address, creds[dev.credentials], settings):
                address = link["remote_address"]
                if address and address not in found and ipaddress.ip_address(address) not in network:
                    result.neighbours.append({"address": address, "name": link["remote_name"],
                                              "seen_from": dev.address, "port": link["port"]})  # fmt: skip
    return result


#: What the neighbour suggestions read of a switch: LLDP and CDP tables, port names.
NEIGHBOUR_WALKS = (lldp.LLDP_REM, lldp.LLDP_REM_MAN_ADDR, lldp.LLDP_LOC_PORT, lldp.CDP_CACHE,
                   lldp.IFX_ENTRY + (1,))  # fmt: skip


async def switch_neighbours(
    ctx: ProbeContext, address: str, creds: SnmpCredentials, settings: DiscoverSettings
) -> list[dict[str, Any]]:
    """A switch's LLDP/CDP neighbours, as the topology module reads them."""
    walked: dict[OID, Value] = {}
    for base in NEIGHBOUR_WALKS:
        walked.update((await ctx.snmp.walk(_endpoint(address, creds, settings), base)).rows)
    return lldp.convert(walked).records.get("links", [])


# --- inventory --------------------------------------------------------------------------

_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def suggested_name(device: Device) -> str:
    """sysName when it makes a valid target name, else ``<class>-<address>``."""
    name = device.facts.sys_name
    if name:
        name = _NAME_CHARS.sub("-", name.split(".")[0]).strip("-._")[:63]
        if name and name[0].isalnum():
            return name.lower()
    cls = device.classification.device_class.replace("_", "-")
    return f"{cls}-{device.address.replace('.', '-').replace(':', '-')}"


@dataclass(slots=True)
class Known:
    """What an inventory already has, to recognise devices discovered again."""

    addresses: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)
    serials: dict[str, str] = field(default_factory=dict)

    def match(self, device: Device) -> str | None:
        f = device.facts
        keys: list[tuple[dict[str, str], str | None]] = [
            (self.addresses, _address_key(device.address)),
            (self.names, f.sys_name.lower() if f.sys_name else None),
            (self.names, suggested_name(device).lower()),
            (self.serials, f.serial.lower() if f.serial else None),
            *((self.macs, m.lower()) for m in f.macs),
        ]
        return next((table[key] for table, key in keys if key and key in table), None)


def _address_key(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return address.strip().rstrip(".").lower()


_MARK_LINE = re.compile(r"name:\s*([^,}\s]+).*" + re.escape(_MARK) + r"(.*)$")


def known_from(cfg: NetmonConfig | None, text: str = "") -> Known:
    """Addresses, names, and MAC/serial (``mac``/``serial`` labels, or the
    ``# discovered:`` notes a previous run wrote) of every target in the inventory."""
    known = Known()
    if cfg is not None:
        for t in resolve_targets(cfg):
            known.addresses.setdefault(_address_key(t.address), t.name)
            known.names.setdefault(t.name.lower(), t.name)
            if mac := t.labels.get("mac"):
                known.macs.setdefault(mac.lower(), t.name)
            if serial := t.labels.get("serial"):
                known.serials.setdefault(serial.lower(), t.name)
    for line in text.splitlines():
        if m := _MARK_LINE.search(line):
            name, notes = m.group(1).strip("'\""), m.group(2)
            for key, value in re.findall(r"(mac|serial) (\S+?)(?:,|$)", notes):
                (known.macs if key == "mac" else known.serials).setdefault(value.lower(), name)
    return known


def _flow(mapping: dict[str, Any]) -> str:
    dumped: str = yaml.safe_dump(mapping, default_flow_style=True, width=10_000, sort_keys=False)
    return dumped.strip()


def group_entries(
    devices: Iterable[Device], settings: DiscoverSettings, taken_groups: Iterable[str] = (),
    taken_names: Iterable[str] = (),
) -> list[tuple[dict[str, Any], list[tuple[dict[str, Any], str]]]]:
    """(group settings, [(target, note)]) per class, in a fixed class order; devices
    already known are left out. Group and target names avoid ``taken_*``."""
    groups_taken, names = set(taken_groups), {n.lower() for n in taken_names}
    by_class: dict[str, list[Device]] = {}
    for d in devices:
        if d.known_as is None:
            by_class.setdefault(d.classification.device_class, []).append(d)
    out = []
    for cls, base in GROUP_NAMES.items():
        members = by_class.get(cls)
        if not members:
            continue
        group_name, n = base, 2
        while group_name in groups_taken:
            group_name, n = f"{base}-{n}", n + 1
        groups_taken.add(group_name)
        group: dict[str, Any] = {"name": group_name, "role": CLASS_ROLE[cls]}
        snmp = any(d.credentials for d in members)
        if cls in ("access_point", "other") and snmp:
            group["modules"] = ["system", "interfaces"] if cls == "access_point" else ["system"]
        if not snmp:
            ports = sorted({p for d in members for p in (d.facts.open_ports or ())})
            group["probes"] = ["icmp", "tcp"] if ports else ["icmp"]
            if ports:
                group["tcp_ports"] = ports
        targets = []
        for d in members:
            name = suggested_name(d)
            if name.lower() in names:
                name = f"{name}-{d.address.replace('.', '-').replace(':', '-')}"
            names.add(name.lower())
            target: dict[str, Any] = {"name": name, "address": d.address}
            if d.credentials:
                target["credentials"] = d.credentials
                if settings.snmp_port != 161:
                    target["port"] = settings.snmp_port
            if snmp and not d.credentials:
                target["modules"] = []
            c = d.classification
            note = ", ".join(filter(None, [
                c.label, " ".join(filter(None, [c.vendor, c.model])) or None,
                f"confidence {c.confidence:.2f}",
                *(f"mac {m}" for m in d.facts.macs[:1]),
                f"serial {d.facts.serial}" if d.facts.serial else None,
            ]))  # fmt: skip
            targets.append((target, note.replace("#", "")))
        out.append((group, targets))
    return out


def groups_text(
    entries: Sequence[tuple[dict[str, Any], list[tuple[dict[str, Any], str]]]], indent: str = "  "
) -> str:
    """The groups as YAML list items, one target per line with its ``# discovered:`` note."""
    lines = []
    for group, targets in entries:
        for n, (key, value) in enumerate(group.items()):
            lines.append(f"{indent}{'- ' if n == 0 else '  '}{_flow({key: value})[1:-1]}")
        lines.append(f"{indent}  targets:")
        for target, note in targets:
            lines.append(f"{indent}    - {_flow(target)}  {_MARK} {note}")
    return "\n".join(lines) + "\n"


def fragment(discovery: Discovery, entries: Sequence[Any], extra_credentials: dict[str, Any]) -> str:
    """A stand-alone YAML config fragment (the ``--format yaml`` output)."""
    n = sum(len(t) for _, t in entries)
    head = (f"# {n} device{'s' * (n != 1)} found by `netmon discover {discovery.network}`.\n"
            "# Review the classes, then merge with --write -c netmon.yml (or paste the groups).\n")  # fmt: skip
    creds = ""
    if extra_credentials:
        creds = "credentials:\n" + "".join(
            f"  {name}: {_flow(value)}\n" for name, value in extra_credentials.items()
        )
    return head + creds + ("groups:\n" + groups_text(entries) if entries else "groups: []\n")


_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:(.*)$")


def merge_text(text: str, entries: Sequence[Any], extra_credentials: dict[str, Any]) -> str:
    """Append ``entries`` at the end of the ``groups:`` list of a config file's text and
    ``extra_credentials`` at the top of its ``credentials:`` mapping, keeping everything
    else byte for byte. Raises :class:`DiscoverError` for layouts it cannot edit safely."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    tops = [(i, m.group(1), m.group(2)) for i, line in enumerate(lines) if (m := _TOP_KEY.match(line))]

    def section(key: str) -> tuple[int, str] | None:
        return next(((i, rest) for i, k, rest in tops if k == key), None)

    def block_end(start: int) -> int:
        end = start + 1
        for j in range(start + 1, len(lines)):
            if lines[j].startswith((" ", "-", "\t")):
                end = j + 1
            elif lines[j].strip() and not lines[j].startswith("#"):
                break
        return end

    inserts: list[tuple[int, str]] = []
    if entries:
        found = section("groups")
        if found is None:
            inserts.append((len(lines), "groups:\n" + groups_text(entries)))
        else:
            i, rest = found
            rest = rest.split("#", 1)[0].strip()
            if rest == "[]":
                lines[i] = "groups:\n"
            elif rest:
                raise DiscoverError("groups: is written in flow style ([...]); write it as a block list to merge")
            end = block_end(i)
            item = next((ln for ln in lines[i + 1 : end] if ln.lstrip().startswith("- ")), "  - ")
            indent = item[: len(item) - len(item.lstrip())]
            inserts.append((end, groups_text(entries, indent)))
    if extra_credentials:
        body = "".join(f"  {name}: {_flow(value)}\n" for name, value in extra_credentials.items())
        found = section("credentials")
        if found is None:
            inserts.append((0 if not tops else tops[0][0], "credentials:\n" + body))
        else:
            i, rest = found
            rest = rest.split("#", 1)[0].strip()
            if rest == "{}":
                lines[i] = "credentials:\n"
            elif rest:
                raise DiscoverError("credentials: is written in flow style ({...}); write it as a block mapping to merge")
            nxt = next((ln for ln in lines[i + 1 :] if ln.strip() and not ln.lstrip().startswith("#")), "  ")
            indent = nxt[: len(nxt) - len(nxt.lstrip())] or "  "
            inserts.append((i + 1, body.replace("  ", indent, 1) if indent != "  " else body))
    for at, chunk in sorted(inserts, key=lambda x: x[0], reverse=True):
        lines.insert(at, chunk)
    return "".join(lines)


def file_sd_groups(entries: Sequence[Any]) -> list[dict[str, Any]]:
    """Prometheus file_sd target groups in ``netmon inventory export-sd``'s format."""
    out = []
    for group, targets in entries:
        for target, _note in targets:
            out.append({"targets": [target["name"]],
                        "labels": {"group": group["name"], "role": group["role"],
                                   "__param_target": target["name"]}})  # fmt: skip
    return out
