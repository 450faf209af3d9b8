"""The SNMP probe: fetch what the chosen modules need, then convert it.

I/O and conversion stay apart (snmp_exporter's split): one GET for every scalar the
modules want, then their walks one after another (gentle on printers' small agents),
all merged into one :data:`Walked` mapping that each module's pure ``convert`` reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from pydantic import field_validator

from probes.context import ProbeContext
from probes.result import ProbeResult, Sample, Status
from probes.settings import Duration, StrictModel
from probes.snmp.credentials import SnmpCredentials
from probes.snmp.modules import MODULES
from probes.snmp.modules.base import ModuleOutput, SnmpModule
from probes.snmp.types import OID, SnmpEndpoint, SnmpFailure, Value, oid_str
from probes.target import Target

log = logging.getLogger("netmon.probes.snmp")


class SnmpSettings(StrictModel):
    """What to collect (``modules``) and how to talk to the agent."""

    modules: tuple[str, ...] = ("system",)
    credentials: SnmpCredentials
    #: Used when the target names no port.
    port: int = 161
    #: Per request; each request is tried ``retries + 1`` times.
    timeout: Duration = 2.0
    retries: int = 1
    max_repetitions: int = 25
    #: Per walk; a longer table is cut there and the result is partial.
    max_rows: int = 10_000

    @field_validator("modules", mode="before")
    @classmethod
    def _known_modules(cls, value: object) -> object:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, Iterable):
            return value
        names = [str(n).strip() for n in names]
        unknown = [n for n in names if n not in MODULES]
        if unknown:
            raise ValueError(
                f"unknown SNMP module {', '.join(map(repr, unknown))}; "
                f"valid modules: {', '.join(MODULES)}"
            )
        if not names:
            raise ValueError(f"list at least one SNMP module; valid modules: {', '.join(MODULES)}")
        return tuple(dict.fromkeys(names))  # drop repeats, keep order

    @field_validator("port")
    @classmethod
    def _port_range(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError("port must be a number from 1 to 65535")
        return value

    @field_validator("retries")
    @classmethod
    def _retries_range(cls, value: int) -> int:
        if not 0 <= value <= 10:
            raise ValueError("retries must be from 0 to 10")
        return value

    @field_validator("max_repetitions", "max_rows")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    def deadline(self) -> float:
        """A generous bound for one probe run: the first request and its diagnosis may
        each use every retry (SNMPv3 adds engine discovery, names a DNS lookup), then
        the walks of each module."""
        attempt = self.timeout * (self.retries + 1)
        return attempt * 4 + self.timeout * 2 + 5.0 + 5.0 * len(self.modules)

    def endpoint(self, target: Target) -> SnmpEndpoint:
        return SnmpEndpoint(
            host=target.host,
            port=target.port or self.port,
            credentials=self.credentials,
            timeout=self.timeout,
            retries=self.retries,
            max_repetitions=self.max_repetitions,
            max_rows=self.max_rows,
        )


def plan(modules: Iterable[SnmpModule]) -> tuple[list[OID], list[OID]]:
    """The scalars to GET and the subtrees to walk for ``modules``, each once; a walk
    inside another walk's subtree is dropped, and so is a GET such a walk covers."""
    mods = list(modules)
    walks: list[OID] = []
    for base in sorted({w for m in mods for w in m.walks}, key=len):
        if not any(base[: len(w)] == w for w in walks):
            walks.append(base)
    order: dict[OID, int] = {}
    for w in (w for m in mods for w in m.walks):
        order.setdefault(w, len(order))
    walks.sort(key=lambda w: order[w])  # the modules' own order, not by length
    gets = [
        o
        for o in dict.fromkeys(g for m in mods for g in m.gets)
        if not any(o[: len(w)] == w for w in walks)
    ]
    return gets, walks


def _version(settings: SnmpSettings) -> str:
    creds = settings.credentials
    return f"SNMPv3 {creds.security_level}" if creds.version == "3" else f"SNMPv{creds.version}"


def _stop_at(settings: SnmpSettings) -> float:
    """When this run stops asking (event-loop time): a little before the runner's
    deadline, so a slow agent's run ends with what it collected instead of nothing."""
    deadline = settings.deadline()
    return asyncio.get_running_loop().time() + deadline - min(2.0, deadline * 0.05)


async def probe_snmp(target: Target, settings: SnmpSettings, ctx: ProbeContext) -> ProbeResult:
    """Collect the settings' modules from one agent; never raises for device trouble."""
    modules = [MODULES[name] for name in settings.modules]
    ep = settings.endpoint(target)
    client = ctx.snmp
    gets, walks = plan(modules)
    walked: dict[OID, Value] = {}
    requests = 0
    problems: list[str] = []
    first = True
    started = time.monotonic()
    stop_at = _stop_at(settings)

    def too_slow() -> str:
        rtt, expected = client.agent_stats(ep)
        of = f" of about {expected}" if expected > requests else ""
        skipped = f"; {len(walks) - done} walk(s) not done" if done < len(walks) else ""
        who = target.name if target.name == target.display else (
            f"{target.name} ({target.display})")
        return (
            f"{who} answers slowly: {rtt:.1f} s per request, {requests}{of} "
            f"requests done in {time.monotonic() - started:.0f} s{skipped}"
        )

    done = 0

    def failed_first(failure: SnmpFailure) -> ProbeResult:
        return ProbeResult(
            failure.status,
            failure.explanation,
            samples=_counters(0, requests),
            facts={"snmp": settings.credentials.describe()},
        )

    if gets:
        got = await client.get(ep, gets, stop_at=stop_at)
        requests += got.requests
        walked.update(got.values)
        first = False
        if got.slow:
            return failed_first(SnmpFailure(Status.TIMEOUT, too_slow()))
        if got.failure and not got.values:
            return failed_first(got.failure)
        if got.failure:
            problems.append(f"GET: {got.failure.explanation}")
    truncated: list[str] = []
    for i, base in enumerate(walks):
        res = await client.walk(ep, base, stop_at=stop_at)
        requests += res.requests
        walked.update(res.rows)
        done = i + (0 if res.slow else 1)
        if res.slow:
            if not walked:
                return failed_first(SnmpFailure(Status.TIMEOUT, too_slow()))
            problems.append(too_slow())
            break
        if res.failure is None:
            first = False
            continue
        if first and not res.rows:
            return failed_first(res.failure)
        first = False
        if res.truncated:
            truncated.append(oid_str(base))
            continue
        why = res.failure.explanation
        problems.append(why if oid_str(base) in why else f"walk of {oid_str(base)}: {why}")
        if res.failure.status is Status.TIMEOUT:
            skipped = walks[i + 1 :]
            if skipped:
                problems.append(f"{len(skipped)} more walk(s) skipped after the agent went silent")
            break

    if truncated:
        shown = ", ".join(truncated[:3]) + (", ..." if len(truncated) > 3 else "")
        problems.insert(
            0, f"{len(truncated)} walk(s) cut at max_rows={settings.max_rows} ({shown})"
        )

    out = ModuleOutput()
    empty: list[str] = []
    for module in modules:
        try:
            part = module.convert(walked)
        except Exception as exc:  # a converter bug must not lose the other modules' data
            log.exception("bug: SNMP module %s failed on %s", module.name, target.display)
            problems.append(f"module {module.name} failed ({type(exc).__name__}; a netmon bug)")
            continue
        if not part.samples:
            empty.append(module.name)
        out.extend(part)

    out.samples += _counters(len(walked), requests)
    out.facts["snmp"] = settings.credentials.describe()
    summary = (
        f"{_version(settings)}, {len(modules)} module{'s' if len(modules) != 1 else ''}, "
        f"{len(walked)} values in {requests} request{'s' if requests != 1 else ''}"
    )
    if empty:
        summary += f"; no data for {', '.join(empty)}"
    if problems:
        status, explanation = Status.PARTIAL, f"incomplete: {'; '.join(problems)} ({summary})"
    else:
        status, explanation = Status.OK, summary
        client.remember_poll(ep, requests)

    return ProbeResult(status, explanation, out.samples, out.facts, out.records)


def _counters(varbinds: int, requests: int) -> list[Sample]:
    return [
        Sample.of("netmon_snmp_varbinds", varbinds),
        Sample.of("netmon_snmp_requests", requests),
    ]
