"""The history JSON API and the device page's trends over HTTP: a real aiohttp server on
loopback, a real result store feeding a real history store (SQLite file)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from monitor.store.history import HistorySettings, HistoryStore
from monitor.web.server import create_app
from monitor.web.status import CSP
from probes.result import ProbeResult, Status
from tests.unit.test_charts import icmp, snmp
from tests.unit.test_status_view import Backend as StatusBackend
from tests.unit.test_status_view import target

HOSTILE = "<img src=x onerror=alert(1)>"  # a target name (no "/": it is a path segment)


class Backend(StatusBackend):
    """The parts of netmon run's Monitor the web side reads; ``history`` may be None."""

    def __init__(self, history: HistoryStore | None) -> None:
        mfp = target("mfp", "printer", probes=("icmp", "snmp"), room="office")
        super().__init__([mfp, target(HOSTILE, "printer")])
        self.history = history


@pytest.fixture
async def filled(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Backend, float]]:
    """Two hours of one-a-minute ICMP results of mfp (a 20-minute outage in the middle)."""
    history = HistoryStore(tmp_path / "history.db", HistorySettings())
    history.start(background=False)
    backend = Backend(history)
    backend.store.subscribe(history.record)
    start = time.time() - 7200
    for i in range(120):
        result = icmp(start + 60 * i, 0.0003 + 0.00001 * i, 0.0)
        if 50 <= i < 70:
            result = ProbeResult(Status.TIMEOUT, "no reply", probe="icmp", target="mfp",
                                 started_at=start + 60 * i, duration_seconds=0.0)  # fmt: skip
        backend.store.put(result, {}, 60.0)
    history.flush()
    async with TestClient(TestServer(create_app(backend))) as client:  # type: ignore[arg-type]
        yield client, backend, start
    history.close()


async def get_json(client: TestClient, path: str, status: int = 200) -> Any:
    resp = await client.get(path)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    return await resp.json()


async def test_history_api_serves_the_stored_points(
    filled: tuple[TestClient, Backend, float],
) -> None:
    client, backend, start = filled
    assert backend.history is not None
    body = await get_json(
        client, "/api/history/mfp?probe=icmp&metric=netmon_icmp_rtt_seconds&since=3h"
    )
    stored = backend.history.series("mfp", "netmon_icmp_rtt_seconds", probe="icmp",
                                    since=time.time() - 3 * 3600)  # fmt: skip
    assert len(body["series"]) == 1 and body["series"][0]["step"] == 0
    points = body["series"][0]["points"]
    assert len(points) == 100  # the outage's failed runs have no RTT
    assert points == [[p.t, p.value, p.min, p.max] for p in stored[0].points]
    assert body["until"] - body["since"] == pytest.approx(3 * 3600, abs=5)

    catalog = await get_json(client, "/api/history/mfp")
    assert sorted((s["probe"], s["metric"]) for s in catalog["series"]) == [
        ("icmp", "netmon_icmp_packet_loss_ratio"), ("icmp", "netmon_icmp_rtt_seconds"),
    ]  # fmt: skip
    since = start + 3600 - 1  # a Unix time works too
    body = await get_json(client, f"/api/history/mfp?metric=netmon_icmp_rtt_seconds&since={since}")
    assert len(body["series"][0]["points"]) == 50  # runs 60-119, less 60-69 (the outage)
    assert (await get_json(client, "/api/history/nope", 404))["error"] == "no target named 'nope'"
    error = (await get_json(client, "/api/history/mfp?since=yesterday", 400))["error"]
    assert "neither a duration (90m, 24h, 7d, 2w) nor a Unix time" in error
    assert "step" in (await get_json(client, "/api/history/mfp?metric=x&step=60", 400))["error"]


async def test_availability_api_and_the_device_page(
    filled: tuple[TestClient, Backend, float],
) -> None:
    client = filled[0]
    body = await get_json(client, "/api/availability?since=7d&by=device")
    rows = {r["key"]: r for r in body["rows"]}
    # netmon (this history store) started after the results it was given: all of the
    # recorded past is "unknown", nothing is invented as up or down.
    assert rows["mfp"]["up_seconds"] + rows["mfp"]["down_seconds"] <= 60
    assert [o["target"] for o in body["outages"]] == ["mfp"]
    assert body["outages"][0]["duration_seconds"] == pytest.approx(1200, abs=61)
    rooms = await get_json(client, "/api/availability?by=room")
    assert [r["key"] for r in rooms["rows"]] == ["main/office"]  # building/room
    assert "by=" in (await get_json(client, "/api/availability?by=building", 400))["error"]

    resp = await client.get("/device/mfp")
    page = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Security-Policy"] == CSP
    assert 'id="chart-latency"' in page and 'id="chart-loss"' in page
    resp = await client.get(f"/device/{HOSTILE}")
    page = await resp.text()
    assert "<img" not in page and "No history yet" in page


async def test_history_off(tmp_path: Path) -> None:
    backend = Backend(None)
    async with TestClient(TestServer(create_app(backend))) as client:  # type: ignore[arg-type]
        for path in ("/api/history/mfp?metric=netmon_icmp_rtt_seconds", "/api/availability"):
            assert "history is off" in (await get_json(client, path, 503))["error"]
        # Rates come from the two latest walks instead (the app follows the result store).
        now = time.time()
        backend.store.put(snmp(now - 65, 0.5, 0), {}, 300.0)
        backend.store.put(snmp(now - 5, 0.5, 7_500_000), {}, 300.0)
        resp = await client.get("/device/mfp")
        page = await resp.text()
        assert "History is off" in page
        assert "<span>1 Mb/s in</span> / <span>250 kb/s out</span>" in page
