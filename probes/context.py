"""Process-wide shared resources handed to every probe.

One :class:`ProbeContext` lives for the whole process (the daemon, or one CLI command).
It owns the single ICMP engine (one socket per address family, replies demultiplexed
once) and the single SNMP engine, both created on first use inside the running loop,
and the per-kind concurrency limits. Probes never create these themselves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from probes.icmp_engine import IcmpEngine, IcmpMode
    from probes.snmp.client import SnmpClient


@dataclass(frozen=True, slots=True)
class Limits:
    """How many probes of each kind may run at once in this process."""

    icmp: int = 1024
    #: An SNMP run mostly waits on its agent (a dead one for every try, a slow one for
    #: every late answer); the client bounds the requests in flight, in lanes that keep
    #: silent and slow agents apart from prompt ones. 64 here let 300 dead and slow
    #: devices of 1,000 hold every turn (benchmarks/chaos_fleet.py).
    snmp: int = 1024
    tcp: int = 256


class ProbeContext:
    def __init__(self, limits: Limits | None = None, icmp_mode: IcmpMode | None = None) -> None:
        self.limits = limits or Limits()
        self._icmp_mode = icmp_mode
        self._icmp: IcmpEngine | None = None
        self._snmp: SnmpClient | None = None
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def semaphore(self, kind: str) -> asyncio.Semaphore:
        sem = self._semaphores.get(kind)
        if sem is None:
            sem = self._semaphores[kind] = asyncio.Semaphore(getattr(self.limits, kind, 64))
        return sem

    @property
    def icmp(self) -> IcmpEngine:
        if self._icmp is None:
            from probes.icmp_engine import IcmpEngine

            self._icmp = IcmpEngine(mode=self._icmp_mode)
        return self._icmp

    @property
    def snmp(self) -> SnmpClient:
        if self._snmp is None:
            from probes.snmp.client import SnmpClient

            self._snmp = SnmpClient()
        return self._snmp

    async def aclose(self) -> None:
        if self._icmp is not None:
            await self._icmp.aclose()
            self._icmp = None
        if self._snmp is not None:
            await self._snmp.aclose()
            self._snmp = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
