"""The probe registry and the one runner every caller (CLI, scheduler, /probe) uses.

The runner, not the probe, owns duration, the overall deadline, the concurrency limit
and the ``netmon_probe_*`` samples; a probe adds only its own detail (blackbox_exporter's
split). Anything that escapes a probe is caught here, logged with the target, and
reported as ``Status.ERROR`` so one bad device never takes a process down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from probes.context import ProbeContext
from probes.icmp import IcmpSettings, probe_icmp
from probes.result import ProbeResult, Sample, Status
from probes.snmp.probe import SnmpSettings, probe_snmp
from probes.target import Target
from probes.tcp import TcpSettings, probe_tcp

log = logging.getLogger("netmon.probes")

ProbeFn = Callable[[Target, Any, ProbeContext], Awaitable[ProbeResult]]


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    name: str
    fn: ProbeFn
    settings: type[BaseModel]
    #: Seconds a run may take on top of what the settings imply, before the runner cuts it.
    deadline: Callable[[Any], float]


PROBES: dict[str, ProbeSpec] = {
    "icmp": ProbeSpec("icmp", probe_icmp, IcmpSettings, lambda s: s.deadline()),
    "snmp": ProbeSpec("snmp", probe_snmp, SnmpSettings, lambda s: s.deadline()),
    "tcp": ProbeSpec("tcp", probe_tcp, TcpSettings, lambda s: s.deadline()),
}


async def run_probe(
    name: str, target: Target, settings: BaseModel, ctx: ProbeContext
) -> ProbeResult:
    """Run one probe under its concurrency limit and deadline; never raises."""
    spec = PROBES[name]
    started_at = time.time()
    t0 = time.perf_counter()
    try:
        async with ctx.semaphore(name):
            async with asyncio.timeout(spec.deadline(settings)):
                result = await spec.fn(target, settings, ctx)
    except TimeoutError:
        result = ProbeResult(
            Status.TIMEOUT,
            f"the {name} probe did not finish within {spec.deadline(settings):.1f}s",
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # one place where escaped bugs are caught and counted
        log.exception("bug: %s probe of %s raised", name, target.display)
        result = ProbeResult(Status.ERROR, f"internal error in the {name} probe: {exc!r}")
    duration = time.perf_counter() - t0
    result = result.with_runner_fields(
        probe=name, target=target.name, duration_seconds=duration, started_at=started_at
    )
    result.samples.extend(runner_samples(result))
    return result


#: ``netmon_probe_status``'s label tuple per status, shared by every result.
_STATUS_LABELS = {s: (("status", s.value),) for s in Status}


def runner_samples(result: ProbeResult) -> list[Sample]:
    """``netmon_probe_success``, ``..._duration_seconds`` and ``..._status``.

    ``netmon_probe_status`` is one series per run, its ``status`` label the outcome
    (value 1), not a state set of all eleven statuses: the ten zeros of every job were
    a quarter of a district's series, and no dashboard or rule reads them (they ask for
    ``{status="timeout"} == 1`` or group by ``status``). ``netmon_probe_success`` is the
    0/1 series for "did it work".
    """
    return [
        Sample.of("netmon_probe_success", 1.0 if result.status.success else 0.0),
        Sample.of("netmon_probe_duration_seconds", result.duration_seconds),
        Sample("netmon_probe_status", _STATUS_LABELS[result.status], 1.0),
    ]
