"""Malformed SNMP answers: real snmpd responses, damaged on their way back by a loopback
agent (``fake_agents.MutatingAgent``), hypothesis-generated and as fixed regressions.

gufo-snmp 0.13 raises pyo3's PanicException (a BaseException) on some of them, and a
decode error or silence on most. Whatever arrives, the client must not raise, must end
the walk or GET as protocol_error (or timeout) naming the agent and saying its answer
was malformed, log no traceback, and keep serving a healthy agent at the same time with
the same client instance.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from monitor.demo import simlab
from probes.result import Status
from probes.snmp.client import SnmpClient
from probes.snmp.credentials import community
from probes.snmp.pysnmp_client import PysnmpClient
from probes.snmp.types import OID, GetResult, SnmpEndpoint, Value, WalkResult, oid, oid_str
from tests.conftest import COMMUNITY
from tests.integration.fake_agents import (
    GET_TAG,
    GETBULK_TAG,
    GETNEXT_TAG,
    MUTATION_KINDS,
    RESPONSE_TAG,
    Exchange,
    MutatingAgent,
    Mutation,
    Tlv,
    ber_length,
    parse_tlvs,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: snmpd's view-based access tables: fixed by its generated config (see test_snmp_client).
STABLE_TABLE = oid("1.3.6.1.6.3.16.1")
SYS_UPTIME = oid("1.3.6.1.2.1.1.3.0")
#: OCTET STRING, OBJECT IDENTIFIER, TimeTicks, INTEGER, IpAddress.
GET_OIDS = [oid("1.3.6.1.2.1.1.1.0"), oid("1.3.6.1.2.1.1.2.0"), SYS_UPTIME,
            oid("1.3.6.1.2.1.4.20.1.2.127.0.0.1"), oid("1.3.6.1.2.1.4.20.1.1.127.0.0.1")]
#: Values that change between two reads: compared by type only.
UNSTABLE = {SYS_UPTIME}
REPETITIONS = 10  # the table then takes several GETBULK answers
FAST: dict[str, Any] = {"timeout": 0.2, "retries": 0}
#: The client's words for "the agent's answer was malformed".
MALFORMED = re.compile(r"malformed|not with SNMP", re.IGNORECASE)
#: A valid but different answer (e.g. error-status turned into noAccess) may end in
#: any of these; an invalid one only as protocol_error or timeout.
VALID_ANSWER_STATUSES = {Status.OK, Status.PARTIAL, Status.PROTOCOL_ERROR, Status.TIMEOUT,
                         Status.AUTH_ERROR}
INVALID_ANSWER_STATUSES = {Status.PROTOCOL_ERROR, Status.TIMEOUT}
CASE_LIMIT = 10.0  # seconds for one case: far above 2 x timeout, far below a stall
HEALTHY_WALKS = 40  # at most, per case
HEALTHY_LATENCY = 1.0  # seconds: snmpd answers the table in a few ms


@dataclass(frozen=True, repr=False)
class Reference:
    """What snmpd answers without damage."""

    rows: dict[OID, Value]
    values: dict[OID, Value]

    def __repr__(self) -> str:  # short, for hypothesis' report of a failing example
        return f"Reference({len(self.rows)} rows, {len(self.values)} values)"


@dataclass
class Case:
    """One damaged walk + GET, with the healthy walks that ran meanwhile."""

    walk: WalkResult
    get: GetResult
    healthy: list[tuple[WalkResult, float]]
    exchanges: list[Exchange]


@pytest.fixture(scope="module")
def agent(snmpd: simlab.Agent) -> Iterator[MutatingAgent]:
    with MutatingAgent((snmpd.host, snmpd.port)) as mutating:
        yield mutating


@pytest.fixture(scope="module")
def outcomes() -> Counter[str]:
    """Outcome counts of the fuzz test, summarised by the last test of the module."""
    return Counter()


@pytest_asyncio.fixture(loop_scope="module")
async def client() -> AsyncIterator[SnmpClient]:
    c = SnmpClient()
    yield c
    await c.aclose()


def healthy_ep(snmpd: simlab.Agent) -> SnmpEndpoint:
    return SnmpEndpoint(snmpd.host, community(COMMUNITY), snmpd.port, timeout=2.0, retries=0,
                        max_repetitions=REPETITIONS)


def bad_ep(agent: MutatingAgent) -> SnmpEndpoint:
    return SnmpEndpoint(agent.host, community(COMMUNITY), agent.port,
                        max_repetitions=REPETITIONS, **FAST)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def reference(snmpd: simlab.Agent, agent: MutatingAgent) -> Reference:
    """The undamaged answers, read by the pysnmp client (the other decoder) through the
    mutating agent with no mutation armed, and straight from snmpd."""
    client = PysnmpClient()
    try:
        agent.arm(None)
        walk = await client.walk(bad_ep(agent), STABLE_TABLE)
        get = await client.get(bad_ep(agent), GET_OIDS)
        faults = {malformed_because(e.sent) for e in agent.exchanges}
        direct = await client.walk(healthy_ep(snmpd), STABLE_TABLE)
    finally:
        await client.aclose()
    assert walk.failure is None and get.failure is None, (walk.failure, get.failure)
    assert walk.requests > 2 and len(walk.rows) > REPETITIONS * 2
    assert list(walk.rows.items()) == list(direct.rows.items())
    assert set(get.values) == set(GET_OIDS)
    assert faults == {None}, f"the reference check rejects snmpd's real answers: {faults}"
    return Reference(walk.rows, get.values)


async def run_case(client: SnmpClient, agent: MutatingAgent, healthy: SnmpEndpoint,
                   mutation: Mutation, skip: int = 0) -> Case:
    """Walk and GET the damaged agent concurrently, while the same client walks the
    healthy snmpd over and over; BaseException (PanicException) is reported, not raised."""
    agent.arm(mutation, skip)
    ep = bad_ep(agent)
    done = asyncio.Event()

    async def damaged() -> tuple[WalkResult, GetResult]:
        try:
            walk, get = await asyncio.gather(client.walk(ep, STABLE_TABLE),
                                             client.get(ep, GET_OIDS))
            return walk, get
        finally:
            done.set()

    async def healthy_walks() -> list[tuple[WalkResult, float]]:
        out: list[tuple[WalkResult, float]] = []
        for _ in range(HEALTHY_WALKS):
            start = time.monotonic()
            out.append((await client.walk(healthy, STABLE_TABLE), time.monotonic() - start))
            if done.is_set():
                break
            await asyncio.sleep(0.002)
        return out

    raised: BaseException | None = None
    try:
        (walk, get), walks = await asyncio.wait_for(
            asyncio.gather(damaged(), healthy_walks()), CASE_LIMIT)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - PanicException is a BaseException
        raised = exc
    exchanges = list(agent.exchanges)
    if raised is not None:
        pytest.fail(f"{mutation!r} (skip {skip}): the client raised {raised!r}\n"
                    + sent_hex(exchanges))
    return Case(walk, get, walks, exchanges)


def sent_hex(exchanges: Sequence[Exchange]) -> str:
    """The damaged datagrams, for an assertion message (a reproducer)."""
    kinds = {GET_TAG: "GET", GETNEXT_TAG: "GETNEXT", GETBULK_TAG: "GETBULK"}
    return "\n".join(
        f"  answer to {kinds.get(e.kind, hex(e.kind))}: "
        + ("(dropped)" if e.sent is None else e.sent.hex())
        for e in exchanges if e.mutated)


#: Tags a variable's value may have: INTEGER, OCTET STRING, NULL, OBJECT IDENTIFIER,
#: IpAddress, Counter32, Gauge32, TimeTicks, Opaque, Counter64, Unsigned32 and the three
#: exceptions (noSuchObject, noSuchInstance, endOfMibView).
VALUE_TAGS = {0x02, 0x04, 0x05, 0x06, 0x40, 0x41, 0x42, 0x43, 0x44, 0x46, 0x47, 0x80, 0x81,
              0x82}
NUMBER_TAGS = {0x02, 0x41, 0x42, 0x43, 0x46, 0x47}
EMPTY_TAGS = {0x05, 0x80, 0x81, 0x82}


def oid_fault(content: bytes) -> str | None:
    """Why OBJECT IDENTIFIER contents are not valid BER (X.690 8.19), or None."""
    if not content:
        return "empty OID"
    if content[-1] & 0x80:
        return "OID ends inside a sub-identifier"
    for i, byte in enumerate(content):
        if byte == 0x80 and (i == 0 or not content[i - 1] & 0x80):
            return f"OID sub-identifier starting with 0x80 at byte {i}"
    return None


def malformed_because(datagram: bytes | None) -> str | None:
    """The test's own reference: why ``datagram`` is not a well-formed SNMPv1/v2c
    Response (structure, lengths, tags, OID encoding, nothing left over), or None.
    Values out of their SMI range (a 7-byte Integer32, a 5-byte IpAddress) are
    well-formed BER with other values, not malformed."""
    if not datagram:
        return "empty datagram"
    try:
        nodes = parse_tlvs(datagram)
    except ValueError as exc:
        return str(exc)
    children: dict[int, list[Tlv]] = {}  # of each TLV, by its start offset; -1: top
    open_nodes: list[Tlv] = []
    for node in nodes:  # pre-order: the parent is the innermost TLV still open
        while open_nodes and open_nodes[-1].end <= node.start:
            open_nodes.pop()
        children.setdefault(open_nodes[-1].start if open_nodes else -1, []).append(node)
        open_nodes.append(node)
    top = children.get(-1, [])
    if len(top) != 1 or top[0].tag != 0x30:
        return "not one SEQUENCE"
    msg = children.get(top[0].start, [])
    if [n.tag for n in msg] != [0x02, 0x04, RESPONSE_TAG]:
        return "not version, community, Response-PDU"
    pdu = children.get(msg[2].start, [])
    if [n.tag for n in pdu] != [0x02, 0x02, 0x02, 0x30]:
        return "PDU fields wrong"
    for field in (msg[0], *pdu[:3]):
        if field.body == field.end:
            return "empty INTEGER"
    for binding in children.get(pdu[3].start, []):
        parts = children.get(binding.start, [])
        if binding.tag != 0x30 or len(parts) != 2:
            return "variable binding is not a SEQUENCE of name and value"
        name, value = parts
        content = datagram[value.body : value.end]
        if name.tag != 0x06 or value.tag not in VALUE_TAGS:
            return "wrong tag in a variable binding"
        if fault := oid_fault(datagram[name.body : name.end]):
            return fault
        if value.tag == 0x06 and (fault := oid_fault(content)):
            return fault
        if (value.tag in NUMBER_TAGS and not content) or (value.tag in EMPTY_TAGS and content):
            return "wrong length of a value"
    return None


def status_of(res: WalkResult | GetResult) -> Status:
    return res.failure.status if res.failure else Status.OK


def names_agent(text: str, port: int) -> bool:
    return f"127.0.0.1:{port}" in text or f"UDP port {port}" in text


def check_values(values: Mapping[OID, Value], what: str) -> None:
    bad = {oid_str(o): v for o, v in values.items()
           if isinstance(v, bool) or not isinstance(v, int | bytes | str)}
    assert not bad, f"{what}: values of unexpected types: {bad!r}"


def same_values(got: Mapping[OID, Value], want: Mapping[OID, Value]) -> bool:
    """Same OIDs, same values (same types only, for the values that change)."""
    return set(got) == set(want) and all(
        type(v) is type(want[o]) if o in UNSTABLE else v == want[o] for o, v in got.items())


def check_result(res: WalkResult | GetResult, what: str, answers: list[Exchange],
                 want: Mapping[OID, Value], port: int) -> str:
    """Assert the rules for one result; return the outcome label for the summary."""
    got = res.rows if isinstance(res, WalkResult) else res.values
    status = status_of(res)
    explanation = res.failure.explanation if res.failure else ""
    check_values(got, what)
    damaged = [e for e in answers if e.mutated]
    if not damaged:  # e.g. the walk ended before the armed answer: all must be fine
        assert res.failure is None and same_values(got, want), (
            f"{what}: undamaged, yet {res.failure}")
        return f"{what}:undamaged"
    invalid = all(malformed_because(e.sent) for e in damaged)
    if invalid:  # nothing of the damaged answers may turn into rows
        if isinstance(res, WalkResult):
            assert list(got.items()) == list(want.items())[: len(got)], (
                f"{what}: rows are not a prefix of the real rows ({len(got)} rows)")
        else:
            assert all(want.get(o) == v for o, v in got.items() if o not in UNSTABLE), (
                f"{what}: values differ from the real ones: {got!r}")
        # A lenient decoder may read past e.g. trailing bytes, but then it has all of it.
        complete = set(got) == set(want)
        assert status in INVALID_ANSWER_STATUSES or (status is Status.OK and complete), (
            f"{what}: malformed answer ended as {status} with {len(got)} of {len(want)} "
            f"values: {explanation}")
    else:
        assert status in VALID_ANSWER_STATUSES, f"{what}: {status}: {explanation}"
    if status is Status.PROTOCOL_ERROR:
        assert names_agent(explanation, port), f"{what}: agent not named: {explanation}"
        if invalid:
            assert MALFORMED.search(explanation), f"{what}: not called malformed: {explanation}"
    return f"{what}:{status}{'' if invalid else ' (well-formed)'}"


def check_case(case: Case, mutation: Mutation, skip: int, ref: Reference, port: int,
               logs: str) -> list[str]:
    """Every rule for one case; the assertion message carries the reproducer."""
    walk_answers = [e for e in case.exchanges if e.kind in (GETNEXT_TAG, GETBULK_TAG)]
    get_answers = [e for e in case.exchanges if e.kind == GET_TAG]
    try:
        labels = [check_result(case.walk, "walk", walk_answers, ref.rows, port),
                  check_result(case.get, "get", get_answers, ref.values, port)]
        assert "Traceback" not in logs and "panicked" not in logs, f"traceback/panic:\n{logs}"
        assert case.healthy, "no healthy walk ran"
        for res, took in case.healthy:
            assert res.failure is None, f"healthy snmpd walk failed: {res.failure}"
            assert list(res.rows.items()) == list(ref.rows.items()), "healthy rows differ"
            assert took < HEALTHY_LATENCY, f"healthy walk stalled: {took:.2f}s"
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n{mutation!r} (walk answers damaged from #{skip})\nwalk: {case.walk.failure}"
            f"\nget: {case.get.failure}\n{sent_hex(case.exchanges)}") from None
    return labels


def captured(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """Log records and fd 1/2 output since the last call (Rust panics write to fd 2)."""
    out, err = capfd.readouterr()
    text = caplog.text + "".join(
        f"\n[{r.levelname}] {r.name}: exc_info {r.exc_info[0]!r}"
        for r in caplog.records if r.exc_info and r.exc_info[0] is not None)
    caplog.clear()
    return text + out + err


# -- fuzz -----------------------------------------------------------------------------


@st.composite
def mutations(draw: st.DrawFn) -> tuple[Mutation, int]:
    """A damage to real answers, and from which walk answer on it applies (the table
    takes 14 answers: later damage leaves good rows before it)."""
    kind = draw(st.sampled_from(MUTATION_KINDS))
    at = draw(st.integers(0, 1 << 16))
    value = draw(st.integers(0, 0xFF) if kind in ("flip", "retag")
                 else st.integers(0, 300) if kind == "length" else st.integers(0, 16))
    extra = b""
    if kind in ("trailing", "cut_random", "replace_value"):
        extra = draw(st.binary(min_size=kind == "trailing", max_size=40))
    elif kind == "random":
        extra = draw(st.binary(min_size=0, max_size=600))
    mutation = Mutation(kind, at, value, extra, draw(st.booleans()))
    return mutation, draw(st.integers(0, 12))


@pytest.mark.timeout(300)
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate),  # no shrinking: bounded time
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutations())
async def test_fuzzed_answers(client: SnmpClient, agent: MutatingAgent, snmpd: simlab.Agent,
                              reference: Reference, outcomes: Counter[str],
                              caplog: pytest.LogCaptureFixture,
                              capfd: pytest.CaptureFixture[str],
                              case: tuple[Mutation, int]) -> None:
    """Hypothesis-chosen damage (truncation, flipped bytes, wrong lengths and tags,
    dropped or repeated TLVs, empty bindings, trailing or random bytes)."""
    caplog.set_level(logging.DEBUG)
    mutation, skip = case
    result = await run_case(client, agent, healthy_ep(snmpd), mutation, skip)
    labels = check_case(result, mutation, skip, reference, agent.port, captured(caplog, capfd))
    outcomes.update(labels)
    outcomes["cases"] += 1


# -- known bad shapes -------------------------------------------------------------------

REGRESSIONS = [
    pytest.param(Mutation("empty_varbind"), id="empty-varbind-sequence"),
    pytest.param(Mutation("truncate", at=40), id="truncated"),
    pytest.param(Mutation("random", extra=random.Random(20240613).randbytes(120)),
                 id="random-garbage"),
    pytest.param(Mutation("trailing", extra=b"\x00\x00\x04\x02hi"), id="trailing-data"),
    # The first variable's name as 06 02 80 1A: a sub-identifier may not start with 0x80
    # (X.690 8.19.2). Found by the fuzz: gufo 0.13 reads it as 3.8.26.
    pytest.param(Mutation("replace_value", at=5, extra=b"\x80\x1a"), id="bad-oid-encoding"),
]


@pytest.mark.parametrize("mutation", REGRESSIONS)
async def test_known_bad_answer_is_protocol_error(
    client: SnmpClient, agent: MutatingAgent, snmpd: simlab.Agent, reference: Reference,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], mutation: Mutation,
) -> None:
    """Each shape, in the GET and the first GETBULK answer: protocol_error, the agent
    named, the answer called malformed, no rows."""
    caplog.set_level(logging.DEBUG)
    case = await run_case(client, agent, healthy_ep(snmpd), mutation)
    check_case(case, mutation, 0, reference, agent.port, captured(caplog, capfd))
    for what, res in (("walk", case.walk), ("get", case.get)):
        assert res.failure is not None and res.failure.status is Status.PROTOCOL_ERROR, (
            f"{what}: {res.failure}\n{sent_hex(case.exchanges)}")
        assert names_agent(res.failure.explanation, agent.port), res.failure.explanation
        assert MALFORMED.search(res.failure.explanation), res.failure.explanation
    assert case.walk.rows == {} and case.get.values == {}


def random_datagrams() -> st.SearchStrategy[bytes]:
    """Any bytes, and random contents inside a well-formed outer SEQUENCE (which gets
    past a first glance at the datagram)."""
    return st.one_of(st.binary(max_size=600), st.binary(max_size=600).map(
        lambda body: b"\x30" + ber_length(len(body)) + body))


@pytest.mark.timeout(300)
@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(datagram=random_datagrams())
async def test_random_datagrams(client: SnmpClient, agent: MutatingAgent, snmpd: simlab.Agent,
                                reference: Reference, outcomes: Counter[str],
                                caplog: pytest.LogCaptureFixture,
                                capfd: pytest.CaptureFixture[str], datagram: bytes) -> None:
    """Hypothesis-generated datagrams instead of every answer."""
    caplog.set_level(logging.DEBUG)
    mutation = Mutation("random", extra=datagram)
    result = await run_case(client, agent, healthy_ep(snmpd), mutation)
    labels = check_case(result, mutation, 0, reference, agent.port, captured(caplog, capfd))
    outcomes.update(f"random {label}" for label in labels)
    outcomes["cases"] += 1


async def test_fuzz_summary(outcomes: Counter[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Outcome counts of the fuzz tests, printed to the terminal, and a sanity check
    that the damage reached the client's decoding rather than only its request-id."""
    if not outcomes["cases"]:
        pytest.skip("the fuzz tests did not run")
    summary = ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
    with capsys.disabled():
        print(f"\nSNMP fuzz outcomes: {summary}")
    errors = sum(n for label, n in outcomes.items() if ":protocol_error" in label)
    assert errors > outcomes["cases"] // 2, summary
