"""SnmpClient against real agents on loopback: net-snmp's snmpd, snmpsim, and the
misbehaving agents of ``fake_agents``. Failure cases use short timeouts."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from monitor.demo import simlab
from probes.result import Status
from probes.snmp.client import SnmpClient, SnmpEndpoint
from probes.snmp.credentials import SnmpCredentials, community
from probes.snmp.types import OID, oid
from tests.conftest import (
    AUTH_PASSWORD,
    COMMUNITY,
    PRIV_PASSWORD,
    V3_AUTH_PROTOCOLS,
    V3_PRIV_PROTOCOLS,
    V3_USERS,
    need,
)
from tests.integration.fake_agents import LOOP_OID, CuttingProxy, garbage_agent, looping_agent

IF_TABLE = oid("1.3.6.1.2.1.2.2")
#: snmpd's view-based access tables: rows fixed by the generated config. Used where two
#: walks are compared, because ifTable follows the host's interfaces, and other tests
#: add and remove veth links while this module runs.
STABLE_TABLE = oid("1.3.6.1.6.3.16.1")
SYSTEM = oid("1.3.6.1.2.1.1")
SYS_DESCR = oid("1.3.6.1.2.1.1.1.0")
SYS_OBJECT_ID = oid("1.3.6.1.2.1.1.2.0")
SYS_UPTIME = oid("1.3.6.1.2.1.1.3.0")
MISSING = oid("1.3.6.1.2.1.1.99.0")
FAST: dict[str, Any] = {"timeout": 0.5, "retries": 0}


def v3(user: str, auth: str | None = None, priv: str | None = None, *,
       auth_password: str = AUTH_PASSWORD, priv_password: str = PRIV_PASSWORD,
       context: str = "") -> SnmpCredentials:
    return SnmpCredentials.model_validate({
        "version": "3", "user": user, "context": context,
        "auth": {"protocol": auth, "password": auth_password} if auth else None,
        "priv": {"protocol": priv, "password": priv_password} if priv else None,
    })


def net_snmp_walk(agent: simlab.Agent, base: OID, args: list[str]) -> list[OID]:
    """OIDs that net-snmp's snmpbulkwalk returns (the reference implementation)."""
    need(None if shutil.which("snmpbulkwalk") else "snmpbulkwalk (package snmp) missing")
    cmd = ["snmpbulkwalk", "-On", "-Cr25", "-t", "2", "-r", "1", *args, agent.endpoint,
           "." + ".".join(map(str, base))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30,
                         env=dict(os.environ, MIBS="", MIBDIRS="/dev/null")).stdout
    # net-snmp ends a walk at the end of the MIB with a "No more variables left" line.
    return [oid(line.split(" = ")[0]) for line in out.splitlines()
            if line.startswith(".") and " = " in line and "No more variables" not in line]


@pytest.fixture(scope="module")
def reference_table(snmpd: simlab.Agent) -> list[OID]:
    rows = net_snmp_walk(snmpd, STABLE_TABLE, ["-v2c", "-c", COMMUNITY])
    assert len(rows) > 10
    return rows


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    c = SnmpClient()
    yield c
    await c.aclose()


CREDENTIALS = [
    pytest.param(community(COMMUNITY, "1"), id="v1"),
    pytest.param(community(COMMUNITY, "2c"), id="v2c"),
    pytest.param(v3("noauth-user"), id="v3-noAuthNoPriv"),
    *[pytest.param(v3(f"auth-{a.lower()}", a), id=f"v3-auth-{a}") for a in V3_AUTH_PROTOCOLS],
    *[pytest.param(v3(f"priv-{p.lower()}", "SHA", p), id=f"v3-priv-{p}") for p in V3_PRIV_PROTOCOLS],
]


@pytest.mark.parametrize("creds", CREDENTIALS)
async def test_get_and_walk_match_net_snmp(
    client: SnmpClient, snmpd: simlab.Agent, reference_table: list[OID],
    creds: SnmpCredentials,
) -> None:
    ep = SnmpEndpoint(snmpd.host, creds, snmpd.port)
    got = await client.get(ep, [SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, MISSING])
    assert got.failure is None
    assert isinstance(got.values[SYS_DESCR], bytes) and got.values[SYS_DESCR]
    assert str(got.values[SYS_OBJECT_ID]).startswith("1.3.6.1.4.1.")
    assert isinstance(got.values[SYS_UPTIME], int)
    assert MISSING not in got.values
    walked = await client.walk(ep, STABLE_TABLE)
    assert walked.failure is None and not walked.truncated
    assert list(walked.rows) == reference_table
    expected_requests = len(reference_table) + 1 if creds.version == "1" else None
    if expected_requests:  # GETNEXT: one row per request, plus the one that ends the walk
        assert walked.requests == expected_requests
    else:
        assert 1 < walked.requests <= len(reference_table) // 25 + 2


async def test_v3_walk_matches_net_snmp_v3(client: SnmpClient, snmpd: simlab.Agent) -> None:
    """AES-256 as net-snmp itself speaks it (Blumenthal key extension)."""
    ref = net_snmp_walk(snmpd, STABLE_TABLE, [
        "-v3", "-l", "authPriv", "-u", "priv-aes-256", "-a", "SHA", "-A", AUTH_PASSWORD,
        "-x", "AES-256", "-X", PRIV_PASSWORD])
    ep = SnmpEndpoint(snmpd.host, v3("priv-aes-256", "SHA", "AES-256"), snmpd.port)
    assert list((await client.walk(ep, STABLE_TABLE)).rows) == ref


def _ipv6_loopback() -> str | None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"IPv6 loopback ::1 unusable: {exc}"
    return None


@pytest.fixture(scope="module")
def snmpd6() -> Iterator[simlab.Agent]:
    need(simlab.snmpd_available() or _ipv6_loopback())
    with simlab.start_snmpd(host="::1", communities=[COMMUNITY], users=V3_USERS) as agent:
        yield agent


@pytest.mark.parametrize("creds", [community(COMMUNITY), v3("priv-aes", "SHA", "AES")],
                         ids=["v2c", "v3"])
async def test_ipv6(client: SnmpClient, snmpd6: simlab.Agent, snmpd: simlab.Agent,
                    creds: SnmpCredentials) -> None:
    ref = net_snmp_walk(snmpd6, STABLE_TABLE, ["-v2c", "-c", COMMUNITY])
    walked = await client.walk(SnmpEndpoint("::1", creds, snmpd6.port), STABLE_TABLE)
    assert walked.failure is None and list(walked.rows) == ref
    # The same client serves IPv4 next to IPv6.
    got = await client.get(SnmpEndpoint(snmpd.host, creds, snmpd.port), [SYS_UPTIME])
    assert got.failure is None and SYS_UPTIME in got.values


async def test_host_name_and_dns_error(client: SnmpClient, snmpd: simlab.Agent) -> None:
    got = await client.get(SnmpEndpoint("localhost", community(COMMUNITY), snmpd.port),
                           [SYS_UPTIME])
    assert got.failure is None and SYS_UPTIME in got.values
    bad = await client.walk(SnmpEndpoint("no-such-host.invalid", community(COMMUNITY)), IF_TABLE)
    assert bad.failure is not None and bad.failure.status is Status.DNS_ERROR
    assert "no-such-host.invalid" in bad.failure.explanation


async def test_snmpsim_v3_context(client: SnmpClient, snmpsim: simlab.Agent) -> None:
    creds = v3("simulator", "MD5", "DES", auth_password="auctoritas", priv_password="privatus",
               context="printer/canon-lbp6670")
    got = await client.get(SnmpEndpoint(snmpsim.host, creds, snmpsim.port), [SYS_DESCR])
    assert got.failure is None and got.values[SYS_DESCR] == b"Canon LBP6670 /P"


async def test_same_user_different_passwords_on_two_agents(client: SnmpClient,
                                                           snmpd: simlab.Agent) -> None:
    other_password = "other-auth-9876"
    with simlab.start_snmpd(communities=[COMMUNITY],
                            users=[simlab.V3User("auth-sha", "SHA", other_password)]) as other:
        a = SnmpEndpoint(snmpd.host, v3("auth-sha", "SHA"), snmpd.port)
        b = SnmpEndpoint(other.host, v3("auth-sha", "SHA", auth_password=other_password),
                         other.port)
        for _ in range(2):  # interleaved and repeated: keys stay per agent
            ra, rb = await asyncio.gather(client.walk(a, SYSTEM), client.walk(b, SYSTEM))
            assert ra.failure is None and rb.failure is None
            assert len(ra.rows) == len(rb.rows) > 0


# -- failures -------------------------------------------------------------------------


async def test_wrong_community_is_diagnosed_as_auth_error(client: SnmpClient,
                                                          snmpd: simlab.Agent) -> None:
    ep = SnmpEndpoint(snmpd.host, community("not-the-community"), snmpd.port, **FAST)
    for res in (await client.get(ep, [SYS_UPTIME]), await client.walk(ep, IF_TABLE)):
        assert res.failure is not None and res.failure.status is Status.AUTH_ERROR
        assert "wrong community" in res.failure.explanation


async def test_nothing_listening_is_timeout(client: SnmpClient) -> None:
    port = simlab.free_udp_port()
    ep = SnmpEndpoint("127.0.0.1", community(COMMUNITY), port, **FAST)
    res = await client.walk(ep, IF_TABLE)
    assert res.failure is not None and res.failure.status is Status.TIMEOUT
    assert f"127.0.0.1:{port}" in res.failure.explanation and "1 try" in res.failure.explanation
    assert res.rows == {}
    v3res = await client.get(SnmpEndpoint("127.0.0.1", v3("auth-sha", "SHA"), port, **FAST),
                             [SYS_UPTIME])
    assert v3res.failure is not None and v3res.failure.status is Status.TIMEOUT


USM_CASES = [
    pytest.param(v3("nobody-here", "SHA"), "unknown to the agent", id="unknown-user"),
    pytest.param(v3("auth-sha", "SHA", auth_password="wrong-password"),
                 "wrong authentication password", id="wrong-auth-password"),
    pytest.param(v3("auth-sha", "MD5"), "wrong authentication password", id="wrong-auth-protocol"),
    pytest.param(v3("priv-aes", "SHA", "AES", priv_password="wrong-password"),
                 "wrong privacy password", id="wrong-priv-password"),
    pytest.param(v3("priv-des", "SHA", "AES"), "wrong privacy password",
                 id="wrong-priv-protocol"),
    pytest.param(v3("auth-sha", "SHA", "AES"), "does not allow security level authPriv",
                 id="unsupported-level"),
]


@pytest.mark.parametrize(("creds", "phrase"), USM_CASES)
async def test_usm_errors_are_distinct_auth_errors(
    client: SnmpClient, snmpd: simlab.Agent, creds: SnmpCredentials, phrase: str
) -> None:
    ep = SnmpEndpoint(snmpd.host, creds, snmpd.port, **FAST)
    res = await client.walk(ep, IF_TABLE)
    assert res.failure is not None and res.failure.status is Status.AUTH_ERROR
    assert phrase in res.failure.explanation
    assert res.rows == {}


async def test_garbage_answer_is_protocol_error(client: SnmpClient) -> None:
    with garbage_agent() as agent:
        ep = SnmpEndpoint(agent.host, community(COMMUNITY), agent.port, **FAST)
        res = await client.get(ep, [SYS_UPTIME])
        assert res.failure is not None and res.failure.status is Status.PROTOCOL_ERROR
        assert f"UDP port {agent.port}" in res.failure.explanation
        v3res = await client.walk(SnmpEndpoint(agent.host, v3("auth-sha", "SHA"), agent.port,
                                               **FAST), IF_TABLE)
        assert v3res.failure is not None and v3res.failure.status is Status.PROTOCOL_ERROR


async def test_walk_cut_short_keeps_rows(client: SnmpClient, snmpd: simlab.Agent,
                                         reference_table: list[OID]) -> None:
    with CuttingProxy((snmpd.host, snmpd.port), responses=2) as proxy:
        ep = SnmpEndpoint(proxy.host, community(COMMUNITY), proxy.port, max_repetitions=10,
                          **FAST)
        res = await client.walk(ep, STABLE_TABLE)
    assert res.failure is not None and res.failure.status is Status.TIMEOUT
    assert list(res.rows) == reference_table[:20]
    assert "stopped after 20 rows" in res.failure.explanation
    assert not res.truncated and res.requests == 3


async def test_max_rows_truncates(client: SnmpClient, snmpd: simlab.Agent,
                                  reference_table: list[OID]) -> None:
    n = len(reference_table)
    cut = await client.walk(SnmpEndpoint(snmpd.host, community(COMMUNITY), snmpd.port,
                                         max_rows=7), STABLE_TABLE)
    assert cut.truncated and list(cut.rows) == reference_table[:7]
    assert cut.failure is not None and cut.failure.status is Status.PARTIAL
    assert cut.failure.explanation == "walk of 1.3.6.1.6.3.16.1 stopped after 7 rows (max_rows)"
    exact = await client.walk(SnmpEndpoint(snmpd.host, community(COMMUNITY), snmpd.port,
                                           max_rows=n), STABLE_TABLE)
    assert not exact.truncated and exact.failure is None and len(exact.rows) == n
    v1 = await client.walk(SnmpEndpoint(snmpd.host, community(COMMUNITY, "1"), snmpd.port,
                                        max_rows=3), STABLE_TABLE)
    assert v1.truncated and len(v1.rows) == 3


async def test_looping_agent_is_protocol_error(client: SnmpClient) -> None:
    with looping_agent() as agent:
        ep = SnmpEndpoint(agent.host, community(COMMUNITY), agent.port, **FAST)
        res = await asyncio.wait_for(client.walk(ep, IF_TABLE), 10)
    assert res.failure is not None and res.failure.status is Status.PROTOCOL_ERROR
    assert list(res.rows) == [LOOP_OID] and res.requests == 2
    assert "after 1 rows" in res.failure.explanation


async def test_agent_error_status(client: SnmpClient, snmpd: simlab.Agent) -> None:
    """v1 GET of a missing OID: noSuchName is retried without it, not a failure."""
    ep = SnmpEndpoint(snmpd.host, community(COMMUNITY, "1"), snmpd.port)
    res = await client.get(ep, [MISSING, SYS_UPTIME])
    assert res.failure is None and list(res.values) == [SYS_UPTIME] and res.requests == 2


async def test_100_concurrent_walks(client: SnmpClient, snmpd: simlab.Agent) -> None:
    """The system group (with sysORTable): unlike ifTable, its size cannot change while
    other tests add network interfaces."""
    system = oid("1.3.6.1.2.1.1")
    ep = SnmpEndpoint(snmpd.host, community(COMMUNITY), snmpd.port, timeout=5, retries=1,
                      max_repetitions=5)
    single = await client.walk(ep, system)
    assert single.failure is None and len(single.rows) > 10
    results = await asyncio.gather(*(client.walk(ep, system) for _ in range(100)))
    failures = [r.failure for r in results if r.failure]
    assert failures == []
    assert [list(r.rows) for r in results] == [list(single.rows)] * 100


async def test_secrets_stay_hidden(client: SnmpClient, snmpd: simlab.Agent,
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cases = [
        SnmpEndpoint(snmpd.host, community("secret-community-xyz"), snmpd.port, **FAST),
        SnmpEndpoint(snmpd.host, v3("priv-aes", "SHA", "AES", auth_password="secret-auth-xyz",
                                    priv_password="secret-priv-xyz"), snmpd.port, **FAST),
        SnmpEndpoint(snmpd.host, v3("priv-aes", "SHA", "AES", priv_password="secret-priv-abc"),
                     snmpd.port, **FAST),
    ]
    shown = [repr(client), str(client)]
    for ep in cases:
        res = await client.walk(ep, IF_TABLE)
        assert res.failure is not None
        shown += [repr(ep), str(ep), repr(res), str(res), repr(client)]
    text = "\n".join(shown) + caplog.text
    for secret in ("secret-community-xyz", "secret-auth-xyz", "secret-priv-xyz",
                   "secret-priv-abc", AUTH_PASSWORD):
        assert secret not in text
