"""Shared fixtures: real SNMP agents on loopback, and the skip-or-fail rule.

A test that needs a missing binary or privilege skips on a developer's laptop with a
clear reason, but fails when ``CI=true``: CI must prove everything.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.demo import simlab
from probes.context import ProbeContext

IN_CI = os.environ.get("CI", "").lower() == "true"
RECORDINGS: Path = simlab.RECORDINGS

#: SNMPv3 users every snmpd fixture knows: one per auth protocol (authNoPriv) and one
#: per privacy protocol (authPriv with SHA). Names are net-snmp's protocol names.
AUTH_PASSWORD = "auth-pass-1234"
PRIV_PASSWORD = "priv-pass-5678"
V3_AUTH_PROTOCOLS = ("MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512")
V3_PRIV_PROTOCOLS = ("DES", "AES", "AES-192", "AES-256")
V3_USERS = [
    simlab.V3User(f"auth-{a.lower()}", a, AUTH_PASSWORD) for a in V3_AUTH_PROTOCOLS
] + [
    simlab.V3User(f"priv-{p.lower()}", "SHA", AUTH_PASSWORD, p, PRIV_PASSWORD)
    for p in V3_PRIV_PROTOCOLS
] + [simlab.V3User("noauth-user")]
COMMUNITY = "netmon-test"


def need(reason: str | None) -> None:
    """Skip (laptop) or fail (CI) when ``reason`` says something is missing."""
    if reason:
        if IN_CI:
            pytest.fail(f"required in CI but missing: {reason}")
        pytest.skip(reason)


def need_root() -> None:
    need(None if os.geteuid() == 0 else "needs root (network namespaces, raw sockets)")


@pytest.fixture(scope="session")
def snmpsim() -> Iterator[simlab.Agent]:
    """snmpsim serving every recording; community = path below the data dir."""
    need(simlab.snmpsim_available())
    with simlab.start_snmpsim(RECORDINGS) as agent:
        yield agent


@pytest.fixture(scope="session")
def snmpd() -> Iterator[simlab.Agent]:
    """net-snmp snmpd with community ``netmon-test`` and the users in ``V3_USERS``."""
    need(simlab.snmpd_available())
    with simlab.start_snmpd(communities=[COMMUNITY], users=V3_USERS) as agent:
        yield agent


@pytest.fixture
async def ctx() -> AsyncIterator[ProbeContext]:
    """A fresh probe context (shared engines) per test, closed afterwards."""
    async with ProbeContext() as context:
        yield context
