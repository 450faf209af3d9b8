"""The printer module end to end: the real SNMP probe through the runner against
snmpsim serving every printer recording, compared with the converter run directly on
the same file. Any OID the module forgets to fetch, or any value the client decodes
differently from the recording, shows up as a difference here."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.demo import simlab
from probes.context import ProbeContext
from probes.registry import run_probe
from probes.result import ProbeResult, Sample, Status
from probes.snmp.credentials import SnmpCredentials, community
from probes.snmp.modules.printer import convert
from probes.snmp.probe import SnmpSettings
from probes.target import Target
from tests.snmprec import community_of, load_walked, recordings

PRINTERS = recordings("printer")
IDS = [p.stem for p in PRINTERS]
PROBE_OWN = ("netmon_probe_", "netmon_snmp_")


def device_samples(result: ProbeResult) -> list[Sample]:
    return sorted(
        (s for s in result.samples if not s.metric.startswith(PROBE_OWN)),
        key=lambda s: (s.metric, s.labels),
    )


async def probe(
    agent: simlab.Agent, path: Path, credentials: SnmpCredentials, ctx: ProbeContext
) -> ProbeResult:
    settings = SnmpSettings(modules=("printer",), credentials=credentials, timeout=2.0, retries=1)
    target = Target(path.stem, agent.host, agent.port)
    return await run_probe("snmp", target, settings, ctx)


@pytest.mark.parametrize("path", PRINTERS, ids=IDS)
async def test_probe_matches_converter(
    path: Path, snmpsim: simlab.Agent, ctx: ProbeContext
) -> None:
    result = await probe(snmpsim, path, community(community_of(path)), ctx)
    assert result.status is Status.OK, result.explanation
    expected = convert(load_walked(path))
    assert expected.records["supplies"], "every printer recording has supplies"
    for key in ("supplies", "trays", "conditions", "alerts", "covers"):
        assert result.records.get(key) == expected.records.get(key), key
    assert device_samples(result) == sorted(expected.samples, key=lambda s: (s.metric, s.labels))
    assert {k: v for k, v in result.facts.items() if k != "snmp"} == expected.facts
    assert result.facts["printer_status"].startswith("unknown")  # no recording has it
    assert community_of(path) not in result.explanation + str(result.facts)


async def test_printer_over_snmpv3(snmpsim: simlab.Agent, ctx: ProbeContext) -> None:
    """The same data over SNMPv3 authPriv (snmpsim's context name picks the file)."""
    path = next(p for p in PRINTERS if p.stem == "sharp-mx-3570n")
    creds = SnmpCredentials.model_validate(
        {
            "version": "3",
            "user": "simulator",
            "auth": {"protocol": "MD5", "password": "auctoritas"},
            "priv": {"protocol": "DES", "password": "privatus"},
            "context": community_of(path),
        }
    )
    result = await probe(snmpsim, path, creds, ctx)
    assert result.status is Status.OK, result.explanation
    expected = convert(load_walked(path))
    assert result.records == expected.records
    assert device_samples(result) == sorted(expected.samples, key=lambda s: (s.metric, s.labels))


async def test_wrong_community_is_a_status_not_an_exception(
    snmpsim: simlab.Agent, ctx: ProbeContext
) -> None:
    settings = SnmpSettings(
        modules=("printer",), credentials=community("not-a-recording"), timeout=0.3, retries=0
    )
    result = await run_probe("snmp", Target("nobody", snmpsim.host, snmpsim.port), settings, ctx)
    assert result.status is not Status.OK and result.status is not Status.ERROR
    assert not [s for s in result.samples if s.metric.startswith("netmon_printer_")]
