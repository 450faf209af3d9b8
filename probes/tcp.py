"""TCP connect probe: can this machine open a connection to HOST:PORT, and how fast?

Answers "is the printer's 9100 / SSH / RDP / web port up?". The name is resolved once,
the first address is tried, the handshake is timed, and the connection is closed
gracefully (FIN, not RST) so the device logs no error. Every failure is a status:
refused (RST), timeout (silence), unreachable (no route, ICMP unreachable), dns_error.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time

from pydantic import Field

from probes.context import ProbeContext
from probes.result import ProbeResult, Sample, Status
from probes.settings import Duration, StrictModel
from probes.target import Target

#: Extra seconds the runner allows on top of ``timeout`` so the probe's own, more
#: precise timeout explanation wins over the runner's generic one.
_DEADLINE_MARGIN = 1.0

_UNREACHABLE_HINTS = {
    errno.EHOSTUNREACH: "no route to the host (a router answered 'host unreachable', "
    "or the host does not answer ARP on its own network)",
    errno.ENETUNREACH: "no route to its network: check this machine's routes or VPN",
    errno.ENETDOWN: "the network interface towards it is down",
    errno.EACCES: "a route or firewall rule on this machine prohibits it",
    errno.EPERM: "this machine's firewall blocked the connection",
    errno.EADDRNOTAVAIL: "the address cannot be used from this machine",
}


class TcpSettings(StrictModel):
    """How to run one TCP connect check."""

    #: Used when the target has no port of its own.
    port: int | None = Field(default=None, ge=1, le=65535)
    #: Time allowed for name resolution plus the handshake.
    timeout: Duration = 2.0

    def deadline(self) -> float:
        return self.timeout + _DEADLINE_MARGIN


def _seconds(value: float) -> str:
    return f"{value:g}s"


async def probe_tcp(target: Target, settings: TcpSettings, ctx: ProbeContext) -> ProbeResult:
    """Time a TCP handshake to the target; never raises for network trouble."""
    port = target.port if target.port is not None else settings.port
    if not target.host:
        return ProbeResult(Status.CONFIG_ERROR, "no host to connect to")
    if port is None:
        return ProbeResult(
            Status.CONFIG_ERROR,
            f"no TCP port for {target.host}: write HOST:PORT or set a port (e.g. 9100, 22, 443)",
        )
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(settings.timeout):
            infos = await loop.getaddrinfo(
                target.host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except socket.gaierror as exc:
        return ProbeResult(Status.DNS_ERROR, f"cannot resolve {target.host}: {exc.strerror}")
    except TimeoutError:
        return ProbeResult(
            Status.DNS_ERROR,
            f"resolving {target.host} took longer than {_seconds(settings.timeout)}: "
            "check this machine's DNS servers",
        )
    family, type_, proto, _, address = infos[0]
    ip = str(address[0])
    facts = {"address": ip, "port": str(port)}
    # Explanations do not name the target (callers show it), only what they add to it.
    shown = f"port {port}" if ip == target.host else f"port {port} of {ip}"
    remaining = settings.timeout - (time.perf_counter() - started)

    sock = socket.socket(family, type_, proto)
    try:
        sock.setblocking(False)
        t0 = time.perf_counter()
        async with asyncio.timeout(max(remaining, 0.0)):
            await loop.sock_connect(sock, address)
        connect_seconds = time.perf_counter() - t0
    except TimeoutError:
        return ProbeResult(
            Status.TIMEOUT,
            f"{shown}: no answer within {_seconds(settings.timeout)}: "
            "host down or a firewall drops the port",
            facts=facts,
        )
    except ConnectionRefusedError:
        return ProbeResult(
            Status.REFUSED,
            f"{shown} refused: the service is not running or the port is wrong",
            facts=facts,
        )
    except OSError as exc:
        return _os_error_result(exc, shown, facts)
    finally:
        sock.close()  # a plain close sends FIN: a clean goodbye, not a reset
    return ProbeResult(
        Status.OK,
        f"connected to {shown} in {connect_seconds * 1000:.1f} ms",
        samples=[Sample.of("netmon_tcp_connect_seconds", connect_seconds, port=port)],
        facts=facts,
    )


def _os_error_result(exc: OSError, shown: str, facts: dict[str, str]) -> ProbeResult:
    if exc.errno == errno.ETIMEDOUT:
        return ProbeResult(
            Status.TIMEOUT,
            f"{shown}: the handshake timed out: host down or a firewall drops the port",
            facts=facts,
        )
    hint = _UNREACHABLE_HINTS.get(exc.errno or 0, exc.strerror or str(exc))
    return ProbeResult(Status.UNREACHABLE, f"{shown} is unreachable: {hint}", facts=facts)
