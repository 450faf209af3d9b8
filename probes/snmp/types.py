"""Plain data passed between the SNMP I/O layer (``client``) and the pure converters
(``modules``). Nothing here does I/O or imports pysnmp.

Values arrive already converted from pysnmp/pyasn1 types to Python:

===================================  ===========================================
SNMP type                            Python value
===================================  ===========================================
INTEGER, Counter32/64, Gauge32,      ``int``
TimeTicks, Unsigned32
OCTET STRING, Opaque                 ``bytes`` (decode with ``modules.base.text``)
OBJECT IDENTIFIER                    ``str``, dotted (``"1.3.6.1.4.1.11"``)
IpAddress                            ``str`` (``"192.0.2.1"``)
noSuchObject/noSuchInstance/         not present at all
endOfMibView
===================================  ===========================================
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from probes.result import Status
from probes.snmp.credentials import SnmpCredentials

OID = tuple[int, ...]
Value = int | bytes | str
#: Everything one probe run collected from one device: full OID -> value.
Walked = Mapping[OID, Value]


def oid(text: str) -> OID:
    """``"1.3.6.1.2.1.1.1.0"`` (a leading dot is allowed) -> ``(1, 3, 6, 1, 2, 1, 1, 1, 0)``."""
    return tuple(int(p) for p in text.strip().lstrip(".").split("."))


def oid_str(o: Iterable[int]) -> str:
    return ".".join(str(p) for p in o)


@dataclass(frozen=True, slots=True)
class SnmpFailure:
    """Why a request or walk did not (fully) succeed, in words an IT person can act on."""

    status: Status
    explanation: str


@dataclass(slots=True)
class WalkResult:
    """Rows below one base OID. ``failure`` is set when the walk did not reach its end;
    ``rows`` then holds what arrived before (``truncated`` says whether that was due to
    the row limit rather than an error)."""

    base: OID
    rows: dict[OID, Value] = field(default_factory=dict)
    failure: SnmpFailure | None = None
    truncated: bool = False
    requests: int = 0
    #: Stopped because the probe's deadline came before the agent's next answer.
    slow: bool = False


@dataclass(slots=True)
class GetResult:
    """Values of a GET; OIDs the agent does not have are simply missing from ``values``."""

    values: dict[OID, Value] = field(default_factory=dict)
    failure: SnmpFailure | None = None
    requests: int = 0
    slow: bool = False


@dataclass(frozen=True, slots=True)
class SnmpEndpoint:
    """One agent and how to talk to it. ``repr`` shows no secret (they are SecretStr)."""

    host: str
    credentials: SnmpCredentials
    port: int = 161
    timeout: float = 2.0  # seconds per request
    retries: int = 1
    max_repetitions: int = 25
    #: Per walk: bounds memory and time on a device with 50,000 rows.
    max_rows: int = 10_000

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def loop_failure(ep: SnmpEndpoint, base: OID, rows: int, got: OID,
                 current: OID) -> SnmpFailure:
    """An agent answered a walk with an OID not after the one asked for."""
    return SnmpFailure(
        Status.PROTOCOL_ERROR,
        f"agent {ep.address} broke the walk of {oid_str(base)} after {rows} rows: it "
        f"returned {oid_str(got)}, not after {oid_str(current)} (agent bug; the walk "
        "would loop forever)",
    )


def silence_failure(ep: SnmpEndpoint) -> SnmpFailure:
    """What a dead (or deaf) agent gets: every try of a request went unanswered."""
    tries = ep.retries + 1
    return SnmpFailure(
        Status.TIMEOUT,
        f"no answer from {ep.address} within {ep.timeout:g}s after {tries} "
        f"{'try' if tries == 1 else 'tries'}: agent down, SNMP disabled, wrong port, "
        "or a firewall (or a wrong community on an agent without SNMPv3)",
    )


async def resolve(ep: SnmpEndpoint) -> str | SnmpFailure:
    """An IP literal as is; a name through the resolver (first address)."""
    try:
        return str(ipaddress.ip_address(ep.host.strip("[]")))
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(ep.host, ep.port, type=socket.SOCK_DGRAM), ep.timeout * 2
        )
    except (TimeoutError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "no answer"
        return SnmpFailure(
            Status.DNS_ERROR, f"cannot resolve {ep.host!r}: {why}; check the name or DNS"
        )
    return str(infos[0][4][0])
