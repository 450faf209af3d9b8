"""The exporter end to end: real probes (snmpsim recordings, ICMP to 127.0.0.1, TCP to a
local listening socket) go into a result store; its rendering passes ``promtool check
metrics``, parses, carries the identity labels, drops stale results and leaks no secret."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from monitor.demo import simlab
from monitor.exporter import SAMPLE_LABELS, NetmonCollector, RenderCache, render, render_chunks
from monitor.store.results import ResultStore
from probes.context import ProbeContext
from probes.icmp import IcmpSettings
from probes.metrics import METRICS
from probes.registry import run_probe
from probes.result import ProbeResult, Sample, Status
from probes.snmp.credentials import community
from probes.snmp.probe import SnmpSettings
from probes.target import Target
from probes.tcp import TcpSettings
from tests.conftest import need
from tests.exposition import one, parse
from tests.snmprec import RECORDINGS, column, community_of, raw_lines

SUPPLIES = "1.3.6.1.2.1.43.11.1.1"
IF_X_ENTRY = "1.3.6.1.2.1.31.1.1.1"
APC_CAPACITY_TENTHS = "1.3.6.1.4.1.318.1.1.1.2.3.1.0"


@dataclass(frozen=True)
class Device:
    name: str
    recording: Path
    modules: tuple[str, ...]
    labels: dict[str, str]


DEVICES = [
    Device("library-mfp", RECORDINGS / "printer/hp-color-laserjet-pro-m252dw.snmprec",
           ("system", "printer"),
           {"role": "printer", "site": "main", "building": "library", "room": "L1"}),
    Device("sw-core", RECORDINGS / "switch/cisco-catalyst-2960.snmprec",
           ("system", "interfaces"), {"role": "switch", "site": "main", "building": "main"}),
    Device("ups-server-room", RECORDINGS / "ups/apc-smart-ups-1000-nmc3.snmprec",
           ("system", "ups"), {"role": "ups", "site": "main", "room": "S0"}),
    Device("fileserver", RECORDINGS / "linux/el8-x86_64-server.snmprec",
           ("system", "interfaces", "host"), {"role": "server", "site": "main"}),
]  # fmt: skip
LOCAL = {"role": "other", "site": "lab", "group": "loopback"}
INTERVAL = 60.0


@dataclass
class Probed:
    store: ResultStore
    results: dict[tuple[str, str], ProbeResult]
    text: str
    now: float


async def _probe_all(agent: simlab.Agent, tcp_port: int, closed_port: int) -> list[tuple[ProbeResult, dict[str, str]]]:  # fmt: skip
    async with ProbeContext() as ctx:
        jobs = [
            (run_probe("snmp", Target(d.name, agent.host, agent.port),
                       SnmpSettings(modules=d.modules, credentials=community(community_of(d.recording))),
                       ctx), d.labels)
            for d in DEVICES
        ]  # fmt: skip
        jobs += [
            (run_probe("icmp", Target("loopback", "127.0.0.1"),
                       IcmpSettings(count=2, interval=0.02, timeout=1.0), ctx), LOCAL),
            (run_probe("tcp", Target("print-port", "127.0.0.1", tcp_port), TcpSettings(), ctx),
             LOCAL),
            (run_probe("tcp", Target("closed-port", "127.0.0.1", closed_port),
                       TcpSettings(), ctx), LOCAL),
        ]  # fmt: skip
        results = await asyncio.gather(*(job for job, _ in jobs))
        return list(zip(results, (labels for _, labels in jobs), strict=True))


@pytest.fixture(scope="module")
def probed(snmpsim: simlab.Agent) -> Iterator[Probed]:
    """Every probe run once (own event loop), stored with labels, rendered."""
    with socket.create_server(("127.0.0.1", 0)) as listening, \
            socket.create_server(("127.0.0.1", 0)) as released:  # fmt: skip
        closed = released.getsockname()[1]
        released.close()
        # The kernel completes handshakes into the backlog: no accept() needed.
        pairs = asyncio.run(_probe_all(snmpsim, listening.getsockname()[1], closed))
    store = ResultStore()
    for result, labels in pairs:
        store.put(result, labels, INTERVAL)
    results = {(r.target, r.probe): r for r, _ in pairs}
    if results[("loopback", "icmp")].status is Status.PERMISSION_ERROR:
        need(results[("loopback", "icmp")].explanation)
    now = max(r.started_at + r.duration_seconds for r in results.values())
    yield Probed(store, results, render(store, now=now).decode(), now)




def test_every_probe_worked(probed: Probed) -> None:
    for (target, probe), result in probed.results.items():
        expected = Status.REFUSED if target == "closed-port" else Status.OK
        assert result.status is expected, f"{target}/{probe}: {result.explanation}"


def test_promtool_check_metrics_is_clean(probed: Probed) -> None:
    promtool = shutil.which("promtool")
    need(None if promtool else "promtool is not installed (Debian package: prometheus)")
    assert promtool
    done = subprocess.run(
        [promtool, "check", "metrics"], check=False, input=probed.text, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr
    )


def test_printer_supply_ratio_has_identity_labels(probed: Probed) -> None:
    series = parse(probed.text)
    path = DEVICES[0].recording
    first = min(column(path, SUPPLIES, 9), key=lambda i: tuple(map(int, i.split("."))))
    level, capacity = int(column(path, SUPPLIES, 9)[first]), int(column(path, SUPPLIES, 8)[first])
    assert column(path, SUPPLIES, 4)[first] == "3", "the first supply is a consumable"
    ratio = one(series, "netmon_printer_supply_level_ratio", target="library-mfp", index=first)
    assert ratio == pytest.approx(level / capacity)
    (labels,) = [
        lbl for lbl, _ in series["netmon_printer_supply_level_ratio"] if lbl["index"] == first
    ]
    assert labels | DEVICES[0].labels == labels  # every static label, unchanged
    assert labels["probe"] == "snmp" and labels["class"] == "consumable"


def test_switch_interface_octets_are_counters_per_interface(probed: Probed) -> None:
    series = parse(probed.text)
    path = DEVICES[1].recording
    hc_in = column(path, IF_X_ENTRY, 6)  # ifHCInOctets, by ifIndex
    exported = {
        lbl["if_index"]: v
        for lbl, v in series["netmon_interface_receive_bytes_total"]
        if lbl["target"] == "sw-core"
    }
    assert exported == {index: float(v) for index, v in hc_in.items()}
    families = {f.name: f.type for f in text_string_to_metric_families(probed.text)}
    assert families["netmon_interface_receive_bytes"] == "counter"


def test_ups_charge_and_host_storage(probed: Probed) -> None:
    series = parse(probed.text)
    (tenths,) = [v for o, _, v in raw_lines(DEVICES[2].recording) if o == APC_CAPACITY_TENTHS]
    charge = one(series, "netmon_ups_battery_charge_ratio", target="ups-server-room", room="S0")
    assert charge == pytest.approx(int(tenths) / 1000)
    used = [lbl for lbl, _ in series["netmon_host_storage_used_bytes"]]
    assert used and all(lbl["target"] == "fileserver" and lbl["role"] == "server" for lbl in used)


def test_probe_success_per_target_and_down_means_no_latency(probed: Probed) -> None:
    series = parse(probed.text)
    success = {lbl["target"]: (lbl["probe"], v) for lbl, v in series["netmon_probe_success"]}
    assert success == {
        **{d.name: ("snmp", 1.0) for d in DEVICES},
        "loopback": ("icmp", 1.0), "print-port": ("tcp", 1.0), "closed-port": ("tcp", 0.0),
    }  # fmt: skip
    assert one(series, "netmon_probe_status", target="closed-port", status="refused") == 1.0
    connect = {lbl["target"] for lbl, _ in series["netmon_tcp_connect_seconds"]}
    assert connect == {"print-port"}
    assert one(series, "netmon_icmp_packet_loss_ratio", target="loopback", group="loopback") == 0
    assert one(series, "netmon_build_info") == 1.0


def test_every_series_has_identity_and_only_documented_labels(probed: Probed) -> None:
    for name, rows in parse(probed.text).items():
        metric = name if name in SAMPLE_LABELS else f"{name}_total"
        for labels, _ in rows:
            own = set(labels) - {"target", "probe", "role", "site", "building", "room", "group"}
            assert own <= set(SAMPLE_LABELS[metric]), f"{name}: {own}"
            if metric != "netmon_build_info":
                assert {"target", "probe", "role", "site"} <= set(labels), f"{name}: {labels}"


def test_no_community_appears_in_the_output(probed: Probed) -> None:
    for d in DEVICES:
        assert community_of(d.recording) not in probed.text


def test_stale_result_disappears(probed: Probed) -> None:
    store = ResultStore()
    fresh = probed.results[("library-mfp", "snmp")]
    old = probed.results[("loopback", "icmp")]
    store.put(fresh, DEVICES[0].labels, INTERVAL)
    # Run 4 minutes before the others: older than max(3 x 60 s, 3 min).
    shifted = dataclasses.replace(old, started_at=old.started_at - 240)
    stored = store.put(shifted, LOCAL, INTERVAL)
    text = render(store, now=probed.now).decode()
    assert 'target="library-mfp"' in text
    assert 'target="loopback"' not in text and "netmon_icmp_" not in text
    # The same store, scraped while that result was still fresh, served it.
    assert 'target="loopback"' in render(store, now=stored.finished_at + 170).decode()


def test_clashing_sample_label_is_kept_as_exported() -> None:
    store = ResultStore()
    result = ProbeResult(Status.OK, "fine", probe="snmp", target="mfp", started_at=1000.0,
                         samples=[Sample.of("netmon_host_processes", 7, site="sample-site")])  # fmt: skip
    store.put(result, {"site": "main"}, INTERVAL)
    series = parse(render(store, now=1001.0).decode())
    assert series["netmon_host_processes"] == [
        ({"target": "mfp", "probe": "snmp", "site": "main", "exported_site": "sample-site"}, 7.0)
    ]


def test_uncatalogued_and_duplicate_samples_are_not_exported() -> None:
    store = ResultStore()
    samples = [Sample.of("netmon_host_users", 2), Sample.of("netmon_host_users", 3),
               Sample.of("netmon_made_up", 1)]  # fmt: skip
    result = ProbeResult(Status.OK, "fine", samples, probe="snmp", target="h", started_at=1000.0)
    store.put(result, {}, INTERVAL)
    text = render(store, now=1001.0).decode()
    assert "netmon_made_up" not in text
    assert parse(text)["netmon_host_users"] == [({"target": "h", "probe": "snmp"}, 2.0)]


def test_uncatalogued_and_duplicate_samples_are_reported_once_per_new_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, cache = ResultStore(), RenderCache()
    samples = [Sample.of("netmon_host_users", 2), Sample.of("netmon_host_users", 3),
               Sample.of("netmon_made_up", 1)]  # fmt: skip
    for at in (1000.0, 1060.0):
        result = ProbeResult(Status.OK, "fine", samples, probe="snmp", target="h", started_at=at)
        store.put(result, {"room": "1"}, INTERVAL)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="netmon.exporter"):
            render(store, now=at + 1, cache=cache)
            duplicate = "{'probe': 'snmp', 'room': '1', 'target': 'h'}"
            assert [r.getMessage() for r in caplog.records] == [
                f"not exporting a duplicate series netmon_host_users{duplicate}",
                "not exporting netmon_made_up: it is not in probes.metrics.METRICS",
            ]
            caplog.clear()
            render(store, now=at + 2, cache=cache)  # nothing new: nothing to report
            assert caplog.records == []


_VALUES = [0.0, -0.0, 1.0, 2.5, 1e6, 1234567.0, float("inf"), float("-inf"), float("nan"),
           1e-7, -3.0, 123456789.123]  # fmt: skip


def _random_sample(rng: random.Random) -> Sample:
    names = ["a", "zz", "if_name", "role", "site", "target", "probe", "exported_site", "state"]
    texts = ["x", "", 'q"uote', "back\\slash", "new\nline", "ü", "1"]
    labels = tuple((rng.choice(names), rng.choice(texts)) for _ in range(rng.randint(0, 3)))
    metric = rng.choice([*list(METRICS)[:25], "netmon_made_up"])
    return Sample(metric, labels, rng.choice(_VALUES))


@pytest.mark.parametrize("seed", range(4))
def test_rendering_through_a_cache_equals_client_python_as_results_change(
    seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Random series (own labels sorting before, between and after the identity labels,
    clashing names, escapes, special values) put again and again, with the same shape
    (new values), another shape or other labels, targets removed: every cached render
    is byte for byte client_python's, and so is every chunked one."""
    from prometheus_client import generate_latest

    rng = random.Random(seed)
    store, cache = ResultStore(), RenderCache()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NetmonCollector(store, lambda: 1400.0))
    caplog.set_level(logging.ERROR, logger="netmon.exporter")  # uncatalogued, duplicates
    for step in range(150):
        target, probe = f"t{rng.randint(0, 5)}", rng.choice(["icmp", "snmp"])
        old = store.get(target, probe)
        if old is not None and rng.random() < 0.5:  # the same series, new values
            samples = [dataclasses.replace(s, value=rng.choice(_VALUES))
                       for s in old.result.samples]  # fmt: skip
        else:
            samples = [_random_sample(rng) for _ in range(rng.randint(0, 8))]
        static = {k: rng.choice(["x", "", 'r"1'])
                  for k in rng.sample(["role", "site", "room", "zz", "a"], rng.randint(0, 3))}  # fmt: skip
        store.put(ProbeResult(Status.OK, "x", samples, probe=probe, target=target,
                              started_at=1000.0 + step, duration_seconds=0.5), static, INTERVAL)  # fmt: skip
        if rng.random() < 0.1:
            store.remove_target(f"t{rng.randint(0, 5)}")
        if step % 3 == 0:
            expected = generate_latest(registry)
            assert render(store, now=1400.0, cache=cache) == expected, step
            assert render(store, now=1400.0, cache=cache) == expected, step
            assert b"".join(render_chunks(store, now=1400.0)) == expected, step


def test_registration_does_not_collect() -> None:
    class CountingStore(ResultStore):
        snapshots = 0

        def snapshot(self, now: float | None = None) -> list:  # type: ignore[type-arg]
            CountingStore.snapshots += 1
            return super().snapshot(now)

    registry = CollectorRegistry()
    collector = NetmonCollector(CountingStore())
    registry.register(collector)
    assert CountingStore.snapshots == 0
    assert registry.get_sample_value("netmon_build_info", {"version": collector.version}) == 1.0
    assert CountingStore.snapshots == 1


def test_direct_rendering_equals_client_pythons_output(probed: Probed) -> None:
    """render() writes the text format itself (fast); it must be byte for byte what
    client_python's generate_latest writes for the same series, including escaping and
    special float values."""
    from prometheus_client import generate_latest

    store = probed.store
    tricky = ProbeResult(Status.OK, "ok", [
        Sample.of("netmon_device_info", 1, sys_descr='back\\slash "quoted"\nnew line', sys_name="ü"),
        Sample.of("netmon_interface_receive_bytes_total", float("inf"), if_index=1, if_name="x"),
        Sample.of("netmon_host_cpu_load_ratio", float("nan")),
        Sample.of("netmon_device_uptime_seconds", 123456789.0),
        Sample.of("netmon_icmp_rtt_seconds", 1e-7, stat="avg"),
    ], probe="snmp", target="odd", started_at=probed.now - 1, duration_seconds=0.5)  # fmt: skip
    store.put(tricky, {"role": "other", "room": 'r"1'}, INTERVAL)
    extra = [Sample.of("netmon_scheduler_jobs", 7, probe="icmp"),
             Sample.of("netmon_probe_runs_total", 12, probe="icmp", status="ok")]  # fmt: skip
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NetmonCollector(store, lambda: probed.now, lambda: extra))
    expected = generate_latest(registry)
    got = render(store, now=probed.now, extra=extra)
    assert got == expected
    assert b'sys_descr="back\\\\slash \\"quoted\\"\\nnew line"' in got and b"+Inf" in got
    # With a cache (as /metrics uses): the second render reuses lines, same bytes; a
    # replaced result is rendered anew and a removed one disappears.
    cache = RenderCache()
    assert render(store, now=probed.now, extra=extra, cache=cache) == expected
    assert render(store, now=probed.now, extra=extra, cache=cache) == expected
    store.put(dataclasses.replace(tricky, samples=tricky.samples[:1]), {"role": "other"}, INTERVAL)
    assert render(store, now=probed.now, extra=extra, cache=cache) == render(store, now=probed.now, extra=extra)
    store.remove_target("odd")
    after = render(store, now=probed.now, extra=extra, cache=cache)
    assert after == render(store, now=probed.now, extra=extra) and b'target="odd"' not in after
