"""Memory of the result store and the /metrics exposition at district scale, no network.

    .venv/bin/python benchmarks/store_memory.py                        # 10,000 ICMP + 1,000 SNMP
    .venv/bin/python benchmarks/store_memory.py --icmp 1000 --snmp 100 # quick (~10 s)
    .venv/bin/python benchmarks/store_memory.py --distinct             # no label set shared
    .venv/bin/python benchmarks/store_memory.py --polls 10             # a full run history

Fills a :class:`monitor.store.ResultStore` the way the daemon does, from results shaped
like the real probes' (no agent, no sockets):

* ``--icmp`` lab machines with an ICMP probe, and ``--snmp`` devices with an ICMP probe
  and an SNMP one: even devices switches (system + interfaces), odd ones printers
  (system + printer), round-robin over the recordings in tests/fixtures/snmprec, as
  benchmarks/daemon_scale.py has them. An SNMP result is the real modules' converters
  run on the recording (each device gets its own sysName, and its counters and uptime
  move every poll), plus the probe's netmon_snmp_* samples and the runner's
  netmon_probe_* ones (probes.registry.runner_samples); an ICMP result is what
  probes.icmp emits for 3 echo replies (probes.icmp.icmp_samples) plus the runner's.
* Static labels as the scheduler stores them: role, group and a site.
* ``--distinct`` gives every switch port a device-specific ifAlias, so no two devices
  have equal label sets (the worst case for sharing them across targets).

Then, for two polls (``--polls``: more; every result replaced by a new one, as one
interval does):

* **retained memory** (tracemalloc): bytes held by the store plus the render cache of
  ``/metrics`` after the poll's results were put and rendered once, per exported series;
* **RSS** (/proc/self/status) before the first poll and after each poll + render, in a
  separate pass without tracemalloc (RSS also counts freed memory the allocator keeps);
* **render times**: cold (a new cache: the first scrape after start), after a poll
  (every result new, as when a scrape follows a full interval), cached (nothing new:
  a join of bytes), and gzip of the body: ``gzip.compress`` at levels 1, 6 and 9
  (client_python's), and the web server's own gzip path when it has one
  (``monitor.web.gzip_exposition``: a cached render compressed as it is written).

Prints a table; ``--json`` writes the figures to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.exporter import RenderCache, render
from monitor.store.results import ResultStore
from monitor.web import server as web
from probes.icmp import icmp_samples
from probes.icmp_engine import PingStats
from probes.registry import runner_samples
from probes.result import ProbeResult, Status
from probes.snmp.modules import MODULES
from probes.snmp.probe import _counters
from probes.snmp.types import OID, Value, Walked, oid
from tests.snmprec import load_walked, recordings

RESULTS = REPO / "benchmarks" / "results"
INTERVAL = 60.0
T0 = 1_790_000_000.0
SYS_NAME = oid("1.3.6.1.2.1.1.5.0")
SYS_UPTIME = oid("1.3.6.1.2.1.1.3.0")
#: IF-MIB counters (ifInOctets, ifOutOctets, ifHCInOctets, ifHCOutOctets): they move.
COUNTER_COLUMNS = (oid("1.3.6.1.2.1.2.2.1.10"), oid("1.3.6.1.2.1.2.2.1.16"),
                   oid("1.3.6.1.2.1.31.1.1.1.6"), oid("1.3.6.1.2.1.31.1.1.1.10"))  # fmt: skip
IF_ALIAS = oid("1.3.6.1.2.1.31.1.1.1.18")
IF_NAME = oid("1.3.6.1.2.1.31.1.1.1.1")

Job = tuple[str, str, dict[str, str], Callable[[int], ProbeResult]]


# --- results shaped like the probes' ----------------------------------------------------


def runner_fields(result: ProbeResult, probe: str, target: str, at: float) -> ProbeResult:
    """What probes.registry.run_probe adds: run times and the netmon_probe_* samples."""
    out = result.with_runner_fields(
        probe=probe, target=target, duration_seconds=0.012 + random.random() / 50, started_at=at
    )
    out.samples.extend(runner_samples(out))
    return out


def icmp_result(target: str, address: str, poll: int) -> ProbeResult:
    rtts = [0.0002 + random.random() / 10_000 for _ in range(3)]
    stats = PingStats(address, sent=3, received=3, rtts=rtts)
    avg = sum(rtts) / 3 * 1000
    result = ProbeResult(
        Status.OK, f"3 of 3 echo replies, avg {avg:.2f} ms", samples=icmp_samples(stats),
        facts={"address": address, "icmp_mode": "dgram"},
    )  # fmt: skip
    return runner_fields(result, "icmp", target, T0 + INTERVAL * poll + random.random())


def device_walk(walked: Walked, name: str, poll: int, distinct: bool) -> Walked:
    """The recording as this device answers it at this poll: its own sysName, moving
    counters and uptime, and (``distinct``) port aliases of its own."""
    out: dict[OID, Value] = dict(walked)
    out[SYS_NAME] = name.encode()
    if SYS_UPTIME in out:
        out[SYS_UPTIME] = int(out[SYS_UPTIME]) + 6000 * poll  # type: ignore[call-overload]
    for key, value in walked.items():
        if isinstance(value, int) and key[:-1] in COUNTER_COLUMNS:
            out[key] = value + poll * (1_000 + key[-1] * 37)
        elif distinct and key[:-1] == IF_NAME:
            out[IF_ALIAS + key[-1:]] = f"{name} port {key[-1]}".encode()
    return out


def snmp_result(target: str, walked: Walked, modules: tuple[str, ...], poll: int,
                distinct: bool) -> ProbeResult:  # fmt: skip
    """What probes.snmp.probe returns for a clean walk of ``walked``."""
    device = device_walk(walked, target, poll, distinct)
    samples, facts, records = [], {}, {}
    for name in modules:
        part = MODULES[name].convert(device)
        samples += part.samples
        facts.update(part.facts)
        for key, rows in part.records.items():
            records.setdefault(key, []).extend(rows)
    requests = 3 + len(device) // 40
    samples += _counters(len(device), requests)
    facts["snmp"] = "SNMPv2c, community from the credentials"
    explanation = (f"SNMPv2c, {len(modules)} modules, {len(device)} values in "
                   f"{requests} requests")  # fmt: skip
    result = ProbeResult(Status.OK, explanation, samples, facts, records)
    return runner_fields(result, "snmp", target, T0 + INTERVAL * poll + random.random())


def jobs(n_icmp: int, n_snmp: int, distinct: bool) -> list[Job]:
    """(target, probe, labels, make(poll)) for every job of the district."""
    walks = {p: load_walked(p) for p in recordings("switch") + recordings("printer")}
    switches, printers = recordings("switch"), recordings("printer")
    out: list[Job] = []
    for i in range(n_icmp):
        name, address = f"lab-{i // 254}-{i % 254 + 1}", f"127.10.{i // 254}.{i % 254 + 1}"
        labels = {"role": "lab", "group": "labs", "site": f"school-{i % 40:02d}"}
        out.append((name, "icmp", labels,
                    lambda poll, n=name, a=address: icmp_result(n, a, poll)))  # fmt: skip
    for i in range(n_snmp):
        pool = switches if i % 2 == 0 else printers
        recording = pool[(i // 2) % len(pool)]
        kind = recording.parent.name
        name, address = f"{kind}-{i}", f"127.0.{1 + i // 250}.{1 + i % 250}"
        modules = ("system", "interfaces") if kind == "switch" else ("system", "printer")
        labels = {"role": kind, "group": recording.stem, "site": f"school-{i % 40:02d}"}
        out.append((name, "icmp", labels,
                    lambda poll, n=name, a=address: icmp_result(n, a, poll)))  # fmt: skip
        walked = walks[recording]
        out.append((name, "snmp", labels,
                    lambda poll, n=name, w=walked, m=modules: snmp_result(n, w, m, poll, distinct)))  # fmt: skip
    return out


def poll(store: ResultStore, district: list[Job], n: int) -> None:
    """One interval: every job's new result put into the store, as the scheduler does."""
    for _, probe, labels, make in district:
        store.put(make(n), labels, INTERVAL, probe=probe)


# --- measuring ---------------------------------------------------------------------------


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def series_count(body: bytes) -> int:
    return body.count(b"\n") - body.count(b"\n#") - (1 if body.startswith(b"#") else 0)


def shapes(store: ResultStore) -> dict[tuple[str, str], int] | None:
    """id() of every stored result's shape (None when the store has no shapes)."""
    out = {}
    for stored in store.snapshot(now=T0):
        shape = getattr(stored, "shape", None)
        if shape is None:
            return None
        out[(stored.target, stored.probe)] = id(shape)
    return out


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Median wall seconds of ``repeat`` calls, and the last call's value."""
    times, value = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def measure_memory(district: list[Job], polls: int) -> dict[str, Any]:
    """tracemalloc: bytes retained by store + render cache after each poll."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    store, cache = ResultStore(), RenderCache()
    out: dict[str, Any] = {"polls": polls}
    first: dict[tuple[str, str], int] | None = None
    for n in range(1, polls + 1):
        poll(store, district, n)
        gc.collect()
        out[f"store_{n}"] = tracemalloc.get_traced_memory()[0] - base
        body = render(store, now=T0 + INTERVAL * n + 5, cache=cache)
        out["series"] = series_count(body)
        del body
        gc.collect()
        out[f"total_{n}"] = tracemalloc.get_traced_memory()[0] - base
        ids = shapes(store)
        if n == 1:
            first = ids
        elif n == 2 and ids is not None and first is not None:
            out["shapes_reused"] = sum(first.get(k) == v for k, v in ids.items()) / len(ids)
            out["shapes_distinct"] = len(set(ids.values()))
    out["peak"] = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return out


def measure_rss_and_time(district: list[Job]) -> dict[str, Any]:
    gc.collect()
    out: dict[str, Any] = {"rss_0": rss_kb()}
    store, cache = ResultStore(), RenderCache()
    at = T0 + 3 * INTERVAL + 5
    for n in (1, 2):
        poll(store, district, n)
        render(store, now=at, cache=cache)
        gc.collect()
        out[f"rss_{n}"] = rss_kb()
    out["cold"], _ = timed(lambda: render(store, now=at, cache=RenderCache()))
    poll(store, district, 3)
    render(store, now=at, cache=cache)  # settles the cache on poll 3's shapes
    poll(store, district, 4)
    out["after_poll"], _ = timed(lambda: render(store, now=at, cache=cache))
    out["cached"], body = timed(lambda: render(store, now=at, cache=cache), repeat=5)
    out["bytes"] = len(body)
    out["series"] = series_count(body)
    for level in (1, 6, 9):
        out[f"gzip{level}"], packed = timed(lambda level=level: gzip.compress(body, level))
        out[f"gzip{level}_bytes"] = len(packed)
        assert gzip.decompress(packed) == body
    own = getattr(web, "gzip_exposition", None)
    if own is not None:
        out["web_gzip"], packed = timed(lambda: own(store, cache=cache, now=at))
        out["web_gzip_bytes"] = len(packed)
        assert gzip.decompress(packed) == body, "the web server's gzip differs from the body"
        out["scrape_gzip"] = out["web_gzip"]
    else:
        out["scrape_gzip"] = out["cached"] + out["gzip9"]
    return out


def rows(mem: dict[str, Any], run: dict[str, Any]) -> Iterator[tuple[str, str]]:
    series = mem["series"]
    yield "exported series", f"{series:,}"
    for n in sorted({1, 2, mem["polls"]}):
        yield (f"poll {n}: store (tracemalloc)",
               f"{mem[f'store_{n}'] / 1e6:7.1f} MB  {mem[f'store_{n}'] / series:6.0f} B/series")
        yield (f"poll {n}: store + render cache",
               f"{mem[f'total_{n}'] / 1e6:7.1f} MB  {mem[f'total_{n}'] / series:6.0f} B/series")
    yield "tracemalloc peak (poll + render)", f"{mem['peak'] / 1e6:7.1f} MB"
    if "shapes_reused" in mem:
        yield ("poll 2: shapes reused / distinct",
               f"{mem['shapes_reused']:.1%} / {mem['shapes_distinct']:,}")
    for n in (1, 2):
        delta = (run[f"rss_{n}"] - run["rss_0"]) * 1024
        yield (f"poll {n}: RSS - RSS before",
               f"{delta / 1e6:7.1f} MB  {delta / run['series']:6.0f} B/series")
    yield "render, cold (new cache)", f"{run['cold']:.3f} s"
    yield "render, after a poll (all new)", f"{run['after_poll']:.3f} s"
    yield "render, cached (median of 5)", f"{run['cached']:.3f} s"
    yield "body", f"{run['bytes'] / 1e6:.1f} MB"
    for level in (1, 6, 9):
        who = " (client_python's)" if level == 9 else ""
        yield f"gzip.compress of the body, level {level}{who}", (
            f"{run[f'gzip{level}']:.3f} s  {run[f'gzip{level}_bytes'] / 1e6:.2f} MB")
    if "web_gzip" in run:
        yield f"web.gzip_exposition, level {web.GZIP_LEVEL} (cached render + gzip)", (
            f"{run['web_gzip']:.3f} s  {run['web_gzip_bytes'] / 1e6:.2f} MB")
    yield "cached scrape with gzip", f"{run['scrape_gzip']:.3f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--icmp", type=int, default=10_000, help="ICMP-only lab machines")
    parser.add_argument("--snmp", type=int, default=1_000, help="SNMP devices (+ their ICMP)")
    parser.add_argument("--distinct", action="store_true", help="device-specific port aliases")
    parser.add_argument("--polls", type=int, default=2,
                        help="polls measured with tracemalloc (the history fills up in 10)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args(argv)
    random.seed(1)
    district = jobs(args.icmp, args.snmp, args.distinct)
    run = measure_rss_and_time(district)
    gc.collect()
    mem = measure_memory(district, max(2, args.polls))
    print(f"store_memory: {args.icmp:,} ICMP + {args.snmp:,} SNMP devices, {len(district):,} "
          f"jobs{' (distinct labels)' if args.distinct else ''}; Python {platform.python_version()}")  # fmt: skip
    table = list(rows(mem, run))
    width = max(len(k) for k, _ in table)
    for key, value in table:
        print(f"  {key:<{width}}  {value}")
    if args.json:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"store_memory-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
        path.write_text(json.dumps({"args": vars(args), "memory": mem, "run": run}, indent=1))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
