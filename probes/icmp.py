"""ICMP echo probe: is the host up, how much is lost, how fast does it answer?

Sends ``count`` echo requests through the process's shared :class:`IcmpEngine`
(``ctx.icmp``) and turns what came back into a status: ok (every reply), partial (some
lost), timeout (silence: down or ICMP blocked), unreachable (an ICMP error or a local
routing refusal), dns_error, permission_error. Latency samples exist only when a reply
arrived: down is never 0 ms. The name is resolved once per run, with icmplib's
resolver (IPv4 first, then IPv6, unless ``family`` says otherwise).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
from typing import Annotated, Literal

from icmplib import async_resolve
from icmplib.exceptions import NameLookupError
from pydantic import BeforeValidator, Field

from probes.context import ProbeContext
from probes.errors import IcmpPermissionError
from probes.icmp_engine import PingStats
from probes.result import ProbeResult, Sample, Status
from probes.settings import Duration, StrictModel
from probes.target import Target

#: Longest a name lookup may take before the probe calls it a DNS failure.
_RESOLVE_TIMEOUT = 2.0
_DEADLINE_MARGIN = 1.0

Family = Annotated[Literal["auto", "4", "6"], BeforeValidator(lambda v: str(v))]


class IcmpSettings(StrictModel):
    """How to run one ICMP echo check."""

    count: int = Field(default=3, ge=1, le=1000)
    #: Pause between echo requests to the same host.
    interval: Duration = 0.2
    #: How long to wait for each reply after its request was sent.
    timeout: Duration = 1.0
    #: Bytes of data after the 8-byte ICMP header (56 like ping: 64-byte packets).
    payload_size: int = Field(default=56, ge=0, le=65000)
    #: Address family for names: auto (IPv4 first, then IPv6), 4 or 6.
    family: Family = "auto"

    def deadline(self) -> float:
        """Generous upper bound of one run: lookup, all sends, the last wait, slack."""
        return (
            _RESOLVE_TIMEOUT
            + (self.count - 1) * self.interval
            + self.timeout
            + _DEADLINE_MARGIN
        )


async def probe_icmp(target: Target, settings: IcmpSettings, ctx: ProbeContext) -> ProbeResult:
    """Ping the target ``settings.count`` times; never raises for network trouble."""
    resolved = await _resolve(target.host, settings.family)
    if isinstance(resolved, ProbeResult):
        return resolved
    address = resolved
    try:
        engine = ctx.icmp
    except IcmpPermissionError as exc:
        return ProbeResult(Status.PERMISSION_ERROR, str(exc), facts={"address": address})
    stats = await engine.ping(
        address,
        count=settings.count,
        interval=settings.interval,
        timeout=settings.timeout,
        payload_size=settings.payload_size,
    )
    status, explanation = _judge(stats, settings)
    if address != target.host:
        explanation = f"{explanation} (pinged {address})"
    return ProbeResult(
        status,
        explanation,
        samples=icmp_samples(stats),
        facts={"address": address, "icmp_mode": engine.mode},
    )


async def _resolve(host: str, family: str) -> str | ProbeResult:
    """The one address to ping, or a dns_error / config_error result."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        if family != "auto" and str(ip.version) != family:
            return ProbeResult(
                Status.CONFIG_ERROR,
                f"{host} is an IPv{ip.version} address but the probe's family is {family}",
            )
        return host
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT):
            addresses = await async_resolve(host, None if family == "auto" else int(family))
    except NameLookupError:
        wanted = {"auto": "", "4": "IPv4 ", "6": "IPv6 "}[family]
        return ProbeResult(
            Status.DNS_ERROR,
            f"cannot resolve {host} to an {wanted}address: check the name and this "
            "machine's DNS servers",
        )
    except TimeoutError:
        return ProbeResult(
            Status.DNS_ERROR,
            f"resolving {host} took longer than {_RESOLVE_TIMEOUT:g}s: "
            "check this machine's DNS servers",
        )
    return str(addresses[0])


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _judge(stats: PingStats, settings: IcmpSettings) -> tuple[Status, str]:
    """Status and explanation; the explanation does not name the target (callers show it)."""
    sent, received = stats.sent, stats.received
    if received:
        avg = _ms(sum(stats.rtts) / received)
        if received >= sent:
            return Status.OK, f"{received} of {sent} echo replies, avg {avg}"
        loss = 1 - received / sent
        tail = f"; {stats.errors[0]}" if stats.errors else ""
        return (
            Status.PARTIAL,
            f"{received} of {sent} echo replies ({loss:.0%} loss), avg {avg}{tail}",
        )
    if stats.errors:
        return Status.UNREACHABLE, f"unreachable: {stats.errors[0]}"
    silence = f"no reply to {sent} echo requests within {settings.timeout:g}s"
    return Status.TIMEOUT, f"{silence}: host down, or ICMP blocked"


_MIN, _AVG, _MAX = (("stat", "min"),), (("stat", "avg"),), (("stat", "max"),)


def icmp_samples(stats: PingStats) -> list[Sample]:
    """Packet counts and loss always; RTT and jitter only when something answered."""
    sent, received = stats.sent, stats.received
    samples = [
        Sample("netmon_icmp_packets_sent", (), float(sent)),
        Sample("netmon_icmp_packets_received", (), float(received)),
        Sample("netmon_icmp_packet_loss_ratio", (), 1 - received / sent if sent else 1.0),
    ]
    rtts = stats.rtts
    if rtts:
        samples += [
            Sample("netmon_icmp_rtt_seconds", _MIN, min(rtts)),
            Sample("netmon_icmp_rtt_seconds", _AVG, sum(rtts) / len(rtts)),
            Sample("netmon_icmp_rtt_seconds", _MAX, max(rtts)),
            Sample("netmon_icmp_jitter_seconds", (), jitter(rtts)),
        ]
    return samples


def jitter(rtts: list[float]) -> float:
    """Mean absolute difference between consecutive round-trip times (0 for one)."""
    if len(rtts) < 2:
        return 0.0
    return sum(abs(b - a) for a, b in itertools.pairwise(rtts)) / (len(rtts) - 1)
