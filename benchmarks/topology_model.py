"""CPU of the topology model at district scale: what each switch's topology result costs.

    .venv/bin/python benchmarks/topology_model.py                 # 1,000 switches, 20,000 PCs
    .venv/bin/python benchmarks/topology_model.py --quick         # 100 switches, 2,000 PCs

No network and no daemon: a core with an ARP table of every device and N access
switches (48 ports: 40 with one PC each... up to ``--pcs``, one uplink to the core), each
with its forwarding table, built as the ``topology`` converter's records; the model
(``monitor.topology.Topology``) ingests every switch once (the first round after a
start), then one more round as the 15-minute polls bring them, and saves the file.
Prints the median and worst ingest, the save, and the file's size.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from monitor.config import InventoryTarget
from monitor.topology import Topology
from probes.result import ProbeResult, Status


def _mac(n: int) -> str:
    return ":".join(f"{b:02x}" for b in (0x3C, 0x52, *n.to_bytes(4, "big")))


def _target(name: str, address: str, role: str) -> InventoryTarget:
    return InventoryTarget(name=name, address=address, port=None, group=role, role=role, labels={},
                           modules=(), probes=("icmp",), credentials=None, credentials_name=None,
                           interval=60.0, parent=None, tcp_ports=())  # fmt: skip


def _ip(n: int) -> str:
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def build(switches: int, pcs: int) -> tuple[list[InventoryTarget], dict[str, ProbeResult]]:
    targets = [_target("sw-core", "10.0.0.1", "switch")]
    results: dict[str, ProbeResult] = {}
    core_links, core_fdb, arp = [], [], []
    per = max(1, pcs // switches)
    pc = 0
    for s in range(switches):
        name, mac = f"sw-{s}", _mac(0xFF000000 + s)
        targets.append(_target(name, _ip(0x100000 + s), "switch"))
        core_links.append({"protocol": "lldp", "if_index": 1000 + s, "port": f"Te1/{s}",
                           "remote_chassis": mac, "remote_name": name, "remote_port": "48",
                           "remote_address": None})  # fmt: skip
        fdb = [{"mac": _mac(0xFE000000), "if_index": 48, "port": "48"}]
        for port in range(1, per + 1):
            pc += 1
            targets.append(_target(f"pc-{pc}", _ip(0x200000 + pc), "lab"))
            arp.append({"ip": _ip(0x200000 + pc), "mac": _mac(pc)})
            fdb.append({"mac": _mac(pc), "if_index": port, "port": str(port)})
            core_fdb.append({"mac": _mac(pc), "if_index": 1000 + s, "port": f"Te1/{s}"})
        ports = [{"if_index": i, "name": str(i), "alias": "", "mac": None} for i in range(1, 49)]
        links = [{"protocol": "lldp", "if_index": 48, "port": "48", "remote_chassis": _mac(0xFE000000),
                  "remote_name": "sw-core", "remote_port": f"Te1/{s}", "remote_address": None}]  # fmt: skip
        results[name] = ProbeResult(Status.OK, "ok", facts={"lldp_chassis_id": mac},
                                    records={"tables": [], "links": links, "fdb": fdb, "ports": ports})  # fmt: skip
    results["sw-core"] = ProbeResult(
        Status.OK, "ok", facts={"lldp_chassis_id": _mac(0xFE000000)},
        records={"tables": [], "links": core_links, "fdb": core_fdb, "arp": arp, "ports": []},
    )
    return targets, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--switches", type=int, default=1000)
    parser.add_argument("--pcs", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="100 switches, 2,000 PCs")
    opts = parser.parse_args()
    if opts.quick:
        opts.switches, opts.pcs = 100, 2000
    targets, results = build(opts.switches, opts.pcs)
    with tempfile.TemporaryDirectory() as tmp:
        topo = Topology(Path(tmp) / "netmon-topology.json")
        topo.set_inventory(targets)
        for round_ in ("first", "second"):
            times = []
            for name, result in results.items():
                started = time.process_time()
                topo.ingest(name, result)
                times.append(time.process_time() - started)
            print(f"{round_} round: {len(times)} ingests, median {statistics.median(times) * 1000:.1f} ms, "
                  f"max {max(times) * 1000:.1f} ms CPU")  # fmt: skip
        started = time.process_time()
        topo.save()
        size = (Path(tmp) / "netmon-topology.json").stat().st_size
        print(f"save: {(time.process_time() - started) * 1000:.0f} ms CPU, {size / 1e6:.1f} MB")
        assert topo.inferred_parents()["pc-1"] == "sw-0"


if __name__ == "__main__":
    main()
