"""Every dashboard panel's PromQL runs against a real Prometheus that scrapes `netmon run`
monitoring the simulated school: no query may fail, and none may come back empty unless
its panel is allow-listed below with the reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.build import load, panels, queries
from monitor.demo import simlab
from monitor.demo.school import DEVICES, demo_config
from tests.conftest import need
from tests.waiting import http_status, wait_until

NETMON = Path(sys.executable).parent / "netmon"

#: (dashboard uid, panel title) -> why it may be empty on the simulated school.
MAY_BE_EMPTY = {
    ("netmon-overview", "Devices down"): "every simulated device answers",
    ("netmon-overview", "Active alerts"): "no alert fires on the simulated school",
    ("netmon-printers", "Error conditions now"): "no simulated printer reports an error condition",
    ("netmon-printers", "Waste containers"):
        "the one waste box in the recordings reports no level, only 'some remaining'",
    ("netmon-printers", "Printer alert table"): "the recordings have no Printer-MIB alert rows",
    ("netmon-device", "TCP connect time"): "the demo inventory has no TCP checks",
    ("netmon-self", "Alerts by state"): "no alert rules are loaded by the demo inventory",
    ("netmon-self", "Notifications"): "no receivers are configured, so nothing is sent",
    ("netmon-self", "Outbox by receiver"): "no receivers are configured",
    ("netmon-switches", "Errors and discards"): "recorded counters never move, so no rate is > 0",
}
#: Device detail is checked with one device per role (and the one printer that reports
#: page counts): each panel must show data for at least one of them.
DEVICE_SAMPLES = ("sw-core", "library-mfp", "staffroom-printer", "file-server", "ups-server-room", "lab-204-10")
#: Grafana's built-in interval variables, as Grafana would expand them for a short range.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str, values: dict[str, str]) -> str:
    """``expr`` with $var, ${var} and ${var:format} replaced; all other variables -> ".*"."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, BUILTINS.get(name, ".*"))

    return VARIABLE.sub(one, expr)




@pytest.fixture(scope="module")
def prometheus() -> Iterator[simlab.PrometheusServer]:
    """snmpsim with one loopback address per device, `netmon run` on the demo inventory
    (2 s interval), and Prometheus scraping it every second."""
    need(simlab.snmpsim_available())
    need(simlab.prometheus_available())
    port = simlab.free_udp_port("127.0.1.1")
    endpoints = [(d.address, port) for d in DEVICES[1:]]
    with simlab.start_snmpsim(host=DEVICES[0].address, port=port, extra_endpoints=endpoints):
        workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"netmon-dash-{os.getpid()}"
        workdir.mkdir(exist_ok=True)
        config = workdir / "netmon.yml"
        config.write_text(demo_config(port, interval="2s"))
        listen = f"127.0.0.1:{simlab.free_tcp_port()}"
        with (workdir / "netmon.log").open("wb") as log:
            proc = subprocess.Popen([str(NETMON), "run", "-c", str(config), "--listen", listen],
                                    stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: http_status(f"http://{listen}/-/ready") == 200 or proc.poll() is not None,
                       60, "netmon to become ready")
            assert proc.poll() is None, (workdir / "netmon.log").read_text()[-3000:]
            scrape = f"- job_name: netmon\n  static_configs: [{{targets: ['{listen}']}}]"
            with simlab.start_prometheus(scrape) as server:
                # Rates need two samples of every series: wait for several scrapes of
                # the slowest data (SNMP) and at least one second probe round.
                wait_until(lambda: _count(server, 'count_over_time(netmon_printer_pages_total[1m])') >= 6,
                           60, "six scrapes of SNMP data")
                yield server
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def _api(server: simlab.PrometheusServer, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """A Prometheus API call; returns the decoded answer even for a 400 (query error)."""
    url = f"{server.url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body: dict[str, Any] = json.load(resp)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    return body


def _count(server: simlab.PrometheusServer, promql: str) -> float:
    result = server.query(promql)
    return float(result[0]["value"][1]) if result else 0.0  # type: ignore[index]


def _run(server: simlab.PrometheusServer, expr: str, ranged: bool) -> tuple[str | None, int]:
    """(error or None, number of series) of an instant, or range, query."""
    now = time.time()
    if ranged:
        body = _api(server, "/api/v1/query_range", {"query": expr, "start": now - 60, "end": now, "step": 5})
    else:
        body = _api(server, "/api/v1/query", {"query": expr, "time": now})
    if body.get("status") != "success":
        return f"{body.get('errorType')}: {body.get('error')}", 0
    return None, len(body["data"]["result"])


DASHBOARDS = load()


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_query_runs_and_returns_data(prometheus: simlab.PrometheusServer, name: str) -> None:
    doc = DASHBOARDS[name]
    uid = doc["uid"]
    samples = DEVICE_SAMPLES if uid == "netmon-device" else (None,)
    errors: list[str] = []
    empty_panels: dict[str, int] = {}  # title -> series over all queries and samples
    checked = 0
    for panel, target in queries(doc):
        title = panel["title"]
        empty_panels.setdefault(title, 0)
        for device in samples:
            expr = substitute(target["expr"], {"target": device} if device else {})
            for ranged in {bool(target.get("range")), False}:
                error, series = _run(prometheus, expr, ranged)
                checked += 1
                if error:
                    errors.append(f"{title} [{target['refId']}] {expr}: {error}")
                elif ranged == bool(target.get("range")):
                    empty_panels[title] += series
    assert not errors, "\n".join(errors)
    assert checked >= len(list(panels(doc))) - sum(p["type"] == "row" for p in panels(doc))
    empty = sorted(t for t, n in empty_panels.items() if n == 0 and (uid, t) not in MAY_BE_EMPTY)
    assert not empty, f"{name}: panels without data: {empty}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_template_variables_offer_values(prometheus: simlab.PrometheusServer, name: str) -> None:
    """Every label_values() variable lists at least one value (with "All" upstream)."""
    pattern = re.compile(r"label_values\((.*), *(\w+)\)$")
    for var in DASHBOARDS[name]["templating"]["list"]:
        if var["type"] != "query":
            continue
        match = pattern.match(var["query"])
        assert match, var["query"]
        selector, label = substitute(match.group(1), {}), match.group(2)
        body = _api(prometheus, f"/api/v1/label/{label}/values", {"match[]": [selector]})
        assert body["status"] == "success", body
        assert body["data"], f"{name}: variable {var['name']} has no values ({selector})"
        if var.get("current", {}).get("value") not in (None, ["$__all"]):
            assert set(var["current"]["value"]) <= set(body["data"]), var["name"]


def test_allow_list_names_real_panels() -> None:
    """A renamed panel must not leave a stale allow-list entry behind."""
    titles = {(d["uid"], p.get("title")) for d in DASHBOARDS.values() for p in panels(d)}
    assert set(MAY_BE_EMPTY) <= titles, set(MAY_BE_EMPTY) - titles
