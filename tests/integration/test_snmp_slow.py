"""A slow agent (every answer late, none lost) through the real probe and runner: the run
stops before its deadline with the rows it has, says how slow the agent is, and the
client asks that agent for more rows per request on its next walks."""

from __future__ import annotations

import heapq
import selectors
import socket
import threading
import time
from types import TracebackType
from typing import Self

from monitor.demo import simlab
from probes.context import ProbeContext
from probes.registry import run_probe
from probes.result import Status
from probes.snmp.client import SnmpClient
from probes.snmp.credentials import community
from probes.snmp.probe import SnmpSettings
from probes.snmp.types import SnmpEndpoint, oid
from probes.target import Target
from tests.conftest import COMMUNITY

STABLE_TABLE = oid("1.3.6.1.6.3.16.1")  # snmpd's VACM tables: fixed by its config


class SlowProxy:
    """Relays requests to a real agent and each answer ``delay`` seconds late."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.delay = delay
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(upstream)
        self.host, self.port = "127.0.0.1", int(self.front.getsockname()[1])
        self.answers = 0
        self._client: tuple[str, int] | None = None
        self._due: list[tuple[float, int, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        n = 0
        with selectors.DefaultSelector() as sel:
            sel.register(self.front, selectors.EVENT_READ)
            sel.register(self.back, selectors.EVENT_READ)
            while not self._stop.is_set():
                wait = 0.02 if not self._due else max(0.0, self._due[0][0] - time.monotonic())
                for key, _ in sel.select(timeout=min(wait, 0.05)):
                    if key.fileobj is self.front:
                        data, self._client = self.front.recvfrom(65535)
                        self.back.send(data)
                    else:
                        n += 1
                        heapq.heappush(self._due, (time.monotonic() + self.delay, n,
                                                   self.back.recv(65535)))
                while self._due and self._due[0][0] <= time.monotonic() and self._client:
                    self.front.sendto(heapq.heappop(self._due)[2], self._client)
                    self.answers += 1

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.front.close()
        self.back.close()


async def test_slow_agent_gives_partial_with_rows_and_says_why(snmpd: simlab.Agent) -> None:
    """0.5 s per answer and SNMPv1 (GETNEXT: one row per request): the interfaces walks
    (~60 rows here) cannot finish inside the deadline (timeout 0.8 s, no retries:
    14.8 s), so the run ends early, partial."""
    settings = SnmpSettings(modules=("interfaces",), credentials=community(COMMUNITY, "1"),
                            timeout=0.8, retries=0)
    deadline = settings.deadline()
    with SlowProxy((snmpd.host, snmpd.port), delay=0.5) as proxy:
        async with ProbeContext() as ctx:
            result = await run_probe("snmp", Target("sw-annex", proxy.host, proxy.port),
                                     settings, ctx)
    assert result.status is Status.PARTIAL, result.explanation
    assert f"sw-annex (127.0.0.1:{proxy.port}) answers slowly: 0.5 s per request" in (
        result.explanation)
    assert "requests done in" in result.explanation
    assert result.duration_seconds < deadline
    varbinds = [s.value for s in result.samples if s.metric == "netmon_snmp_varbinds"]
    assert varbinds and varbinds[0] > 10  # the rows that came in are kept
    # The first columns (the host's interface count varies while other tests add links):
    assert any(s.metric == "netmon_interface_info" for s in result.samples)


async def test_slow_agent_gets_more_rows_per_request(snmpd: simlab.Agent) -> None:
    client = SnmpClient()
    try:
        with SlowProxy((snmpd.host, snmpd.port), delay=0.3) as proxy:
            ep = SnmpEndpoint(proxy.host, community(COMMUNITY), proxy.port, timeout=2,
                              retries=0, max_repetitions=4)
            first = await client.walk(ep, STABLE_TABLE)
            second = await client.walk(ep, STABLE_TABLE)
    finally:
        await client.aclose()
    assert first.failure is None and second.failure is None
    assert list(first.rows) == list(second.rows) and len(first.rows) > 16
    assert second.requests < first.requests  # 8 rows per request after 4


async def test_fast_agent_keeps_configured_rows_per_request(snmpd: simlab.Agent) -> None:
    client = SnmpClient()
    try:
        ep = SnmpEndpoint(snmpd.host, community(COMMUNITY), snmpd.port, max_repetitions=4)
        first = await client.walk(ep, STABLE_TABLE)
        second = await client.walk(ep, STABLE_TABLE)
    finally:
        await client.aclose()
    assert first.failure is None and first.requests == second.requests
    assert first.requests >= len(first.rows) // 4
