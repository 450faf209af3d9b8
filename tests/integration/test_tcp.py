"""The TCP probe against real sockets: loopback servers, closed ports, and hosts that are
silent or unreachable inside network namespaces this test creates (root only).

Namespace addresses come from 198.18.0.0/15 (RFC 2544, benchmarking) and exist only in
the namespaces and veth pairs below, so no packet leaves this machine.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import ValidationError

from probes.context import ProbeContext
from probes.metrics import METRICS
from probes.result import Status
from probes.target import Target
from probes.tcp import TcpSettings, probe_tcp
from tests.conftest import need_root

ROOT = Path(__file__).resolve().parents[2]
StartServer = Callable[[str], Awaitable[tuple["Server", int]]]
_seq = itertools.count(1)


class Server:
    """A listening asyncio server that remembers how each client said goodbye."""

    def __init__(self) -> None:
        self.goodbyes: asyncio.Queue[str] = asyncio.Queue()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await reader.read(100)
            self.goodbyes.put_nowait("fin" if data == b"" else "data")
        except ConnectionResetError:
            self.goodbyes.put_nowait("reset")
        finally:
            writer.close()


@pytest.fixture
async def server_factory() -> AsyncIterator[StartServer]:
    servers: list[asyncio.Server] = []

    async def start(host: str) -> tuple[Server, int]:
        srv = Server()
        server = await asyncio.start_server(srv.handle, host, 0)
        servers.append(server)
        return srv, server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def closed_port(host: str) -> int:
    """A port nothing listens on (bound, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_listening_port_is_ok_and_closed_cleanly(
    host: str, server_factory: StartServer, ctx: ProbeContext
) -> None:
    srv, port = await server_factory(host)
    result = await probe_tcp(Target("printer", host, port), TcpSettings(), ctx)
    assert result.status is Status.OK, result.explanation
    assert result.explanation.startswith(f"connected to port {port} in ")
    [sample] = result.samples
    assert sample.metric == "netmon_tcp_connect_seconds" and sample.metric in METRICS
    assert sample.label_dict == {"port": str(port)} and sample.value > 0
    assert result.facts == {"address": host, "port": str(port)}
    assert await asyncio.wait_for(srv.goodbyes.get(), 5) == "fin"


async def test_name_is_resolved_and_settings_port_used(
    server_factory: StartServer, ctx: ProbeContext
) -> None:
    first = str(socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0][4][0])
    _, port = await server_factory(first)
    result = await probe_tcp(Target("web", "localhost"), TcpSettings(port=port), ctx)
    assert result.status is Status.OK, result.explanation
    assert result.explanation.startswith(f"connected to port {port} of {first} in ")
    assert result.facts["address"] == first


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_closed_port_is_refused(host: str, ctx: ProbeContext) -> None:
    port = closed_port(host)
    result = await probe_tcp(Target("printer", host, port), TcpSettings(), ctx)
    assert result.status is Status.REFUSED
    assert f"port {port} refused: the service is not running or the port is wrong" in (
        result.explanation
    )
    assert result.samples == []


async def test_target_port_wins_over_settings_port(ctx: ProbeContext) -> None:
    port = closed_port("127.0.0.1")
    result = await probe_tcp(Target("x", "127.0.0.1", port), TcpSettings(port=1), ctx)
    assert result.facts["port"] == str(port)


@pytest.mark.parametrize(
    ("target", "needle"), [(Target("x", "127.0.0.1"), "no TCP port"), (Target("x", ""), "no host")]
)
async def test_missing_port_or_host_is_a_config_error(
    target: Target, needle: str, ctx: ProbeContext
) -> None:
    result = await probe_tcp(target, TcpSettings(), ctx)
    assert result.status is Status.CONFIG_ERROR and needle in result.explanation


def test_settings_validate_ports_and_durations() -> None:
    assert TcpSettings(timeout="500ms").timeout == 0.5  # type: ignore[arg-type]
    assert TcpSettings().deadline() > TcpSettings().timeout
    for bad in (0, 65536):
        with pytest.raises(ValidationError):
            TcpSettings(port=bad)
    with pytest.raises(ValidationError):
        TcpSettings(prot=22)  # type: ignore[call-arg]


# --- network namespaces (root) ------------------------------------------------------


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextmanager
def namespace() -> Iterator[tuple[str, int]]:
    """A fresh namespace (lo up) and a /24 number n for 198.18.n.0 that it owns."""
    need_root()
    n = next(_seq)
    ns = f"netmon-tcp-{os.getpid()}-{n}"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        yield ns, 100 + (os.getpid() + n) % 100
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@contextmanager
def veth_namespace() -> Iterator[tuple[str, str, int]]:
    """A namespace joined to this one by a veth pair: 198.18.n.1 here, .2 there."""
    with namespace() as (ns, n):
        host_if = f"nmt{os.getpid() % 100000}{n % 10}"
        ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        try:
            ip("addr", "add", f"198.18.{n}.1/30", "dev", host_if)
            ip("link", "set", host_if, "up")
            ip("-n", ns, "addr", "add", f"198.18.{n}.2/30", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            yield ns, host_if, n
        finally:  # deleting one end removes the pair and the routes through it
            subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)


async def test_silent_host_is_a_timeout(ctx: ProbeContext) -> None:
    with veth_namespace() as (_, host_if, n):
        # Frames to .2 carry a MAC nobody owns: the namespace drops them without a word,
        # like a firewall that drops the port (no netem or nftables needed).
        ip("neigh", "replace", f"198.18.{n}.2", "lladdr", "02:00:00:00:00:01",
           "dev", host_if, "nud", "permanent")  # fmt: skip
        settings = TcpSettings(timeout=0.3)
        result = await probe_tcp(Target("lab-pc", f"198.18.{n}.2", 22), settings, ctx)
    assert result.status is Status.TIMEOUT, result.explanation
    assert "no answer within 0.3s: host down or a firewall drops the port" in result.explanation
    assert result.samples == []


async def test_icmp_unreachable_from_a_router(ctx: ProbeContext) -> None:
    with veth_namespace() as (ns, host_if, n):
        # The namespace acts as a router with an 'unreachable' route: it answers our SYN
        # with ICMP host unreachable.
        ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        ip("-n", ns, "route", "add", "unreachable", f"198.18.{n}.9/32")
        ip("route", "add", f"198.18.{n}.9/32", "via", f"198.18.{n}.2", "dev", host_if)
        result = await probe_tcp(Target("sw", f"198.18.{n}.9", 22), TcpSettings(timeout=5), ctx)
    assert result.status is Status.UNREACHABLE, result.explanation
    assert "unreachable: no route to the host" in result.explanation


IN_NS = """
import asyncio, json, sys
from probes.context import ProbeContext
from probes.target import Target
from probes.tcp import TcpSettings, probe_tcp

async def main():
    async with ProbeContext() as ctx:
        out = []
        for host in sys.argv[1:]:
            r = await probe_tcp(Target(host, host, 22), TcpSettings(timeout=3), ctx)
            out.append({"status": r.status.value, "explanation": r.explanation})
        print(json.dumps(out))

asyncio.run(main())
"""


def probe_in_namespace(ns: str, hosts: list[str]) -> list[dict[str, str]]:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", IN_NS, *hosts],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return list(json.loads(proc.stdout))


def test_local_routes_unreachable_prohibit_none_and_dns() -> None:
    with namespace() as (ns, n):
        ip("-n", ns, "route", "add", "unreachable", f"198.18.{n}.20/32")
        ip("-n", ns, "route", "add", "prohibit", f"198.18.{n}.21/32")
        # 198.18.n.22: no route at all (only lo exists). The name lookup cannot reach any
        # DNS server from here either, so it fails without sending a packet anywhere.
        hosts = [f"198.18.{n}.20", f"198.18.{n}.21", f"198.18.{n}.22", "no-such-host.invalid"]
        results = probe_in_namespace(ns, hosts)
    assert [r["status"] for r in results] == ["unreachable"] * 3 + ["dns_error"], results
    assert "no route to the host" in results[0]["explanation"]
    assert "prohibits it" in results[1]["explanation"]
    assert "no route to its network" in results[2]["explanation"]
    assert results[3]["explanation"].startswith("cannot resolve no-such-host.invalid: ")
