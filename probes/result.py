"""Plain result types shared by every probe.

A probe never raises for a device's misbehaviour: it returns a :class:`ProbeResult`
whose :class:`Status` says what kind of failure it was and whose ``explanation`` says
it in one line a school IT person can act on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Outcome of one probe run. Ordered roughly from good to bad."""

    OK = "ok"
    #: Some data arrived, some did not (echoes lost, a walk cut short, a table missing).
    PARTIAL = "partial"
    #: Nothing answered within the deadline (host down, agent silent, firewall dropping).
    TIMEOUT = "timeout"
    #: The network said no route / host unreachable (ICMP error, EHOSTUNREACH, ENETUNREACH).
    UNREACHABLE = "unreachable"
    #: The host answered but refused the connection (TCP RST).
    REFUSED = "refused"
    #: The target's name could not be resolved.
    DNS_ERROR = "dns_error"
    #: Credentials rejected (wrong community, SNMPv3 USM error).
    AUTH_ERROR = "auth_error"
    #: The peer answered with something that is not a valid protocol message.
    PROTOCOL_ERROR = "protocol_error"
    #: This process lacks a privilege the probe needs (e.g. ICMP sockets).
    PERMISSION_ERROR = "permission_error"
    #: The probe's own settings are unusable (e.g. unknown module).
    CONFIG_ERROR = "config_error"
    #: A bug in netmon: an exception escaped a probe. Logged with a traceback.
    ERROR = "error"

    @property
    def success(self) -> bool:
        """True when the device did its job well enough that data is trustworthy."""
        return self in (Status.OK, Status.PARTIAL)


Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """One metric sample. ``metric`` must be a name in :data:`probes.metrics.METRICS`."""

    metric: str
    labels: Labels
    value: float

    @classmethod
    def of(cls, metric: str, value: float, **labels: object) -> Sample:
        """Build a sample; label values are stringified, ``None`` labels are dropped."""
        return cls(
            metric,
            tuple((k, str(v)) for k, v in labels.items() if v is not None),
            float(value),
        )

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


Record = dict[str, Any]


@dataclass(slots=True)
class ProbeResult:
    """What one probe run found out about one target.

    ``samples`` feed the exporter, ``facts`` are strings worth showing (sysDescr,
    model, serial), ``records`` are human-facing rows grouped by table name
    (``records["supplies"]``) for the CLI, the JSON output and the status page.
    """

    status: Status
    explanation: str
    samples: list[Sample] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    records: dict[str, list[Record]] = field(default_factory=dict)
    #: Filled in by the runner, not by the probe.
    probe: str = ""
    target: str = ""
    duration_seconds: float = 0.0
    started_at: float = 0.0

    def with_runner_fields(
        self, *, probe: str, target: str, duration_seconds: float, started_at: float
    ) -> ProbeResult:
        return dataclasses.replace(
            self,
            probe=probe,
            target=target,
            duration_seconds=duration_seconds,
            started_at=started_at,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (used by ``--json`` and, later, the web API)."""
        return {
            "target": self.target,
            "probe": self.probe,
            "status": self.status.value,
            "success": self.status.success,
            "explanation": self.explanation,
            "duration_seconds": round(self.duration_seconds, 6),
            "started_at": self.started_at,
            "facts": dict(self.facts),
            "records": self.records,
            "samples": [
                {"metric": s.metric, "labels": dict(s.labels), "value": s.value}
                for s in self.samples
            ],
        }

    def samples_named(self, metric: str) -> list[Sample]:
        return [s for s in self.samples if s.metric == metric]


def merge_labels(base: Mapping[str, str], extra: Iterable[tuple[str, str]]) -> Labels:
    merged = dict(base)
    merged.update(extra)
    return tuple(merged.items())
