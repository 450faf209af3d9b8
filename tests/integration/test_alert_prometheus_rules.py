"""`netmon alerts export-rules` is equivalent to the built-in engine: the exported file
passes `promtool check rules`, and a real Prometheus evaluating it over `netmon run`'s
/metrics fires the same alerts as netmon itself, on a scenario with several faults at
once: the simulated school's printers (low/empty supplies in the recordings), a TCP port
nobody listens on for every printer, and a dead host in a network namespace.

Schedules and parents have no PromQL equivalent (they suppress notifications, not
conditions), so the scenario has neither: the demo inventory minus its ``parent:`` lines
and without the lab room. Every rule's ``for`` is shortened to 2s on both sides, and
thresholds, a per-target and a per-group override and a custom rule make about 25 alerts
of ten rules fire on the static recordings, so the comparison covers them too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from alerts.model import TARGET_LABELS
from alerts.rules_default import DEFAULT_RULES
from monitor.demo import simlab
from monitor.demo.school import DEVICES, demo_config
from tests import netns as nn
from tests.conftest import need
from tests.ha_lab import LabError, NetmonProcess, wait_until

NETMON = Path(sys.executable).parent / "netmon"
#: Labels that say where a series came from, not which alert instance it is.
NOT_IDENTITY = {"job", "instance", *(set(TARGET_LABELS) - {"target"})}
PRINTERS = [d.name for d in DEVICES if d.group == "printers"]
DEAD_HOST = "lab-205-pc1"

Key = tuple[tuple[str, str], ...]


def scenario_config(snmp_port: int, dead_address: str, closed_port: int) -> str:
    """The demo school without parents and lab room; printers also probed on a closed
    TCP port; a dead host in its own group; every built-in rule's ``for`` set to 2s."""
    doc = yaml.safe_load(demo_config(snmp_port, [dead_address], interval="2s"))
    groups = []
    for group in doc["groups"]:
        group.pop("parent", None)
        if group["name"] == "lab-204":
            continue
        if group["name"] == "printers":
            group["tcp_ports"] = [closed_port]
            group["probes"] = ["icmp", "snmp", "tcp"]
        groups.append(group)
    doc["groups"] = groups
    rules: dict[str, dict[str, object]] = {rule["name"]: {"for": "2s"} for rule in DEFAULT_RULES}
    # Thresholds that make rules fire on the static recordings, so the comparison covers
    # them: every replying host is "slow", every disk and memory area "full", etc.
    rules["high_latency"]["threshold"] = "0s"
    rules["disk_nearly_full"]["threshold"] = 0.01
    rules["memory_nearly_full"]["threshold"] = 0.01
    rules["printer_supply_low"]["threshold"] = 0.5
    doc["alerts"] = {
        "rules": rules,
        "overrides": [
            {"target": "library-mfp", "rules": {"printer_supply_low": {"threshold": 0.95}}},
            {"group": "network", "rules": {"high_latency": {"enabled": False}}},
        ],
        "custom_rules": [{
            "name": "busy_printer", "metric": "netmon_printer_pages_total", "op": ">",
            "threshold": 0, "for": "2s", "severity": "info",
            "summary": "{target} has printed {value:.0f} pages",
        }],
    }
    return yaml.safe_dump(doc, sort_keys=False, width=100)


@dataclass
class Scenario:
    netmon: NetmonProcess
    rules_file: Path
    prometheus: simlab.PrometheusServer


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    need(simlab.snmpsim_available())
    need(simlab.prometheus_available())
    need(nn.missing())
    workdir = tmp_path_factory.mktemp("promrules")
    port = simlab.free_udp_port("127.0.1.1")
    endpoints = [(d.address, port) for d in DEVICES[1:]]
    closed_port = simlab.free_tcp_port()  # bound and released: nobody listens on it
    with (
        simlab.start_snmpsim(host=DEVICES[0].address, port=port, extra_endpoints=endpoints),
        nn.netns() as ns,
        nn.veth(ns, nn.free_subnet(), loss_percent=100) as link,
    ):
        netmon = NetmonProcess("netmon", scenario_config(port, link.inner, closed_port), workdir)
        netmon.start()
        try:
            rules_file = workdir / "rules.yml"
            proc = netmon.cli("alerts", "export-rules", "-o", str(rules_file))
            assert proc.returncode == 0, f"export-rules failed: {proc.stderr}"
            target = netmon.url.removeprefix("http://")
            scrape = f"- job_name: netmon\n  static_configs: [{{targets: ['{target}']}}]"
            with simlab.start_prometheus(scrape, rule_files=[rules_file]) as prometheus:
                yield Scenario(netmon, rules_file, prometheus)
        finally:
            netmon.stop()


def test_exported_rules_pass_promtool(scenario: Scenario) -> None:
    proc = subprocess.run(["promtool", "check", "rules", str(scenario.rules_file)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = yaml.safe_load(scenario.rules_file.read_text())
    alerts = {r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r}
    assert {r["name"] for r in DEFAULT_RULES} <= alerts, "built-in rules missing from the export"


def _prometheus_alerts(server: simlab.PrometheusServer) -> list[dict[str, str]]:
    with urllib.request.urlopen(f"{server.url}/api/v1/alerts", timeout=10) as resp:
        body = json.load(resp)
    return [dict(a["labels"]) for a in body["data"]["alerts"] if a["state"] == "firing"]


def _netmon_alerts(netmon: NetmonProcess) -> list[dict[str, str]]:
    labels = []
    for alert in netmon.alerts():
        if alert["state"] == "firing":
            labels.append({**alert["labels"], "alertname": alert["labels"].get("alertname", alert["rule"])})
    return labels


def _identity(labels: dict[str, str], names: set[str] | None) -> Key:
    """(alertname, target, severity, instance labels); ``names`` limits the instance
    labels to those netmon's alerts of this name carry (Prometheus keeps every label of
    the series, e.g. ``probe`` or ``class``, which do not tell instances apart)."""
    keep = {k: v for k, v in labels.items() if k not in NOT_IDENTITY}
    if names is not None:
        keep = {k: v for k, v in keep.items() if k in names}
    return tuple(sorted(keep.items()))


def _compare(netmon: list[dict[str, str]], prom: list[dict[str, str]]) -> tuple[set[Key], set[Key]]:
    names: dict[str, set[str]] = {}
    for labels in netmon:
        names.setdefault(labels["alertname"], set()).update(labels)
    ours = {_identity(labels, None) for labels in netmon}
    theirs = {_identity(labels, names.get(labels["alertname"])) for labels in prom}
    return ours, theirs


def _describe(keys: set[Key]) -> str:
    return "\n".join("  " + ", ".join(f"{k}={v}" for k, v in key) for key in sorted(keys)) or "  (none)"


def test_prometheus_fires_the_same_alerts_as_netmon(scenario: Scenario) -> None:
    """Poll both until they agree three times in a row (both have settled), at most 90s."""
    agreed = 0
    ours: set[Key] = set()
    theirs: set[Key] = set()

    def settled() -> bool:
        nonlocal agreed, ours, theirs
        ours, theirs = _compare(_netmon_alerts(scenario.netmon),
                                _prometheus_alerts(scenario.prometheus))
        expected_seen = {dict(k).get("alertname") for k in ours} >= {"tcp_service_down", "device_down"}
        agreed = agreed + 1 if ours == theirs and expected_seen else 0
        return agreed >= 3

    try:
        wait_until(settled, 90, "netmon and Prometheus to agree", step=1.0)
    except LabError:
        pytest.fail(
            "netmon and Prometheus fire different alerts\n"
            f"only netmon:\n{_describe(ours - theirs)}\n"
            f"only Prometheus:\n{_describe(theirs - ours)}\n"
            f"both:\n{_describe(ours & theirs)}\n"
            f"netmon log tail:\n{scenario.netmon.log_tail(1500)}"
        )
    fired = {(dict(k)["alertname"], dict(k)["target"]) for k in ours}
    for printer in PRINTERS:
        assert ("tcp_service_down", printer) in fired, fired
    assert ("device_down", DEAD_HOST) in fired, fired
    assert any(name.startswith("printer_supply") for name, _ in fired), fired
    # The changed thresholds, the overrides and the custom rule took effect on both sides.
    assert {("high_latency", "file-server"), ("disk_nearly_full", "file-server"),
            ("printer_supply_low", "library-mfp")} <= fired, fired
    assert any(name == "busy_printer" for name, _ in fired), fired
    assert not {("high_latency", "sw-core"), ("high_latency", "sw-library")} & fired, fired
