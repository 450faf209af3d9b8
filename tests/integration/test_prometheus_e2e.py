"""The daemon end to end: `netmon run` monitors the simulated school, a real Prometheus
scrapes it, and the values Prometheus holds are the ones the recordings contain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.demo import simlab
from monitor.demo.school import DEVICES, demo_config
from tests import netns as nn
from tests.conftest import need
from tests.snmprec import RECORDINGS, column
from tests.waiting import http_status, wait_until

NETMON = Path(sys.executable).parent / "netmon"



@pytest.fixture(scope="module")
def school() -> Iterator[tuple[str, str]]:
    """snmpsim on one loopback address per device, a lossy lab machine in a namespace
    (root only), and `netmon run` on the demo inventory. Yields (netmon URL, lossy address)."""
    need(simlab.snmpsim_available())
    need(simlab.prometheus_available())
    need(nn.missing())
    port = simlab.free_udp_port("127.0.1.1")
    endpoints = [(d.address, port) for d in DEVICES[1:]]
    with simlab.start_snmpsim(host=DEVICES[0].address, port=port, extra_endpoints=endpoints):
        lossy = ""
        with nn.netns() as ns, nn.veth(ns, nn.free_subnet(), loss_percent=30) as link:
            lossy = link.inner
            workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"netmon-e2e-{os.getpid()}"
            workdir.mkdir(exist_ok=True)
            config = workdir / "netmon.yml"
            config.write_text(demo_config(port, [lossy], interval="2s"))
            listen = f"127.0.0.1:{simlab.free_tcp_port()}"
            log = (workdir / "netmon.log").open("wb")
            proc = subprocess.Popen([str(NETMON), "run", "-c", str(config), "--listen", listen],
                                    stdout=log, stderr=subprocess.STDOUT)
            url = f"http://{listen}"
            try:
                wait_until(lambda: http_status(f"{url}/-/ready") == 200 or proc.poll() is not None,
                           60, "netmon to become ready")
                assert proc.poll() is None, (workdir / "netmon.log").read_text()[-3000:]
                yield url, lossy
            finally:
                proc.terminate()
                proc.wait(timeout=15)



@pytest.fixture(scope="module")
def prometheus(school: tuple[str, str]) -> Iterator[simlab.PrometheusServer]:
    url, _ = school
    target = url.removeprefix("http://")
    scrape = f"- job_name: netmon\n  static_configs: [{{targets: ['{target}']}}]"
    with simlab.start_prometheus(scrape) as server:
        yield server


def _value(server: simlab.PrometheusServer, promql: str, timeout: float = 45) -> float:
    found: list[dict[str, object]] = []

    def ready() -> bool:
        found[:] = server.query(promql)
        return bool(found)

    wait_until(ready, timeout, f"Prometheus to hold {promql}")
    value = found[0]["value"]
    assert isinstance(value, list)
    return float(value[1])


def test_every_simulated_device_is_scraped(prometheus: simlab.PrometheusServer) -> None:
    for device in DEVICES:
        got = _value(prometheus, f'netmon_probe_success{{target="{device.name}",probe="snmp"}}')
        assert got == 1.0, device.name


def test_printer_supply_ratio_matches_the_recording(prometheus: simlab.PrometheusServer) -> None:
    printer = next(d for d in DEVICES if d.recording == "printer/hp-color-laserjet-pro-m252dw")
    path = RECORDINGS / f"{printer.recording}.snmprec"
    entry = "1.3.6.1.2.1.43.11.1.1"
    levels, capacities = column(path, entry, 9), column(path, entry, 8)
    index, level = next((i, int(v)) for i, v in levels.items() if int(v) >= 0)
    expected = level / int(capacities[index])
    got = _value(prometheus, f'netmon_printer_supply_level_ratio{{target="{printer.name}",'
                             f'index="{index}",role="printer",room="library"}}')
    assert got == pytest.approx(expected)


def test_interface_octets_are_counters_prometheus_can_rate(
    prometheus: simlab.PrometheusServer,
) -> None:
    switch = DEVICES[0]
    path = RECORDINGS / f"{switch.recording}.snmprec"
    hc_in = column(path, "1.3.6.1.2.1.31.1.1.1", 6)
    index, octets = next((i, int(v)) for i, v in hc_in.items() if int(v) > 0)
    got = _value(prometheus, f'netmon_interface_receive_bytes_total{{target="{switch.name}",'
                             f'if_index="{index}"}}')
    assert got == octets
    # Recorded counters never move, so the rate over a window is exactly zero, not absent.
    rate = _value(prometheus, f'rate(netmon_interface_receive_bytes_total{{target="{switch.name}",'
                              f'if_index="{index}"}}[10s])', timeout=60)
    assert rate == 0.0


def _instant(server: simlab.PrometheusServer, promql: str) -> float:
    result = server.query(promql)
    return float(result[0]["value"][1]) if result else 0.0  # type: ignore[index]


def test_lossy_lab_machine_shows_loss(prometheus: simlab.PrometheusServer) -> None:
    # 30 % random drop on the replies. 40 scrapes of 2 s runs of 3 echoes each are ~60
    # echoes: the mean loss then lies in (0.1, 0.5) with overwhelming probability.
    selector = '{target="lab-205-pc1"}'
    wait_until(
        lambda: _instant(prometheus, f"count_over_time(netmon_icmp_packet_loss_ratio{selector}[2m])") >= 40,
        120, "40 scrapes of the lossy machine's loss",
    )
    loss = _instant(prometheus, f"avg_over_time(netmon_icmp_packet_loss_ratio{selector}[2m])")
    assert 0.1 < loss < 0.5, loss


def test_json_api_lists_every_target(school: tuple[str, str]) -> None:
    url, _ = school
    with urllib.request.urlopen(f"{url}/api/targets", timeout=5) as resp:
        doc = json.load(resp)
    names = {t["name"] for t in (doc["targets"] if isinstance(doc, dict) else doc)}
    assert {d.name for d in DEVICES} <= names
    assert "lab-204-10" in names or any(n.startswith("lab-204") for n in names)
