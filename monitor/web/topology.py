"""The topology pages: ``/map`` (the switches and their links as server-rendered SVG,
the devices behind each switch by room in ``<details>``) and ``/where?q=`` (the status
page's search box). No JavaScript: the status page's CSP stays as it is.

The map is a tree drawn top-down from the core (the inferred parents of the switches):
a switch is a box coloured by its ping, a link a line labelled at each end with the
port's name and coloured by that port's ``netmon_interface_oper_up`` (grey: unknown).
Device pages get one line ("connected to sw-b2 port 0/3 'Room 204 desk 3'") and
switch pages a table of what is on each port (``_topology_device.html``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from monitor.store.results import ResultStore
from monitor.topology import Topology, Where, effective_parents, sentence
from monitor.web import status

NODE_W, NODE_H, ROW_H, COL_W, MARGIN = 150, 44, 120, 180, 20


@dataclass
class Node:
    name: str
    x: float
    y: float
    state: str
    devices: int


@dataclass
class Link:
    a: str
    b: str
    a_port: str
    b_port: str
    state: str


@dataclass
class SwitchRooms:
    name: str
    rooms: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(devices) for _, devices in self.rooms)


@dataclass
class MapView:
    width: float
    height: float
    nodes: list[Node]
    links: list[Link]
    switches: list[SwitchRooms]
    generated_at: float


def _ping_state(store: ResultStore, name: str) -> str:
    stored = store.get(name, "icmp")
    if stored is None:
        return "unknown"
    return "up" if stored.result.status.success else "down"


def _port_state(store: ResultStore, switch: str, if_index: int | None) -> str:
    stored = store.get(switch, "snmp")
    if stored is None or if_index is None:
        return "unknown"
    for s in stored.result.samples_named("netmon_interface_oper_up"):
        if s.label_dict.get("if_index") == str(if_index):
            return "up" if s.value == 1 else "down"
    return "unknown"


def build_map(topo: Topology, backend: Any) -> MapView:
    """Positions, states and counts for the map (pure of I/O: reads the model and store)."""
    targets = {t.name: t for t in backend.targets()}
    store: ResultStore = backend.store
    parents = topo.inferred_parents()
    switches = sorted(n for n, t in targets.items() if t.role == "switch")
    depth: dict[str, int] = {}
    for name in switches:
        d, node, seen = 0, name, {name}
        while node in parents and parents[node] in targets and targets[parents[node]].role == "switch":
            node = parents[node]
            if node in seen:
                break
            seen.add(node)
            d += 1
        depth[name] = d
    rows: dict[int, list[str]] = {}
    for name in sorted(switches, key=lambda n: (depth[n], parents.get(n, ""), n)):
        rows.setdefault(depth[name], []).append(name)
    widest = max((len(r) for r in rows.values()), default=1)
    width = MARGIN * 2 + max(widest, 1) * COL_W
    where: dict[str, tuple[float, float]] = {}
    for level, names in rows.items():
        offset = (width - len(names) * COL_W) / 2
        for i, name in enumerate(names):
            where[name] = (offset + i * COL_W + (COL_W - NODE_W) / 2, MARGIN + level * ROW_H)
    rooms: dict[str, dict[str, list[tuple[str, str]]]] = {n: {} for n in switches}
    for name, parent in parents.items():
        t = targets.get(name)
        if t is None or t.role == "switch" or parent not in rooms:
            continue
        found = topo.where(name)
        port = found.place.port if found is not None and found.place is not None else ""
        rooms[parent].setdefault(t.labels.get("room", "no room"), []).append((name, port))
    nodes = [Node(n, *where[n], _ping_state(store, n), sum(len(v) for v in rooms[n].values()))
             for n in switches]  # fmt: skip
    links: list[Link] = []
    seen_pairs: set[frozenset[str]] = set()
    for sw in switches:
        for if_index, other in sorted(topo.neighbours(sw).items()):
            pair = frozenset((sw, other))
            if other not in where or pair in seen_pairs:
                continue
            seen_pairs.add(pair)
            back = next((i for i, o in topo.neighbours(other).items() if o == sw), None)
            names_a = topo.switches().get(sw, {}).get("ports", {})
            names_b = topo.switches().get(other, {}).get("ports", {})
            a_port = names_a.get(if_index, {}).get("name") or str(if_index)
            b_port = names_b.get(back, {}).get("name") or (str(back) if back is not None else "")
            states = {_port_state(store, sw, if_index), _port_state(store, other, back)}
            state = "down" if "down" in states else "up" if "up" in states else "unknown"
            links.append(Link(sw, other, a_port, b_port, state))
    height = MARGIN * 2 + (max(rows, default=0) + 1) * ROW_H - (ROW_H - NODE_H)
    grouped = [SwitchRooms(n, sorted((room, sorted(devs)) for room, devs in rooms[n].items()))
               for n in switches if rooms[n]]  # fmt: skip
    return MapView(width, height, nodes, links, grouped, time.time())


def device_lines(topo: Topology, backend: Any, name: str) -> dict[str, Any]:
    """What the device page shows: where the device is plugged in, where its parent
    comes from, and for a switch what is on each of its ports."""
    targets = backend.targets()
    target = next((t for t in targets if t.name == name), None)
    found = topo.where(name)
    parents = effective_parents(targets, topo.inferred_parents())
    on_ports: list[tuple[str, list[str]]] = []
    if target is not None and target.role == "switch":
        ports = topo.switches().get(name, {}).get("ports", {})
        uplinks = topo.uplinks(name)
        for if_index, devices in sorted(topo.on_switch(name).items(), key=lambda kv: kv[0] or 0):
            on_ports.append((ports.get(if_index, {}).get("name") or str(if_index), devices))
        for if_index, other in sorted(uplinks.items()):
            on_ports.append((ports.get(if_index, {}).get("name") or str(if_index), [f"{other} (uplink)"]))
    return {
        "place": found.place if found is not None else None,
        "parent": parents.get(name),
        "on_ports": on_ports,
    }


def _topology(request: web.Request) -> Topology | None:
    topo = getattr(request.app[status.STATUS_BACKEND], "topology", None)
    return topo if isinstance(topo, Topology) else None


async def _map(request: web.Request) -> web.Response:
    env, backend, topo = request.app[status.STATUS_ENV], request.app[status.STATUS_BACKEND], _topology(request)
    if topo is None:
        page = env.get_template("map.html").render(m=None, q="", found=None, answer=None, generated_at=time.time())
        return status._html(page)
    view = await asyncio.to_thread(build_map, topo, backend)
    return status._html(env.get_template("map.html").render(m=view, q="", found=None, answer=None,
                                                            generated_at=view.generated_at))  # fmt: skip


async def _where(request: web.Request) -> web.Response:
    env, topo = request.app[status.STATUS_ENV], _topology(request)
    query = request.query.get("q", "").strip()[:200]
    found: Where | None = topo.where(query) if topo is not None and query else None
    answer = sentence(found) if found is not None else None
    page = env.get_template("map.html").render(m=None, q=query, found=found, answer=answer,
                                               generated_at=time.time())  # fmt: skip
    return status._html(page, status=200 if found is not None or not query else 404)


def add_routes(app: web.Application) -> None:
    """``/map`` and ``/where``; the device page's topology lines (a template global)."""
    env = app[status.STATUS_ENV]

    def topology_of(name: str) -> dict[str, Any] | None:
        backend = app[status.STATUS_BACKEND]
        topo = getattr(backend, "topology", None)
        return device_lines(topo, backend, name) if isinstance(topo, Topology) else None

    env.globals["topology_of"] = topology_of
    app.router.add_get("/map", _map)
    app.router.add_get("/where", _where)
