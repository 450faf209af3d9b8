"""High availability on existing engines: two `netmon run` instances with the same config
send to a two-peer Alertmanager cluster (gossip on loopback) that emails an aiosmtpd
server. Every incident (a TCP port on 127.0.0.1 that stops listening -> the
``tcp_service_down`` rule) must give exactly one FIRING and one RESOLVED email, also when
either netmon or either Alertmanager is killed in the middle of it.

The first test feeds the cluster by hand (two senders, both peers): it proves the lab
deduplicates, so a failure of the netmon tests points at netmon.
"""

from __future__ import annotations

import functools
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import yaml

from tests import exposition, ha_lab
from tests.alerting import SmtpRecorder, alertmanager_available
from tests.conftest import need
from tests.ha_lab import (
    AlertmanagerCluster,
    LabError,
    NetmonProcess,
    TcpService,
    firing,
    resolved,
    subjects,
    wait_until,
)

TARGET = "intranet"
RULE = "tcp_service_down"
#: After the expected email, how long nothing more may arrive: well over one Alertmanager
#: group_interval (2s) plus the peer timeout (2s) a second peer waits before sending.
QUIET = 6.0
#: From a state change to its email: probe interval + netmon push + group_wait/interval.
DELIVERY = 40.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def mail() -> Iterator[SmtpRecorder]:
    with SmtpRecorder() as smtp:
        yield smtp


@pytest.fixture(scope="module")
def cluster(mail: SmtpRecorder) -> Iterator[AlertmanagerCluster]:
    need(alertmanager_available())
    with ha_lab.start_alertmanager_cluster(ha_lab.alertmanager_config(mail.port)) as am:
        yield am


#: One service per incident: the same alert instance broken again and again within the
#: flap window would rightly become "flapping" (one notice, then silence).
INCIDENTS = ["all-running", "netmon0", "netmon1", "alertmanager0", "alertmanager1"]


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, TcpService]]:
    svcs = {name: TcpService() for name in INCIDENTS}
    for svc in svcs.values():
        svc.up()
    yield svcs
    for svc in svcs.values():
        svc.down()


def netmon_config(service_ports: list[int], alertmanager_urls: list[str]) -> str:
    """One service target probed every second; alerts only to the Alertmanager cluster.
    ``resend_every`` is long on purpose: see :func:`_incident`."""
    doc = {
        "defaults": {"interval": "1s", "tcp": {"timeout": "1s"}, "labels": {"site": "ha-school"}},
        "groups": [{
            "name": "services", "role": "server", "probes": ["tcp"], "tcp_ports": service_ports,
            "labels": {"building": "main"},
            "targets": [{"name": TARGET, "address": "127.0.0.1"}],
        }],
        "alerts": {
            "rules": {RULE: {"for": "0s"}},
            "alertmanagers": [{"urls": alertmanager_urls, "resend_every": "10s", "timeout": "2s"}],
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def netmons(cluster: AlertmanagerCluster, services: dict[str, TcpService],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NetmonProcess]]:
    """Two instances, same config text, each with its own ``--state-file``."""
    text = netmon_config([s.port for s in services.values()], cluster.urls)
    procs = []
    for i in range(2):
        workdir = tmp_path_factory.mktemp(f"netmon{i}")
        procs.append(NetmonProcess(f"netmon{i}", text, workdir, state_file=workdir / "ha.db"))
    try:
        for proc in procs:
            proc.start()
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def _wait_count(mail: SmtpRecorder, start: int, kind: str, n: int, timeout: float,
                context: str, diagnostics: Callable[[], str] = str) -> None:
    pick = firing if kind == "firing" else resolved
    try:
        ha_lab.wait_until(lambda: len(pick(subjects(mail)[start:])) >= n, timeout,
                          f"{n} {kind} email(s)")
    except LabError as exc:
        pytest.fail(f"{exc} {context}; emails so far: {subjects(mail)[start:]}\n{diagnostics()}")


def _assert_exactly(mail: SmtpRecorder, start: int, n_firing: int, n_resolved: int,
                    context: str) -> None:
    got = subjects(mail)[start:]
    assert (len(firing(got)), len(resolved(got))) == (n_firing, n_resolved), (
        f"{context}: expected {n_firing} FIRING and {n_resolved} RESOLVED email(s), got {got}"
    )


def _diagnostics(cluster: AlertmanagerCluster, netmons: list[NetmonProcess]) -> str:
    """What each Alertmanager holds, what each netmon reports about its notifications."""
    parts = []
    for peer in cluster.peers:
        if peer.alive:
            try:
                held = [(a["labels"], a["status"]["state"], a["startsAt"], a["endsAt"])
                        for a in peer.alerts()]
                parts.append(f"{peer.name} holds {held}")
            except OSError as exc:
                parts.append(f"{peer.name}: {exc}")
    for proc in netmons:
        if proc.alive:
            try:
                with urllib.request.urlopen(f"{proc.url}/metrics", timeout=5) as resp:
                    text = resp.read().decode()
                parts.append(f"{proc.name} /metrics: " + "; ".join(
                    line for line in text.splitlines()
                    if line.startswith(("netmon_notifications", "netmon_alerts{"))
                    and not line.endswith(" 0.0")))
            except OSError as exc:
                parts.append(f"{proc.name}: {exc}")
        parts.append(f"--- {proc.name} log tail:\n{proc.log_tail(1500)}")
    return "\n".join(parts)


def _restore(mail: SmtpRecorder, cluster: AlertmanagerCluster, netmons: list[NetmonProcess],
             services: dict[str, TcpService]) -> None:
    """Everything running, the service up and no alert about it left in the cluster.
    A restarted piece must not send anything: a netmon coming back with a state file
    that says "firing" must not re-announce an incident that is over."""
    start = len(mail.messages)
    for svc in services.values():
        svc.up()
    restarted = [p.name for p in cluster.peers if not p.alive]
    restarted += [p.name for p in netmons if not p.alive]
    for peer in cluster.peers:
        if not peer.alive:
            peer.start()
    cluster.wait_formed()
    for proc in netmons:
        if not proc.alive:
            proc.start()
    ha_lab.wait_until(
        lambda: all(not p.alerts(target=TARGET) for p in cluster.peers), DELIVERY,
        "the cluster to hold no active alert about the service",
    )
    # What a netmon queued for a dead Alertmanager is delivered once it is back: a stale
    # "firing" delivered after the "resolved" would re-open the incident.
    try:
        ha_lab.wait_until(lambda: all(_pending(proc) == 0 for proc in netmons), DELIVERY,
                          "every netmon's Alertmanager outbox to drain")
    except LabError as exc:
        pytest.fail(f"{exc}\n{_diagnostics(cluster, netmons)}")
    if restarted:
        time.sleep(QUIET)
        _assert_exactly(mail, start, 0, 0, f"after restarting {restarted} with the service up\n"
                        + _diagnostics(cluster, netmons))


def _incident(mail: SmtpRecorder, cluster: AlertmanagerCluster, netmons: list[NetmonProcess],
              service: TcpService, kill: tuple[str, int] | None) -> None:
    """Break the service; one FIRING email; maybe kill a piece; repair; one RESOLVED.

    Both netmons notice the repair within a probe interval; a netmon re-sending "still
    firing" in that moment could re-open the alert in Alertmanager, which is why the
    config's ``resend_every`` is far longer than the probe interval.
    """
    what = "both netmons and both Alertmanagers up" if kill is None else f"{kill[0]}{kill[1]} killed"
    start = len(mail.messages)
    service.down()
    diagnostics = functools.partial(_diagnostics, cluster, netmons)
    _wait_count(mail, start, "firing", 1, DELIVERY, f"after the service went down ({what})",
                diagnostics)
    for peer in cluster.peers:
        if peer.alive:
            held = peer.alerts(target=TARGET, port=str(service.port))
            assert len(held) == 1, (
                f"{peer.name} holds {len(held)} alerts for one incident: the two netmons "
                f"sent different label sets: {[a['labels'] for a in held]}"
            )
            assert held[0]["labels"].get("alertname") == RULE, held[0]["labels"]
    for proc in netmons:
        # The email may come through the other netmon first; each one fires on its own
        # within a probe interval and a tick (its state file is written once a second).
        def sees(proc: NetmonProcess = proc) -> bool:
            return len([a for a in proc.alerts() if a["state"] == "firing"
                        and a["labels"].get("port") == str(service.port)]) == 1  # fmt: skip

        try:
            wait_until(sees, 10, f"{proc.name} to show the incident firing")
        except LabError as exc:
            raise AssertionError(f"{exc}: {proc.alerts()}") from None
    if kill is not None:
        kind, index = kill
        (cluster.peers if kind == "alertmanager" else netmons)[index].kill()
    time.sleep(QUIET)
    _assert_exactly(mail, start, 1, 0, f"while the service was down ({what})\n"
                    + _diagnostics(cluster, netmons))
    service.up()
    _wait_count(mail, start, "resolved", 1, DELIVERY, f"after the service came back ({what})",
                diagnostics)
    time.sleep(QUIET)
    _assert_exactly(mail, start, 1, 1, f"after the service came back ({what})\n"
                    + _diagnostics(cluster, netmons))
    about = [s for s in subjects(mail)[start:] if TARGET in s and str(service.port) in s]
    assert len(about) == 2, f"emails not about port {service.port}: {subjects(mail)[start:]}"


def test_the_lab_cluster_deduplicates_two_senders(mail: SmtpRecorder,
                                                  cluster: AlertmanagerCluster) -> None:
    """Control: the same alert posted by two senders to both peers gives one email each
    way. If this fails the lab is broken, not netmon."""
    start = len(mail.messages)
    labels = {"alertname": "lab_selfcheck", "target": "control", "severity": "warning"}
    began = time.time()
    for _ in range(3):
        for peer in cluster.peers:  # two senders, each to both peers
            peer.post([{"labels": labels, "startsAt": _iso(began)}])
            peer.post([{"labels": labels, "startsAt": _iso(began + 0.5)}])
        time.sleep(1)
    _wait_count(mail, start, "firing", 1, 20, "for the control alert")
    ended = _iso(time.time())
    for peer in cluster.peers:
        peer.post([{"labels": labels, "startsAt": _iso(began), "endsAt": ended}])
    _wait_count(mail, start, "resolved", 1, 20, "for the control alert")
    time.sleep(QUIET)
    _assert_exactly(mail, start, 1, 1, "control alert")


def test_one_email_per_incident_with_everything_running(
    mail: SmtpRecorder, cluster: AlertmanagerCluster, netmons: list[NetmonProcess],
    services: dict[str, TcpService],
) -> None:
    _restore(mail, cluster, netmons, services)
    before = [_delivered(proc, cluster) for proc in netmons]
    _incident(mail, cluster, netmons, services["all-running"], kill=None)
    # Not one email because only one netmon spoke: both sent to both Alertmanagers.
    for proc, was in zip(netmons, before, strict=True):
        now = _delivered(proc, cluster)
        assert all(now[url] > was[url] for url in cluster.urls), (proc.name, was, now)


def _pending(proc: NetmonProcess) -> float:
    """netmon_notifications_pending{integration="alertmanager"}, all URLs together."""
    with urllib.request.urlopen(f"{proc.url}/metrics", timeout=5) as resp:
        series = exposition.parse(resp.read().decode())
    return sum(value for labels, value in series.get("netmon_notifications_pending", [])
               if labels.get("integration") == "alertmanager")


def _delivered(proc: NetmonProcess, cluster: AlertmanagerCluster) -> dict[str, float]:
    """netmon_notifications_total{integration="alertmanager",outcome="delivered"} per URL."""
    with urllib.request.urlopen(f"{proc.url}/metrics", timeout=5) as resp:
        series = exposition.parse(resp.read().decode())
    got = {url: 0.0 for url in cluster.urls}
    for labels, value in series.get("netmon_notifications_total", []):
        if labels.get("integration") == "alertmanager" and labels.get("outcome") == "delivered":
            for url in cluster.urls:
                if labels.get("receiver", "").rstrip("/") == url:
                    got[url] += value
    return got


@pytest.mark.parametrize("kill", [("netmon", 0), ("netmon", 1),
                                  ("alertmanager", 0), ("alertmanager", 1)],
                         ids=["netmon0", "netmon1", "alertmanager0", "alertmanager1"])
def test_one_email_per_incident_when_a_piece_is_killed(
    mail: SmtpRecorder, cluster: AlertmanagerCluster, netmons: list[NetmonProcess],
    services: dict[str, TcpService], kill: tuple[str, int],
) -> None:
    _restore(mail, cluster, netmons, services)
    _incident(mail, cluster, netmons, services[f"{kill[0]}{kill[1]}"], kill=kill)


def test_nothing_more_is_sent_once_everything_is_back(
    mail: SmtpRecorder, cluster: AlertmanagerCluster, netmons: list[NetmonProcess],
    services: dict[str, TcpService],
) -> None:
    """After the last kill: pieces restarted, outboxes drained, still one FIRING and one
    RESOLVED email per incident in total (plus the control alert's two)."""
    _restore(mail, cluster, netmons, services)
    got = subjects(mail)
    for name, svc in services.items():
        about = [s for s in got if f" {svc.port} " in s]
        assert (len(firing(about)), len(resolved(about))) == (1, 1), (name, about)
