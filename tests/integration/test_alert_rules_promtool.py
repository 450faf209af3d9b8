"""The exported Prometheus rules: ``promtool check rules`` accepts them, and ``promtool
test rules`` fires exactly the alerts the Python evaluator fires on the same series.
Plus the rules on REAL probe results: the SNMP probe against snmpsim's printers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from alerts.rules import RuleSet, RulesSettings, TargetInfo
from monitor.demo import simlab
from monitor.exporter import series_labels
from probes.context import ProbeContext
from probes.registry import run_probe, runner_samples
from probes.result import ProbeResult, Sample, Status
from probes.snmp.credentials import community
from probes.snmp.probe import SnmpSettings
from probes.target import Target
from tests.conftest import need
from tests.snmprec import column, community_of, recordings

PROMTOOL = "/usr/bin/promtool"
STEP = 60
STEPS = 21  # t = 0 .. 20m, evaluated every minute
#: Labels that identify alert instances of the rules used below.
BY = ("alertname", "target", "if_index", "if_name", "index", "supply", "port")
Key = tuple[tuple[str, str], ...]

SETTINGS = {
    "overrides": [
        {"target": "lib-mfp-2", "rules": {"printer_supply_low": {"threshold": 0.03}}},
        {"group": "lab", "rules": {"device_down": {"enabled": False}}},
        {"role": "printer", "rules": {"printer_supply_low": {"for": "2m"}}},
    ],
    "custom_rules": [{"name": "busy_printer", "metric": "netmon_printer_pages_total",
                      "op": ">", "threshold": 1000, "severity": "info",
                      "summary": "{target} printed {value:.0f} pages"}],
}  # fmt: skip


def promtool() -> str:
    need(None if shutil.which(PROMTOOL) else f"{PROMTOOL} missing (apt install prometheus)")
    return PROMTOOL


def _result(status: Status, samples: list[Sample], t: float) -> ProbeResult:
    r = ProbeResult(status, status.value, samples, started_at=t)
    r.samples += runner_samples(r)
    return r


def _icmp(received: int, t: float, sent: int = 10) -> ProbeResult:
    status = Status.OK if received == sent else Status.PARTIAL if received else Status.TIMEOUT
    return _result(status, [
        Sample.of("netmon_icmp_packets_sent", sent),
        Sample.of("netmon_icmp_packets_received", received),
        Sample.of("netmon_icmp_packet_loss_ratio", 1 - received / sent),
    ], t)  # fmt: skip


def _port(index: str, oper: int, admin: int, errors: float) -> list[Sample]:
    labels = {"if_index": index, "if_name": f"Gi0/{index}", "if_alias": "", "if_descr": ""}
    return [
        Sample.of("netmon_interface_oper_up", oper, **labels),
        Sample.of("netmon_interface_admin_up", admin, **labels),
        Sample.of("netmon_interface_receive_errors_total", errors, **labels),
        Sample.of("netmon_interface_transmit_errors_total", 0, **labels),
    ]


def _supply(index: str, ratio: float | None, state: str) -> list[Sample]:
    labels = {"supply": f"Toner {index}", "index": index, "type": "toner", "color": "", "class": "consumable"}
    out = [Sample.of("netmon_printer_supply_state", s == state, **labels, state=s)
           for s in ("ok", "low", "empty", "some_remaining")]  # fmt: skip
    if ratio is not None:
        out.append(Sample.of("netmon_printer_supply_level_ratio", ratio, **labels))
    return out


TARGETS = {
    "sw-a": TargetInfo("sw-a", {"role": "switch", "group": "core", "site": "main"}),
    "sw-b": TargetInfo("sw-b", {"role": "switch", "group": "core", "site": "main"}),
    "pc-1": TargetInfo("pc-1", {"role": "lab", "group": "lab"}),
    "lib-mfp": TargetInfo("lib-mfp", {"role": "printer", "group": "printers"}),
    "lib-mfp-2": TargetInfo("lib-mfp-2", {"role": "printer", "group": "printers"}),
}


def _sw_b_snmp(minute: int, t: float) -> ProbeResult:
    """sw-b's SNMP agent: fine, silent from 5m (ping still works), then from 18m it
    rejects the community. ``netmon_probe_status`` is one series per run, so the
    ``timeout`` series vanishes at 18m (Prometheus marks it stale)."""
    if minute < 5:
        return _result(Status.OK, [Sample.of("netmon_device_uptime_seconds", 9000 + t,
                                             source="sysUpTime")], t)  # fmt: skip
    return _result(Status.TIMEOUT if minute < 18 else Status.AUTH_ERROR, [], t)


def scenario(i: int) -> dict[str, dict[str, ProbeResult]]:
    """Minute ``i`` of a small school. Series come and go as the probes' would (a
    probe's status series, sw-b's uptime while its agent is silent)."""
    t = float(i * STEP)
    minute = i
    uptime = (5000 + t) if minute < 12 else (t - 12 * STEP + 10)  # sw-a reboots at 12m
    sw_snmp = _result(Status.OK, [
        Sample.of("netmon_device_uptime_seconds", uptime, source="sysUpTime"),
        *_port("1", 1 if minute < 10 else 0, 1, 0),           # up, then down at 10m
        *_port("2", 0, 1, 0),                                  # never up: unused port
        *_port("3", 1 if minute < 4 else 0, 0 if minute >= 4 else 1, 0),  # admin down
        *_port("4", 1, 1, 600.0 * minute),                     # 10 errors/s
        *_port("5", 0, 1, 0),                                  # never up, but an uplink
        *_port("6", 1 if minute < 10 else 0, 1, 0),           # a lab PC's port, asleep at 10m
    ], t)  # fmt: skip
    # the topology's port roles, stored next to the switch's SNMP result (monitor/topology.py)
    roles = _result(Status.OK, [
        Sample.of("netmon_interface_uplink", 1, if_index="5", if_name="Gi0/5", neighbour="sw-b"),
        *([Sample.of("netmon_interface_quiet", 1, if_index="6", if_name="Gi0/6")] if minute >= 10 else []),
    ], t)  # fmt: skip
    # packet loss 30 % from 2m to 8m, then 20 %: above recover (10 %), so it stays
    loss = 0 if minute < 2 else 3 if minute < 8 else 2
    printer = _result(Status.OK, [
        *_supply("1.1", 0.05, "low"), *_supply("1.2", 0.5, "ok"),
        *_supply("1.3", None, "some_remaining"),
        *[Sample.of("netmon_printer_condition", c == "low_toner", condition=c)
          for c in ("low_toner", "jammed")],
        Sample.of("netmon_printer_pages_total", 999 + minute),
    ], t)  # fmt: skip
    return {
        "sw-a": {"icmp": _icmp(10 - loss, t), "snmp": sw_snmp, "topology-ports": roles},
        "sw-b": {"icmp": _icmp(10, t), "snmp": _sw_b_snmp(minute, t)},
        "pc-1": {"icmp": _icmp(0 if minute >= 3 else 10, t)},
        "lib-mfp": {"icmp": _icmp(0 if minute >= 5 else 10, t), "snmp": printer,
                    "tcp-9100": _result(Status.REFUSED if minute >= 1 else Status.OK, [], t)},
        "lib-mfp-2": {"icmp": _icmp(10, t), "snmp": printer},
    }  # fmt: skip


#: Steps whose firing alerts are compared (minutes): sw-b's SNMP silence fires at 15m
#: and has ended at 20m, when its credentials are rejected.
CHECKED = (15, STEPS - 1)


def python_firing(rs: RuleSet) -> dict[int, dict[Key, int]]:
    """Instances firing at each :data:`CHECKED` step, by :data:`BY` labels: the
    engine's pending -> firing rule (active for ``for`` at every evaluation)."""
    since: dict[Key, float] = {}
    out: dict[int, dict[Key, int]] = {}
    for i in range(STEPS):
        now = float(i * STEP)
        seen: dict[Key, float] = {}
        for name, results in scenario(i).items():
            for obs in rs.evaluate(TARGETS[name], results, now):
                key = tuple(sorted((k, v) for k, v in obs.labels.items() if k in BY))
                seen[key] = obs.for_seconds
        since = {k: since.get(k, now) for k in seen}
        if i in CHECKED:
            out[i] = {k: 1 for k, hold in seen.items() if now - since[k] >= hold}
    return out


def input_series() -> list[dict[str, str]]:
    series: dict[tuple[str, frozenset[tuple[str, str]]], list[str]] = {}
    for i in range(STEPS):
        for name, results in scenario(i).items():
            for probe, result in results.items():
                identity = {"target": name, "probe": probe, **TARGETS[name].labels}
                for s in result.samples:
                    key = (s.metric, frozenset(series_labels(identity, s.labels).items()))
                    series.setdefault(key, ["_"] * STEPS)[i] = repr(s.value)
    for values in series.values():  # gone from a scrape: Prometheus writes a stale marker
        for i in range(1, STEPS):
            if values[i] == "_" and values[i - 1] not in ("_", "stale"):
                values[i] = "stale"
    out = []
    for (metric, labels), values in sorted(series.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
        text = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels))
        out.append({"series": f"{metric}{{{text}}}", "values": " ".join(values)})
    return out


def test_promtool_check_rules_accepts_the_export(tmp_path: Path) -> None:
    tool = promtool()
    rule_file = tmp_path / "netmon-rules.yml"
    rs = RuleSet.from_settings(RulesSettings.model_validate(SETTINGS))
    rule_file.write_text(yaml.safe_dump(rs.export_prometheus(), sort_keys=False))
    proc = subprocess.run([tool, "check", "rules", str(rule_file)], check=False, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {r["alert"] for r in rs.export_prometheus()["groups"][0]["rules"]}
    assert {"device_down", "printer_supply_low", "busy_printer", "tcp_service_down"} <= names


def test_prometheus_fires_what_the_python_evaluator_fires(tmp_path: Path) -> None:
    tool = promtool()
    settings = RulesSettings.model_validate(SETTINGS)
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump(RuleSet.from_settings(settings).export_prometheus(), sort_keys=False)
    )
    checked = python_firing(RuleSet.from_settings(settings))
    expected = checked[STEPS - 1]
    fired = {dict(k)["alertname"] + "/" + dict(k)["target"] for k in expected}
    # the scenario is meant to exercise these (and NOT device_down on the lab PC,
    # disabled for its group, nor supply_low on lib-mfp-2 whose threshold is 3 %)
    assert fired >= {
        "device_down/lib-mfp", "high_packet_loss/sw-a", "interface_down/sw-a",
        "interface_errors/sw-a", "device_rebooted/sw-a", "printer_supply_low/lib-mfp",
        "tcp_service_down/lib-mfp", "busy_printer/lib-mfp", "snmp_auth_failure/sw-b",
    }  # fmt: skip
    assert "device_down/pc-1" not in fired
    assert "snmp_not_responding/sw-b" not in fired
    assert ("alertname", "snmp_not_responding") in {p for k in checked[15] for p in k}
    assert [dict(k) for k in expected if dict(k)["target"] == "lib-mfp-2"
            and dict(k)["alertname"] == "printer_supply_low"] == [
        {"alertname": "printer_supply_low", "target": "lib-mfp-2", "index": "1.3", "supply": "Toner 1.3"}
    ]  # fmt: skip
    assert [dict(k)["if_name"] for k in expected if dict(k)["alertname"] == "interface_down"] == [
        "Gi0/1", "Gi0/5"]  # fmt: skip
    tests = [{
        "expr": f'count by ({", ".join(BY)}) (ALERTS{{alertstate="firing"}})',
        "eval_time": f"{step * STEP // 60}m",
        "exp_samples": [
            {"labels": "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in key) + "}", "value": n}
            for key, n in sorted(firing.items())
        ],
    } for step, firing in checked.items()]  # fmt: skip
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input_series(),
            "promql_expr_test": tests,
        }],
    }  # fmt: skip
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    proc = subprocess.run([tool, "test", "rules", "test.yml"], cwd=tmp_path, check=False,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# --- real probe results -------------------------------------------------------------

SUPPLIES = "1.3.6.1.2.1.43.11.1.1"
WASTE_TYPES = {"4", "8", "14", "24", "26"}


def expected_supplies(path: Path, threshold: float) -> tuple[set[str], set[str]]:
    """(low, empty) supply indexes straight from the recording: consumables (class 3,
    or no class and neither a waste type nor "waste" in the description)."""
    level, cap = column(path, SUPPLIES, 9), column(path, SUPPLIES, 8)
    klass, kind, descr = column(path, SUPPLIES, 4), column(path, SUPPLIES, 5), column(path, SUPPLIES, 6)
    low, empty = set(), set()
    for index, raw in level.items():
        receptacle = klass.get(index) == "4" or (
            klass.get(index) != "3"
            and (kind.get(index) in WASTE_TYPES or "waste" in descr.get(index, "").lower())
        )
        if receptacle:
            continue
        n, m = int(raw), int(cap.get(index, "-2"))
        if n == 0:
            empty.add(index)
        elif n > 0 and m > 0 and min(n / m, 1.0) <= threshold:
            low.add(index)
    return low, empty


async def test_rules_on_real_printer_results(snmpsim: simlab.Agent, ctx: ProbeContext) -> None:
    threshold = 0.3
    rs = RuleSet.from_settings(RulesSettings.model_validate(
        {"rules": {"printer_supply_low": {"threshold": threshold}}}))  # fmt: skip
    total_low = 0
    for path in recordings("printer"):
        settings = SnmpSettings(modules=("system", "printer"),
                                credentials=community(community_of(path)), timeout=2.0, retries=1)  # fmt: skip
        result = await run_probe("snmp", Target(path.stem, snmpsim.host, snmpsim.port), settings, ctx)
        assert result.status is Status.OK, result.explanation
        target = TargetInfo(path.stem, {"role": "printer", "group": "printers"})
        got = rs.evaluate(target, {"snmp": result}, 0.0)
        low = {o.labels["index"] for o in got if o.rule == "printer_supply_low"}
        empty = {o.labels["index"] for o in got if o.rule == "printer_supply_empty"}
        assert (low, empty) == expected_supplies(path, threshold), path.stem
        for o in got:
            if o.rule == "printer_supply_low":
                assert o.summary.startswith(f"{path.stem}: ") and "% left)" in o.summary
        total_low += len(low)
        assert not any(o.reachability for o in got)
    assert total_low >= 3  # the recordings do contain low supplies at 30 %
