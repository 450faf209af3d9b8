"""Plain data shared by the alert rules, the engine and the notifiers.

Flow: rules (:mod:`alerts.rules`) turn a target's latest probe results into
:class:`Observation` rows ("is this condition true for this instance now?"); the engine
(:mod:`alerts.engine`) turns observations into :class:`Alert` states
(inactive -> pending -> firing -> resolved) with suppression (parent down, outside the
target's schedule, silenced, flapping) and keeps them in SQLite; the dispatcher
(:mod:`alerts.notify`) groups alerts per receiver and writes :class:`Notification` rows
into the outbox, which the notifiers deliver (email, webhook, Alertmanager).

Nothing here does I/O; everything is JSON-ready for the SQLite store and the web API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

#: Labels every alert carries (when the target has them): identity and routing.
TARGET_LABELS = ("target", "group", "role", "site", "building", "room")
#: The probe runs a rule's verdict was computed from: (store probe name, started_at, duration).
Inputs = tuple[tuple[str, float, float], ...]


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertState(StrEnum):
    #: The condition is false (or the instance was never seen).
    INACTIVE = "inactive"
    #: The condition is true, but not yet for the rule's ``for`` duration.
    PENDING = "pending"
    #: The condition has been true for ``for``: notifications go out (unless suppressed).
    FIRING = "firing"
    #: It was firing and the condition is false again (kept for the resolved notice).
    RESOLVED = "resolved"


class Suppression(StrEnum):
    """Why a pending/firing alert sends no notification. Empty: it is not suppressed."""

    NONE = ""
    #: The target's parent (e.g. the closet switch) is down: "unreachable because of parent".
    PARENT_DOWN = "parent_down"
    #: The target is outside its ``expected_online`` schedule (lab machines at night).
    OUT_OF_SCHEDULE = "out_of_schedule"
    #: A ``netmon silence`` matches.
    SILENCED = "silenced"
    #: The instance changes state too often; one "flapping" notice was sent instead.
    FLAPPING = "flapping"


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable identity of an alert instance: sha256 over its sorted labels (16 hex)."""
    text = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Observation:
    """One rule's verdict on one alert instance at one moment.

    ``labels`` identify the instance: ``alertname`` (the rule name), ``severity``, the
    :data:`TARGET_LABELS` the target has, and the instance's own labels (``if_name``,
    ``supply``, ``port`` ...). ``reachability`` marks rules about the target being
    reachable at all (device down, loss, SNMP silent, TCP down): those are the ones a
    down parent or an off-schedule window suppresses.
    """

    rule: str
    target: str
    labels: Mapping[str, str]
    active: bool
    #: The value the rule compared (loss ratio, supply ratio ...), for messages.
    value: float | None
    #: One line, e.g. "sw-closet-b2 is down: no reply to 3 pings".
    summary: str
    description: str = ""
    reachability: bool = False
    #: Seconds the condition must hold before firing (the rule's effective ``for``).
    for_seconds: float = 0.0
    #: The probe runs the rule read (None: unknown, e.g. hand-made results). Not part of
    #: the verdict: two observations differing only here are equal.
    inputs: Inputs | None = field(default=None, compare=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def as_of(self) -> float | None:
        """When the data behind this verdict was measured: the start of the oldest probe
        run the rule read (None: unknown). A run that started before a parent came back
        may have failed because of the parent, even if it ended after; so the start,
        not the end, decides whether the verdict is news from after the recovery."""
        return min((started for _, started, _ in self.inputs or ()), default=None)


@dataclass(slots=True)
class Alert:
    """The engine's state of one alert instance (one row of the ``alerts`` table)."""

    fingerprint: str
    rule: str
    target: str
    labels: dict[str, str]
    #: ``summary`` and ``description``; device-supplied text is NOT escaped here
    #: (templates escape it when they render HTML).
    annotations: dict[str, str]
    state: AlertState
    suppressed: Suppression = Suppression.NONE
    #: Human reason for the suppression ("parent sw-closet-b2 is down").
    suppressed_reason: str = ""
    value: float | None = None
    #: Unix times: condition first true (pending since), firing since, resolved at.
    active_since: float | None = None
    starts_at: float | None = None
    ends_at: float | None = None
    updated_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", Severity.WARNING.value)

    @property
    def is_active(self) -> bool:
        """Pending or firing (suppressed or not)."""
        return self.state in (AlertState.PENDING, AlertState.FIRING)

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "target": self.target,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "state": self.state.value,
            "suppressed": self.suppressed.value,
            "suppressed_reason": self.suppressed_reason,
            "value": self.value,
            "active_since": self.active_since,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        return cls(
            fingerprint=data["fingerprint"],
            rule=data["rule"],
            target=data["target"],
            labels=dict(data["labels"]),
            annotations=dict(data["annotations"]),
            state=AlertState(data["state"]),
            suppressed=Suppression(data.get("suppressed", "")),
            suppressed_reason=data.get("suppressed_reason", ""),
            value=data.get("value"),
            active_since=data.get("active_since"),
            starts_at=data.get("starts_at"),
            ends_at=data.get("ends_at"),
            updated_at=data.get("updated_at", 0.0),
        )

    def to_alertmanager(self, generator_url: str = "") -> dict[str, Any]:
        """The ``POST /api/v2/alerts`` body item (``endsAt`` set once resolved)."""
        item: dict[str, Any] = {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": _iso(self.starts_at or self.active_since or self.updated_at),
        }
        if self.ends_at is not None:
            item["endsAt"] = _iso(self.ends_at)
        if generator_url:
            item["generatorURL"] = generator_url
        return item


@dataclass(slots=True)
class Notification:
    """One message for one receiver, as written to the outbox and delivered from it."""

    receiver: str
    #: The dispatcher's group key (receiver + group_by label values).
    group_key: str
    #: ``firing`` (some alerts firing, maybe some resolved), ``resolved`` (all resolved),
    #: ``flapping``, or ``test`` (``netmon alerts test``).
    kind: str
    #: Snapshot of the alerts as they were when the notification was made.
    alerts: list[Alert]
    created_at: float
    #: Outbox row id once stored.
    id: int | None = None
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str = ""
    delivered_at: float | None = None

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.state is AlertState.FIRING]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if a.state is AlertState.RESOLVED]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
