"""Network namespaces for tests: private hosts, links with loss and delay, dead hosts.

Everything here creates only namespaces and veth pairs with unique names (pid + counter)
and removes them afterwards, so tests never touch the host's own interfaces, routes or
sysctls: sysctls under ``net.`` are per namespace. Needs root and iproute2 (``ip``,
``tc``); call :func:`missing` to learn why not, then ``need(missing())`` in a test.
Loss uses ``tc netem`` when the kernel has it, else an nftables random-drop rule;
delay likewise, else a user-space echo responder in the namespace
(``tests/echo_responder.py``) answers pings after the delay.

    with netns() as ns, veth(ns, free_subnet(), loss_percent=30, delay_ms=50) as link:
        ... ping link.inner from this namespace ...
        ns.sysctl("net.ipv4.ping_group_range", "0 2147483647")
        ns.run_probe(["127.0.0.1"], {"count": 2}, mode="datagram")
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
_counter = itertools.count()


def missing() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool, package in (("ip", "iproute2"), ("tc", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"needs {tool} ({package})"
    return None


def free_subnet() -> str:
    """A /30 in 10.254.0.0/16 that no interface on this host uses (pid-derived)."""
    used = sh("ip", "-o", "addr", "show").stdout
    for _ in range(64):
        n = (os.getpid() * 7 + next(_counter)) % 16384
        subnet = ipaddress.ip_network(f"10.254.{n // 64}.{(n % 64) * 4}/30")
        if not any(str(a) in used.split() or f"{a}/" in used for a in subnet):
            return str(subnet)
    raise RuntimeError("no free /30 in 10.254.0.0/16")


def _unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 100000}x{next(_counter)}"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


@dataclass(frozen=True)
class Netns:
    """A network namespace; ``None`` where a namespace is expected means the host's."""

    name: str

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(*self.prefix(), *cmd, check=check)

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    def run_probe(
        self,
        hosts: Sequence[str],
        settings: dict[str, Any] | None = None,
        *,
        mode: str | None = None,
        user: str | None = None,
        timeout: float = 60,
    ) -> list[dict[str, Any]]:
        """Run ``probe_icmp`` on each host inside this namespace, one subprocess.

        ``user`` (e.g. ``"nobody"``) drops privileges with setpriv and runs the system
        Python with the venv's site-packages, since the venv's interpreter may live
        where that user cannot read. Returns ``ProbeResult.to_json()`` dicts.
        """
        return run_icmp_probes(self, hosts, settings, mode=mode, user=user, timeout=timeout)


_PROBE_SCRIPT = """
import asyncio, json, sys
from probes.context import ProbeContext
from probes.icmp import IcmpSettings, probe_icmp
from probes.target import parse_target

async def main(hosts, settings, mode):
    async with ProbeContext(icmp_mode=mode) as ctx:
        s = IcmpSettings(**settings)
        results = await asyncio.gather(*(probe_icmp(parse_target(h), s, ctx) for h in hosts))
    print(json.dumps([r.to_json() for r in results]))

asyncio.run(main(*json.loads(sys.argv[1])))
"""


def run_icmp_probes(
    ns: Netns | None,
    hosts: Sequence[str],
    settings: dict[str, Any] | None = None,
    *,
    mode: str | None = None,
    user: str | None = None,
    timeout: float = 60,
) -> list[dict[str, Any]]:
    """See :meth:`Netns.run_probe`; ``ns=None`` runs in the host's namespace."""
    args = json.dumps([list(hosts), settings or {}, mode])
    env = dict(os.environ)
    python = sys.executable
    cmd: list[str] = []
    if user is not None:
        python = system_python()
        site = next((REPO / ".venv" / "lib").glob("python3*/site-packages"))
        env["PYTHONPATH"] = f"{REPO}:{site}"
        cmd = ["setpriv", f"--reuid={user}", f"--regid={_group_of(user)}", "--clear-groups"]
    else:
        env["PYTHONPATH"] = str(REPO)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [*(ns.prefix() if ns else []), *cmd, python, "-c", _PROBE_SCRIPT, args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd="/", check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"probe subprocess failed ({proc.returncode}): {proc.stderr}")
    return list(json.loads(proc.stdout))


def system_python() -> str:
    """A Python any user can run (the venv's may sit under /root, mode 700)."""
    return "/usr/bin/python3"


def _group_of(user: str) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def unprivileged_python_missing(user: str = "nobody") -> str | None:
    """Why ``user`` cannot import netmon with the system Python, or None if it can."""
    python = system_python()
    if not os.path.exists(python):
        return f"{python} not found (needed to run as {user})"
    site = next((REPO / ".venv" / "lib").glob("python3*/site-packages"), None)
    if site is None:
        return "no .venv site-packages"
    env = {"PYTHONPATH": f"{REPO}:{site}", "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={_group_of(user)}", "--clear-groups",
         python, "-c", "import pydantic, icmplib, probes.icmp"],
        capture_output=True, text=True, env=env, cwd="/", timeout=30, check=False,
    )
    if proc.returncode != 0:
        return f"{user} cannot import netmon with {python}: {proc.stderr.strip()[-200:]}"
    return None


@contextmanager
def netns(prefix: str = "nmt") -> Iterator[Netns]:
    """A fresh namespace with ``lo`` up; deleted (with its veth ends) on exit."""
    ns = Netns(_unique(prefix))
    sh("ip", "netns", "add", ns.name)
    try:
        sh("ip", "-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        sh("ip", "netns", "del", ns.name, check=False)


@dataclass(frozen=True)
class Link:
    """A veth pair: ``outer`` end in ``outer_ns`` (None = host), ``inner`` end in ``ns``."""

    outer_ns: Netns | None
    ns: Netns
    outer_dev: str
    inner_dev: str
    outer: str  # address on the outer end
    inner: str  # address on the inner end
    prefixlen: int


def _ip(ns: Netns | None, *args: str) -> subprocess.CompletedProcess[str]:
    return sh("ip", *(["-n", ns.name] if ns else []), *args)


def _mac(ns: Netns | None, dev: str) -> str:
    out = _ip(ns, "-j", "link", "show", "dev", dev).stdout
    return str(json.loads(out)[0]["address"])


@contextmanager
def veth(
    ns: Netns,
    subnet: str,
    *,
    outer_ns: Netns | None = None,
    loss_percent: float = 0,
    delay_ms: float = 0,
) -> Iterator[Link]:
    """Link ``outer_ns`` (default: host) to ``ns`` with the first two addresses of
    ``subnet``. ``loss_percent``/``delay_ms`` impair what leaves the inner end (the
    replies). Neighbour entries are static, so lost ARP never turns a silent host into
    an 'unreachable' one.
    """
    net = ipaddress.ip_network(subnet)
    outer, inner = (str(a) for a in itertools.islice(net.hosts(), 2))
    base = _unique("nv")
    outer_dev, inner_dev = f"{base}a", f"{base}b"
    responder: subprocess.Popen[str] | None = None
    _ip(outer_ns, "link", "add", outer_dev, "type", "veth", "peer", "name", inner_dev)
    try:
        _ip(outer_ns, "link", "set", inner_dev, "netns", ns.name)
        _ip(outer_ns, "addr", "add", f"{outer}/{net.prefixlen}", "dev", outer_dev)
        _ip(ns, "addr", "add", f"{inner}/{net.prefixlen}", "dev", inner_dev)
        _ip(outer_ns, "link", "set", outer_dev, "up")
        _ip(ns, "link", "set", inner_dev, "up")
        _ip(outer_ns, "neigh", "replace", inner, "lladdr", _mac(ns, inner_dev),
            "dev", outer_dev, "nud", "permanent")
        _ip(ns, "neigh", "replace", outer, "lladdr", _mac(outer_ns, outer_dev),
            "dev", inner_dev, "nud", "permanent")
        if loss_percent or delay_ms:
            responder = impair(ns, inner_dev, loss_percent=loss_percent, delay_ms=delay_ms)
        yield Link(outer_ns, ns, outer_dev, inner_dev, outer, inner, net.prefixlen)
    finally:
        if responder is not None:
            responder.kill()
            responder.wait(timeout=5)
        # Deleting either end removes both; the inner one may already be gone with ns.
        sh("ip", *(["-n", outer_ns.name] if outer_ns else []), "link", "del", outer_dev,
           check=False)


def set_netem(ns: Netns | None, dev: str, spec: str) -> None:
    """Replace the root qdisc of ``dev`` with ``netem <spec>`` (e.g. 'loss 100%')."""
    sh(*(ns.prefix() if ns else []), "tc", "qdisc", "replace", "dev", dev, "root",
       "netem", *spec.split())


@functools.cache
def netem_missing() -> str | None:
    """Why ``tc netem`` cannot be used (e.g. a kernel built without sch_netem), or None."""
    if (reason := missing()) is not None:
        return reason
    with netns("nmchk") as ns:
        proc = ns.run("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
                      check=False)
    if proc.returncode != 0:
        return f"tc netem is not available in this kernel: {proc.stderr.strip()}"
    return None


def impair(
    ns: Netns, dev: str, *, loss_percent: float = 0, delay_ms: float = 0
) -> subprocess.Popen[str] | None:
    """Drop ``loss_percent`` of the packets leaving ``dev`` and delay the rest.

    netem when available. Otherwise nftables drops at random, and for a delay the
    namespace's kernel stops answering pings while a user-space responder answers them
    ``delay_ms`` late (ICMP echo only); the responder process is returned for cleanup.
    """
    if netem_missing() is None:
        spec = f"loss {loss_percent:g}%" + (f" delay {delay_ms:g}ms" if delay_ms else "")
        set_netem(ns, dev, spec)
        return None
    responder = _slow_echo_responder(ns, delay_ms) if delay_ms else None
    if loss_percent:
        _nft_drop(ns, dev, loss_percent)
    return responder


def _slow_echo_responder(ns: Netns, delay_ms: float) -> subprocess.Popen[str]:
    ns.sysctl("net.ipv4.icmp_echo_ignore_all", "1")
    proc = subprocess.Popen(
        [*ns.prefix(), sys.executable, str(REPO / "tests" / "echo_responder.py"),
         "--delay-ms", f"{delay_ms:g}"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the echo responder did not start")
    return proc


def _nft_drop(ns: Netns, dev: str, loss_percent: float) -> None:
    sample = "" if loss_percent >= 100 else f"numgen random mod 100 < {loss_percent:g} "
    rules = (
        "table inet netmon_impair {\n"
        " chain output { type filter hook output priority 0; policy accept;\n"
        f'  oifname "{dev}" {sample}drop\n'
        " }\n}\n"
    )
    subprocess.run([*ns.prefix(), "nft", "-f", "-"], input=rules, text=True, check=True,
                   capture_output=True, timeout=30)
