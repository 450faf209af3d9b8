"""Alert rules: one declarative model read by the Python evaluator AND the PromQL exporter.

A :class:`Rule` says which metric samples of a target to look at (``metric``, ``probe``,
``match``/``exclude`` label matchers), how to turn them into a value (``fn``: the value,
a ``rate`` or count of ``resets`` over ``window``, or ``max_over_time``; optionally
divided by another metric with the same labels, or aggregated), how to compare it
(``op``, ``threshold``, ``recover`` for hysteresis), extra conditions on other metrics
of the same target (``and`` / ``unless``, joined on ``target`` plus ``on`` labels),
alternatives (``or_when``), and what an alert instance is (``instance`` labels),
with ``for``, ``severity``, a ``summary`` template and the ``reachability`` flag.

:meth:`RuleSet.evaluate` applies the rules to a target's latest probe results;
:meth:`RuleSet.export_prometheus` writes the same rules as a Prometheus rule file. Since
both read the same data, they cannot drift; ``tests/integration/test_alert_rules_promtool``
checks with ``promtool test rules`` that both fire on the same series.

Settings precedence for a target: target override > group override > role override >
``alerts.rules`` > the default pack (field by field).

Memory kept between evaluations, per target: one verdict per rule (its last
observations, their instances for ``recover``, the probe runs it was computed from;
quiet rules share one tuple), and for ``rate``, ``resets`` and ``max_over_time`` one
:class:`_Column` of flat arrays per (metric, fn, window), indexed by series numbers
interned from the label sets. ``benchmarks/alert_memory.py`` measures it: ~150 bytes per
series, ~600 per switch port (1,000 switches x 48 ports: 29 MB; objects per series took
153 MB).

Summary templates are ``str.format`` strings over ``target``, ``value``, the series'
labels and the target's labels; ``{value:.0%}``, ``{value:.1f}`` and
``{value:duration}`` (seconds as "250ms", "1.5s") translate to Prometheus templates,
``{explanation}`` (the probe's own one-line explanation) exists only in netmon.
"""

from __future__ import annotations

import itertools
import operator
import re
import string
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from alerts.model import TARGET_LABELS, Inputs, Observation, Severity
from alerts.rules_default import DEFAULT_RULES
from probes.metrics import METRICS
from probes.result import Labels, ProbeResult
from probes.settings import Duration, StrictModel, parse_duration


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What the rules and the engine need to know about a target."""

    name: str
    #: group, role, site, building, room, ... (already flat).
    labels: Mapping[str, str]
    parent: str | None = None
    #: A schedule name.
    expected_online: str | None = None
    #: Where to find it (notifications show it; not a label, so not in fingerprints).
    address: str = ""


# --- the rule model -------------------------------------------------------------------

Op = Literal[">", ">=", "<", "<=", "==", "!="]
Fn = Literal["value", "rate", "resets", "max_over_time"]
Aggregate = Literal["avg", "max", "min", "sum"]
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
PROBE_KINDS = ("icmp", "snmp", "tcp")
#: Labels the exporter sets on every series; a sample's own label with such a name
#: becomes ``exported_<name>`` (as on ``/metrics``).
IDENTITY = ("target", "probe")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_threshold(value: Any) -> float:
    """A number, a percentage (``"15%"`` -> 0.15) or a duration (``"150ms"`` -> 0.15)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, a percentage (15%) or a duration (150ms)")  # noqa: TRY004
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage") from None
    return parse_duration(value)


Threshold = Annotated[float, BeforeValidator(parse_threshold)]


class _Model(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Series(_Model):
    """Samples of one metric (or several, summed) of a target, turned into values."""

    metric: str | tuple[str, ...]
    #: Only samples of this probe: icmp, snmp or tcp (any tcp-PORT).
    probe: str | None = None
    #: Label equality matchers.
    match: dict[str, str] = Field(default_factory=dict)
    #: Label regex (full match) exclusions.
    exclude: dict[str, str] = Field(default_factory=dict)
    fn: Fn = "value"
    window: Duration = 300.0

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        for name in (value,) if isinstance(value, str) else value:
            if name not in METRICS:
                raise ValueError(f"unknown metric '{name}' (see METRICS.md)")
        return value

    @field_validator("probe")
    @classmethod
    def _known_probe(cls, value: str | None) -> str | None:
        if value is not None and value not in PROBE_KINDS:
            raise ValueError(f"unknown probe '{value}'; use one of {', '.join(PROBE_KINDS)}")
        return value

    @field_validator("exclude")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
        return value

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric,) if isinstance(self.metric, str) else self.metric


class Condition(Series):
    """Another metric of the same target that must (``and``) or must not (``unless``)
    pass ``op threshold``; joined on ``target`` plus the ``on`` labels."""

    op: Op
    threshold: Threshold
    on: tuple[str, ...] = ()


class Clause(Series):
    """One way for a rule to be true: a compared value plus conditions."""

    divide_by: Series | None = None
    aggregate: Aggregate | None = None
    op: Op = ">"
    threshold: Threshold | None = None
    #: Once active, the instance stays active until the value no longer passes
    #: ``op recover`` (hysteresis against flapping).
    recover: Threshold | None = None
    and_: tuple[Condition, ...] = Field(default=(), alias="and")
    unless: tuple[Condition, ...] = ()
    summary: str | None = None

    @field_validator("summary")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            _check_template(value)
        return value


class Rule(Clause):
    """A named alert rule (the name is the ``alertname``)."""

    name: str
    threshold: Threshold
    summary: str
    severity: Severity = Severity.WARNING
    for_: Duration = Field(default=0.0, alias="for")
    description: str = ""
    #: About the target being reachable at all: suppressed when its parent is down or
    #: outside its schedule.
    reachability: bool = False
    #: Labels that tell alert instances apart; default: the sample's own labels except
    #: those fixed by ``match``.
    instance: tuple[str, ...] | None = None
    enabled: bool = True
    #: Interfaces (``if_name``) watched whatever their history: the ``and`` conditions
    #: are skipped for them (interface_down: "only ports that were up before").
    uplinks: tuple[str, ...] = ()
    or_when: tuple[Clause, ...] = ()

    @field_validator("name")
    @classmethod
    def _snake(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"rule name '{value}' must be snake_case (a-z, 0-9, _)")
        return value

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        _check_template(value)
        return value

    @model_validator(mode="after")
    def _alternatives(self) -> Rule:
        if any(c.threshold is None for c in self.or_when):
            raise ValueError("every or_when alternative needs a threshold")
        if (self.or_when or self.aggregate) and self.instance is None:
            raise ValueError("rules with or_when or aggregate must list their instance labels")
        return self

    @property
    def clauses(self) -> tuple[Clause, ...]:
        return (self, *self.or_when)


def _check_template(text: str) -> None:
    try:
        list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"bad template {text!r}: {exc}") from None


class RuleChange(_Model):
    """The fields of a rule a user may change, in ``rules:`` or an override."""

    enabled: bool | None = None
    threshold: Threshold | None = None
    recover: Threshold | None = None
    for_: Duration | None = Field(default=None, alias="for")
    severity: Severity | None = None
    uplinks: tuple[str, ...] | None = None
    summary: str | None = None

    def apply(self, rule: Rule) -> Rule:
        update = {k: v for k, v in self.model_dump(exclude_none=True).items()}
        if "uplinks" in update:
            update["uplinks"] = tuple(update["uplinks"])
        return rule.model_copy(update=update) if update else rule


class Override(_Model):
    """Rule changes for one target, group or role (exactly one of them)."""

    target: str | None = None
    group: str | None = None
    role: str | None = None
    rules: dict[str, RuleChange]

    @model_validator(mode="after")
    def _one_scope(self) -> Override:
        if sum(x is not None for x in (self.target, self.group, self.role)) != 1:
            raise ValueError("an override names exactly one of target, group or role")
        return self

    @property
    def scope(self) -> tuple[str, str]:
        for key in ("target", "group", "role"):
            if (value := getattr(self, key)) is not None:
                return key, value
        raise AssertionError("validated")


class RulesSettings(StrictModel):
    """``alerts:`` fields owned by the rules: changes, overrides and custom rules."""

    rules: dict[str, RuleChange] = Field(default_factory=dict)
    overrides: list[Override] = Field(default_factory=list)
    custom_rules: list[Rule] = Field(default_factory=list)

    @field_validator("custom_rules")
    @classmethod
    def _unique(cls, value: list[Rule]) -> list[Rule]:
        seen = {r["name"] for r in DEFAULT_RULES}
        for rule in value:
            if rule.name in seen:
                raise ValueError(f"rule name '{rule.name}' is already used")
            seen.add(rule.name)
        return value


def default_rules() -> list[Rule]:
    return [Rule.model_validate(d) for d in DEFAULT_RULES]


def check_references(
    settings: RulesSettings, *, groups: set[str], targets: set[str], schedules: set[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Unknown rule, group and target names, as (location under ``alerts``, message)."""
    del schedules  # rules name none
    names = {r["name"] for r in DEFAULT_RULES} | {r.name for r in settings.custom_rules}
    issues: list[tuple[tuple[str | int, ...], str]] = []

    def rule_names(loc: tuple[str | int, ...], changes: Mapping[str, RuleChange]) -> None:
        for name in changes:
            if name not in names:
                issues.append((loc + (name,), f"unknown rule '{name}'; see `netmon alerts export-rules`"))

    rule_names(("rules",), settings.rules)
    for i, override in enumerate(settings.overrides):
        kind, value = override.scope
        known = {"group": groups, "target": targets}.get(kind)
        if known is not None and value not in known:
            issues.append((("overrides", i, kind), f"unknown {kind} '{value}'"))
        rule_names(("overrides", i, "rules"), override.rules)
    return issues


# --- evaluation -----------------------------------------------------------------------


class _Num(float):
    """A value whose format spec may also be ``duration`` (seconds as 250ms / 1.5s)."""

    def __format__(self, spec: str) -> str:
        if spec == "duration":
            return human_seconds(float(self))
        return super().__format__(spec)


def human_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{seconds / 60:.3g}m"


class _Context(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(slots=True)
class _Value:
    value: float
    labels: dict[str, str]
    result: ProbeResult | None


LabelKey = frozenset[tuple[str, str]]
#: An alert instance's own labels, sorted: ``(("if_index", "3"), ("if_name", "Gi0/3"))``.
InstanceKey = tuple[tuple[str, str], ...]
_INF = float("inf")
#: A series not seen for its window plus this long is forgotten (a removed port, disk).
FORGET_AFTER = 3600.0
_NO_INSTANCES: frozenset[InstanceKey] = frozenset()


def _probe_matches(kind: str | None, key: str) -> bool:
    return kind is None or key == kind or key.startswith(f"{kind}-")


def _dependencies(rule: Rule) -> frozenset[str] | None:
    """The probe kinds whose results a rule reads (None: any probe's runner metrics)."""
    series: list[Series] = []
    for clause in rule.clauses:
        series += [clause, *clause.and_, *clause.unless]
        if clause.divide_by is not None:
            series.append(clause.divide_by)
    kinds: set[str] = set()
    for item in series:
        for metric in item.metrics:
            kind = item.probe or _metric_kind(metric)
            if kind is None:
                return None
            kinds.add(kind)
    return frozenset(kinds)


def _metric_kind(metric: str) -> str | None:
    """The probe a device metric comes from (None: the runner's, present even on failure)."""
    if metric.startswith("netmon_probe_"):
        return None
    if metric.startswith("netmon_icmp_"):
        return "icmp"
    if metric.startswith("netmon_tcp_"):
        return "tcp"
    return "snmp"


def _zeros(n: int) -> array[float]:
    return array("d", bytes(8 * n))


class _Column:
    """What ``rate``, ``resets`` or ``max_over_time`` remembers of one metric (and window)
    for all series of one target, in flat arrays: no Python object per series or point
    (a dict entry, a few lists and tuples per series cost ~3 KB per switch port).

    Series slot ``i`` keeps ``count[i]`` points, oldest first, at
    ``[i * cap, i * cap + count[i])`` of ``t`` (times) and ``v`` (values): the points in
    the window (rate), a monotonic max-queue (max_over_time) or the reset times (resets,
    which keep no values). ``last_t[i]`` is the time of the series' last point
    (``inf``: a free slot), ``last_v[i]`` its value (resets only). ``cap`` grows, for
    every slot, when one series needs more points.
    """

    __slots__ = ("cap", "count", "fn", "last_t", "last_v", "t", "v", "window")

    def __init__(self, fn: str, window: float) -> None:
        self.fn = fn
        self.window = window
        self.cap = 1
        self.count = array("I")
        self.t = array("d")
        self.v = array("d")
        self.last_t = array("d")
        self.last_v = array("d")

    def reserve(self, slot: int) -> bool:
        """Room for ``slot``; True if it was free (the series is new to this column)."""
        n = len(self.count)
        if slot >= n:
            k = slot + 1 - n
            self.count.extend(itertools.repeat(0, k))
            self.last_t.extend(itertools.repeat(_INF, k))
            self.t.extend(_zeros(k * self.cap))
            if self.fn == "resets":
                self.last_v.extend(_zeros(k))
            else:
                self.v.extend(_zeros(k * self.cap))
        return self.last_t[slot] == _INF

    def release(self, slot: int) -> None:
        self.count[slot] = 0
        self.last_t[slot] = _INF

    def _grow(self) -> None:
        old, new = self.cap, self.cap + max(1, self.cap // 2)
        self.t = self._regrid(self.t, old, new)
        if self.fn != "resets":
            self.v = self._regrid(self.v, old, new)
        self.cap = new

    def _regrid(self, src: array[float], old: int, new: int) -> array[float]:
        dst = _zeros(len(self.count) * new)
        for i, n in enumerate(self.count):
            if n:
                dst[i * new : i * new + n] = src[i * old : i * old + n]
        return dst

    def _push(self, slot: int, n: int, at: float, value: float) -> int:
        if n == self.cap:
            self._grow()
        base = slot * self.cap
        self.t[base + n] = at
        if self.fn != "resets":
            self.v[base + n] = value
        return n + 1

    def _trim(self, slot: int, n: int, since: float, keep: int = 0) -> int:
        """Forget the slot's points older than ``since`` (keeping at least ``keep``);
        returns, and stores, how many are left."""
        base, t = slot * self.cap, self.t
        k = 0
        while n - k > keep and t[base + k] < since:
            k += 1
        if k:
            t[base : base + n - k] = t[base + k : base + n]
            if self.fn != "resets":
                self.v[base : base + n - k] = self.v[base + k : base + n]
        self.count[slot] = n - k
        return n - k

    def apply(self, slot: int, at: float, value: float, now: float) -> float | None:
        """The series' value under ``fn``, remembering the point (once per point time)."""
        last_t = self.last_t[slot]
        new = last_t == _INF or at > last_t
        since = now - self.window
        n = self.count[slot]
        fn = self.fn
        if fn == "rate":
            if new:
                n = self._push(slot, n, at, value)
            n = self._trim(slot, n, since)
            self.last_t[slot] = at
            base, t = slot * self.cap, self.t
            if n < 2 or t[base + n - 1] <= t[base]:
                return None
            pts = self.v[base : base + n]
            increase = sum(b - a if b >= a else b for a, b in itertools.pairwise(pts))
            return increase / (t[base + n - 1] - t[base])
        if fn == "resets":
            if new and last_t != _INF and value < self.last_v[slot]:
                n = self._push(slot, n, at, value)
            n = self._trim(slot, n, since)
            if new:
                self.last_t[slot], self.last_v[slot] = at, value
            return float(n)
        # max_over_time: a monotonic queue keeps it one point for steady series
        if new:
            v = self.v
            base = slot * self.cap
            while n and v[base + n - 1] <= value:
                n -= 1
            n = self._push(slot, n, at, value)
            self.last_t[slot] = at
        self._trim(slot, n, since, keep=1)
        return self.v[slot * self.cap]


class _Memory:
    """The series memory of one target: label sets interned to slot numbers shared by
    every column, and one :class:`_Column` per (metric, fn, window)."""

    __slots__ = ("columns", "free", "names", "slots", "uses")

    def __init__(self) -> None:
        #: Series id (:meth:`_Source.sid`) -> slot.
        self.slots: dict[str, int] = {}
        self.names: list[str | None] = []
        #: How many columns hold each slot.
        self.uses = array("I")
        self.free: list[int] = []
        self.columns: dict[tuple[str, str, float], _Column] = {}

    def column(self, metric: str, fn: str, window: float) -> _Column:
        col = self.columns.get((metric, fn, window))
        if col is None:
            col = self.columns[(metric, fn, window)] = _Column(fn, window)
        return col

    def slot(self, sid: str, col: _Column) -> int:
        slot = self.slots.get(sid)
        if slot is None:
            if self.free:
                slot = self.free.pop()
                self.names[slot] = sid
            else:
                slot = len(self.names)
                self.names.append(sid)
                self.uses.append(0)
            self.slots[sid] = slot
        if col.reserve(slot):
            self.uses[slot] += 1
        return slot

    def prune(self, now: float) -> None:
        """Forget series not seen for longer than their window plus :data:`FORGET_AFTER`."""
        for col in self.columns.values():
            cutoff = now - col.window - FORGET_AFTER
            if not col.last_t or min(col.last_t) >= cutoff:
                continue
            for i, at in enumerate(col.last_t):
                if at < cutoff:
                    col.release(i)
                    self.uses[i] -= 1
                    if not self.uses[i]:
                        name = self.names[i]
                        assert name is not None
                        del self.slots[name]
                        self.names[i] = None
                        self.free.append(i)


#: A rule's memory of one target: its last observations, their instances (for recover
#: thresholds) and the probe runs they were computed from (None: none recorded).
_Verdict = tuple[Sequence[Observation], frozenset[InstanceKey], Inputs | None]
_NO_VERDICT: _Verdict = ((), _NO_INSTANCES, None)


class _TargetState:
    """What the rules remember of one target: a :data:`_Verdict` per rule (aligned with
    the target's effective rules; quiet rules share one tuple) and the series memory."""

    __slots__ = ("memory", "rules", "verdicts")

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.verdicts: list[_Verdict] = [_NO_VERDICT] * len(rules)
        self.memory: _Memory | None = None

    def realign(self, rules: list[Rule]) -> None:
        """Follow a change of the target's effective rules (its role or group changed)."""
        old = {r.name: v for r, v in zip(self.rules, self.verdicts, strict=True)}
        self.verdicts = [old.get(r.name, _NO_VERDICT) for r in rules]
        self.rules = rules


class _Source:
    """One probe result of an evaluation, labelling its samples as the exporter would
    (own labels, clashes renamed ``exported_<name>``, plus ``probe`` and, for TCP,
    ``port``). Samples that share a label tuple (a port's interface metrics) share
    one labels dict."""

    __slots__ = ("_keys", "_labels", "_sids", "at", "key", "port", "reserved", "result")

    def __init__(self, key: str, result: ProbeResult, now: float, reserved: set[str]) -> None:
        self.key = key
        self.result = result
        self.at = result.started_at + result.duration_seconds if result.started_at else now
        self.port = key[4:] if key.startswith("tcp-") else None
        self.reserved = reserved
        self._labels: dict[int, tuple[Labels, dict[str, str]]] = {}
        self._keys: dict[int, LabelKey] = {}
        self._sids: dict[int, str] = {}

    def labels(self, raw: Labels) -> dict[str, str]:
        found = self._labels.get(id(raw))
        if found is not None:
            return found[1]
        reserved = self.reserved
        labels: dict[str, str] = {}
        for name, value in raw:
            while name in reserved or name in labels:
                name = f"exported_{name}"
            labels[name] = value
        labels["probe"] = self.key
        if self.port is not None:
            labels["port"] = self.port  # PromQL: label_replace from probe="tcp-PORT"
        self._labels[id(raw)] = (raw, labels)  # raw kept: its id stays unique
        return labels

    def label_key(self, raw: Labels, labels: dict[str, str]) -> LabelKey:
        key = self._keys.get(id(raw))
        if key is None:
            key = self._keys[id(raw)] = frozenset(labels.items())
        return key

    def sid(self, raw: Labels, shapes: dict[tuple[str, ...], int]) -> str:
        """A compact id of the series within its target: the shape (probe name and label
        names, numbered once per rule set) and the label values."""
        sid = self._sids.get(id(raw))
        if sid is None:
            shape = shapes.setdefault((self.key, *(k for k, _ in raw)), len(shapes))
            values = "\x1f".join([v for _, v in raw])
            if values.count("\x1f") == max(0, len(raw) - 1):
                sid = f"{shape}:{values}"
            else:  # a value holds the separator: spell it out
                sid = f"{shape}!{tuple(v for _, v in raw)!r}"
            self._sids[id(raw)] = sid
        return sid


class _Evaluation:
    """One :meth:`RuleSet.evaluate` call: the target's samples grouped by metric (label
    sets and values). A result with a ``series()`` method (the result store's compact
    results) is read through it, without building ``Sample`` objects."""

    __slots__ = ("_quiet", "now", "points", "shapes", "state", "target")

    def __init__(
        self, target: TargetInfo, results: Mapping[str, ProbeResult], now: float,
        state: _TargetState, shapes: dict[tuple[str, ...], int],
    ) -> None:  # fmt: skip
        self.target = target
        self.now = now
        self.state = state
        self.shapes = shapes
        self._quiet: dict[Inputs, _Verdict] = {}
        reserved = {*IDENTITY, *target.labels}
        self.points: dict[str, list[tuple[_Source, list[Labels], list[float]]]] = {}
        for key, result in results.items():
            source = _Source(key, result, now, reserved)
            mine: dict[str, tuple[list[Labels], list[float]]] = {}
            series = getattr(result, "series", None)
            rows: Iterable[tuple[str, Labels, float]] = (
                series()
                if callable(series)
                else ((s.metric, s.labels, s.value) for s in result.samples)
            )
            for metric, labels, value in rows:
                found = mine.get(metric)
                if found is None:
                    found = mine[metric] = ([], [])
                found[0].append(labels)
                found[1].append(value)
            for metric, (label_sets, numbers) in mine.items():
                self.points.setdefault(metric, []).append((source, label_sets, numbers))

    def quiet(self, inputs: Inputs | None) -> _Verdict:
        """The verdict "no instances" computed from ``inputs``: one tuple per inputs."""
        if inputs is None:
            return _NO_VERDICT
        found = self._quiet.get(inputs)
        if found is None:
            found = self._quiet[inputs] = ((), _NO_INSTANCES, inputs)
        return found

    def memory(self) -> _Memory:
        if self.state.memory is None:
            self.state.memory = _Memory()
        return self.state.memory


class RuleSet:
    """The effective rules plus what rates, histories and hysteresis remember."""

    def __init__(self, rules: Sequence[Rule], overrides: Sequence[Override] = ()) -> None:
        self.rules = list(rules)
        self.overrides = list(overrides)
        #: The names each override level mentions: other targets share effective rules.
        self._scoped = {
            level: {o.scope[1] for o in self.overrides if o.scope[0] == level}
            for level in ("role", "group", "target")
        }
        self._effective: dict[tuple[str | None, str | None, str | None], list[Rule]] = {}
        self._states: dict[str, _TargetState] = {}
        #: Series shapes (probe name + label names) -> number, for compact series ids.
        self._shapes: dict[tuple[str, ...], int] = {}
        #: Probe kinds each rule reads, by rule name.
        self._deps: dict[str, frozenset[str] | None] = {}

    @classmethod
    def from_settings(cls, settings: RulesSettings) -> RuleSet:
        """Default pack + custom rules, changed by ``rules:``; unknown names are errors."""
        rules = {r.name: r for r in [*default_rules(), *settings.custom_rules]}
        problems = check_references(settings, groups=set(), targets=set(), schedules=set())
        if unknown := [m for loc, m in problems if "unknown rule" in m]:
            raise ValueError("; ".join(unknown))
        for name, change in settings.rules.items():
            rules[name] = _clamp(change.apply(rules[name]))
        return cls(list(rules.values()), settings.overrides)

    # --- effective rules per target ---

    def effective(self, role: str, group: str, target: str) -> list[Rule]:
        """The rules of a target with this role and group (disabled ones left out)."""
        scoped = self._scoped
        key = (
            role if role in scoped["role"] else None,
            group if group in scoped["group"] else None,
            target if target in scoped["target"] else None,
        )
        if key not in self._effective:
            self._effective[key] = [
                r for r in (self._apply(rule, key) for rule in self.rules) if r.enabled
            ]
        return self._effective[key]

    def _apply(self, rule: Rule, key: tuple[str | None, str | None, str | None]) -> Rule:
        for level, value in zip(("role", "group", "target"), key, strict=True):
            for override in self.overrides:
                if override.scope == (level, value) and rule.name in override.rules:
                    rule = override.rules[rule.name].apply(rule)
        return _clamp(rule)

    # --- evaluate ---

    def evaluate(
        self, target: TargetInfo, results: Mapping[str, ProbeResult], now: float
    ) -> list[Observation]:
        """Active observations of every rule for one target's latest results.

        ``results`` maps store probe names (icmp, snmp, tcp-9100) to the latest result
        and is complete: instances not returned are inactive. Each observation names the
        probe runs its rule read (``Observation.inputs``). When the SNMP probe failed,
        SNMP-based rules keep their last verdict (toner is still low while the printer
        sleeps; the reachability rules say why data is missing).
        """
        rules = self.effective(
            target.labels.get("role", ""), target.labels.get("group", ""), target.name
        )
        state = self._states.get(target.name)
        if state is None:
            state = self._states[target.name] = _TargetState(rules)
        elif state.rules is not rules:
            state.realign(rules)
        ev = _Evaluation(target, results, now, state, self._shapes)
        out: list[Observation] = []
        snmp = [r for key, r in results.items() if _probe_matches("snmp", key)]
        snmp_failed = bool(snmp) and not any(r.status.success for r in snmp)
        by_kinds: dict[frozenset[str] | None, Inputs | None] = {}
        verdicts = state.verdicts
        for i, rule in enumerate(rules):
            last = verdicts[i]
            if snmp_failed and self._held(rule):
                out += last[0]
                continue
            if not any(c.metrics[0] in ev.points for c in rule.clauses):
                # Nothing to compare (an ICMP-only machine and a printer rule): inactive.
                verdicts[i] = ev.quiet(last[2])
                continue
            if rule.name not in self._deps:  # overrides never change a rule's metrics
                self._deps[rule.name] = _dependencies(rule)
            kinds = self._deps[rule.name]
            if kinds not in by_kinds:  # one tuple, shared by the rules reading the same
                found = tuple(
                    (key, r.started_at, r.duration_seconds)
                    for key, r in sorted(results.items())
                    if kinds is None or any(_probe_matches(k, key) for k in kinds)
                )
                # results without run times (hand-made): always evaluate
                by_kinds[kinds] = None if any(at == 0 for _, at, _ in found) else found
            # what the observations were read from (kinds None: any result, say all)
            read = by_kinds[kinds]
            inputs = None if kinds is None else read
            if inputs is not None and last[2] == inputs:
                # Only another probe's result is new (a switch's ping, not its SNMP walk).
                out += last[0]
                continue
            observations, active = self._rule(rule, ev, last[1], read)
            inputs = last[2] if inputs is None else inputs
            verdicts[i] = (observations, active, inputs) if observations else ev.quiet(inputs)
            out += observations
        if state.memory is not None:
            state.memory.prune(now)
        return out

    @staticmethod
    def _held(rule: Rule) -> bool:
        """Whether the rule keeps its last verdict while the SNMP probe fails."""
        return not rule.reachability and _metric_kind(rule.metrics[0]) == "snmp"

    def _series(self, series: Series, ev: _Evaluation) -> dict[LabelKey, _Value]:
        """Values of a series by label set; several metrics are summed (inner join)."""
        per_metric: list[dict[LabelKey, _Value]] = []
        fn, window, now = series.fn, series.window, ev.now
        filtered = bool(series.match or series.exclude)  # the probe is checked per source
        for metric in series.metrics:
            values: dict[LabelKey, _Value] = {}
            col: _Column | None = None
            for source, label_sets, numbers in ev.points.get(metric, ()):
                if not _probe_matches(series.probe, source.key):
                    continue
                for raw, number in zip(label_sets, numbers, strict=True):
                    labels = source.labels(raw)
                    if filtered and not _selected(series, labels):
                        continue
                    key = source.label_key(raw, labels)
                    if fn == "value":  # no memory needed
                        values[key] = _Value(number, labels, source.result)
                        continue
                    memory = ev.memory()
                    if col is None:
                        col = memory.column(metric, fn, window)
                    slot = memory.slot(source.sid(raw, ev.shapes), col)
                    v = col.apply(slot, source.at, number, now)
                    if v is not None:
                        values[key] = _Value(v, labels, source.result)
            per_metric.append(values)
        first, *rest = per_metric
        out: dict[LabelKey, _Value] = {}
        for key, val in first.items():
            if all(key in other for other in rest):
                total = val.value + sum(o[key].value for o in rest)
                out[key] = _Value(total, val.labels, val.result)
        return out

    def _clause_values(self, rule: Rule, clause: Clause, ev: _Evaluation) -> dict[LabelKey, _Value]:
        values = self._series(clause, ev)
        if clause.divide_by is not None:
            divisors = self._series(clause.divide_by, ev)
            values = {
                k: _Value(v.value / d.value, v.labels, v.result)
                for k, v in values.items()
                if (d := divisors.get(k)) is not None and d.value != 0
            }
        if clause.aggregate is not None:
            groups: dict[LabelKey, list[_Value]] = {}
            for v in values.values():
                names = ("probe", *(rule.instance or ()))
                labels = {k: v.labels[k] for k in names if k in v.labels}
                groups.setdefault(frozenset(labels.items()), []).append(v)
            agg = _AGGREGATE[clause.aggregate]
            values = {
                k: _Value(agg([x.value for x in vs]), dict(k), vs[0].result)
                for k, vs in groups.items()
            }
        return values

    def _passes(
        self, labels: Mapping[str, str], conds: Iterable[Condition], ev: _Evaluation,
        passing: dict[int, set[tuple[str, ...]]],
    ) -> list[bool]:  # fmt: skip
        """Each condition's verdict for a value with these labels. A condition's values
        are computed once per clause (``passing``: the ``on`` label values that pass)."""
        verdicts = []
        for cond in conds:
            found = passing.get(id(cond))
            if found is None:
                ok, on = OPS[cond.op], cond.on
                found = passing[id(cond)] = {
                    tuple(v.labels.get(n, "") for n in on)
                    for v in self._series(cond, ev).values()
                    if ok(v.value, cond.threshold)
                }
            verdicts.append(tuple(labels.get(n, "") for n in cond.on) in found)
        return verdicts

    def _rule(
        self, rule: Rule, ev: _Evaluation, was_active: frozenset[InstanceKey], read: Inputs | None
    ) -> tuple[list[Observation], frozenset[InstanceKey]]:
        """The rule's observations (read from the probe runs ``read``) and their instances."""
        found: dict[InstanceKey, tuple[Clause, _Value]] = {}
        for clause in rule.clauses:
            passing: dict[int, set[tuple[str, ...]]] = {}
            for val in self._clause_values(rule, clause, ev).values():
                ikey = tuple(sorted(_instance(rule, clause, val.labels).items()))
                if ikey in found:
                    continue
                uplink = bool(rule.uplinks) and val.labels.get("if_name") in rule.uplinks
                if not uplink and not all(self._passes(val.labels, clause.and_, ev, passing)):
                    continue
                if any(self._passes(val.labels, clause.unless, ev, passing)):
                    continue
                ok, thr = OPS[clause.op], clause.threshold
                assert thr is not None
                recover = clause.recover
                if ok(val.value, thr) or (
                    recover is not None and ikey in was_active and ok(val.value, recover)
                ):
                    found[ikey] = (clause, val)
        observations = [
            self._observation(rule, clause, ev.target, dict(ikey), val, read)
            for ikey, (clause, val) in found.items()
        ]
        return observations, frozenset(found) if found else _NO_INSTANCES

    def _observation(
        self, rule: Rule, clause: Clause, target: TargetInfo, inst: dict[str, str], val: _Value,
        read: Inputs | None,
    ) -> Observation:  # fmt: skip
        # In the engine's order (target, its labels, the rule's), so that it can keep this
        # dict rather than a copy.
        labels = {"target": target.name}
        labels |= {k: v for k, v in target.labels.items() if k in TARGET_LABELS and k != "target"}
        labels |= {"alertname": rule.name, "severity": rule.severity.value}
        labels |= {k: v for k, v in inst.items() if k not in labels}
        ctx = _Context({**target.labels, **val.labels})
        ctx |= {"target": target.name, "value": _Num(val.value),
                "explanation": val.result.explanation if val.result else ""}  # fmt: skip
        return Observation(
            rule=rule.name,
            target=target.name,
            labels=labels,
            active=True,
            value=val.value,
            summary=(clause.summary or rule.summary).format_map(ctx),
            description=rule.description.format_map(ctx),
            reachability=rule.reachability,
            for_seconds=rule.for_,
            inputs=read,
        )

    # --- export ---

    def export_prometheus(self) -> dict[str, Any]:
        """The active rules as a Prometheus rule file (``groups: [...]``).

        Overrides become separate rules (same ``alert`` name) whose selectors match the
        target / group / role, and the less specific ones exclude them. ``or_when``
        alternatives become further rules that exclude the earlier ones. Hysteresis
        (``recover``) keeps an instance active through the ``ALERTS`` series.

        Not expressible here, and left to the built-in engine or to Alertmanager:
        suppression when a parent is down (Alertmanager ``inhibit_rules``), schedules
        (``time_intervals`` / ``active_time_intervals``), silences and flap detection;
        SNMP rules keeping their verdict while the SNMP probe fails (Prometheus sees the
        series vanish); ``{explanation}`` in summaries. Rates use Prometheus'
        extrapolating ``rate()`` where netmon divides first and last points of the window.
        """
        merged: dict[str, dict[str, Any]] = {}
        for rule in self.rules:
            for scope, effective in self._scopes(rule):
                if not effective.enabled:
                    continue
                item = _promql_rule(effective, scope)
                key = repr([item.get(k) for k in ("alert", "for", "labels", "annotations")])
                if key in merged:
                    merged[key]["expr"] = f"({merged[key]['expr']}) or ({item['expr']})"
                    continue
                merged[key] = item
                # promtool rejects two rules with one name and one label set
                clashes = [r for r in merged.values()
                           if (r["alert"], r["labels"]) == (item["alert"], item["labels"])]  # fmt: skip
                if len(clashes) > 1:
                    item["labels"] = {**item["labels"], "netmon_override": _scope_text(scope)}
        return {"groups": [{"name": "netmon", "rules": list(merged.values())}]}

    def _scopes(self, rule: Rule) -> list[tuple[dict[str, tuple[str, list[str]]], Rule]]:
        """Every combination of role/group/target overrides touching ``rule``: matchers
        (``label -> ("=", [value])`` or ``("!~", [values])``) and the effective rule."""
        dims: list[tuple[str, list[str]]] = []
        for level in ("role", "group", "target"):
            values = sorted({o.scope[1] for o in self.overrides
                             if o.scope[0] == level and rule.name in o.rules})  # fmt: skip
            dims.append((level, values))
        combos: list[tuple[dict[str, tuple[str, list[str]]], tuple[str, str, str]]] = [({}, ("", "", ""))]
        for i, (level, values) in enumerate(dims):
            if not values:
                continue
            grown = []
            for matchers, key in combos:
                for value in values:
                    k = list(key)
                    k[i] = value
                    grown.append(({**matchers, level: ("=", [value])}, (k[0], k[1], k[2])))
                grown.append(({**matchers, level: ("!~", values)}, key))
            combos = grown
        return [(m, self._apply(rule, key)) for m, key in combos]


_AGGREGATE: dict[str, Callable[[list[float]], float]] = {
    "avg": lambda xs: sum(xs) / len(xs), "max": max, "min": min, "sum": sum,
}  # fmt: skip


def _clamp(rule: Rule) -> Rule:
    """A recover threshold on the wrong side of the threshold (after an override moved
    the threshold) is moved to the threshold: no hysteresis rather than nonsense."""
    r, t = rule.recover, rule.threshold
    if r is None or rule.op in ("==", "!="):
        return rule
    if (rule.op in (">", ">=") and r > t) or (rule.op in ("<", "<=") and r < t):
        return rule.model_copy(update={"recover": t})
    return rule


def _selected(series: Series, labels: Mapping[str, str]) -> bool:
    if not _probe_matches(series.probe, labels.get("probe", "")):
        return False
    if any(labels.get(k, "") != v for k, v in series.match.items()):
        return False
    return not any(re.fullmatch(p, labels.get(k, "")) for k, p in series.exclude.items())


def _instance(rule: Rule, clause: Clause, labels: Mapping[str, str]) -> dict[str, str]:
    if rule.instance is not None:
        return {k: labels[k] for k in rule.instance if labels.get(k)}
    return {k: v for k, v in labels.items() if k != "probe" and k not in clause.match}


# --- PromQL -------------------------------------------------------------------------

_GROUP_BY = ("target", "probe", *[k for k in TARGET_LABELS if k != "target"])


def prom_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def _num(x: float) -> str:
    return format(x, ".15g")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _selector(metric: str, series: Series, scope: Mapping[str, tuple[str, list[str]]]) -> str:
    matchers: list[str] = []
    for label, (op, values) in scope.items():
        if op == "=":
            matchers.append(f"{label}={_quote(values[0])}")
        else:  # =~ or !~ over literal values
            matchers.append(f"{label}{op}{_quote('|'.join(re.escape(v) for v in values))}")
    if series.probe == "tcp":
        matchers.append('probe=~"tcp-.*"')
    elif series.probe:
        matchers.append(f"probe={_quote(series.probe)}")
    matchers += [f"{k}={_quote(v)}" for k, v in series.match.items()]
    matchers += [f"{k}!~{_quote(v)}" for k, v in series.exclude.items()]
    sel = f"{metric}{{{', '.join(matchers)}}}" if matchers else metric
    if series.fn != "value":
        sel = f"{series.fn}({sel}[{prom_duration(series.window)}])"
    if series.probe == "tcp":
        sel = f'label_replace({sel}, "port", "$1", "probe", "tcp-(.*)")'
    return sel


def _series_expr(series: Series, scope: Mapping[str, tuple[str, list[str]]]) -> str:
    parts = [_selector(m, series, scope) for m in series.metrics]
    return parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"


def _clause_expr(
    rule: Rule, clause: Clause, scope: Mapping[str, tuple[str, list[str]]], uplinks_only: bool = False
) -> str:
    if uplinks_only:
        scope = {**scope, "if_name": ("=~", list(rule.uplinks))}
    value = _series_expr(clause, scope)
    if clause.divide_by is not None:
        value = f"{value} / {_series_expr(clause.divide_by, scope)}"
    if clause.aggregate is not None:
        by = ", ".join(dict.fromkeys([*_GROUP_BY, *(rule.instance or ())]))
        value = f"{clause.aggregate} by ({by}) ({value})"
    assert clause.threshold is not None
    expr = f"{value} {clause.op} {_num(clause.threshold)}"
    if clause.recover is not None and clause.recover != clause.threshold:
        expr = (
            f"({expr}) or ({value} {clause.op} {_num(clause.recover)} "
            f"and ignoring(alertname, alertstate, severity) ALERTS{{alertname={_quote(rule.name)}}})"
        )
    if not uplinks_only:
        for cond in clause.and_:
            expr = f"({expr}) and {_join(cond)} ({_cond_expr(cond)})"
    return expr


def _scope_text(scope: Mapping[str, tuple[str, list[str]]]) -> str:
    return ",".join(f"{k}{op}{'|'.join(v)}" for k, (op, v) in scope.items()) or "default"


def _join(cond: Condition) -> str:
    return f"on({', '.join(['target', *cond.on])})"


def _cond_expr(cond: Condition) -> str:
    return f"{_series_expr(cond, {})} {cond.op} {_num(cond.threshold)}"


def _promql_rule(rule: Rule, scope: Mapping[str, tuple[str, list[str]]]) -> dict[str, Any]:
    """``rule`` under ``scope`` as one Prometheus alerting rule (clauses joined by ``or``,
    each later one excluding the instances of the earlier ones)."""
    exprs: list[str] = []
    inst = ", ".join(["target", *(rule.instance or ())])
    for clause in rule.clauses:
        expr = _clause_expr(rule, clause, scope)
        if rule.uplinks and clause.and_:
            expr = f"({expr}) or ({_clause_expr(rule, clause, scope, uplinks_only=True)})"
        for cond in clause.unless:
            expr = f"({expr}) unless {_join(cond)} ({_cond_expr(cond)})"
        full = expr
        for prev in exprs:
            full = f"({full}) unless on({inst}) ({prev})"
        exprs.append(expr if not exprs else full)
    item: dict[str, Any] = {
        "alert": rule.name,
        "expr": exprs[0] if len(exprs) == 1 else " or ".join(f"({e})" for e in exprs),
    }
    if rule.for_:
        item["for"] = prom_duration(rule.for_)
    item["labels"] = {"severity": rule.severity.value}
    annotations = {"summary": _summary_template(rule)}
    if rule.description and "explanation" not in rule.description:
        annotations["description"] = go_template(rule.description)
    item["annotations"] = annotations
    return item


def _summary_template(rule: Rule) -> str:
    """The summary; with alternatives, picked by the labels only each alternative's
    series carry (most specific ``match`` first, the one without matchers last)."""
    if len({clause.summary or rule.summary for clause in rule.clauses}) == 1:
        return go_template(rule.summary)  # one text (interface_down: uplink or not)
    ordered = sorted(rule.clauses, key=lambda c: -len(c.match))
    parts: list[str] = []
    for i, clause in enumerate(ordered):
        text = go_template(clause.summary or rule.summary)
        if i == len(ordered) - 1 or not clause.match:
            parts.append(f"{{{{ else }}}}{text}" if parts else text)
            break
        tests = [f"(eq $labels.{k} {_quote(v)})" for k, v in clause.match.items()]
        test = tests[0][1:-1] if len(tests) == 1 else "and " + " ".join(tests)
        parts.append(f"{{{{ {'else if' if parts else 'if'} {test} }}}}{text}")
    return "".join(parts) + "{{ end }}"


def go_template(text: str) -> str:
    """A summary template in Prometheus' Go template language."""
    out: list[str] = []
    for literal, name, spec, _ in string.Formatter().parse(text):
        out.append(literal.replace("{{", "{{ `{{` }}"))
        if name is None:
            continue
        if name == "explanation":
            continue
        if name != "value":
            out.append(f"{{{{ $labels.{name} }}}}")
        elif spec and spec.endswith("%"):
            out.append("{{ $value | humanizePercentage }}")
        elif spec == "duration":
            out.append("{{ $value | humanizeDuration }}")
        elif spec:
            out.append(f'{{{{ printf "%{spec}" $value }}}}')
        else:
            out.append("{{ $value }}")
    return "".join(out).strip()
