"""The runner's guarantees: deadline, escaped bugs caught, runner-owned samples."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from probes import registry
from probes.context import ProbeContext
from probes.result import ProbeResult, Sample, Status
from probes.settings import StrictModel
from probes.target import Target


class FakeSettings(StrictModel):
    behaviour: str = "ok"
    limit: float = 0.2

    def deadline(self) -> float:
        return self.limit


async def fake_probe(target: Target, settings: FakeSettings, ctx: ProbeContext) -> ProbeResult:
    if settings.behaviour == "hang":
        await asyncio.sleep(3600)
    if settings.behaviour == "raise":
        raise ZeroDivisionError("boom")
    return ProbeResult(Status.OK, "fine", samples=[Sample.of("netmon_host_processes", 7)])


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.ProbeSpec("fake", fake_probe, FakeSettings, lambda s: s.deadline())
    monkeypatch.setitem(registry.PROBES, "fake", spec)


def by_name(result: ProbeResult) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in result.samples:
        out.setdefault(s.metric, []).append(s)
    return out


async def test_ok_run_gets_runner_fields_and_samples(fake: Any, ctx: ProbeContext) -> None:
    result = await registry.run_probe("fake", Target("pc-1", "127.0.0.1"), FakeSettings(), ctx)
    assert (result.status, result.probe, result.target) == (Status.OK, "fake", "pc-1")
    assert result.duration_seconds > 0 and result.started_at > 0
    samples = by_name(result)
    assert samples["netmon_probe_success"][0].value == 1.0
    assert samples["netmon_host_processes"][0].value == 7
    # one series, the current status (not a state set of all eleven)
    (status,) = samples["netmon_probe_status"]
    assert (status.label_dict, status.value) == ({"status": "ok"}, 1.0)


async def test_hanging_probe_is_cut_at_its_deadline(fake: Any, ctx: ProbeContext) -> None:
    result = await registry.run_probe(
        "fake", Target("pc-2", "127.0.0.1"), FakeSettings(behaviour="hang", limit=0.05), ctx
    )
    assert result.status is Status.TIMEOUT
    assert "did not finish within" in result.explanation
    assert by_name(result)["netmon_probe_success"][0].value == 0.0
    (status,) = by_name(result)["netmon_probe_status"]
    assert (status.label_dict, status.value) == ({"status": "timeout"}, 1.0)


async def test_escaped_exception_is_a_logged_error_result(
    fake: Any, ctx: ProbeContext, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="netmon.probes"):
        result = await registry.run_probe(
            "fake", Target("pc-3", "127.0.0.1"), FakeSettings(behaviour="raise"), ctx
        )
    assert result.status is Status.ERROR
    assert "ZeroDivisionError" in result.explanation
    assert any("pc-3" in r.getMessage() or "127.0.0.1" in r.getMessage() for r in caplog.records)


async def test_one_hanging_target_does_not_delay_others(fake: Any, ctx: ProbeContext) -> None:
    hang = registry.run_probe("fake", Target("slow", "127.0.0.1"), FakeSettings(behaviour="hang", limit=5), ctx)
    slow = asyncio.ensure_future(hang)
    quick = [
        await registry.run_probe("fake", Target(f"q{i}", "127.0.0.1"), FakeSettings(), ctx)
        for i in range(5)
    ]
    assert all(r.status is Status.OK for r in quick)
    assert not slow.done()
    slow.cancel()
