"""Differential test of the two SNMP decoders: every recording in tests/fixtures/snmprec,
served by snmpsim, is walked and read with the gufo-based ``SnmpClient`` and with the
pysnmp/pyasn1 ``PysnmpClient``. Rows must match in OIDs, order, values and Python
types, so each decoder checks the other; both are also checked against the recording
file, so a bug the two share still shows."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

import pytest
import pytest_asyncio

from monitor.demo import simlab
from probes.snmp.client import SnmpClient
from probes.snmp.credentials import SnmpCredentials, community
from probes.snmp.pysnmp_client import PysnmpClient
from probes.snmp.types import OID, SnmpEndpoint, Value, oid, oid_str
from tests.conftest import need
from tests.snmprec import community_of, decode, raw_lines, recordings

pytestmark = pytest.mark.asyncio(loop_scope="module")

RECORDING_FILES = recordings()
#: Walk bound: above the largest recording (3,506 OIDs), so no walk is cut short.
MAX_ROWS = 20_000
GET_CHUNK = 10
COUNTER64_TAG = "70"
#: The v1 and v3 walks: system, interfaces (ifTable) and ifHCInOctets (Counter64,
#: which SNMPv1 cannot carry: a v1 agent skips it).
V1_V3_BASES = [oid("1.3.6.1.2.1.1"), oid("1.3.6.1.2.1.2"), oid("1.3.6.1.2.1.31.1.1.1.6")]
CLASSES = sorted({p.parent.name for p in RECORDING_FILES})

Rows = dict[OID, Value]


def smallest(kind: str) -> Path:
    return min(recordings(kind), key=lambda p: p.stat().st_size)


#: snmpsim's SNMPv3 user, authPriv MD5/DES. No context name: gufo-snmp 0.13 sends none
#: (SnmpClient hands context names to pysnmp), and snmpsim then serves ``self.snmprec``.
V3_SIMULATOR = SnmpCredentials.model_validate({
    "version": "3", "user": "simulator",
    "auth": {"protocol": "MD5", "password": "auctoritas"},
    "priv": {"protocol": "DES", "password": "privatus"},
})


def expected_from_file(path: Path, *, v1: bool = False) -> Rows:
    """What the recording says, typed as the clients must return it. snmpsim strips a
    line's trailing white space, so plain-text strings are compared without it."""
    out: Rows = {}
    for text, tag, raw in raw_lines(path):
        if v1 and tag.rstrip("x") == COUNTER64_TAG:
            continue
        value = decode(tag, raw)
        if tag == "4" and isinstance(value, bytes):
            value = value.rstrip()
        out[oid(text)] = value
    return out


def top_subtrees(rows: Iterable[OID]) -> list[OID]:
    """The recording's top-level subtrees (``1.3.6.1``, ``1.0.8802.1``): walking them
    covers every line of the file."""
    return sorted({o[:4] for o in rows})


def below(rows: Mapping[OID, Value], bases: Iterable[OID]) -> Rows:
    prefixes = list(bases)
    return {o: v for o, v in rows.items() if any(o[: len(b)] == b for b in prefixes)}


def describe(value: Value | None) -> str:
    return "(missing)" if value is None else f"{value!r} ({type(value).__name__})"


def first_difference(got: Mapping[OID, Value], want: Mapping[OID, Value],
                     got_name: str, want_name: str) -> str | None:
    """None when both are equal in OIDs, order, values and types; else the first
    differing OID and both sides, for the assertion message."""
    for i, (g, w) in enumerate(zip(got.items(), want.items(), strict=False)):
        if g[0] != w[0]:
            return (f"row {i}: {got_name} has OID {oid_str(g[0])}, {want_name} has "
                    f"{oid_str(w[0])} ({len(got)} vs {len(want)} rows)")
        if g[1] != w[1] or type(g[1]) is not type(w[1]):
            return (f"first differing OID {oid_str(g[0])}: {got_name} {describe(g[1])}, "
                    f"{want_name} {describe(w[1])}")
    if len(got) != len(want):
        longer, name = (got, got_name) if len(got) > len(want) else (want, want_name)
        extra = list(longer)[min(len(got), len(want))]
        return (f"{got_name} has {len(got)} rows, {want_name} {len(want)}; first OID only "
                f"in {name}: {oid_str(extra)}")
    return None


def first_value_difference(got: Mapping[OID, Value], want: Mapping[OID, Value],
                           got_name: str, want_name: str) -> str | None:
    """As :func:`first_difference`, for GET results (order is not part of a GET)."""
    for o in sorted(set(got) | set(want)):
        g, w = got.get(o), want.get(o)
        if g != w or type(g) is not type(w):
            return f"first differing OID {oid_str(o)}: {got_name} {describe(g)}, " \
                   f"{want_name} {describe(w)}"
    return None


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def clients() -> AsyncIterator[tuple[SnmpClient, PysnmpClient]]:
    """The new client and the reference, shared by the module (engines cost CPU)."""
    new, ref = SnmpClient(), PysnmpClient()
    yield new, ref
    await new.aclose()
    await ref.aclose()


async def walk_both(clients: tuple[SnmpClient, PysnmpClient], ep: SnmpEndpoint,
                    bases: Iterable[OID]) -> tuple[Rows, Rows]:
    """Walk each base with both clients (one after the other, so that the timing of
    one does not disturb the other); every walk must end cleanly."""
    new_rows: Rows = {}
    ref_rows: Rows = {}
    for base in bases:
        for name, client, rows in (("new", clients[0], new_rows), ("pysnmp", clients[1],
                                                                   ref_rows)):
            res = await client.walk(ep, base)
            assert res.failure is None and not res.truncated, (
                f"{name} walk of {oid_str(base)} failed: {res.failure}")
            assert res.base == base
            rows.update(res.rows)
    return new_rows, ref_rows


def check_rows(new_rows: Rows, ref_rows: Rows, expected: Rows) -> None:
    diff = first_difference(new_rows, ref_rows, "new client", "pysnmp")
    assert diff is None, diff
    diff = first_difference(ref_rows, dict(sorted(expected.items())), "walk", "recording")
    assert diff is None, diff


@pytest.mark.parametrize("path", RECORDING_FILES, ids=community_of)
async def test_v2c_walk_and_get_match(clients: tuple[SnmpClient, PysnmpClient],
                                      snmpsim: simlab.Agent, path: Path) -> None:
    """Whole recording: GETBULK walks of its top-level subtrees, then a GET of every
    scalar (``.0``) OID in chunks."""
    expected = expected_from_file(path)
    ep = SnmpEndpoint(snmpsim.host, community(community_of(path)), snmpsim.port,
                      max_rows=MAX_ROWS)
    new_rows, ref_rows = await walk_both(clients, ep, top_subtrees(expected))
    check_rows(new_rows, ref_rows, expected)  # also: every line of the file is served

    scalars = sorted(o for o in expected if o[-1] == 0)
    assert scalars, "every recording has sysDescr.0"
    new_values: Rows = {}
    ref_values: Rows = {}
    for i in range(0, len(scalars), GET_CHUNK):
        chunk = scalars[i : i + GET_CHUNK]
        for name, client, values in (("new", clients[0], new_values),
                                     ("pysnmp", clients[1], ref_values)):
            res = await client.get(ep, chunk)
            assert res.failure is None, f"{name} GET of {oid_str(chunk[0])}...: {res.failure}"
            values.update(res.values)
    diff = first_value_difference(new_values, ref_values, "new client", "pysnmp")
    assert diff is None, diff
    diff = first_value_difference(ref_values, {o: expected[o] for o in scalars}, "GET",
                                  "recording")
    assert diff is None, diff


@pytest.mark.parametrize("kind", CLASSES)
async def test_v1_getnext_walk_matches(clients: tuple[SnmpClient, PysnmpClient],
                                       snmpsim: simlab.Agent, kind: str) -> None:
    """SNMPv1 (GETNEXT, one row per request: a few subtrees of the smallest recording
    of each device class). Counter64 rows must be skipped, by the agent, identically."""
    path = smallest(kind)
    ep = SnmpEndpoint(snmpsim.host, community(community_of(path), "1"), snmpsim.port,
                      max_rows=MAX_ROWS)
    new_rows, ref_rows = await walk_both(clients, ep, V1_V3_BASES)
    assert new_rows, f"nothing below the v1 bases in {community_of(path)}"
    check_rows(new_rows, ref_rows, below(expected_from_file(path, v1=True), V1_V3_BASES))


@pytest.mark.parametrize("kind", CLASSES)
async def test_v3_authpriv_walk_matches(clients: tuple[SnmpClient, PysnmpClient],
                                        tmp_path: Path, kind: str) -> None:
    """SNMPv3 authPriv (MD5/DES: decryption, then decoding) of the same subtrees, from
    an snmpsim of its own serving the recording as ``self`` (the empty context)."""
    need(simlab.snmpsim_available())
    path = smallest(kind)
    shutil.copy(path, tmp_path / "self.snmprec")
    shutil.copy(path, tmp_path / "ready.snmprec")  # community "ready": start-up check
    with simlab.start_snmpsim(tmp_path, ready_community="ready") as agent:
        ep = SnmpEndpoint(agent.host, V3_SIMULATOR, agent.port, max_rows=MAX_ROWS)
        new_rows, ref_rows = await walk_both(clients, ep, V1_V3_BASES)
    assert new_rows, f"nothing below the v3 bases in {community_of(path)}"
    check_rows(new_rows, ref_rows, below(expected_from_file(path), V1_V3_BASES))
