"""Limits on failed logins to netmon's web server, per client network.

A basic-auth check costs a bcrypt hash (cost 10-12: 0.06-0.25 s of CPU), so unlimited
wrong passwords would let anyone who can reach the port keep a core busy. Each client
network (an IPv4 address; an IPv6 /64, the block one host or home usually gets) has a
token bucket of failed attempts: :data:`FAILURE_BURST` failures at once, then one more
every ``1 / FAILURE_RATE`` seconds. A check takes a token before bcrypt runs (so a
hundred concurrent attempts cannot all start while the bucket still looks full) and a
success gives it back. An empty bucket means HTTP 429 with ``Retry-After``, at no bcrypt
cost.

The table holds at most :data:`MAX_CLIENTS` networks. Idle buckets (refilled to full)
are dropped when it is full; if it is still full, newcomers share one overflow bucket,
so rotating addresses neither grows memory nor resets anyone's limit.

Client addresses are the TCP peer's: ``X-Forwarded-For`` is not trusted (anyone can
send it). Behind a reverse proxy, every client shares the proxy's bucket.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("netmon.web")

#: Failed logins a client network may make at once ...
FAILURE_BURST = 10
#: ... and per second after that (one every 6 s: 10 a minute).
FAILURE_RATE = 1 / 6
#: Client networks tracked at most (~100 bytes each).
MAX_CLIENTS = 4096
#: The key newcomers share while the table is full of active buckets.
OVERFLOW = "overflow"


def client_network(remote: str | None) -> str:
    """The network a client address counts against: IPv4 ``/32`` (IPv4-mapped IPv6
    too), IPv6 ``/64``; ``local`` for anything that is not an IP address (a Unix socket)."""
    try:
        address = ipaddress.ip_address((remote or "").partition("%")[0])
    except ValueError:
        return "local"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        prefix = int(address) >> 64 << 64
        return f"{ipaddress.IPv6Address(prefix)}/64"
    return str(address)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    #: Whether this episode of limiting has been logged; cleared once the bucket is full.
    limited: bool = False


class FailureLimiter:
    """Token buckets of failed logins, one per client network (see the module docstring)."""

    def __init__(
        self,
        burst: int = FAILURE_BURST,
        rate: float = FAILURE_RATE,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or rate <= 0 or max_clients < 1:
            raise ValueError("burst and max_clients are at least 1, rate is above 0")
        self.burst = float(burst)
        self.rate = rate
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._pruned_at = -math.inf

    def __len__(self) -> int:
        return len(self._buckets)

    def reserve(self, network: str) -> float:
        """Take a token for one check from ``network``: 0.0 when it may go ahead, else
        the seconds until a token is back (the check must not run). The first refusal
        of an episode is logged, once per network."""
        now = self.clock()
        network, bucket = self._bucket(network, now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        wait = (1.0 - bucket.tokens) / self.rate
        if not bucket.limited:
            bucket.limited = True
            who = network if network != OVERFLOW else "new clients (client table full)"
            log.warning(
                "basic auth: too many failed logins from %s; answering 429 without checking "
                "passwords until its failures slow down (%d at once, then one every %.0f s)",
                who, self.burst, 1 / self.rate,
            )  # fmt: skip
        return wait

    def refund(self, network: str) -> None:
        """Give back the token a successful check took."""
        # Not in the table: the check was counted against the overflow bucket.
        bucket = self._buckets.get(network) or self._buckets.get(OVERFLOW)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + 1.0)

    def limited(self) -> int:
        """Client networks whose bucket is empty now."""
        now = self.clock()
        return sum(1 for b in self._buckets.values() if self._refill(b, now) < 1.0)

    def _refill(self, bucket: _Bucket, now: float) -> float:
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= self.burst:
            bucket.limited = False
        return bucket.tokens

    def _bucket(self, network: str, now: float) -> tuple[str, _Bucket]:
        bucket = self._buckets.get(network)
        if bucket is None:
            if len(self._buckets) >= self.max_clients and now - self._pruned_at >= 1.0:
                self._prune(now)
            if len(self._buckets) >= self.max_clients:
                network = OVERFLOW  # one entry past the bound, shared by every newcomer
                bucket = self._buckets.get(network)
            if bucket is None:
                bucket = self._buckets[network] = _Bucket(self.burst, now)
        self._refill(bucket, now)
        return network, bucket

    def _prune(self, now: float) -> None:
        """Drop the buckets that have refilled: they hold nothing a new one would not.
        At most once a second, so a flood of new addresses costs no scan per request."""
        self._pruned_at = now
        idle = [k for k, b in self._buckets.items() if self._refill(b, now) >= self.burst]
        for key in idle:
            del self._buckets[key]


def retry_after(wait: float) -> str:
    """A ``Retry-After`` value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait)))
