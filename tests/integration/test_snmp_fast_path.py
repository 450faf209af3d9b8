"""The gufo-snmp polling path: what it must and must not do beyond the client tests.

* The success path neither uses nor imports pysnmp or pyasn1 (they load only to
  explain a failure), checked in a fresh interpreter against a real snmpd.
* An agent that answers tooBig gets the same walk again with fewer rows per request,
  and the client remembers the smaller size for that agent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from monitor.demo import simlab
from probes.snmp.client import SnmpClient
from probes.snmp.credentials import SnmpCredentials, community
from probes.snmp.types import SnmpEndpoint, oid
from tests.conftest import AUTH_PASSWORD, COMMUNITY, PRIV_PASSWORD, V3_USERS, need
from tests.integration.fake_agents import FakeAgent

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import asyncio, json, sys
from probes.context import ProbeContext
from probes.registry import run_probe
from probes.snmp.probe import SnmpSettings
from probes.target import Target

async def main(port, credentials):
    settings = SnmpSettings.model_validate(
        {"modules": ["system", "interfaces", "host"], "credentials": credentials})
    async with ProbeContext() as ctx:
        result = await run_probe("snmp", Target("t", "127.0.0.1", port), settings, ctx)
    loaded = sorted(m for m in ("pysnmp", "pyasn1") if m in sys.modules)
    print(json.dumps({"status": result.status.value, "loaded": loaded,
                      "explanation": result.explanation}))

asyncio.run(main(int(sys.argv[1]), json.loads(sys.argv[2])))
"""


def run_probe_process(port: int, credentials: dict[str, object]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _PROBE, str(port), json.dumps(credentials)],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_success_path_does_not_import_pysnmp(snmpd: simlab.Agent) -> None:
    for creds in (
        {"version": "2c", "community": COMMUNITY},
        {"version": "1", "community": COMMUNITY},
        {"version": "3", "user": "priv-aes", "auth": {"protocol": "SHA", "password": AUTH_PASSWORD},
         "priv": {"protocol": "AES", "password": PRIV_PASSWORD}},
    ):
        got = run_probe_process(snmpd.port, creds)
        assert got["status"] == "ok", got
        assert got["loaded"] == [], got


def test_failure_path_loads_pysnmp_to_explain(snmpd: simlab.Agent) -> None:
    """The control: a wrong community is explained with pysnmp's help."""
    got = run_probe_process(snmpd.port, {"version": "2c", "community": "wrong-one"})
    assert got["status"] == "auth_error" and "wrong community" in str(got["explanation"]), got
    assert "pyasn1" in got["loaded"], got


# -- tooBig ---------------------------------------------------------------------------

TABLE = oid("1.3.6.1.4.1.99999.1")
SYSTEM = oid("1.3.6.1.2.1.1")
ROWS = [TABLE + (1, i) for i in range(1, 31)]
LIMIT = 4  # the agent answers tooBig when asked for more rows than this


class TooBigAgent(FakeAgent):
    """A v2c agent serving 30 rows that answers tooBig to GETBULKs asking for > LIMIT."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.too_big = 0
        self.max_asked: list[int] = []

    def _answer(self, data: bytes) -> bytes | None:
        pmod = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        try:
            msg, _ = decoder.decode(data, asn1Spec=pmod.Message())
        except Exception:  # noqa: BLE001 - anything else (an SNMPv3 probe) gets no answer
            return None
        pdu = pmod.apiMessage.get_pdu(msg)
        response = pmod.apiMessage.get_response(msg)
        rpdu = pmod.apiMessage.get_pdu(response)
        if not isinstance(pdu, pmod.GetBulkRequestPDU):
            return None
        reps = int(pmod.apiBulkPDU.get_max_repetitions(pdu))
        self.max_asked.append(reps)
        if reps > LIMIT:
            self.too_big += 1
            pmod.apiPDU.set_error_status(rpdu, 1)
            pmod.apiPDU.set_varbinds(rpdu, [])
            return bytes(encoder.encode(response))
        start = tuple(pmod.apiPDU.get_varbinds(pdu)[0][0])
        after = [r for r in ROWS if r > start][:reps]
        varbinds = [(r, pmod.Integer(r[-1])) for r in after]
        if len(after) < reps:
            varbinds.append((after[-1] if after else start, pmod.EndOfMibView()))
        pmod.apiPDU.set_varbinds(rpdu, varbinds)
        return bytes(encoder.encode(response))


async def test_too_big_walks_again_with_fewer_rows() -> None:
    client = SnmpClient()
    try:
        with TooBigAgent() as agent:
            ep = SnmpEndpoint(agent.host, community(COMMUNITY), agent.port, timeout=1,
                              retries=0, max_repetitions=25)
            first = await client.walk(ep, TABLE)
            asked_first = list(agent.max_asked)
            second = await client.walk(ep, TABLE)
    finally:
        await client.aclose()
    assert first.failure is None, first.failure
    assert list(first.rows) == ROWS and list(first.rows.values()) == list(range(1, 31))
    assert asked_first[:3] == [25, 12, 6] and max(asked_first[3:]) <= LIMIT
    assert second.failure is None and list(second.rows) == ROWS
    assert agent.too_big == 3  # remembered: the second walk asks for few rows at once
    assert second.requests < first.requests


# -- an SNMPv3 agent that restarts between polls --------------------------------------


async def test_v3_agent_restart_between_polls_needs_no_operator() -> None:
    """A pooled SNMPv3 session knows the agent's engine ID, boots and time; after the
    agent restarts (new boots, maybe a new engine ID) its Report is answered by learning
    them again, and the poll succeeds instead of reporting an authentication error."""
    need(simlab.snmpd_available())
    creds = SnmpCredentials.model_validate({
        "version": "3", "user": "priv-aes",
        "auth": {"protocol": "SHA", "password": AUTH_PASSWORD},
        "priv": {"protocol": "AES", "password": PRIV_PASSWORD},
    })
    users = [u for u in V3_USERS if u.name == "priv-aes"]
    client = SnmpClient()
    try:
        with simlab.start_snmpd(communities=[COMMUNITY], users=users) as first:
            ep = SnmpEndpoint(first.host, creds, first.port, timeout=1, retries=1)
            before = await client.walk(ep, SYSTEM)
            port = first.port
        with simlab.start_snmpd(port=port, communities=[COMMUNITY], users=users):
            after = await client.walk(ep, SYSTEM)
    finally:
        await client.aclose()
    assert before.failure is None and after.failure is None, after.failure
    assert list(after.rows) == list(before.rows) and before.rows
