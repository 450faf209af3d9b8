"""The ICMP probe against real hosts: loopback, and namespaces built by the test with
veth links with loss and delay (tc netem, or nftables and a slow echo responder), a dead host, unreachable routes, a router
that answers 'host unreachable', and an unprivileged user with and without ping
sockets. Packets go only to 127/8, ::1 and addresses inside the test's namespaces."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from probes.context import ProbeContext
from probes.icmp import IcmpSettings, probe_icmp
from probes.result import ProbeResult, Status
from probes.target import Target
from tests import netns as nn
from tests.conftest import need, need_root

ALLOW_PING = "0 2147483647"
FAST = {"count": 3, "interval": "20ms", "timeout": "1s"}


def ipv6_loopback_missing() -> str | None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"::1 is not available here: {exc}"
    return None


def values(result: ProbeResult | dict[str, Any], metric: str) -> list[float]:
    samples = result["samples"] if isinstance(result, dict) else result.to_json()["samples"]
    return [s["value"] for s in samples if s["metric"] == metric]


@pytest.fixture
async def raw_ctx() -> AsyncIterator[ProbeContext]:
    need_root()
    async with ProbeContext(icmp_mode="raw") as ctx:
        yield ctx


@pytest.fixture
def ns() -> Iterator[nn.Netns]:
    need(nn.missing())
    with nn.netns() as namespace:
        yield namespace


def assert_all_answered(result: ProbeResult | dict[str, Any], count: int) -> None:
    data = result if isinstance(result, dict) else result.to_json()
    assert data["status"] == "ok", data["explanation"]
    assert values(data, "netmon_icmp_packets_received") == [count]
    assert values(data, "netmon_icmp_packet_loss_ratio") == [0.0]
    rtt = values(data, "netmon_icmp_rtt_seconds")
    assert len(rtt) == 3 and 0 < min(rtt) <= max(rtt) < 1.0


# ------------------------------------------------------------------ loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.45.6.7", "::1"])
async def test_raw_mode_pings_loopback(raw_ctx: ProbeContext, host: str) -> None:
    if host == "::1":
        need(ipv6_loopback_missing())
    result = await probe_icmp(Target(host, host), IcmpSettings.model_validate(FAST), raw_ctx)
    assert_all_answered(result, 3)
    assert result.facts == {"address": host, "icmp_mode": "raw"}
    assert "3 of 3 echo replies" in result.explanation


def test_datagram_mode_pings_loopback_inside_a_namespace(ns: nn.Netns) -> None:
    ns.sysctl("net.ipv4.ping_group_range", ALLOW_PING)
    hosts = ["127.0.0.1", "127.200.1.2"]
    if ns.run("ip", "-6", "addr", "show", "dev", "lo").stdout.count("::1"):
        hosts.append("::1")
    else:
        need("::1 is not available inside a namespace here")
    for host, result in zip(hosts, ns.run_probe(hosts, FAST, mode="datagram"), strict=True):
        assert_all_answered(result, 3)
        assert result["facts"] == {"address": host, "icmp_mode": "datagram"}


def test_unprivileged_user_gets_datagram_mode_when_ping_group_range_allows(
    ns: nn.Netns,
) -> None:
    need(nn.unprivileged_python_missing())
    ns.sysctl("net.ipv4.ping_group_range", ALLOW_PING)
    [result] = ns.run_probe(["127.0.0.1"], FAST, user="nobody")
    assert_all_answered(result, 3)
    assert result["facts"]["icmp_mode"] == "datagram"


def test_unprivileged_user_without_ping_sockets_gets_the_fix(ns: nn.Netns) -> None:
    need(nn.unprivileged_python_missing())
    ns.sysctl("net.ipv4.ping_group_range", "1 0")
    [result] = ns.run_probe(["127.0.0.1"], FAST, user="nobody")
    assert result["status"] == "permission_error"
    text = result["explanation"]
    for fix in ("ping_group_range", '"0 2147483647"', "/etc/sysctl.d/", "setcap cap_net_raw+ep",
                "AmbientCapabilities=CAP_NET_RAW", "is now '1 0'"):
        assert fix in text
    assert result["samples"] == []


async def test_unknown_name_is_a_dns_error(raw_ctx: ProbeContext) -> None:
    host = "no-such-host.invalid"
    result = await probe_icmp(Target(host, host), IcmpSettings(), raw_ctx)
    assert result.status is Status.DNS_ERROR
    assert host in result.explanation and result.samples == []


async def test_name_is_resolved_and_reported(raw_ctx: ProbeContext) -> None:
    result = await probe_icmp(
        Target("lo", "localhost"), IcmpSettings(count=1, family="4"), raw_ctx
    )
    assert result.status is Status.OK, result.explanation
    assert result.facts["address"] == "127.0.0.1"
    assert "(pinged 127.0.0.1)" in result.explanation


async def test_500_targets_at_once_lose_no_reply(raw_ctx: ProbeContext) -> None:
    hosts = [f"127.3.{i // 250}.{i % 250 + 1}" for i in range(500)]
    settings = IcmpSettings(count=3, interval=0.05, timeout=2.0)
    results = await asyncio.gather(
        *(probe_icmp(Target(h, h), settings, raw_ctx) for h in hosts)
    )
    bad = [(h, r.explanation) for h, r in zip(hosts, results) if r.status is not Status.OK]
    assert bad == []
    assert sum(values(r, "netmon_icmp_packets_received")[0] for r in results) == 1500


async def test_engine_shared_by_both_families_and_sequence_unique(raw_ctx: ProbeContext) -> None:
    need(ipv6_loopback_missing())
    engine = raw_ctx.icmp
    stats = await asyncio.gather(
        *(engine.ping(a, count=5, interval=0.001, timeout=1, payload_size=16)
          for a in ["127.0.0.1"] * 20 + ["::1"] * 20)
    )
    assert [s.received for s in stats] == [5] * 40
    assert len(engine._channels) == 2  # one socket per family, whatever the concurrency


async def test_runner_runs_the_icmp_probe(raw_ctx: ProbeContext) -> None:
    from probes.registry import run_probe  # importable once every probe kind exists

    result = await run_probe("icmp", Target("lo", "127.0.0.1"), IcmpSettings(count=2), raw_ctx)
    assert result.status is Status.OK, result.explanation
    assert values(result, "netmon_probe_success") == [1.0]
    assert values(result, "netmon_icmp_packets_received") == [2.0]


# ------------------------------------------------------------------ namespaces


async def test_lossy_link(raw_ctx: ProbeContext, ns: nn.Netns) -> None:
    count, p = 300, 0.30
    with nn.veth(ns, nn.free_subnet(), loss_percent=30) as link:
        settings = IcmpSettings(count=count, interval=0.01, timeout=1.0)
        result = await probe_icmp(Target("lossy", link.inner), settings, raw_ctx)
    assert result.status is Status.PARTIAL, result.explanation
    [loss] = values(result, "netmon_icmp_packet_loss_ratio")
    # Binomial: the measured loss lies within 4 standard deviations of 30 % (p ~ 6e-5).
    tolerance = 4 * math.sqrt(p * (1 - p) / count)
    assert abs(loss - p) <= tolerance, (loss, tolerance)
    assert len(values(result, "netmon_icmp_rtt_seconds")) == 3
    assert "loss" in result.explanation and "of 300 echo replies" in result.explanation


async def test_lossy_delayed_link(raw_ctx: ProbeContext, ns: nn.Netns) -> None:
    count, p = 300, 0.30
    with nn.veth(ns, nn.free_subnet(), loss_percent=30, delay_ms=50) as link:
        settings = IcmpSettings(count=count, interval=0.01, timeout=1.0)
        result = await probe_icmp(Target("lossy", link.inner), settings, raw_ctx)
    assert result.status is Status.PARTIAL, result.explanation
    [loss] = values(result, "netmon_icmp_packet_loss_ratio")
    assert abs(loss - p) <= 4 * math.sqrt(p * (1 - p) / count), loss
    rtt = dict(zip(["min", "avg", "max"], values(result, "netmon_icmp_rtt_seconds")))
    assert 0.050 <= rtt["min"] <= rtt["avg"] <= rtt["max"] < 1.0


async def test_silent_host_is_a_timeout(raw_ctx: ProbeContext, ns: nn.Netns) -> None:
    with nn.veth(ns, nn.free_subnet(), loss_percent=100) as link:
        settings = IcmpSettings(count=2, interval=0.05, timeout=0.5)
        result = await probe_icmp(Target("dead", link.inner), settings, raw_ctx)
    assert result.status is Status.TIMEOUT
    assert "no reply to 2 echo requests within 0.5s" in result.explanation
    assert values(result, "netmon_icmp_rtt_seconds") == []  # down is never 0 ms
    assert values(result, "netmon_icmp_packet_loss_ratio") == [1.0]


@pytest.mark.parametrize("mode", ["raw", "datagram"])
def test_unreachable_route_is_unreachable(ns: nn.Netns, mode: str) -> None:
    ns.sysctl("net.ipv4.ping_group_range", ALLOW_PING)
    ns.run("ip", "route", "add", "unreachable", "10.254.255.9/32")
    [result] = ns.run_probe(["10.254.255.9"], FAST, mode=mode)
    assert result["status"] == "unreachable", result["explanation"]
    assert "EHOSTUNREACH" in result["explanation"]
    assert values(result, "netmon_icmp_rtt_seconds") == []


@pytest.mark.parametrize("mode", ["raw", "datagram"])
def test_router_answering_host_unreachable(mode: str) -> None:
    """Prober namespace -> router namespace, which has an unreachable route to the
    target and so answers with ICMP 'host unreachable' quoting our echo request."""
    need(nn.missing())
    with nn.netns() as prober, nn.netns() as router:
        subnet = nn.free_subnet()
        with nn.veth(prober, subnet, outer_ns=router) as link:
            target = str(ipaddress.ip_network(subnet).broadcast_address + 5)
            router.sysctl("net.ipv4.ip_forward", "1")
            router.run("ip", "route", "add", "unreachable", f"{target}/32")
            prober.run("ip", "route", "add", f"{target}/32", "via", link.outer)
            prober.sysctl("net.ipv4.ping_group_range", ALLOW_PING)
            [result] = prober.run_probe([target], {**FAST, "count": 1}, mode=mode)
    assert result["status"] == "unreachable", result["explanation"]
    assert "destination unreachable: host unreachable" in result["explanation"]
    assert f"from {link.outer}" in result["explanation"]
