"""Scenario infrastructure for the alerting end-to-end tests (issue 4).

- :class:`HostLab`: a network namespace holding several "devices" (addresses on one veth
  link) that a test takes down together (:meth:`HostLab.link`, a closet switch losing
  its uplink) or one by one (:meth:`HostLab.kill` / :meth:`HostLab.revive`, an nftables
  drop of everything sent to that address).
- :func:`scenario_config`: the YAML of a small school with short intervals and an
  ``alerts:`` section that emails the test's SMTP server (group_wait 1s,
  group_interval 2s, repeat_interval 1h).
- Mail helpers (:func:`firing`, :func:`resolved`, :func:`mentions`) and ``/metrics``
  readers (:func:`metrics`, :func:`wait_probe_rounds`).

``netmon run`` itself is :class:`tests.ha_lab.NetmonProcess` (shared with the HA tests).
Every wait is bounded; packets go only to 127.0.0.0/8 and into namespaces made here.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import yaml

from tests import netns as nn
from tests.exposition import Series, parse
from tests.ha_lab import LabError, NetmonProcess, wait_until

#: The built-in rule for "no reply to any ping" (issue 4: device down).
RULE_DOWN = "device_down"
#: The built-in rule for a consumable running low.
RULE_SUPPLY_LOW = "printer_supply_low"
#: Pings per probe run, and how long to wait for each reply (a down host costs ~0.5 s).
ICMP = {"count": 2, "interval": "100ms", "timeout": "500ms"}


# --- devices in a namespace ------------------------------------------------------------


def free_block(prefixlen: int = 28) -> ipaddress.IPv4Network:
    """A block in 10.253.0.0/16 that no interface here uses (pid-derived start)."""
    used = nn.sh("ip", "-o", "addr", "show").stdout
    base = int(ipaddress.ip_address("10.253.0.0"))
    size = 2 ** (32 - prefixlen)
    count = 65536 // size
    start = (os.getpid() * 13) % count
    for i in range(count):
        first = ipaddress.IPv4Address(base + ((start + i) % count) * size)
        net = ipaddress.IPv4Network(f"{first}/{prefixlen}")
        if not any(f" {a}/" in used for a in (net.network_address, *net.hosts())):
            return net
    raise LabError("no free block in 10.253.0.0/16")


@dataclass
class HostLab:
    """Devices in one namespace behind one veth link; ``addresses[name]`` is each one's IP."""

    ns: nn.Netns
    inner_dev: str
    outer_dev: str
    addresses: dict[str, str]
    _dead: set[str] = field(default_factory=set)

    def link(self, up: bool) -> None:
        """Bring the namespace's end of the link up or down (every device at once)."""
        self.ns.run("ip", "link", "set", self.inner_dev, "up" if up else "down")

    def kill(self, *names: str) -> None:
        """Make devices silent: everything sent to them is dropped."""
        for name in names:
            if name not in self._dead:
                self.ns.run("nft", "add", "element", "inet", "alertlab", "dead",
                            f"{{ {self.addresses[name]} }}")
                self._dead.add(name)

    def revive(self, *names: str) -> None:
        for name in names:
            if name in self._dead:
                self.ns.run("nft", "delete", "element", "inet", "alertlab", "dead",
                            f"{{ {self.addresses[name]} }}")
                self._dead.discard(name)


@contextmanager
def host_lab(names: Sequence[str]) -> Iterator[HostLab]:
    """A namespace answering pings on one address per name (root, iproute2, nftables)."""
    net = free_block(28 if len(names) <= 12 else 24)
    hosts = [str(a) for a in net.hosts()]
    if len(names) + 2 > len(hosts):
        raise LabError(f"{len(names)} devices do not fit in {net}")
    with nn.netns("nmal") as ns, nn.veth(ns, str(net)) as link:
        inner_mac = nn._mac(ns, link.inner_dev)
        addresses = dict(zip(names, hosts[2:], strict=False))
        for address in addresses.values():
            ns.run("ip", "addr", "add", f"{address}/{net.prefixlen}", "dev", link.inner_dev)
            # Static neighbours: a device that is down times out, whatever ARP does.
            nn.sh("ip", "neigh", "replace", address, "lladdr", inner_mac, "dev", link.outer_dev,
                  "nud", "permanent")
        rules = (
            "table inet alertlab {\n set dead { type ipv4_addr; }\n"
            " chain input { type filter hook input priority 0; policy accept;\n"
            "  ip daddr @dead drop\n }\n}\n"
        )
        subprocess.run([*ns.prefix(), "nft", "-f", "-"], input=rules, text=True, check=True,
                       capture_output=True, timeout=30)
        yield HostLab(ns, link.inner_dev, link.outer_dev, addresses)


# --- config ----------------------------------------------------------------------------


def scenario_config(
    *,
    smtp_port: int,
    groups: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Any] | None = None,
    schedules: Mapping[str, Any] | None = None,
    credentials: Mapping[str, Any] | None = None,
    alerts: Mapping[str, Any] | None = None,
    interval: str = "1s",
) -> str:
    """A netmon config: ``groups`` as in the inventory, alerts emailed to ``smtp_port``.

    ``rules`` changes built-in rules (``{name: {for: 0s}}``); ``alerts`` is merged over
    the ``alerts:`` section built here (e.g. ``flapping``, ``receivers``).
    """
    section: dict[str, Any] = {
        "rules": {RULE_DOWN: {"for": "0s"}, **(rules or {})},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                 "from": "netmon@school.example", "timeout": "5s"},
        "receivers": [{"name": "it-team",
                       "email": {"to": ["it@school.example"], "send_resolved": True}}],
        "route": {"receiver": "it-team", "group_by": ["target"], "group_wait": "1s",
                  "group_interval": "2s", "repeat_interval": "1h"},
        **(alerts or {}),
    }
    doc: dict[str, Any] = {
        "defaults": {"interval": interval, "labels": {"site": "test-school"}, "icmp": ICMP,
                     "snmp": {"timeout": "1s", "retries": 0}},
        **({"credentials": dict(credentials)} if credentials else {}),
        **({"schedules": dict(schedules)} if schedules else {}),
        "groups": [dict(g) for g in groups],
        "alerts": section,
    }
    return yaml.safe_dump(doc, sort_keys=False, width=100)


# --- mail ------------------------------------------------------------------------------


def body(message: Message) -> str:
    """Subject plus every text part (plain and HTML), decoded."""
    parts = [str(message.get("Subject", ""))]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                parts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(parts)


def firing(messages: Sequence[Message]) -> list[Message]:
    """Messages whose subject starts with ``[FIRING``."""
    return [m for m in messages if str(m.get("Subject", "")).startswith("[FIRING")]


def resolved(messages: Sequence[Message]) -> list[Message]:
    return [m for m in messages if str(m.get("Subject", "")).startswith("[RESOLVED")]


def mentions(messages: Sequence[Message], *words: str) -> list[Message]:
    """Messages whose subject or text contains every one of ``words``."""
    return [m for m in messages if all(w in body(m) for w in words)]


def subjects(messages: Sequence[Message]) -> list[str]:
    """Subjects as a mail client shows them: a long one is folded over lines, and
    unfolding leaves the fold's whitespace (RFC 5322 2.2.3)."""
    return [" ".join(str(m.get("Subject", "")).split()) for m in messages]


# --- netmon's own view -----------------------------------------------------------------


def metrics(netmon: NetmonProcess) -> Series:
    with urllib.request.urlopen(f"{netmon.url}/metrics", timeout=10) as resp:
        return parse(resp.read().decode())


def metric_sum(series: Series, name: str, **labels: str) -> float:
    """Sum of every series of ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(v for lbl, v in series.get(name, []) if labels.items() <= lbl.items())


def probe_success(netmon: NetmonProcess, target: str, probe: str = "icmp") -> float | None:
    """The target's latest netmon_probe_success, or None before its first run."""
    hits = [v for lbl, v in metrics(netmon).get("netmon_probe_success", [])
            if lbl.get("target") == target and lbl.get("probe") == probe]
    return hits[0] if hits else None


def wait_probe_rounds(netmon: NetmonProcess, jobs: int, rounds: int = 3,
                      timeout: float = 30) -> None:
    """Wait until netmon has finished ``rounds`` more probe runs per target (each run is
    an evaluation of that target's rules): "nothing happened" means something here.
    ``jobs``: probe jobs in the config (targets x probes)."""
    def runs() -> float:
        return metric_sum(metrics(netmon), "netmon_probe_runs_total")

    goal = runs() + rounds * jobs
    wait_until(lambda: runs() >= goal, timeout, f"{rounds} more probe rounds")


def alerts_of(netmon: NetmonProcess, *, target: str | None = None,
              rule: str | None = None) -> list[dict[str, Any]]:
    """``netmon alerts list --json`` rows, optionally for one target and rule."""
    return [a for a in netmon.alerts()
            if (target is None or a.get("target") == target)
            and (rule is None or a.get("rule") == rule)]


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns a truthy value and return that value."""
    box: list[Any] = []

    def done() -> bool:
        box[:] = [check()]
        return bool(box[0])

    wait_until(done, timeout, what)
    return box[0]



# --- webhook ---------------------------------------------------------------------------


class WebhookSink:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                doc = json.loads(self.rfile.read(length) or b"null")
                with sink._lock:
                    sink._bodies.append(doc)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._lock = threading.Lock()
        self._bodies: list[Any] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def bodies(self) -> list[Any]:
        with self._lock:
            return list(self._bodies)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
