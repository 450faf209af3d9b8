"""The SNMP probe end to end, through the runner, against real agents on loopback:
snmpsim serving every recording, and net-snmp's snmpd."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.demo import simlab
from probes.context import ProbeContext
from probes.registry import run_probe
from probes.result import ProbeResult, Sample, Status
from probes.snmp.credentials import SnmpCredentials, community
from probes.snmp.modules import MODULES
from probes.snmp.modules.base import ModuleOutput, SnmpModule
from probes.snmp.probe import SnmpSettings
from probes.target import Target
from tests.conftest import AUTH_PASSWORD, COMMUNITY, PRIV_PASSWORD
from tests.snmprec import community_of, load_walked, recordings

#: Which modules fit which kind of recording (the printer module is tested elsewhere).
KIND_MODULES = {
    "linux": ("system", "interfaces", "host"),
    "windows": ("system", "interfaces", "host"),
    "switch": ("system", "interfaces"),
    "printer": ("system", "interfaces", "host"),
    "ups": ("system", "interfaces", "ups"),
}
PROBE_OWN = ("netmon_probe_", "netmon_snmp_")


def device_samples(result: ProbeResult) -> list[Sample]:
    return sorted(
        (s for s in result.samples if not s.metric.startswith(PROBE_OWN)),
        key=lambda s: (s.metric, s.labels),
    )


def expected_samples(path: Path, modules: tuple[str, ...]) -> list[Sample]:
    walked = load_walked(path)
    out = [s for name in modules for s in MODULES[name].convert(walked).samples]
    return sorted(out, key=lambda s: (s.metric, s.labels))


def settings_for(community_name: str, modules: tuple[str, ...], **kw: object) -> SnmpSettings:
    return SnmpSettings(modules=modules, credentials=community(community_name), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", recordings(), ids=[community_of(p) for p in recordings()])
async def test_probe_matches_converters_on_every_recording(
    path: Path, snmpsim: simlab.Agent, ctx: ProbeContext
) -> None:
    modules = KIND_MODULES[path.parent.name]
    target = Target(community_of(path), snmpsim.host, snmpsim.port)
    result = await run_probe("snmp", target, settings_for(community_of(path), modules), ctx)
    assert result.status is Status.OK, result.explanation
    assert device_samples(result) == expected_samples(path, modules)
    assert f"{len(modules)} modules" in result.explanation
    (varbinds,) = result.samples_named("netmon_snmp_varbinds")
    (requests,) = result.samples_named("netmon_snmp_requests")
    assert varbinds.value > 0 and requests.value >= 2
    assert result.facts["sys_descr"]
    assert community_of(path) not in result.explanation + str(result.facts)


async def test_snmpd_system_interfaces_host(snmpd: simlab.Agent, ctx: ProbeContext) -> None:
    target = Target("snmpd", snmpd.host, snmpd.port)
    settings = settings_for(COMMUNITY, ("system", "interfaces", "host"))
    result = await run_probe("snmp", target, settings, ctx)
    assert result.status is Status.OK, result.explanation
    for metric in ("netmon_device_info", "netmon_device_uptime_seconds", "netmon_interface_oper_up",
                   "netmon_host_storage_size_bytes", "netmon_host_processes"):  # fmt: skip
        assert result.samples_named(metric), f"no {metric} from snmpd"
    lo = [
        s for s in result.samples_named("netmon_interface_info") if s.label_dict["if_name"] == "lo"
    ]
    assert lo and lo[0].label_dict["if_type"] == "softwareLoopback"
    assert result.records["storage"] and result.records["interfaces"]
    assert COMMUNITY not in result.explanation + str(result.facts) + str(result.to_json())


async def test_snmpd_over_snmpv3_authpriv(snmpd: simlab.Agent, ctx: ProbeContext) -> None:
    creds = SnmpCredentials.model_validate(
        {
            "version": "3",
            "user": "priv-aes",
            "auth": {"protocol": "SHA", "password": AUTH_PASSWORD},
            "priv": {"protocol": "AES", "password": PRIV_PASSWORD},
        }
    )
    settings = SnmpSettings(modules=("system", "host"), credentials=creds)
    result = await run_probe("snmp", Target("snmpd", snmpd.host, snmpd.port), settings, ctx)
    assert result.status is Status.OK, result.explanation
    assert result.explanation.startswith("SNMPv3 authPriv")
    assert result.samples_named("netmon_host_storage_used_bytes")
    dump = result.explanation + str(result.facts) + str(result.to_json())
    assert AUTH_PASSWORD not in dump and PRIV_PASSWORD not in dump


async def test_wrong_community_is_an_auth_error_or_timeout(
    snmpd: simlab.Agent, ctx: ProbeContext
) -> None:
    settings = settings_for("not-the-community", ("system",), timeout=0.3, retries=0)
    result = await run_probe("snmp", Target("snmpd", snmpd.host, snmpd.port), settings, ctx)
    assert result.status in (Status.AUTH_ERROR, Status.TIMEOUT)
    assert "not-the-community" not in result.explanation
    assert [s.value for s in result.samples_named("netmon_probe_success")] == [0.0]


def test_unknown_module_is_a_settings_error() -> None:
    with pytest.raises(ValidationError) as err:
        SnmpSettings(modules=("system", "toner"), credentials=community("x"))
    message = str(err.value)
    assert "'toner'" in message and all(name in message for name in MODULES)
    with pytest.raises(ValidationError):
        SnmpSettings(modules=(), credentials=community("x"))
    ok = SnmpSettings(modules=["system", "system", "ups"], credentials=community("x"))  # type: ignore[arg-type]
    assert ok.modules == ("system", "ups")


async def test_nothing_listening_is_a_quick_timeout(ctx: ProbeContext) -> None:
    port = simlab.free_udp_port()  # bound, then released: nothing listens there now
    settings = settings_for("public", ("system", "interfaces"), timeout=0.3, retries=0)
    result = await run_probe("snmp", Target("silent", "127.0.0.1", port), settings, ctx)
    assert result.status is Status.TIMEOUT, result.explanation
    assert result.duration_seconds < settings.deadline()
    assert "no answer" in result.explanation


async def test_target_port_wins_over_settings_port(
    snmpsim: simlab.Agent, ctx: ProbeContext
) -> None:
    path = recordings("printer")[0]
    settings = settings_for(community_of(path), ("system",), port=1)  # port 1: never reached
    result = await run_probe("snmp", Target("p", snmpsim.host, snmpsim.port), settings, ctx)
    assert result.status is Status.OK, result.explanation


async def test_broken_converter_keeps_other_modules_and_is_partial(
    snmpsim: simlab.Agent,
    ctx: ProbeContext,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(walked: object) -> ModuleOutput:
        raise KeyError("bug")

    broken = SnmpModule("ups", "broken on purpose", MODULES["ups"].walks, boom, MODULES["ups"].gets)
    monkeypatch.setitem(MODULES, "ups", broken)
    path = recordings("ups")[0]
    target = Target("ups-1", snmpsim.host, snmpsim.port)
    with caplog.at_level(logging.ERROR):
        result = await run_probe(
            "snmp", target, settings_for(community_of(path), ("system", "ups")), ctx
        )
    assert result.status is Status.PARTIAL
    assert "ups" in result.explanation and "KeyError" in result.explanation
    assert device_samples(result) == expected_samples(path, ("system",))
    assert any(
        "ups-1" in r.getMessage() or snmpsim.endpoint in r.getMessage() for r in caplog.records
    )


async def test_truncated_walk_is_partial_and_named(
    snmpsim: simlab.Agent, ctx: ProbeContext
) -> None:
    path = next(p for p in recordings("switch") if "procurve" in p.name)
    settings = settings_for(community_of(path), ("system", "interfaces"), max_rows=5)
    result = await run_probe("snmp", Target("sw", snmpsim.host, snmpsim.port), settings, ctx)
    assert result.status is Status.PARTIAL, result.explanation
    assert "1.3.6.1.2.1" in result.explanation and "max_rows" in result.explanation
    assert result.samples_named("netmon_device_info")  # what arrived is kept
