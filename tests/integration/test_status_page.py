"""The status page end to end: `netmon run` monitors the simulated school (plus a printer
whose recording is full of HTML, a dead switch in a namespace with a lab PC behind it,
and a printer whose SNMP agent is missing) with the demo's day of history filled in
before it starts; the page is fetched over HTTP and checked against the daemon's own
results and history, then rendered by headless Chromium.

Chromium runs twice: once from its command line (the DOM it builds, so no payload
ran), once driven over the DevTools protocol to measure the pages at 1280 and 390 px
(DevTools' own evaluation is not bound by the page's CSP; the page runs no script).

Set NETMON_WRITE_SCREENSHOT=1 to refresh docs/status-page.png, docs/device-page.png
and docs/device-page-phone.png from that run.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import os
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from markupsafe import escape

from monitor.demo import history_fill, simlab
from monitor.demo.school import DEVICES, LAB_RANGE, demo_config
from monitor.web.charts import Scale
from tests import netns as nn
from tests.conftest import need
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
NETMON = Path(sys.executable).parent / "netmon"
HOSTILE = REPO / "tests" / "fixtures" / "hostile"
CHROMIUM = "/usr/bin/chromium"
XSS = "document.title='XSS'"
LAB_SIZE = 12  # LAB_RANGE 127.0.4.10-21
assert LAB_RANGE.endswith("10-127.0.4.21")


def esc(text: str) -> str:
    """Text as jinja2 (markupsafe) escapes it."""
    return str(escape(text))


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status), resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8")
    except OSError:
        return 0, ""


def school_config(port: int, hostile_port: int, dead_switch: str, dead_pc: str) -> str:
    doc = yaml.safe_load(demo_config(port, interval="2s"))
    doc["credentials"]["sim-hostile"] = {"version": "2c", "community": "printer/html-in-strings"}
    doc["groups"] += [
        # Shown in its own site so the README screenshot shows the school first.
        {"name": "hostile", "role": "printer", "modules": ["system", "printer", "interfaces"],
         "labels": {"site": "test-lab"},
         "targets": [{"name": "hostile-printer", "address": "127.0.1.9", "port": hostile_port,
                      "credentials": "sim-hostile"}]},
        # Answers ping, but no SNMP agent listens on its address: degraded.
        {"name": "hall", "role": "printer", "parent": "sw-core", "labels": {"building": "main"},
         "targets": [{"name": "hall-printer", "address": "127.0.1.11", "port": port,
                      "credentials": "sim-library-mfp", "labels": {"room": "hall"}}]},
        {"name": "annex-net", "role": "switch", "probes": ["icmp"],
         "labels": {"building": "annex", "room": "annex-closet"},
         "targets": [{"name": "sw-annex", "address": dead_switch}]},
        {"name": "lab-annex", "role": "lab", "probes": ["icmp"], "parent": "sw-annex",
         "labels": {"building": "annex", "room": "A1"},
         "targets": [{"name": "annex-pc1", "address": dead_pc}]},
    ]  # fmt: skip
    return yaml.safe_dump(doc, sort_keys=False)


def _dead_host(stack: list[Any]) -> str:
    """An address inside a fresh namespace that ignores pings (a switched-off device)."""
    ns_cm = nn.netns("nmst")
    ns = ns_cm.__enter__()
    stack.append(ns_cm)
    link_cm = nn.veth(ns, nn.free_subnet())
    link = link_cm.__enter__()
    stack.append(link_cm)
    ns.sysctl("net.ipv4.icmp_echo_ignore_all", "1")
    return link.inner


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """`netmon run` on the extended school; yields (URL, /api/targets once all results are in)."""
    need(simlab.snmpsim_available())
    need(nn.missing())
    port = simlab.free_udp_port(DEVICES[0].address)
    endpoints = [(d.address, port) for d in DEVICES[1:]]
    hostile_port = simlab.free_udp_port("127.0.1.9")
    stack: list[Any] = []
    workdir = tmp_path_factory.mktemp("status")
    with (
        simlab.start_snmpsim(host=DEVICES[0].address, port=port, extra_endpoints=endpoints),
        simlab.start_snmpsim(HOSTILE, host="127.0.1.9", port=hostile_port,
                             ready_community="printer/html-in-strings"),
    ):  # fmt: skip
        try:
            config = workdir / "netmon.yml"
            config.write_text(
                school_config(port, hostile_port, _dead_host(stack), _dead_host(stack))
            )
            # The demo's past (a day of trends, four weeks of toner), as `make demo` has.
            history_fill.fill(config, now=time.time())
            listen = f"127.0.0.1:{simlab.free_tcp_port()}"
            log_path = workdir / "netmon.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen([str(NETMON), "run", "-c", str(config), "--listen", listen],
                                        stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            url = f"http://{listen}"
            try:
                targets: list[dict[str, Any]] = []

                def complete() -> bool:
                    assert proc.poll() is None, log_path.read_text()[-3000:]
                    code, body = fetch(f"{url}/api/targets")
                    if code != 200:
                        return False
                    targets[:] = json.loads(body)
                    # Each probe's first result (a switch has topology jobs beside them).
                    return all(
                        any(k == p or k.startswith(f"{p}-") for k in t["results"])
                        for t in targets
                        for p in t["probes"]
                    )

                wait_until(complete, 60, "every target's first results")
                yield url, targets
            finally:
                proc.terminate()
                proc.wait(timeout=15)
        finally:
            for cm in reversed(stack):
                cm.__exit__(None, None, None)


SVG = "{http://www.w3.org/2000/svg}"
#: The elements a chart's SVG may hold; a device string never adds one.
SVG_TAGS = ("svg", "title", "desc", "line", "polyline")


def figure(page: str, ident: str) -> ET.Element:
    """One chart of a page, parsed as XML (it is well-formed, or this fails)."""
    found = re.search(rf'<figure class="chart" id="{ident}">.*?</figure>', page, re.DOTALL)
    assert found is not None, f"no {ident} on the page"
    return ET.fromstring(found.group(0).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def cards(page: str) -> dict[str, tuple[str, str]]:
    """device name -> (state, the card's HTML) from the overview."""
    out: dict[str, tuple[str, str]] = {}
    parts = re.split(r'(?=<div class="card )', page)
    for part in parts:
        m = re.match(r'<div class="card [^"]*" data-device="([^"]+)" data-state="(\w+)"', part)
        if m:
            out[html.unescape(m.group(1))] = (m.group(2), part)
    return out


def test_overview_shows_every_device_with_its_state(
    school: tuple[str, list[dict[str, Any]]],
) -> None:
    url, targets = school
    code, page = fetch(f"{url}/")
    assert code == 200
    assert '<meta http-equiv="refresh" content="30">' in page
    assert 'name="viewport"' in page
    found = cards(page)
    for device in DEVICES:
        assert found[device.name][0] in ("up", "attention"), device.name
    # The Brother's black toner is empty: it answers, but it is not a plain green "up".
    assert found["staffroom-printer"][0] == "attention"
    assert "is empty" in found["staffroom-printer"][1]
    assert found["hall-printer"][0] == "degraded"
    assert "snmp:" in found["hall-printer"][1]
    assert found["sw-annex"][0] == "down"
    assert "no reply" in found["sw-annex"][1] or "0 of" in found["sw-annex"][1]
    # Lab machines are rolled up by room, not shown one by one.
    assert not any(name.startswith("lab-204-") for name in found)
    lab = re.search(r'data-lab="204" data-state="(\w+)">.*?<div class="count">(\d+)/(\d+) up',
                    page, re.DOTALL)  # fmt: skip
    assert lab is not None and lab.groups() == ("up", str(LAB_SIZE), str(LAB_SIZE))
    annex = re.search(r'data-lab="A1" data-state="(\w+)">(.*?)</ul>', page, re.DOTALL)
    assert annex is not None and annex.group(1) == "suppressed"
    assert "0/1 up" in annex.group(2)
    assert "unreachable because parent sw-annex is down" in annex.group(2)
    total = len(targets)
    assert f"{total} devices" in page
    answering = len(DEVICES) + LAB_SIZE + 1  # + hostile-printer
    attention = sum(state == "attention" for state, _ in found.values())
    assert f">{answering - attention} up<" in page and ">1 degraded<" in page
    assert f">{attention} need{'s' if attention == 1 else ''} attention<" in page
    assert ">1 down<" in page
    assert ">1 suppressed<" in page and ">0 unknown<" in page
    # Alerting runs inside netmon run: the page lists what /api/alerts has, with reasons.
    code, body = fetch(f"{url}/api/alerts")
    assert code == 200
    code, page = fetch(f"{url}/")  # again, so the page is at least as new as the list
    start = page.index('id="alerts"')
    section = page[start : page.index("<h2>", start)]
    active = [a for a in json.loads(body) if a["state"] in ("pending", "firing")]
    assert "Alerts not configured" not in page
    assert any(a["target"] == "sw-annex" and a["rule"] == "device_down" for a in active), active
    for a in active:
        assert html.escape(a["annotations"]["summary"], quote=False) in section, a
        if a["suppressed_reason"]:
            assert html.escape(a["suppressed_reason"], quote=False) in section


def test_printer_and_switch_details_match_the_store(
    school: tuple[str, list[dict[str, Any]]],
) -> None:
    url, targets = school
    by_name = {t["name"]: t for t in targets}
    found = cards(fetch(f"{url}/")[1])
    for name in ("library-mfp", "staffroom-printer"):
        supplies = by_name[name]["results"]["snmp"]["records"]["supplies"]
        card = found[name][1]
        for s in supplies:
            if s["ratio"] is not None and "toner" in (s["description"] or "").lower():
                assert f"width:{round(100 * s['ratio'])}%" in card, (name, s)
            assert esc(s["level_text"]) in card or "toner" not in str(s).lower()
    # The Brother reports "some remaining" and "empty": words, not numbers.
    staff = found["staffroom-printer"][1]
    assert "some remaining" in staff and "empty" in staff and "nolevel" in staff
    interfaces = by_name["sw-core"]["results"]["snmp"]["records"]["interfaces"]
    ports = [i for i in interfaces if i["type"] == "ethernetCsmacd"]
    up = sum(i["oper"] == "up" for i in ports)
    down = sum(i["oper"] != "up" and i["admin"] == "up" for i in ports)
    assert f"{up} up</b>" in found["sw-core"][1] and f"{down} down</b>" in found["sw-core"][1]


def test_device_page_shows_every_latest_result(school: tuple[str, list[dict[str, Any]]]) -> None:
    url, targets = school
    printer = next(t for t in targets if t["name"] == "staffroom-printer")
    code, page = fetch(f"{url}/device/staffroom-printer")
    assert code == 200
    assert 'data-state="attention"' in page and ">needs attention<" in page
    code, body = fetch(f"{url}/api/targets/staffroom-printer")
    assert code == 200 and json.loads(body)["state"] == "attention"
    for probe, result in printer["results"].items():
        assert f'id="probe-{probe}"' in page
        assert esc(result["explanation"]) in page
        for value in result["facts"].values():
            assert esc(value) in page
    for table, rows in printer["results"]["snmp"]["records"].items():
        if rows:
            assert f'data-table="{table}"' in page
            for row in rows:
                assert esc(str(row.get("description") or row.get("name"))) in page
    code, page = fetch(f"{url}/device/sw-annex")
    assert code == 200 and 'data-state="down"' in page
    assert "timeout" in page and "Nothing answered in time" in page
    code, page = fetch(f"{url}/device/annex-pc1")
    assert "unreachable because parent sw-annex is down" in page
    assert fetch(f"{url}/device/no-such-device")[0] == 404


def test_device_supplied_strings_are_escaped(school: tuple[str, list[dict[str, Any]]]) -> None:
    url, targets = school
    hostile = next(t for t in targets if t["name"] == "hostile-printer")
    snmp = hostile["results"]["snmp"]
    assert XSS in snmp["facts"]["sys_descr"]  # the recording really delivered the payload
    assert XSS in snmp["records"]["alerts"][0]["description"]
    assert any(XSS in (i["alias"] or "") for i in snmp["records"]["interfaces"])
    for path in ("/", "/device/hostile-printer"):
        code, page = fetch(f"{url}{path}")
        assert code == 200
        assert "<script" not in page.lower() and "<img" not in page.lower()
    code, page = fetch(f"{url}/device/hostile-printer")
    for raw in (snmp["facts"]["sys_descr"], snmp["facts"]["sys_name"], snmp["facts"]["location"],
                snmp["records"]["alerts"][0]["description"],
                *(s["description"] for s in snmp["records"]["supplies"]),
                *(i["alias"] for i in snmp["records"]["interfaces"] if i["alias"])):  # fmt: skip
        assert esc(raw) in page, raw
    # Inside the SVG too: the toner chart's title, description, legend and figures
    # name the supplies by the printer's own (hostile) words, as text.
    toner = figure(page, "chart-toner")
    svg = toner.find(f".//{SVG}svg")
    assert svg is not None and not {e.tag for e in svg.iter()} - {f"{SVG}{t}" for t in SVG_TAGS}
    hostile_supplies = [
        s["description"] for s in snmp["records"]["supplies"] if XSS in s["description"]
    ]
    assert hostile_supplies
    desc, legend = (
        svg.findtext(f"{SVG}desc", ""),
        "".join(toner.find(".//div[@class='legend']").itertext()),
    )
    for raw in hostile_supplies:
        assert raw in desc and raw in legend  # parsed back: the text, never elements


def test_svg_points_are_the_stored_points(school: tuple[str, list[dict[str, Any]]]) -> None:
    """The device page's latency chart against /api/history, through the chart's scale."""
    url, _ = school
    page = fetch(f"{url}/device/sw-core")[1]
    svg = figure(page, "chart-latency").find(f".//{SVG}svg")
    assert svg is not None
    scale = Scale(*(float(svg.get(f"data-{k}", "")) for k in ("since", "until", "low", "high")))
    query = f"metric=netmon_icmp_rtt_seconds&probe=icmp&since={scale.since!r}"
    series = json.loads(fetch(f"{url}/api/history/sw-core?{query}")[1])["series"]
    stored = [(t, v) for t, v, _, _ in series[0]["points"] if t < scale.until]
    assert len(stored) > 200  # the filled-in day, every five minutes, then live
    drawn = [tuple(map(float, xy.split(","))) for poly in svg.iter(f"{SVG}polyline")
             for xy in (poly.get("points") or "").split()]  # fmt: skip
    assert drawn == [(scale.x(t), scale.y(v)) for t, v in stored]


# --- headless Chromium ----------------------------------------------------------------


def chromium(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}", *extra, url],
        check=False, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_chromium_renders_the_page_inert(
    school: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    need(None if Path(CHROMIUM).exists() else "needs Chromium (Debian package chromium)")
    url, _ = school
    dom = chromium(tmp_path, f"{url}/", "--dump-dom").stdout
    for device in DEVICES:
        assert f'data-device="{device.name}"' in dom
    assert "<title>netmon status</title>" in dom
    dom = chromium(tmp_path, f"{url}/device/hostile-printer", "--dump-dom").stdout
    # The title would read XSS had any payload run; the DOM holds no script or img element.
    assert "<title>hostile-printer · netmon</title>" in dom, dom[:500]
    assert "<script" not in dom and "<img" not in dom
    assert "&lt;script&gt;document.title='XSS'&lt;/script&gt;" in dom


class Browser:
    """One headless Chromium page driven over the DevTools protocol (a websocket)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        await self._ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            message = await self._ws.receive_json(timeout=60)
            if message.get("id") == self._id:
                assert "error" not in message, (method, message["error"])
                result: dict[str, Any] = message["result"]
                return result

    async def open(self, url: str, width: int, height: int = 900) -> None:
        """Load ``url`` in a ``width`` px wide window (a phone's, with touch, under 600)."""
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=width < 600)  # fmt: skip
        await self.call("Page.navigate", url=url)
        await self.until("document.readyState === 'complete' && !!document.body")

    async def eval(self, expression: str) -> Any:
        found = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in found, found
        return found["result"].get("value")

    async def until(self, expression: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not await self.eval(expression):
            assert time.monotonic() < deadline, f"gave up waiting for {expression}"
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path, width: int, limit: int = 2400) -> None:
        """The whole page (at most ``limit`` px tall) as a PNG."""
        height = min(limit, int(await self.eval("document.documentElement.scrollHeight")))
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=width < 600)  # fmt: skip
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


@asynccontextmanager
async def browser(tmp: Path) -> AsyncIterator[Browser]:
    log = tmp / "chromium.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--remote-debugging-port=0", f"--user-data-dir={tmp / 'cdp'}",
            "about:blank", stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (
            port := re.findall(r"DevTools listening on ws://[\d.]+:(\d+)/", log.read_text())
        ):
            assert proc.returncode is None and time.monotonic() < deadline, log.read_text()[-2000:]
            await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port[0]}/json/list") as resp:
                pages = await resp.json()
            ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
            async with http.ws_connect(ws_url, max_msg_size=0) as ws:
                yield Browser(ws)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)


#: What the page's layout reports: the document's widths, any scroll box whose content
#: is wider than it (a table that would scroll sideways), the port table's text and
#: which of its columns are hidden, each chart's drawn width, and the page's text.
MEASURE = """JSON.stringify({
  page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
  wide: [...document.querySelectorAll('main *')].filter(e => e.scrollWidth > e.clientWidth + 1
        && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
        .map(e => e.tagName + '.' + e.className),
  ports: document.querySelector('table.ports')?.innerText ?? '',
  hidden: [...document.querySelectorAll('table.ports th')].filter(
        th => getComputedStyle(th).display === 'none').map(th => th.innerText),
  charts: [...document.querySelectorAll('figure.chart svg')].map(svg =>
        [svg.closest('figure').id, Math.round(svg.getBoundingClientRect().width)]),
  text: document.body.innerText,
})"""


async def test_pages_fit_a_laptop_and_a_phone_in_human_units(
    school: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    need(None if Path(CHROMIUM).exists() else "needs Chromium (Debian package chromium)")
    url, _ = school
    write = os.environ.get("NETMON_WRITE_SCREENSHOT") == "1"
    paths = ("/", "/device/sw-core", "/device/staffroom-printer", "/device/hostile-printer")
    async with browser(tmp_path) as chrome:
        for width in (1280, 390):
            for path in paths:
                await chrome.open(f"{url}{path}", width)
                got = json.loads(await chrome.eval(MEASURE))
                where = f"{path} at {width} px"
                assert got["page"][0] <= got["page"][1] == width, f"{where} scrolls sideways"
                assert got["wide"] == [], f"{where}: {got['wide']} overflow their boxes"
                assert got["text"].count("XSS") == got["text"].count("document.title='XSS'")
                for ident, drawn in got["charts"]:
                    assert 0 < drawn <= width, (where, ident, drawn)
                if path == "/device/sw-core":
                    # Speeds, rates and totals in words, never raw counters; a phone
                    # keeps port, status and traffic (the recording's counters stand
                    # still: 0 b/s).
                    assert not re.search(r"\d{7,}", got["ports"]), got["ports"][:300]
                    assert re.search(r"\d+(\.\d+)? [kMG]?b/s in / \d", got["ports"])
                    phone = ["speed", "errors", "total in / out"] if width < 600 else []
                    assert got["hidden"] == phone
                    if not phone:
                        assert re.search(r"\t(1|10|100) [MG]b/s\t", got["ports"]), got["ports"]
                        assert re.search(r"\d+(\.\d+)? [kMGT]?B / \d", got["ports"])
                    assert "Latency (ping round trip), last 24 h" in got["text"]
                    assert re.search(r"top of the chart: \d+(\.\d+)? ms", got["text"])
                if path == "/device/staffroom-printer":
                    assert "needs attention" in got["text"].lower()
                if write:
                    name = {"/": "status-page", "/device/sw-core": "device-page"}.get(path)
                    if name is not None and (width == 1280 or path != "/"):
                        shot = REPO / "docs" / f"{name}{'-phone' if width < 600 else ''}.png"
                        await chrome.screenshot(shot, width)
                        assert png_size(shot)[0] == width
