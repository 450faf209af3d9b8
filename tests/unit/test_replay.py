"""Alert replay (alerts.replay): the scenarios of tests/integration/test_alert_scenarios.py
replayed under a virtual clock, results built like the probes build them, the steady-run
skipping checked against the exhaustive replay, and the default-pack regression weeks
in tests/replay/ (NETMON_UPDATE_REPLAY=1 rewrites their expected notifications)."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.replay import JobState, ReplayJob, ReplayReport, Sent, build_result
from alerts.timeline import Change, load_timeline
from monitor.cli.replay import build_replay
from monitor.config import load_config
from probes.icmp import IcmpSettings
from probes.result import Status

WEEKS = Path(__file__).parents[1] / "replay"
START = "2026-09-07 06:00"  # a Monday


def replay(tmp_path: Path, groups: list[dict[str, Any]], changes: list[dict[str, Any]], *,
           alerts: dict[str, Any] | None = None, schedules: dict[str, Any] | None = None,
           exhaustive: bool = False, **timeline: Any) -> ReplayReport:
    """Replay ``changes`` through a config of ``groups`` emailing one receiver, grouped per
    target (as the scenario tests' config does)."""
    config = {
        "defaults": {"interval": "60s", "labels": {"site": "test-school"},
                     "snmp": {"credentials": "school"}},
        "credentials": {"school": {"version": "2c", "community": "public"}},
        **({"schedules": schedules} if schedules else {}),
        "groups": groups,
        "alerts": {"smtp": {"host": "smtp.school.example", "from": "netmon@school.example"},
                   "receivers": [{"name": "it-team", "email": {"to": ["it@school.example"]}}],
                   "route": {"receiver": "it-team", "group_by": ["target"], "group_wait": "30s",
                             "group_interval": "2m", "repeat_interval": "12h"},
                   **(alerts or {})},
    }  # fmt: skip
    (tmp_path / "netmon.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "timeline.yml").write_text(yaml.safe_dump(
        {"start": START, "end": "+6h", **timeline, "changes": changes}))
    cfg = load_config(tmp_path / "netmon.yml")
    loaded = load_timeline(tmp_path / "timeline.yml")
    return build_replay(cfg, loaded, tmp_path / "netmon.yml", exhaustive=exhaustive).run()


def kinds(report: ReplayReport) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(n.kind, [(t, s) for _, t, s in n.alerts]) for n in report.notifications]


_ADDRESSES = itertools.count(10)


def _hosts(name: str, names: list[str], **extra: Any) -> dict[str, Any]:
    """An ICMP-only group (each target its own address, in every test's config)."""
    return {"name": name, "role": "lab", "probes": ["icmp"], **extra,
            "targets": [{"name": n, "address": f"198.51.100.{next(_ADDRESSES) % 250 + 1}"}
                        for n in names]}  # fmt: skip


def _supply(value: float, **labels: str) -> dict[str, Any]:
    return {"metric": "netmon_printer_supply_level_ratio", "value": value, "labels": labels}


# --- results as the probes build them ---------------------------------------------------


def _job(probe: str, store: str | None = None) -> ReplayJob:
    return ReplayJob("pc", store or probe, probe, 60.0, 0.0, 2.4,
                     IcmpSettings(count=3, timeout=2.0) if probe == "icmp" else None)


@pytest.mark.parametrize(("status", "received", "judged", "words"), [
    (Status.OK, 3, Status.OK, "3 of 3 echo replies"),
    (Status.PARTIAL, 2, Status.PARTIAL, "2 of 3 echo replies (33% loss)"),
    (Status.TIMEOUT, 0, Status.TIMEOUT, "no reply to 3 echo requests within 2s"),
    (Status.UNREACHABLE, 0, Status.UNREACHABLE, "unreachable"),
])  # fmt: skip
def test_icmp_results_are_the_probes_own(status: Status, received: int, judged: Status,
                                         words: str) -> None:
    state = JobState()
    state.apply(Change(at=0, target="pc", status=status), 0.0)
    result = build_result(_job("icmp"), state, 1000.0)
    values = {(s.metric, s.labels): s.value for s in result.samples}
    assert result.status is judged and words in result.explanation
    assert values[("netmon_icmp_packets_received", ())] == received
    assert values[("netmon_probe_success", ())] == float(judged.success)
    assert (("netmon_icmp_rtt_seconds", (("stat", "avg"),)) in values) == bool(received)
    waited = status in (Status.TIMEOUT, Status.PARTIAL)  # replies that never came
    assert result.started_at == 1000.0 and result.duration_seconds == (2.4 if waited else 0.05)


def test_samples_match_by_label_subset_grow_and_go() -> None:
    state = JobState()
    state.apply(Change(at=0, target="p", samples=[
        _supply(0.6, index="1.1", color="black"), _supply(0.8, index="1.2", color="cyan")]), 0.0)
    state.apply(Change(at=0, target="p", samples=[{**_supply(0.1, color="black")},
        {"metric": "netmon_printer_pages_total", "value": 100, "rate": 0.5}]), 10.0)  # fmt: skip
    result = build_result(_job("snmp"), state, 30.0)
    values = {(s.metric, s.labels): s.value for s in result.samples}
    assert values[("netmon_printer_supply_level_ratio", (("index", "1.1"), ("color", "black")))] == 0.1
    assert values[("netmon_printer_supply_level_ratio", (("index", "1.2"), ("color", "cyan")))] == 0.8
    assert values[("netmon_printer_pages_total", ())] == 110.0  # 100 + 0.5/s for 20 s
    state.apply(Change(at=0, target="p", status=Status.TIMEOUT,
                       samples=[{**_supply(0.0, color="cyan"), "value": None}]), 40.0)  # fmt: skip
    failed = build_result(_job("snmp"), state, 50.0)
    assert {s.metric for s in failed.samples} == {"netmon_probe_success", "netmon_probe_duration_seconds",
                                                   "netmon_probe_status"}  # fmt: skip
    assert len([k for k in state.samples if k[0] == "netmon_printer_supply_level_ratio"]) == 1


# --- the alert scenarios ----------------------------------------------------------------


def test_printer_running_out_of_toner(tmp_path: Path) -> None:
    black = {"index": "1.1", "supply": "Black Cartridge", "color": "black", "class": "consumable"}
    report = replay(tmp_path, [{"name": "printers", "role": "printer",
                                "targets": [{"name": "library-mfp", "address": "192.0.2.20"}]}], [
        {"at": 0, "target": "library-mfp", "probe": "snmp", "samples": [_supply(0.63, **black)]},
        {"at": "+1h", "target": "library-mfp", "probe": "snmp", "samples": [_supply(0.03, color="black")]},
        {"at": "+3h", "target": "library-mfp", "probe": "snmp", "samples": [_supply(0.8, color="black")]},
    ])  # fmt: skip
    assert kinds(report) == [("firing", [("library-mfp", "firing")]),
                             ("resolved", [("library-mfp", "resolved")])]
    assert report.notifications[0].subject == (
        "[FIRING] 1 problem in library-mfp: library-mfp: Black Cartridge low (3% left)")
    first = report.notifications[0].at - report.start
    assert 3600 + 300 <= first <= 3600 + 300 + 60 + 30 + 2  # for 5m, a run, group_wait, ticks


def test_closet_switch_down_sends_one_email_not_one_per_child(tmp_path: Path) -> None:
    children = [f"lab-pc-{i:02d}" for i in range(1, 7)]
    every = ["sw-closet", *children]
    report = replay(tmp_path, [
        _hosts("closet", ["sw-closet"], role="switch", labels={"building": "main"}),
        _hosts("lab-204", children, parent="sw-closet", labels={"building": "main", "room": "204"}),
    ], [
        *({"at": "+1h", "target": n, "status": "timeout"} for n in every),
        *({"at": "+2h", "target": n, "status": "ok"} for n in every),
    ], alerts={"route": {"receiver": "it-team", "group_by": ["building"], "group_wait": "30s",
                         "group_interval": "2m", "repeat_interval": "12h"}})  # fmt: skip
    assert kinds(report) == [("firing", [("sw-closet", "firing")]),
                             ("resolved", [("sw-closet", "resolved")])]
    assert report.suppressed["parent_down"] == len(children)
    assert report.fired == 1 and report.resolved == 1


def test_lab_machines_off_outside_their_schedule_send_nothing(tmp_path: Path) -> None:
    machines = [f"lab-pc-{i:02d}" for i in range(1, 5)]
    report = replay(tmp_path, [
        _hosts("lab-204", machines, expected_online="school-hours"),
        _hosts("hall", ["hall-printer"]),
    ], [
        {"at": 0, "group": "lab-204", "status": "timeout"},  # off on Monday 06:00 ...
        {"at": "+2h", "target": "hall-printer", "status": "timeout"},  # ... a control incident
    ], schedules={"school-hours": {"days": "tue", "hours": "07:00-17:00", "timezone": "UTC"}})
    assert kinds(report) == [("firing", [("hall-printer", "firing")])]
    assert report.suppressed["out_of_schedule"] == len(machines)


def test_lab_machines_alert_once_their_schedule_starts(tmp_path: Path) -> None:
    """The schedule's edge (08:00 UTC) is a tick of its own: the lab's alerts stop being
    suppressed then, not at some later probe run."""
    report = replay(tmp_path, [_hosts("lab-204", ["lab-pc-01"], expected_online="lessons")],
                    [{"at": 0, "group": "lab-204", "status": "timeout"}],
                    schedules={"lessons": {"hours": "08:00-17:00", "timezone": "UTC"}})
    assert kinds(report) == [("firing", [("lab-pc-01", "firing")])]
    assert report.notifications[0].at - load_ts("2026-09-07 08:00:00+00:00") == 30  # group_wait


def load_ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def test_flapping_host_sends_one_flapping_notice(tmp_path: Path) -> None:
    toggles = [{"at": f"+{60 + 4 * k}m", "target": "wifi-ap", "status": "timeout" if k % 2 == 0 else "ok"}
               for k in range(8)]  # fmt: skip
    report = replay(tmp_path, [_hosts("aps", ["wifi-ap"])], toggles,
                    alerts={"rules": {"device_down": {"for": "0s"}},
                            "flapping": {"window": "30m", "changes": 4}})  # fmt: skip
    got = kinds(report)
    flapping = [k for k, _ in got].index("flapping")
    assert flapping < 4, got  # at most one email per change before it is detected
    assert [k for k, _ in got[flapping:]] == ["flapping", "resolved"], got  # then quiet
    assert report.suppressed["flapping"] == 1


def test_restart_mid_incident_neither_repeats_nor_loses(tmp_path: Path) -> None:
    report = replay(tmp_path, [_hosts("servers", ["nas"])], [
        {"at": "+1h", "target": "nas", "status": "timeout"},
        {"at": "+3h", "target": "nas", "status": "ok"},
    ], restarts=[{"at": "+2h", "down": "1m"}])  # fmt: skip
    assert kinds(report) == [("firing", [("nas", "firing")]), ("resolved", [("nas", "resolved")])]


def test_restart_with_a_multi_port_incident_resolves_nothing(tmp_path: Path) -> None:
    ports = [8001, 8002, 8003, 8004, 8005, 8006]
    report = replay(tmp_path, [{"name": "servers", "role": "server", "probes": ["tcp"],
                                "tcp_ports": ports, "targets": [{"name": "nas", "address": "192.0.2.9"}]}],
                    [{"at": "+1h", "target": "nas", "probe": "tcp", "status": "refused"}],
                    restarts=[{"at": "+2h", "down": "10s"}])  # fmt: skip
    got = kinds(report)
    assert {kind for kind, _ in got} == {"firing"}, got
    assert got[-1] == ("firing", [("nas", "firing")] * len(ports))
    assert report.notifications[-1].at - report.start < 2 * 3600  # nothing after the restart


def test_a_silence_in_the_timeline(tmp_path: Path) -> None:
    report = replay(tmp_path, [_hosts("servers", ["nas", "web"])], [
        {"at": "+1h", "target": "nas", "status": "timeout"},
        {"at": "+1h", "target": "web", "status": "timeout"},
    ], silences=[{"at": "+30m", "duration": "2h", "matchers": ["target=nas"], "comment": "move"}])
    assert kinds(report) == [("firing", [("web", "firing")]), ("firing", [("nas", "firing")])]
    assert report.notifications[1].at - report.start == 2.5 * 3600 + 30  # then group_wait
    assert report.suppressed["silenced"] == 1


def test_alertmanager_posts_are_recorded_too(tmp_path: Path) -> None:
    """An Alertmanager gets the firing alert, re-sent every resend_every while it fires
    (its own grouping decides the emails), then the resolved one; the password in its
    url is not shown."""
    report = replay(tmp_path, [_hosts("servers", ["nas"])], [
        {"at": "+1h", "target": "nas", "status": "timeout"},
        {"at": "+1h10m", "target": "nas", "status": "ok"},
    ], alerts={"alertmanagers": [{"urls": ["http://netmon:s3cret@am.school.example:9093"],
                                  "resend_every": "5m"}]})  # fmt: skip
    posts = [n for n in report.notifications if n.kind == "alertmanager"]
    assert {n.receiver for n in posts} == {"http://netmon:****@am.school.example:9093"}
    assert [n.alerts for n in posts] == [(("device_down", "nas", "firing"),)] * 2 + [
        (("device_down", "nas", "resolved"),)]
    assert [n.kind for n in report.notifications if n.kind != "alertmanager"] == ["firing", "resolved"]


# --- skipping steady runs changes nothing -----------------------------------------------


def test_skipping_steady_runs_sends_what_probing_every_run_sends(tmp_path: Path) -> None:
    """A busy few hours on a small school, replayed twice: as the daemon would (every run
    evaluated, a tick every second) and with steady targets skipped. Same notifications,
    to the second, and the same summary."""
    port = {"if_index": "5", "if_name": "Gi0/5"}
    ports = [{"metric": m, "labels": port, "value": 1}
             for m in ("netmon_interface_oper_up", "netmon_interface_admin_up")]
    ports += [{"metric": f"netmon_interface_{way}_errors_total", "labels": port, "value": 0}
              for way in ("receive", "transmit")]  # the rule sums both
    groups = [
        {"name": "core", "role": "switch", "targets": [{"name": "sw-core", "address": "192.0.2.1"}]},
        _hosts("lab", ["pc-1", "pc-2", "pc-3"], parent="sw-core", expected_online="day"),
        _hosts("aps", ["ap-1"], parent="sw-core"),
    ]
    changes = [
        {"at": 0, "target": "sw-core", "probe": "snmp", "samples": ports},
        {"at": 0, "group": "lab", "status": "timeout"},
        {"at": "+20m", "group": "lab", "status": "ok"},  # 06:20, before the 06:30 edge
        {"at": "+25m", "target": "pc-2", "status": "timeout"},
        {"at": "+40m", "target": "sw-core", "status": "timeout"},  # and the lab behind it
        {"at": "+40m", "group": "lab", "status": "timeout"},
        {"at": "+55m", "target": "sw-core", "status": "ok"},
        {"at": "+56m", "group": "lab", "status": "ok"},
        # sw-core is steady (runs skipped) from about 1h40m (its topology job runs every
        # 15 minutes): a child's alert waits for its next run (the engine watches it), and
        # when its port goes down the rules' memory of the port is rebuilt.
        {"at": "+1h50m", "target": "pc-3", "status": "timeout"},
        {"at": "+2h05m", "target": "pc-3", "status": "ok"},
        {"at": "+2h10m", "target": "sw-core", "probe": "snmp",
         "samples": [{"metric": "netmon_interface_oper_up", "labels": {"if_index": "5"}, "value": 0}]},
        {"at": "+2h15m", "target": "sw-core", "probe": "snmp",  # errors at 2/s for 15 min
         "samples": [{"metric": "netmon_interface_receive_errors_total", "labels": {"if_index": "5"},
                      "value": 0, "rate": 2}]},
        {"at": "+2h30m", "target": "sw-core", "probe": "snmp",
         "samples": [{"metric": "netmon_interface_receive_errors_total", "labels": {"if_index": "5"},
                      "value": 1800}]},
        *({"at": f"+2h{40 + 2 * k}m", "target": "ap-1", "status": "timeout" if k % 2 == 0 else "ok"}
          for k in range(6)),
    ]  # fmt: skip
    alerts = {"flapping": {"window": "20m", "changes": 4},
              "custom_rules": [{  # interface_down's one-day window, made 40 minutes
                  "name": "port_down_recently_up", "metric": "netmon_interface_oper_up",
                  "op": "==", "threshold": 0, "instance": ["if_index", "if_name"],
                  "and": [{"metric": "netmon_interface_oper_up", "fn": "max_over_time",
                           "window": "40m", "op": "==", "threshold": 1, "on": ["if_index"]}],
                  "summary": "{target}: port {if_name} went down"}]}  # fmt: skip
    common = {"alerts": alerts, "schedules": {"day": {"hours": "06:30-17:00", "timezone": "UTC"}},
              "end": "+4h30m", "silences": [{"at": "+28m", "duration": "20m", "matchers": ["target=pc-2"]}],
              "restarts": [{"at": "+3h30m", "down": "30s"}]}  # fmt: skip
    for name in ("fast", "slow"):
        (tmp_path / name).mkdir()
    fast = replay(tmp_path / "fast", groups, changes, **common)
    slow = replay(tmp_path / "slow", groups, changes, exhaustive=True, **common)
    assert fast.notifications == slow.notifications
    assert fast.summary() == slow.summary()
    assert fast.evaluated < slow.evaluated / 2  # and it did skip
    rules = {name for n in fast.notifications for name, _, _ in n.alerts}
    assert {"device_down", "port_down_recently_up", "interface_errors"} <= rules, fast.notifications
    assert all(fast.suppressed.values()), fast.suppressed  # parent, schedule, silence, flapping


def test_skipping_steady_runs_keeps_each_alerts_own_next_check_after_a_parent_returns(
    tmp_path: Path,
) -> None:
    """A copier broken behind its switch, steady (runs skipped) long before the switch
    comes back: each of its alerts waits for its own probe's next run, ping or TCP port,
    as when every run is evaluated; not for parent_wait."""
    groups = [
        {"name": "core", "role": "switch", "probes": ["icmp"],
         "targets": [{"name": "sw-a", "address": "192.0.2.1"}]},
        {"name": "printers", "role": "printer", "probes": ["icmp", "tcp"], "tcp_ports": [9100],
         "interval": "5m", "parent": "sw-a",
         "targets": [{"name": "copier", "address": "192.0.2.21"}]},
    ]  # fmt: skip
    changes = [
        {"at": "+10m", "target": "sw-a", "status": "timeout"},
        {"at": "+10m", "target": "copier", "status": "timeout"},
        {"at": "+50m", "target": "sw-a", "status": "ok"},  # the copier stays broken
    ]
    for name in ("fast", "slow"):
        (tmp_path / name).mkdir()
    fast = replay(tmp_path / "fast", groups, changes, end="+1h30m")
    slow = replay(tmp_path / "slow", groups, changes, end="+1h30m", exhaustive=True)
    assert fast.notifications == slow.notifications
    assert fast.evaluated < slow.evaluated
    fired = {name for n in fast.notifications if n.kind == "firing"
             for name, target, _ in n.alerts if target == "copier"}  # fmt: skip
    assert fired == {"device_down", "tcp_service_down"}, fast.notifications


# --- the default-pack regression weeks --------------------------------------------------


def _week_lines(report: ReplayReport, zone: Any) -> str:
    """One JSON line per notification, then the summary: a changed notification is a
    changed line in the diff."""
    doc = report.to_json(zone)
    lines = [json.dumps(n, ensure_ascii=False) for n in doc["notifications"]]
    return "\n".join([*lines, json.dumps({"summary": doc["summary"]})]) + "\n"


@pytest.mark.parametrize("week", sorted(p.stem for p in WEEKS.glob("week-*.yml")))
def test_default_rule_pack_weeks(week: str) -> None:
    """Each scripted week through tests/replay/school.yml (the default rule pack, no rule
    changes): its notifications must equal week-*.expected.jsonl. A change to the default
    rules shows here as a diff; NETMON_UPDATE_REPLAY=1 writes the new expectation."""
    loaded = load_timeline(WEEKS / f"{week}.yml")
    cfg = load_config(WEEKS / "school.yml")
    got = _week_lines(build_replay(cfg, loaded, WEEKS / "school.yml").run(), loaded.timeline.zone)
    expected = WEEKS / f"{week}.expected.jsonl"
    if os.environ.get("NETMON_UPDATE_REPLAY") == "1":
        expected.write_text(got)
    assert got == expected.read_text(), f"{week}: the notifications changed; see the diff " \
        "(NETMON_UPDATE_REPLAY=1 accepts it)"


def test_sent_json_is_plain_data() -> None:
    from datetime import UTC

    sent = Sent(1788760800.0, "it-team", "firing", "[FIRING] x", (("device_down", "nas", "firing"),))
    assert sent.to_json(UTC) == {"at": "2026-09-07T06:00:00+00:00", "receiver": "it-team",
                                 "kind": "firing", "subject": "[FIRING] x",
                                 "alerts": [{"alertname": "device_down", "target": "nas",
                                             "status": "firing"}]}  # fmt: skip
