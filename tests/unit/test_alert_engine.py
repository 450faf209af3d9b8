"""The alert engine's state machine, parents, schedules, flapping, silences and restarts,
driven through ``now=`` on a real SQLite state file (no sleeping)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.db import open_db
from alerts.engine import RESOLVED_RETENTION, AlertEngine, EngineSettings, read_alerts
from alerts.model import Alert, AlertState, Observation, Suppression
from alerts.rules import RuleSet, RulesSettings, TargetInfo
from alerts.schedule import Schedule
from alerts.silences import Matcher, add_silence
from probes.registry import runner_samples
from probes.result import ProbeResult, Sample, Status

LONDON = ZoneInfo("Europe/London")
#: Monday 7 September 2026, 10:00 in London: inside school hours.
T0 = datetime(2026, 9, 7, 10, 0, tzinfo=LONDON).timestamp()
SCHOOL = Schedule(days="mon-fri", hours="07:00-17:00", timezone="Europe/London")
LAB = {"group": "lab-204", "role": "lab", "room": "204"}


@dataclass(frozen=True)
class Target:
    """Stands in for alerts.rules.TargetInfo (same fields)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    parent: str | None = None
    expected_online: str | None = None


def down(target: str, active: bool = True, for_seconds: float = 60.0) -> Observation:
    return Observation(
        rule="device_down",
        target=target,
        labels={"alertname": "device_down", "severity": "critical", "target": target},
        active=active,
        value=1.0 if active else 0.0,
        summary=f"{target} is down",
        reachability=True,
        for_seconds=for_seconds,
    )


def toner(target: str, active: bool = True, for_seconds: float = 0.0) -> Observation:
    return Observation(
        rule="printer_supply_low",
        target=target,
        labels={"alertname": "printer_supply_low", "severity": "warning", "supply": "black"},
        active=active,
        value=0.05,
        summary=f"{target}: black toner at 5%",
        for_seconds=for_seconds,
    )


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "alerts.db"


@pytest.fixture
def engine(state_file: Path) -> Iterator[AlertEngine]:
    conn = open_db(state_file)
    yield make_engine(conn)
    conn.close()


def make_engine(conn: object, **settings: object) -> AlertEngine:
    eng = AlertEngine(
        conn,  # type: ignore[arg-type]
        EngineSettings.model_validate(settings),
        schedules={"school-hours": SCHOOL},
        base_dir=Path("."),
        clock=lambda: T0,
    )
    eng.set_targets(
        [
            Target("sw-core", {"role": "switch", "site": "main"}),
            Target("sw-closet", {"role": "switch"}, parent="sw-core"),
            *[Target(f"pc{i:02}", LAB, parent="sw-closet") for i in range(30)],
            Target("printer", {"role": "printer", "building": "main", "owner": "x"}),
            Target("lab-pc", {"role": "lab"}, expected_online="school-hours"),
        ]
    )
    return eng


def one(engine: AlertEngine, target: str, rule: str = "device_down") -> Alert:
    found = [a for a in engine.alerts() if a.target == target and a.rule == rule]
    assert len(found) == 1, found
    return found[0]


def states(engine: AlertEngine) -> dict[str, tuple[AlertState, Suppression]]:
    return {a.target: (a.state, a.suppressed) for a in engine.alerts()}


# --- state machine -------------------------------------------------------------------


def test_pending_firing_resolved_expired(engine: AlertEngine) -> None:
    changed = engine.observe("printer", [toner("printer", for_seconds=300)], now=T0)
    assert [(a.state, a.active_since) for a in changed] == [(AlertState.PENDING, T0)]
    assert engine.observe("printer", [toner("printer", for_seconds=300)], now=T0 + 60) == []
    assert engine.tick(now=T0 + 299) == []
    [fired] = engine.tick(now=T0 + 300)
    assert (fired.state, fired.starts_at, fired.active_since) == (AlertState.FIRING, T0 + 300, T0)
    assert fired.annotations["summary"] == "printer: black toner at 5%"
    [resolved] = engine.observe("printer", [toner("printer", active=False)], now=T0 + 400)
    assert (resolved.state, resolved.ends_at) == (AlertState.RESOLVED, T0 + 400)
    engine.tick(now=T0 + 400 + RESOLVED_RETENTION - 1)
    assert one(engine, "printer", "printer_supply_low").state is AlertState.RESOLVED
    engine.tick(now=T0 + 400 + RESOLVED_RETENTION)
    assert engine.alerts() == []


def test_resolved_instance_becoming_active_starts_pending_anew(engine: AlertEngine) -> None:
    engine.observe("printer", [toner("printer", for_seconds=60)], now=T0)
    engine.tick(now=T0 + 60)
    engine.observe("printer", [toner("printer", active=False)], now=T0 + 100)
    [again] = engine.observe("printer", [toner("printer", for_seconds=60)], now=T0 + 200)
    assert (again.state, again.active_since, again.starts_at, again.ends_at) == (
        AlertState.PENDING, T0 + 200, None, None,
    )  # fmt: skip


def test_for_zero_fires_at_once_and_pending_that_clears_disappears(engine: AlertEngine) -> None:
    [fired] = engine.observe("printer", [toner("printer", for_seconds=0)], now=T0)
    assert fired.state is AlertState.FIRING
    engine.observe("sw-core", [down("sw-core", for_seconds=60)], now=T0)
    assert one(engine, "sw-core").state is AlertState.PENDING
    engine.observe("sw-core", [down("sw-core", active=False)], now=T0 + 30)
    assert [a.target for a in engine.alerts()] == ["printer"]


def test_instances_missing_from_observations_are_inactive(engine: AlertEngine) -> None:
    engine.observe("printer", [toner("printer")], now=T0)
    [resolved] = engine.observe("printer", [], now=T0 + 10)
    assert resolved.state is AlertState.RESOLVED


def test_labels_carry_target_labels_only(engine: AlertEngine) -> None:
    engine.observe("printer", [toner("printer")], now=T0)
    labels = one(engine, "printer", "printer_supply_low").labels
    assert labels == {
        "alertname": "printer_supply_low", "severity": "warning", "supply": "black",
        "target": "printer", "role": "printer", "building": "main",
    }  # fmt: skip


# --- parents -------------------------------------------------------------------------


def test_closet_switch_down_with_30_children_one_unsuppressed_alert(engine: AlertEngine) -> None:
    pcs = [f"pc{i:02}" for i in range(30)]
    ever_unsuppressed_children: set[str] = set()

    def check() -> None:
        for a in engine.alerts():
            if a.target in pcs and a.state is AlertState.FIRING and a.suppressed is Suppression.NONE:
                ever_unsuppressed_children.add(a.target)

    t = T0
    for pc in pcs[:10]:  # children report before their switch
        engine.observe(pc, [down(pc, for_seconds=0)], now=t)
        t += 1
        check()
    assert {states(engine)[pc] for pc in pcs[:10]} == {(AlertState.PENDING, Suppression.NONE)}
    engine.observe("sw-closet", [down("sw-closet")], now=t)
    assert states(engine)["pc00"] == (AlertState.FIRING, Suppression.PARENT_DOWN)
    assert one(engine, "pc00").suppressed_reason == "unreachable because parent sw-closet is down"
    for pc in pcs[10:]:
        t += 1
        engine.observe(pc, [down(pc, for_seconds=0)], now=t)
        check()
    engine.observe("sw-core", [], now=t)  # the core switch is fine
    engine.tick(now=T0 + 120)
    unsuppressed = [a.target for a in engine.alerts()
                    if a.state is AlertState.FIRING and a.suppressed is Suppression.NONE]  # fmt: skip
    assert unsuppressed == ["sw-closet"]

    t = T0 + 600  # the switch comes back; the children are probed one by one after it
    engine.observe("sw-closet", [down("sw-closet", active=False)], now=t)
    assert states(engine)["sw-closet"] == (AlertState.RESOLVED, Suppression.NONE)
    assert states(engine)["pc05"] == (AlertState.FIRING, Suppression.PARENT_DOWN)
    assert "back up" in one(engine, "pc05").suppressed_reason
    for pc in pcs:
        t += 1
        engine.observe(pc, [down(pc, active=False)], now=t)
        engine.tick(now=t)
        check()
    assert {states(engine)[pc] for pc in pcs} == {(AlertState.RESOLVED, Suppression.PARENT_DOWN)}
    assert ever_unsuppressed_children == set()


def test_child_still_down_after_parent_returns_fires(engine: AlertEngine) -> None:
    engine.observe("sw-closet", [down("sw-closet", for_seconds=0)], now=T0)
    engine.observe("pc01", [down("pc01", for_seconds=0)], now=T0 + 5)
    assert states(engine)["pc01"] == (AlertState.FIRING, Suppression.PARENT_DOWN)
    engine.observe("sw-closet", [], now=T0 + 300)
    engine.tick(now=T0 + 301)
    assert states(engine)["pc01"] == (AlertState.FIRING, Suppression.PARENT_DOWN)
    [changed] = engine.observe("pc01", [down("pc01", for_seconds=0)], now=T0 + 330)
    assert (changed.state, changed.suppressed, changed.suppressed_reason) == (
        AlertState.FIRING, Suppression.NONE, "",
    )  # fmt: skip


def test_grandparent_down_suppresses_before_the_parent_reports(engine: AlertEngine) -> None:
    engine.observe("sw-core", [down("sw-core", for_seconds=60)], now=T0)
    engine.observe("pc07", [down("pc07", for_seconds=0)], now=T0 + 1)
    alert = one(engine, "pc07")
    assert (alert.state, alert.suppressed) == (AlertState.FIRING, Suppression.PARENT_DOWN)
    assert alert.suppressed_reason == (
        "unreachable because sw-core (upstream of parent sw-closet) is down"
    )
    engine.observe("sw-closet", [down("sw-closet", for_seconds=0)], now=T0 + 2)
    assert states(engine)["sw-closet"] == (AlertState.FIRING, Suppression.PARENT_DOWN)
    engine.tick(now=T0 + 60)
    assert states(engine)["sw-core"] == (AlertState.FIRING, Suppression.NONE)


def test_child_alone_down_fires_once_parent_is_seen_up(engine: AlertEngine) -> None:
    engine.observe("pc03", [down("pc03", for_seconds=30)], now=T0)
    engine.tick(now=T0 + 40)
    assert states(engine)["pc03"] == (AlertState.PENDING, Suppression.NONE)  # parents unknown
    engine.observe("sw-closet", [], now=T0 + 45)
    engine.tick(now=T0 + 46)
    assert states(engine)["pc03"] == (AlertState.PENDING, Suppression.NONE)  # core unknown
    engine.observe("sw-core", [], now=T0 + 50)
    assert states(engine)["pc03"] == (AlertState.FIRING, Suppression.NONE)


def test_parent_never_heard_of_delays_at_most_parent_wait(state_file: Path) -> None:
    conn = open_db(state_file)
    engine = make_engine(conn, parent_wait="2m")
    engine.observe("pc03", [down("pc03", for_seconds=30)], now=T0)
    engine.tick(now=T0 + 149)
    assert states(engine)["pc03"] == (AlertState.PENDING, Suppression.NONE)
    engine.tick(now=T0 + 150)
    assert states(engine)["pc03"] == (AlertState.FIRING, Suppression.NONE)
    conn.close()


def _run(probe: str, up: bool, started: float) -> ProbeResult:
    """One ICMP or TCP run as the runner stores it: the probe's samples and its own."""
    took = 0.05 if up else 2.0
    samples = []
    if probe == "icmp":
        samples = [Sample.of("netmon_icmp_packets_sent", 3),
                   Sample.of("netmon_icmp_packets_received", 3 if up else 0)]  # fmt: skip
    result = ProbeResult(Status.OK if up else Status.TIMEOUT, "", samples,
                         duration_seconds=took, started_at=started)  # fmt: skip
    result.samples += runner_samples(result)
    return result


@pytest.mark.parametrize("port_back", [True, False])
def test_a_childs_alert_waits_for_its_own_probe_after_the_parent_returns(
    state_file: Path, port_back: bool
) -> None:
    """The copier behind closet switch B: ping every 60 s, TCP 9100 every 300 s, the real
    rules. After the switch comes back, the copier's ping reports first while its TCP
    result from the outage is still the latest: tcp_service_down stays suppressed until
    the port's own next check, which resolves it, or, still failing, fires it then."""
    conn = open_db(state_file)
    engine = make_engine(conn)
    switch = TargetInfo("sw-closet-b", {"role": "switch"})
    copier = TargetInfo("office-copier", {"role": "printer"}, parent="sw-closet-b")
    engine.set_targets([switch, copier])
    rules = RuleSet.from_settings(RulesSettings())
    # (target, store name, interval, phase); the switch is down from 600 s to 1800 s
    jobs = [(switch, "icmp", 60, 10), (copier, "icmp", 60, 20), (copier, "tcp-9100", 300, 250)]
    latest: dict[str, dict[str, ProbeResult]] = {"sw-closet-b": {}, "office-copier": {}}
    running: list[tuple[float, TargetInfo, str, ProbeResult]] = []  # by the time they end
    unsuppressed: list[int] = []
    for second in range(2400):
        now = T0 + second
        for info, name, every, phase in jobs:
            if second % every == phase:
                outage = 600 <= second < 1800
                up = not outage and (port_back or second < 600 or name == "icmp")
                run = _run(name[:4].rstrip("-"), up, now)
                running.append((now + run.duration_seconds, info, name, run))
        for done, info, name, run in [r for r in running if r[0] < now + 1]:
            latest[info.name][name] = run
            engine.observe(info.name, rules.evaluate(info, latest[info.name], done), done)
        running = [r for r in running if r[0] >= now + 1]
        engine.tick(now=now + 0.999)
        alerts = [a for a in engine.alerts() if a.rule == "tcp_service_down"]
        if alerts and alerts[0].state is AlertState.FIRING and not alerts[0].suppressed.value:
            unsuppressed.append(second)
    [alert] = [a for a in engine.alerts() if a.rule == "tcp_service_down"]
    assert alert.active_since is not None and alert.active_since < T0 + 1800
    if port_back:
        assert unsuppressed == [] and alert.state is AlertState.RESOLVED
    else:  # fires at the port's first check after the switch's return (2050 s), no later
        assert unsuppressed[0] == 2052 and alert.state is AlertState.FIRING
    conn.close()


# --- schedules -----------------------------------------------------------------------


def test_out_of_schedule_suppresses_reachability_only(engine: AlertEngine) -> None:
    night = datetime(2026, 9, 7, 22, 0, tzinfo=LONDON).timestamp()
    engine.observe("lab-pc", [down("lab-pc", for_seconds=0), toner("lab-pc")], now=night)
    alert = one(engine, "lab-pc")
    assert (alert.state, alert.suppressed) == (AlertState.FIRING, Suppression.OUT_OF_SCHEDULE)
    assert alert.suppressed_reason == (
        "outside schedule school-hours (mon-fri 07:00-17:00 Europe/London)"
    )
    assert one(engine, "lab-pc", "printer_supply_low").suppressed is Suppression.NONE
    morning = datetime(2026, 9, 8, 7, 0, tzinfo=LONDON).timestamp()
    engine.tick(now=morning - 60)
    assert one(engine, "lab-pc").suppressed is Suppression.OUT_OF_SCHEDULE
    [changed] = engine.tick(now=morning)
    assert (changed.target, changed.suppressed) == ("lab-pc", Suppression.NONE)


# --- flapping ------------------------------------------------------------------------


def test_flapping_enter_hold_and_leave(engine: AlertEngine) -> None:
    t = T0
    for i in range(5):  # 5 changes: firing/resolved as usual
        engine.observe("printer", [toner("printer", active=i % 2 == 0)], now=t)
        t += 60
    assert one(engine, "printer", "printer_supply_low").state is AlertState.FIRING
    engine.observe("printer", [toner("printer", active=False)], now=t)  # 6th change
    alert = one(engine, "printer", "printer_supply_low")
    assert (alert.state, alert.suppressed) == (AlertState.FIRING, Suppression.FLAPPING)
    assert alert.suppressed_reason == "flapping: changed state 6 times in 15m"
    for i in range(4):  # keeps flapping: held firing, never resolved
        t += 60
        engine.observe("printer", [toner("printer", active=i % 2 == 0)], now=t)
        assert states(engine)["printer"] == (AlertState.FIRING, Suppression.FLAPPING)
    last_change = t
    engine.tick(now=last_change + 899)
    assert states(engine)["printer"] == (AlertState.FIRING, Suppression.FLAPPING)
    [changed] = engine.tick(now=last_change + 900)  # stable (inactive) for a window
    assert (changed.state, changed.suppressed) == (AlertState.RESOLVED, Suppression.FLAPPING)


def test_flapping_disabled(state_file: Path) -> None:
    conn = open_db(state_file)
    engine = make_engine(conn, flapping={"enabled": False})
    for i in range(10):
        engine.observe("printer", [toner("printer", active=i % 2 == 0)], now=T0 + i)
        assert one(engine, "printer", "printer_supply_low").suppressed is Suppression.NONE
    conn.close()


# --- silences ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("target=pc01", {"target": "pc01"}, True),
        ("target=pc01", {"target": "pc011"}, False),
        ("target!=pc01", {"target": "pc02"}, True),
        ("target!=pc01", {}, True),
        ("alertname=~device_.*", {"alertname": "device_down"}, True),
        ("alertname=~device", {"alertname": "device_down"}, False),  # whole value
        ("room!~20[0-9]", {"room": "204"}, False),
        ("room=", {}, True),  # a missing label is ""
    ],
)
def test_matchers(text: str, labels: dict[str, str], matches: bool) -> None:
    assert Matcher.parse(text).matches(labels) is matches


@pytest.mark.parametrize("text", ["target", "=x", "9x=y", "a=~("])
def test_bad_matchers(text: str) -> None:
    with pytest.raises(ValueError, match="matcher|regular expression"):
        Matcher.parse(text)


def test_silence_add_expire_and_from_another_connection(engine: AlertEngine, state_file: Path) -> None:
    engine.observe("printer", [toner("printer"), down("printer", for_seconds=0)], now=T0)
    engine.observe("sw-core", [down("sw-core", for_seconds=0)], now=T0)
    silence = engine.add_silence(
        ["target=printer", "alertname=~printer_.*"], ends_at=T0 + 7200, author="ann", comment="new toner ordered"
    )  # fmt: skip
    engine.tick(now=T0 + 1)
    alert = one(engine, "printer", "printer_supply_low")
    assert alert.suppressed is Suppression.SILENCED
    assert "ann" in alert.suppressed_reason and silence.id in alert.suppressed_reason
    assert one(engine, "printer").suppressed is Suppression.NONE  # device_down: no match
    assert one(engine, "sw-core").suppressed is Suppression.NONE
    assert engine.expire_silence(silence.id[:6]) is not None
    engine.tick(now=T0 + 2)
    assert one(engine, "printer", "printer_supply_low").suppressed is Suppression.NONE

    other = open_db(state_file)  # what `netmon silence add` does from a shell
    add_silence(other, ["target=sw-core"], starts_at=T0 + 10, ends_at=T0 + 20, author="bob",
                comment="cable swap", now=T0)  # fmt: skip
    other.close()
    engine.tick(now=T0 + 5)
    assert one(engine, "sw-core").suppressed is Suppression.NONE  # not started yet
    engine.tick(now=T0 + 10)
    assert one(engine, "sw-core").suppressed is Suppression.SILENCED
    engine.tick(now=T0 + 20)
    assert one(engine, "sw-core").suppressed is Suppression.NONE


# --- restart, metrics ----------------------------------------------------------------


def test_restart_on_the_same_file_continues(state_file: Path) -> None:
    conn = open_db(state_file)
    first = make_engine(conn)
    first.observe("printer", [toner("printer", for_seconds=300)], now=T0)
    first.observe("sw-core", [down("sw-core", for_seconds=0)], now=T0)
    first.observe("pc01", [down("pc01", for_seconds=0)], now=T0 + 1)
    first.add_silence(["target=lab-pc"], ends_at=T0 + 3600, author="ann", comment="x")
    before = {a.fingerprint: a.to_json() for a in first.alerts()}
    conn.close()

    conn = open_db(state_file)
    second = make_engine(conn)
    assert {a.fingerprint: a.to_json() for a in second.alerts()} == before
    assert {a.fingerprint: a.to_json() for a in read_alerts(conn)} == before
    assert [s.comment for s in second.list_silences()] == ["x"]
    assert second.observe("sw-core", [down("sw-core", for_seconds=0)], now=T0 + 30) == []
    assert second.tick(now=T0 + 299) == []
    [fired] = second.tick(now=T0 + 300)
    assert (fired.rule, fired.state, fired.active_since) == ("printer_supply_low", AlertState.FIRING, T0)
    # the core switch is still down: its descendant stays suppressed, not re-evaluated as new
    assert states(second)["pc01"] == (AlertState.FIRING, Suppression.PARENT_DOWN)
    conn.close()


def test_restart_keeps_each_alerts_data_time_and_reads_files_from_before_it(
    state_file: Path,
) -> None:
    """An alert's data time survives a restart (its ping at 330 s is newer, its TCP run
    from 200 s is not); a state file from before alert_observed gives its alerts their
    target's last observation, as the engine then did."""
    port = dataclasses.replace(down("pc01", for_seconds=0), rule="tcp_service_down",
                               labels={"alertname": "tcp_service_down", "port": "9100"},
                               inputs=(("tcp-9100", T0 + 200, 2.0),))  # fmt: skip
    conn = open_db(state_file)
    first = make_engine(conn)
    first.observe("sw-closet", [down("sw-closet", for_seconds=0)], now=T0)
    first.observe("pc01", [port], now=T0 + 202)
    first.observe("sw-closet", [], now=T0 + 300)
    first.observe("pc01", [port], now=T0 + 330)
    assert "back up" in one(first, "pc01", "tcp_service_down").suppressed_reason
    conn.close()

    conn = open_db(state_file)
    second = make_engine(conn)
    second.tick(now=T0 + 331)
    assert "back up" in one(second, "pc01", "tcp_service_down").suppressed_reason
    conn.execute("DROP TABLE alert_observed")  # the file as an older netmon left it
    conn.execute("DELETE FROM schema_versions WHERE part = 'engine_observed'")
    conn.close()

    conn = open_db(state_file)
    third = make_engine(conn)
    third.tick(now=T0 + 332)
    assert one(third, "pc01", "tcp_service_down").suppressed is Suppression.NONE
    third.observe("pc01", [dataclasses.replace(port, inputs=(("tcp-9100", T0 + 335, 2.0),))],
                  now=T0 + 337)  # fmt: skip
    assert [tuple(r) for r in conn.execute("SELECT as_of FROM alert_observed")] == [(T0 + 335,)]
    conn.close()


def test_samples_count_by_state_severity_and_suppression(engine: AlertEngine) -> None:
    engine.observe("sw-core", [down("sw-core", for_seconds=0)], now=T0)
    engine.observe("pc01", [down("pc01", for_seconds=0)], now=T0)
    engine.observe("printer", [toner("printer", for_seconds=60)], now=T0)
    values = {
        (s.label_dict["state"], s.label_dict["severity"], s.label_dict["suppressed"]): s.value
        for s in engine.samples()
    }
    assert len(values) == 2 * 3 * 5
    assert values[("firing", "critical", "none")] == 1
    assert values[("firing", "critical", "parent_down")] == 1
    assert values[("pending", "warning", "none")] == 1
    assert sum(values.values()) == 3
    assert {s.metric for s in engine.samples()} == {"netmon_alerts"}
