"""Alert scenarios end to end (issue 4): `netmon run` on a small school whose devices are
real (an snmpd printer whose toner the test drains, hosts in a network namespace whose
link the test pulls), emailing a real SMTP server. Each test checks what an IT person
would see: the emails (how many, about what), `netmon alerts list --json` and /metrics.

Negative checks ("no email") always follow a positive signal and a number of probe
rounds netmon reports it has done, never a bare sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from monitor.demo import simlab
from tests import netns as nn
from tests.alert_lab import (
    RULE_DOWN,
    RULE_SUPPLY_LOW,
    WebhookSink,
    alerts_of,
    body,
    eventually,
    firing,
    host_lab,
    mentions,
    metric_sum,
    metrics,
    probe_success,
    resolved,
    scenario_config,
    subjects,
    wait_probe_rounds,
)
from tests.conftest import need, need_root
from tests.dynamic_agent import SUPPLY_LEVEL, dynamic_printer
from tests.ha_lab import NetmonProcess, wait_until

MAIL_TIMEOUT = 30.0
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture
def mail() -> Iterator[Any]:
    from tests.alerting import SmtpRecorder  # the notify helper's SMTP server

    with SmtpRecorder() as recorder:
        yield recorder


@pytest.fixture
def netmon(tmp_path: Path) -> Iterator[Callable[[str], NetmonProcess]]:
    """``netmon(config_text)`` starts `netmon run` in its own directory; stopped after."""
    started: list[NetmonProcess] = []

    def start(config_text: str) -> NetmonProcess:
        proc = NetmonProcess(f"netmon{len(started)}", config_text, tmp_path / f"n{len(started)}")
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in started:
        proc.stop()
        print(f"--- {proc.name} log\n{proc.log_tail(4000)}")


def _messages(mail: Any) -> list[Message]:
    with mail._lock:
        return list(mail.messages)


def _wait_up(netmon: NetmonProcess, *targets: str) -> None:
    wait_until(lambda: all(probe_success(netmon, t) == 1.0 for t in targets), 30,
               f"{', '.join(targets)} to answer pings")


def _wait_mail(mail: Any, what: str, check: Callable[[list[Message]], bool]) -> list[Message]:
    return eventually(lambda: _messages(mail) if check(_messages(mail)) else None,  # type: ignore[no-any-return]
                      MAIL_TIMEOUT, what)


def _pending(netmon: NetmonProcess) -> float:
    return metric_sum(metrics(netmon), "netmon_notifications_pending")


def _flapping(messages: list[Message]) -> list[Message]:
    return [m for m in messages if str(m["Subject"]).startswith("[FLAPPING")]


def _firing(netmon: NetmonProcess, target: str) -> bool:
    return any(a["state"] == "firing" for a in alerts_of(netmon, target=target, rule=RULE_DOWN))


def _host_group(name: str, hosts: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "role": "lab", "probes": ["icmp"], **extra,
            "targets": [{"name": n, "address": a} for n, a in hosts.items()]}


# --- 1. a printer running out of toner -------------------------------------------------


def test_printer_running_out_of_toner(mail: Any, netmon: Callable[[str], NetmonProcess],
                                      tmp_path: Path) -> None:
    need(simlab.snmpd_available())
    black = f"{SUPPLY_LEVEL}.1.1"  # "Black Cartridge HP CF400X", capacity 100
    with dynamic_printer(tmp_path) as printer:
        printer.set(black, 63)
        config = scenario_config(
            smtp_port=mail.port,
            credentials={"dyn": {"version": "2c", "community": printer.community}},
            groups=[{"name": "printers", "role": "printer",
                     "labels": {"building": "main", "room": "library"},
                     "targets": [{"name": "library-mfp", "address": "127.0.0.1",
                                  "port": printer.port, "credentials": "dyn"}]}],
            rules={RULE_SUPPLY_LOW: {"for": "0s"}},
        )
        nm = netmon(config)

        def ratio() -> float | None:
            hits = [v for lbl, v in metrics(nm).get("netmon_printer_supply_level_ratio", [])
                    if lbl.get("target") == "library-mfp" and lbl.get("color") == "black"]
            return hits[0] if hits else None

        wait_until(lambda: ratio() == pytest.approx(0.63), 30, "netmon to read the toner level")
        wait_probe_rounds(nm, jobs=2, rounds=3)
        assert _messages(mail) == [], subjects(_messages(mail))
        assert not [a for a in alerts_of(nm, target="library-mfp") if a["state"] == "firing"]

        printer.set(black, 3)
        _wait_mail(mail, "the toner-low email", lambda ms: bool(firing(ms)))
        wait_probe_rounds(nm, jobs=2, rounds=3)
        messages = _messages(mail)
        assert len(messages) == 1, subjects(messages)
        assert firing(messages) == messages
        assert mentions(messages, "library-mfp", "Black"), body(messages[0])

        printer.set(black, 80)
        _wait_mail(mail, "the toner-resolved email", lambda ms: bool(resolved(ms)))
        wait_probe_rounds(nm, jobs=2, rounds=3)
        messages = _messages(mail)
        assert len(messages) == 2, subjects(messages)
        assert len(resolved(messages)) == 1
        assert mentions(resolved(messages), "library-mfp"), body(resolved(messages)[0])


# --- 2. a closet switch going down with its children -----------------------------------


def test_closet_switch_down_sends_one_email_not_one_per_child(
    mail: Any, netmon: Callable[[str], NetmonProcess]
) -> None:
    need_root()
    need(nn.missing())
    children = [f"lab-pc-{i:02d}" for i in range(1, 7)]
    with host_lab(["sw-closet", *children]) as lab:
        switch = {"sw-closet": lab.addresses["sw-closet"]}
        pcs = {n: lab.addresses[n] for n in children}
        config = scenario_config(
            smtp_port=mail.port,
            groups=[_host_group("closet", switch, role="switch", labels={"building": "main"}),
                    _host_group("lab-204", pcs, parent="sw-closet",
                                labels={"building": "main", "room": "204"})],
            rules={RULE_DOWN: {"for": "2s"}},
            alerts={"route": {"receiver": "it-team", "group_by": ["building"], "group_wait": "1s",
                              "group_interval": "2s", "repeat_interval": "1h"}},
        )
        nm = netmon(config)
        _wait_up(nm, "sw-closet", *children)

        lab.link(up=False)
        _wait_mail(mail, "the switch-down email", lambda ms: bool(firing(ms)))

        def children_suppressed() -> bool:
            rows = {a["target"]: a for a in alerts_of(nm, rule=RULE_DOWN)}
            return all(rows.get(c, {}).get("suppressed") == "parent_down" for c in children)

        wait_until(children_suppressed, 30, "every child to show as suppressed parent_down")
        wait_probe_rounds(nm, jobs=7, rounds=3)
        messages = _messages(mail)
        assert len(messages) == 1, subjects(messages)
        assert mentions(messages, "sw-closet")
        assert not [c for c in children if mentions(messages, c)], body(messages[0])
        switch_alerts = alerts_of(nm, target="sw-closet", rule=RULE_DOWN)
        assert [(a["state"], a["suppressed"]) for a in switch_alerts] == [("firing", "")]

        lab.link(up=True)
        _wait_mail(mail, "the switch-recovered email", lambda ms: bool(resolved(ms)))
        _wait_up(nm, "sw-closet", *children)
        wait_probe_rounds(nm, jobs=7, rounds=3)
        messages = _messages(mail)
        assert len(messages) == 2, subjects(messages)
        assert len(resolved(messages)) == 1 and mentions(resolved(messages), "sw-closet")
        assert not [c for c in children if mentions(messages, c)], subjects(messages)
        assert not [a for a in alerts_of(nm) if a["state"] in ("pending", "firing")]


# --- 3. lab machines off at night ------------------------------------------------------


def test_lab_machines_off_outside_their_schedule_send_nothing(
    mail: Any, netmon: Callable[[str], NetmonProcess]
) -> None:
    need_root()
    need(nn.missing())
    machines = [f"lab-pc-{i:02d}" for i in range(1, 5)]
    today = datetime.now(UTC).weekday()
    # Expected online on one day three days away only: never today, whatever the hour.
    off_today = {"days": DAYS[(today + 3) % 7], "hours": "00:00-24:00", "timezone": "UTC"}
    with host_lab([*machines, "hall-printer"]) as lab:
        lab.kill(*machines)
        config = scenario_config(
            smtp_port=mail.port,
            schedules={"school-hours": off_today},
            groups=[_host_group("lab-204", {m: lab.addresses[m] for m in machines},
                                expected_online="school-hours"),
                    _host_group("hall", {"hall-printer": lab.addresses["hall-printer"]})],
        )
        nm = netmon(config)
        _wait_up(nm, "hall-printer")

        def off_schedule() -> bool:
            rows = {a["target"]: a for a in alerts_of(nm, rule=RULE_DOWN)}
            return all(rows.get(m, {}).get("suppressed") == "out_of_schedule" for m in machines)

        wait_until(off_schedule, 30, "the lab machines to show as out_of_schedule")
        # A control incident outside the schedule's reach does send its email ...
        lab.kill("hall-printer")
        _wait_mail(mail, "the hall printer's email", lambda ms: bool(firing(ms)))
        wait_probe_rounds(nm, jobs=5, rounds=3)
        # ... and that is the only one.
        messages = _messages(mail)
        assert len(messages) == 1, subjects(messages)
        assert mentions(messages, "hall-printer")
        assert not [m for m in machines if mentions(messages, m)], body(messages[0])
        assert off_schedule()


# --- 4. a flapping host ----------------------------------------------------------------


def test_flapping_host_sends_one_flapping_notice(
    mail: Any, netmon: Callable[[str], NetmonProcess]
) -> None:
    need_root()
    need(nn.missing())
    with host_lab(["wifi-ap"]) as lab:
        config = scenario_config(
            smtp_port=mail.port,
            groups=[_host_group("aps", {"wifi-ap": lab.addresses["wifi-ap"]})],
            alerts={"flapping": {"window": "1m", "changes": 4, "enabled": True}},
        )
        nm = netmon(config)
        _wait_up(nm, "wifi-ap")

        # Each toggle waits until netmon has seen it (the ICMP result flipped), so every
        # change is a real state change for the engine.
        for toggle in range(8):
            down = toggle % 2 == 0
            (lab.kill if down else lab.revive)("wifi-ap")
            want = 0.0 if down else 1.0

            def seen(w: float = want) -> bool:
                return probe_success(nm, "wifi-ap") == w

            wait_until(seen, 20, f"toggle {toggle}: netmon to see wifi-ap {'down' if down else 'up'}")
        _wait_mail(mail, "the flapping notice", lambda ms: bool(_flapping(ms)))
        wait_probe_rounds(nm, jobs=1, rounds=3)
        messages = _messages(mail)
        flapping = _flapping(messages)
        assert len(flapping) == 1, subjects(messages)
        assert mentions(flapping, "wifi-ap")
        # Before detection at most one email per change (4); after the notice, silence.
        where = messages.index(flapping[0])
        assert where < 4, subjects(messages)
        assert messages[where + 1 :] == [], subjects(messages)
        # Held firing while it flaps, with the reason (the host is up right now).
        rows = alerts_of(nm, target="wifi-ap", rule=RULE_DOWN)
        assert [(a["state"], a["suppressed"]) for a in rows] == [("firing", "flapping")], rows


# --- 5. SMTP down, then up -------------------------------------------------------------


def test_smtp_outage_loses_and_duplicates_nothing(
    mail: Any, netmon: Callable[[str], NetmonProcess]
) -> None:
    need_root()
    need(nn.missing())
    hosts = ["file-nas", "library-ap", "office-pc"]
    with host_lab(hosts) as lab:
        config = scenario_config(
            smtp_port=mail.port,
            groups=[_host_group(f"g-{h}", {h: lab.addresses[h]}) for h in hosts],
            alerts={"retry": {"initial": "1s", "max": "2s"}},
        )
        nm = netmon(config)
        _wait_up(nm, *hosts)
        mail.stop()

        def failed() -> float:
            return metric_sum(metrics(nm), "netmon_notifications_total", outcome="failed")

        for host in hosts:
            lab.kill(host)
            wait_until(lambda h=host: _firing(nm, h), 20, f"{host}'s alert to fire")  # type: ignore[misc]
        wait_until(lambda: failed() > 0, 30, 'netmon_notifications_total{outcome="failed"} > 0')
        wait_until(lambda: _pending(nm) >= len(hosts), 30, "every notification to be pending")
        assert _messages(mail) == []

        mail.start()
        _wait_mail(mail, "every held-back email",
                   lambda ms: all(firing(mentions(ms, h)) for h in hosts))
        wait_until(lambda: _pending(nm) == 0, 30, "the outbox to drain")
        wait_probe_rounds(nm, jobs=3, rounds=3)
        messages = _messages(mail)
        ids = [m["Message-ID"] for m in messages]
        assert len(ids) == len(set(ids)), ids
        assert len(messages) == len(hosts), subjects(messages)
        for host in hosts:
            assert len(mentions(messages, host)) == 1, (host, subjects(messages))


# --- 6. netmon restarted mid-incident (+ 7. the webhook sees the same) -----------------


def test_restart_mid_incident_neither_repeats_nor_loses(
    mail: Any, netmon: Callable[[str], NetmonProcess]
) -> None:
    need_root()
    need(nn.missing())
    hook = WebhookSink()
    try:
        with host_lab(["nas"]) as lab:
            config = scenario_config(
                smtp_port=mail.port,
                groups=[_host_group("servers", {"nas": lab.addresses["nas"]})],
                alerts={"receivers": [{"name": "it-team",
                                       "email": {"to": ["it@school.example"]},
                                       "webhook": {"url": hook.url}}]},
            )
            nm = netmon(config)
            _wait_up(nm, "nas")
            lab.kill("nas")
            _wait_mail(mail, "the nas-down email", lambda ms: bool(firing(ms)))
            wait_until(lambda: _pending(nm) == 0, 30, "the outbox to drain")

            nm.stop()
            nm.start()
            wait_until(lambda: _firing(nm, "nas"), 20, "the restarted netmon to hold the firing alert")
            wait_probe_rounds(nm, jobs=1, rounds=4)
            messages = _messages(mail)
            assert len(messages) == 1, subjects(messages)

            lab.revive("nas")
            _wait_mail(mail, "the nas-recovered email", lambda ms: bool(resolved(ms)))
            wait_probe_rounds(nm, jobs=1, rounds=3)
            messages = _messages(mail)
            assert [len(firing(messages)), len(resolved(messages))] == [1, 1], subjects(messages)

            wait_until(lambda: len(hook.bodies) >= 2, 20, "two webhook posts")
            kinds = [(b["netmonKind"], [a["labels"]["target"] for a in b["alerts"]])
                     for b in hook.bodies]
            assert kinds == [("firing", ["nas"]), ("resolved", ["nas"])], kinds
    finally:
        hook.close()


def test_restart_with_a_multi_port_incident_resolves_nothing(
    mail: Any, netmon: Callable[[str], NetmonProcess]
) -> None:
    """Six closed TCP ports on one server fire; after a restart the ports' first
    results arrive one by one. The alerts of the ports not yet probed again must not be
    taken as recovered: no resolved notice, no second firing one."""
    ports = sorted({simlab.free_tcp_port() for _ in range(6)})
    config = scenario_config(  # 4 s: the ports' runs spread over several alert ticks
        smtp_port=mail.port,
        groups=[{"name": "servers", "role": "server", "probes": ["tcp"], "tcp_ports": ports,
                 "targets": [{"name": "nas", "address": "127.0.0.1"}]}],
        rules={"tcp_service_down": {"for": "0s"}},
        interval="4s",
    )

    def down_ports() -> set[str]:
        return {a["labels"]["port"] for a in alerts_of(nm, target="nas", rule="tcp_service_down")
                if a["state"] == "firing"}

    nm = netmon(config)
    wait_until(lambda: down_ports() == {str(p) for p in ports}, 30, "every port's alert to fire")
    whole = f"[FIRING] {len(ports)} problems in nas"
    _wait_mail(mail, "an email with every port", lambda ms: any(whole in s for s in subjects(ms)))
    wait_until(lambda: _pending(nm) == 0, 30, "the outbox to drain")
    time.sleep(2.5)  # past group_interval: a change would be sent
    before = len(_messages(mail))

    nm.stop()
    nm.start()
    wait_probe_rounds(nm, jobs=len(ports), rounds=2)
    time.sleep(2.5)
    assert down_ports() == {str(p) for p in ports}
    messages = _messages(mail)
    assert resolved(messages) == [], subjects(messages)
    assert len(messages) == before, subjects(messages)
