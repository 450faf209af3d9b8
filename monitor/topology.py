"""The topology model: which switch port every device is on, and who depends on whom.

Built from the ``topology`` SNMP module's results (LLDP/CDP neighbours, forwarding
tables, ARP), one switch at a time as results arrive (:meth:`Topology.ingest`, a
result-store listener in the daemon), and kept in a small JSON file next to the alert
state, so ``netmon where`` and a restarted daemon know it at once.

* **Links**: an LLDP/CDP neighbour is matched to an inventory target by chassis ID
  (any MAC that target's own topology reported: LLDP chassis, bridge address, port
  MACs), by system name (the target's name or its LLDP sysName, domain ignored) or by
  management address. A port whose neighbour is an inventory switch is an **uplink**.
* **Attachment** of an end device: its MAC from any ARP table (by its address), then
  every port that learnt that MAC; the edge port is one that is not an uplink and has
  the fewest MACs (a port with one MAC is a wall socket, one with 300 is a trunk).
  First and last seen, the time it came to its current port, and its last moves.
* **Parents**: a device's inferred parent is the switch it is attached to; a switch's
  is the next switch towards the root, the switch with the largest ARP table (the core
  or router; ties: most links, then name). Explicit ``parent:`` always wins
  (:func:`effective_parents`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.config import InventoryTarget, NetmonConfig, resolve_targets
from probes.result import ProbeResult, Sample
from probes.snmp.modules.topology import mac as parse_mac

log = logging.getLogger("netmon.topology")

#: The model's file, next to the alert state file.
TOPOLOGY_FILE = "netmon-topology.json"
#: The record group only the topology SNMP module's results carry (its row counts).
RECORDS = "tables"
#: Moves remembered per device.
MOVES_KEPT = 10
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Place:
    """Where a MAC is plugged in: a switch port (``port`` is its name)."""

    switch: str
    if_index: int | None
    port: str
    alias: str
    #: MACs learnt on that port (1: only this device).
    macs: int
    #: Only seen on uplinks so far (its own switch not polled yet, or not managed).
    uplink: bool = False


@dataclass(frozen=True, slots=True)
class Where:
    """The answer of ``netmon where``: a device, its addresses and its place."""

    name: str | None
    address: str | None
    mac: str | None
    place: Place | None
    since: float | None = None
    first_seen: float | None = None
    last_seen: float | None = None
    moves: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "address": self.address, "mac": self.mac,
            "switch": self.place.switch if self.place else None,
            "if_index": self.place.if_index if self.place else None,
            "port": self.place.port if self.place else None,
            "alias": self.place.alias if self.place else None,
            "macs_on_port": self.place.macs if self.place else None,
            "since": self.since, "first_seen": self.first_seen, "last_seen": self.last_seen,
            "moves": list(self.moves),
        }  # fmt: skip


def _short(name: str | None) -> str:
    return (name or "").split(".", 1)[0].strip().lower()


class Topology:
    """The model of one netmon process; thread-safe (the web server reads it)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._targets: dict[str, InventoryTarget] = {}
        #: switch name -> its last topology result, as plain data (see :meth:`ingest`).
        self._switches: dict[str, dict[str, Any]] = {}
        #: device name -> {switch, if_index, port, mac, since, first_seen, last_seen, moves}
        self._devices: dict[str, dict[str, Any]] = {}
        self._parents: dict[str, str] = {}
        self._saved_at = -float("inf")
        #: Switch tables arrived since the last save (a model nobody fed is not rewritten:
        #: a netmon that fails at start-up leaves the file as it was).
        self._unsaved = False
        if path is not None and path.exists():
            self._load(path)
        self._rebuild()

    # --- input ---

    def set_inventory(self, targets: Iterable[InventoryTarget]) -> bool:
        """The inventory (after start-up or a reload); True when inferred parents changed."""
        with self._lock:
            self._targets = {t.name: t for t in targets}
            return self._rebuild()

    def ingest(self, target: str, result: ProbeResult, at: float | None = None) -> bool:
        """One switch's topology result; True when inferred parents changed. A failed
        poll changes nothing: the switch's last good tables stay (a dead closet switch's
        devices are still known to be behind it)."""
        if not result.status.success:
            return False
        now = time.time() if at is None else at
        records = result.records
        facts = result.facts
        ports = {int(p["if_index"]): {"name": p.get("name") or "", "alias": p.get("alias") or "",
                                      "mac": p.get("mac")}
                 for p in records.get("ports", [])}  # fmt: skip
        macs = {m for m in (facts.get("lldp_chassis_id"), facts.get("bridge_address"),
                            *(p["mac"] for p in ports.values()),
                            *(facts.get("macs") or "").split(", ")) if m}  # fmt: skip
        new = {
            "at": now,
            "sys_name": facts.get("lldp_sys_name"),
            "macs": sorted(macs),
            "ports": ports,
            "links": [dict(link) for link in records.get("links", [])],
            "fdb": [[r["mac"], r.get("if_index"), r.get("port")] for r in records.get("fdb", [])],
            "arp": {r["ip"]: r["mac"] for r in records.get("arp", [])},
        }
        with self._lock:
            old = self._switches.get(target)
            self._switches[target] = new
            self._unsaved = True  # "at" moved at least: the file says when it was seen
            if old is None or any(old[k] != new[k] for k in ("sys_name", "macs", "ports", "links", "arp")):
                return self._rebuild()
            # The usual poll: only the forwarding table moved. Re-place only the
            # devices whose MACs this switch saw (a district: ~1 ms, not ~130).
            self._index(target, old["fdb"], -1)
            self._index(target, new["fdb"], +1)
            touched = {row[0] for row in old["fdb"]} | {row[0] for row in new["fdb"]}
            self._place({n for m in touched for n in self._by_mac.get(m, ())})
            return self._update_parents()

    # --- derived views ---

    def _rebuild(self) -> bool:
        """Recompute links, attachments and parents from the switches' last tables."""
        self._neighbours = self._match_links()
        self._uplinks = {
            (sw, if_index)
            for sw, found in self._neighbours.items()
            for if_index, other in found.items()
            if self._targets.get(other) is not None and self._targets[other].role == "switch"
        }
        self._arp: dict[str, str] = {}
        for sw in sorted(self._switches, key=lambda s: self._switches[s]["at"]):
            self._arp.update(self._switches[sw]["arp"])
        self._learnt: dict[str, list[tuple[str, int | None, str]]] = {}
        self._port_macs: dict[tuple[str, int | None], int] = {}
        for sw, data in self._switches.items():
            self._index(sw, data["fdb"], +1)
        #: MAC -> inventory targets with that MAC in an ARP table (by their address)
        self._by_mac: dict[str, list[str]] = {}
        for name, target in self._targets.items():
            if target.role != "switch" and (mac := self._arp.get(target.address) or self._own_mac(name)):
                self._by_mac.setdefault(mac, []).append(name)
        self._place({n for names in self._by_mac.values() for n in names})
        return self._update_parents()

    def _index(self, switch: str, fdb: list[list[Any]], sign: int) -> None:
        """Add (``sign`` +1) or remove (-1) one switch's forwarding rows in the indexes."""
        for mac, if_index, port in fdb:
            key = (switch, if_index)
            if sign > 0:
                self._learnt.setdefault(mac, []).append((switch, if_index, port))
            else:
                spots = [s for s in self._learnt.get(mac, []) if s[:2] != key]
                if spots:
                    self._learnt[mac] = spots
                else:
                    self._learnt.pop(mac, None)
            self._port_macs[key] = self._port_macs.get(key, 0) + sign

    def _own_mac(self, name: str) -> str | None:
        """A device's own MAC from its own topology result (ifPhysAddress), when no ARP
        table knows its address: the one some switch learnt, else the first."""
        macs = self._switches.get(name, {}).get("macs", [])
        return next((m for m in macs if m in self._learnt), macs[0] if macs else None)

    def _place(self, names: Iterable[str]) -> None:
        """Record where each of these devices is now (a switch's place is its links)."""
        for name in names:
            target = self._targets[name]
            mac = self._arp.get(target.address) or self._own_mac(name)
            if mac is None:
                continue
            place = self.place_of(mac)
            if place is not None:  # seen when that switch's table was read
                self._seen(name, target.address, mac, place, self._switches[place.switch]["at"])

    def _update_parents(self) -> bool:
        parents = self._infer_parents()
        changed = parents != self._parents
        self._parents = parents
        return changed

    def _match_links(self) -> dict[str, dict[int, str]]:
        """switch -> {local ifIndex: neighbour target name} for neighbours in the inventory."""
        by_mac: dict[str, str] = {}
        for sw, data in self._switches.items():
            for m in data["macs"]:
                by_mac.setdefault(m, sw)
        by_name: dict[str, str] = {}
        by_address: dict[str, str] = {}
        for name, t in self._targets.items():
            by_name.setdefault(_short(name), name)
            by_address.setdefault(t.address, name)
        for sw, data in self._switches.items():
            if data.get("sys_name"):
                by_name.setdefault(_short(data["sys_name"]), sw)
        out: dict[str, dict[int, str]] = {}
        for sw, data in self._switches.items():
            for link in data["links"]:
                other = (
                    by_mac.get(link.get("remote_chassis") or "")
                    or by_address.get(link.get("remote_address") or "")
                    or by_name.get(_short(link.get("remote_name")))
                    or by_mac.get(link.get("remote_port") or "")
                )
                if other and other != sw and link.get("if_index") is not None:
                    out.setdefault(sw, {})[int(link["if_index"])] = other
        return out

    def place_of(self, mac: str) -> Place | None:
        """The edge port of ``mac``: learnt there, not an uplink, fewest MACs."""
        spots = self._learnt.get(mac, [])
        if not spots:
            return None
        edge = [s for s in spots if (s[0], s[1]) not in self._uplinks]
        sw, if_index, port = min(edge or spots,
                                 key=lambda s: (self._port_macs.get((s[0], s[1]), 0), s[0]))  # fmt: skip
        info = self._switches[sw]["ports"].get(if_index, {}) if if_index is not None else {}
        return Place(sw, if_index, info.get("name") or port or "", info.get("alias") or "",
                     self._port_macs.get((sw, if_index), 0), uplink=not edge)  # fmt: skip

    def _seen(self, name: str, address: str, mac: str, place: Place, now: float) -> None:
        rec = self._devices.get(name)
        where = {"switch": place.switch, "if_index": place.if_index, "port": place.port,
                 "uplink": place.uplink}  # fmt: skip
        if rec is None:
            self._devices[name] = {**where, "mac": mac, "address": address, "since": now,
                                   "first_seen": now, "last_seen": now, "moves": []}  # fmt: skip
            return
        if (rec["switch"], rec["if_index"]) != (place.switch, place.if_index):
            if not rec.get("uplink"):  # from an uplink to its edge port is no move
                move = {"at": now, "from": f"{rec['switch']} {rec['port']}",
                        "to": f"{place.switch} {place.port}"}  # fmt: skip
                rec["moves"] = [*rec["moves"], move][-MOVES_KEPT:]
            rec.update(where, since=now)
        rec.update(mac=mac, address=address, last_seen=now)

    def _infer_parents(self) -> dict[str, str]:
        switches = [n for n, t in self._targets.items() if t.role == "switch"]
        graph: dict[str, set[str]] = {n: set() for n in switches}
        for sw, found in self._neighbours.items():
            for other in found.values():
                if sw in graph and other in graph:
                    graph[sw].add(other)
                    graph[other].add(sw)
        parents: dict[str, str] = {}
        seen: set[str] = set()

        def weight(n: str) -> tuple[int, int, str]:
            data = self._switches.get(n, {})
            return (-len(data.get("arp", {})), -len(graph[n]), n)

        for root in sorted((n for n in graph if graph[n]), key=weight):
            if root in seen:
                continue
            seen.add(root)
            frontier = [root]
            while frontier:
                nxt = []
                for node in frontier:
                    for other in sorted(graph[node]):
                        if other not in seen:
                            seen.add(other)
                            parents[other] = node
                            nxt.append(other)
                frontier = nxt
        for name, rec in self._devices.items():
            if name in self._targets and rec["switch"] in self._targets:
                parents[name] = rec["switch"]
        return parents

    # --- queries ---

    def inferred_parents(self) -> dict[str, str]:
        with self._lock:
            return dict(self._parents)

    def uplinks(self, switch: str) -> dict[int, str]:
        """The switch's uplink ports: ifIndex -> the inventory switch on the other end."""
        with self._lock:
            return {i: o for i, o in self._neighbours.get(switch, {}).items()
                    if (switch, i) in self._uplinks}  # fmt: skip

    def neighbours(self, switch: str) -> dict[int, str]:
        with self._lock:
            return dict(self._neighbours.get(switch, {}))

    def switches(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._switches.items()}

    def on_switch(self, switch: str) -> dict[int | None, list[str]]:
        """Inventory devices attached to each port of ``switch``."""
        with self._lock:
            out: dict[int | None, list[str]] = {}
            for name, rec in sorted(self._devices.items()):
                if rec["switch"] == switch and name in self._targets:
                    out.setdefault(rec["if_index"], []).append(name)
            return out

    def where(self, query: str) -> Where | None:
        """A device by inventory name, IP address or MAC (any common spelling)."""
        with self._lock:
            target = self._targets.get(query) or next(
                (t for t in self._targets.values() if t.address == query), None)
            if target is not None:
                rec = self._devices.get(target.name)
                if rec is None:
                    return Where(target.name, target.address, self._arp.get(target.address), None)
                place = self.place_of(rec["mac"])
                return Where(target.name, target.address, rec["mac"], place, rec["since"],
                             rec["first_seen"], rec["last_seen"], tuple(rec["moves"]))  # fmt: skip
            mac = parse_mac(query) or self._arp.get(query)
            if mac is None:
                return None
            owner = next((n for n, r in self._devices.items() if r["mac"] == mac), None)
            if owner is not None and owner in self._targets:
                return self.where(owner)
            address = query if query in self._arp else next(
                (ip for ip, m in self._arp.items() if m == mac), None)
            place = self.place_of(mac)
            if place is None and address is None:
                return None
            return Where(None, address, mac, place)

    # --- persistence ---

    def save(self, every: float = 0.0) -> None:
        """Write the model atomically (a crash leaves the old file, never half a file);
        with ``every``, at most once in that many seconds (a district's file is ~10 MB:
        the daemon saves once a minute and at exit, not after each switch)."""
        if self.path is None or not self._unsaved:
            return
        now = time.monotonic()
        if every and now - self._saved_at < every:
            return
        self._saved_at = now
        with self._lock:
            doc = {"format": FORMAT, "saved_at": time.time(), "switches": self._switches,
                   "devices": self._devices}  # fmt: skip
            text = json.dumps(doc, sort_keys=True)
            self._unsaved = False
        tmp: str | None = None
        try:  # a cache: a full or read-only disk costs a log line, never the service
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".topology-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write the topology to %s: %s", self.path, exc.strerror or exc)
            self._unsaved = True
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def _load(self, path: Path) -> None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}")
            switches = doc["switches"]
            for data in switches.values():
                data["ports"] = {int(k): v for k, v in data["ports"].items()}
            self._switches, self._devices = switches, doc["devices"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring the topology file %s (%s); it is rebuilt as switches answer",
                        path, exc)  # fmt: skip


def effective_parents(
    targets: Iterable[InventoryTarget], inferred: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """target -> (parent, source): ``config`` when written, ``topology`` when inferred
    (only for targets whose parent is ``auto``, the default)."""
    out: dict[str, tuple[str, str]] = {}
    for t in targets:
        if t.parent:
            out[t.name] = (t.parent, "config")
        elif t.auto_parent and t.name in inferred:
            out[t.name] = (inferred[t.name], "topology")
    return out


def topology_path(state_file: Path) -> Path:
    """The model's file for an alert state file (the same directory)."""
    return state_file.with_name(TOPOLOGY_FILE)


def for_config(cfg: NetmonConfig, config_path: Path) -> Topology:
    """The model as the daemon of this config last saved it (read-only use: the CLI)."""
    from alerts.service import state_path

    topo = Topology(topology_path(state_path(cfg.alerts, Path(config_path).resolve().parent)))
    topo.set_inventory(resolve_targets(cfg))
    return topo


#: Store name of each switch's derived port roles (uplinks, quiet access ports), put
#: next to its SNMP result so the alert rules and /metrics see both together.
PORTS = "topology-ports"


def port_samples(
    topo: Topology,
    switch: str,
    targets: Mapping[str, InventoryTarget],
    asleep: Callable[[InventoryTarget], bool],
) -> list[Sample]:
    """``netmon_interface_uplink`` for each uplink of ``switch`` and
    ``netmon_interface_quiet`` for each access port whose devices (those of the inventory)
    are all lab machines ``asleep`` (outside their schedule)."""
    names = {i: p.get("name") or str(i) for i, p in topo.switches().get(switch, {}).get("ports", {}).items()}
    out = [
        Sample.of("netmon_interface_uplink", 1, if_index=i, if_name=names.get(i, str(i)), neighbour=other)
        for i, other in sorted(topo.uplinks(switch).items())
    ]
    for if_index, devices in sorted(topo.on_switch(switch).items(), key=lambda kv: kv[0] or 0):
        found = [targets[n] for n in devices if n in targets]
        if if_index is not None and found and all(t.role == "lab" and asleep(t) for t in found):
            out.append(Sample.of("netmon_interface_quiet", 1, if_index=if_index,
                                 if_name=names.get(if_index, str(if_index))))  # fmt: skip
    return out


def _ago(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _when(at: float, now: float) -> str:
    moment = datetime.fromtimestamp(at)
    return moment.strftime("%H:%M") if now - at < 86400 else moment.strftime("%Y-%m-%d %H:%M")


def sentence(found: Where, now: float | None = None) -> str:
    """``lab-204-12 (10.1.4.12, 3c:52:82:…) is on sw-b2 port 0/12 'Room 204 desk 3' since
    08:12, seen 3 min ago``."""
    now = time.time() if now is None else now
    who = found.name or found.address or found.mac
    ids = ", ".join(x for x in (found.address if found.name else None, found.mac) if x and x != who)
    head = f"{who} ({ids})" if ids else who
    if found.place is None:
        return f"{head}: not seen in any switch's forwarding table yet"
    place = found.place
    text = f"{head} is on {place.switch} port {place.port}"
    if place.alias:
        text += f" '{place.alias}'"
    if place.uplink:
        text += " (only seen on an uplink: the switch behind it is not polled)"
    if found.since:
        text += f" since {_when(found.since, now)}"
    if found.last_seen:
        text += f", seen {_ago(now - found.last_seen)}"
    return text
