"""Login abuse and hostile HTTP input against a real ``netmon run`` on loopback.

- A burst of wrong passwords (200 in 10 s, issue 16 item 6) is limited per client
  network with 429 and ``Retry-After``, costs a bounded number of bcrypt checks, and
  leaves scheduled probing and ``/metrics`` for the right password going.
- Hostile requests (long and odd query strings, NUL bytes, bad UTF-8, path tricks, bad
  headers; item 7) on every route of the app's router get a 4xx or a harmless 200,
  never a 500, and never a traceback in the log. They are sent as raw bytes over a
  socket, so nothing between the test and the server tidies them up.

BasicAuth's admission rules (concurrent checks, the known-credential lane) are tested
on the object itself with real bcrypt at the end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import bcrypt

from monitor.demo import simlab
from monitor.web.ratelimit import FAILURE_BURST, FAILURE_RATE, FailureLimiter
from monitor.web.server import (
    AUTH_CACHE_SECONDS,
    AUTH_MAX_WAITING,
    BasicAuth,
    WebBackend,
    create_app,
)
from tests.exposition import parse
from tests.waiting import wait_until

NETMON = Path(sys.executable).parent / "netmon"
PASSWORD = "scrape-secret-7781"
GRAFANA_PASSWORD = "grafana-secret-2290"
INTERVAL = 1.0
TARGETS = ("web-1", "web-2", "web-3")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


RIGHT = basic("prometheus", PASSWORD)


@dataclass
class Netmon:
    url: str
    host: str
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _get(url: str, auth: str | None = RIGHT) -> tuple[int, str]:
    headers = {"Authorization": auth} if auth else {}
    try:
        req = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except OSError:
        return 0, ""


@contextmanager
def netmon_run(workdir: Path, *, allow_any: bool = False) -> Iterator[Netmon]:
    """`netmon run` with basic auth (bcrypt cost 10, as `htpasswd -nBC 10` makes) probing
    three TCP listeners every second; yields once every target has a result."""
    with ExitStack() as stack:
        addresses = [f"127.0.5.{i}" for i in range(1, len(TARGETS) + 1)]
        ports = [
            stack.enter_context(socket.create_server((address, 0))).getsockname()[1]
            for address in addresses
        ]
        targets = "".join(
            f"  - {{name: {name}, role: server, probes: [tcp], tcp_ports: [{port}], "
            f"targets: [{{name: {name}, address: {address}}}]}}\n"
            for name, address, port in zip(TARGETS, addresses, ports, strict=True)
        )
        config = workdir / "netmon.yml"
        config.write_text(
            f"defaults:\n  interval: {INTERVAL:.0f}s\n  tcp: {{timeout: 1s}}\ngroups:\n{targets}"
            f"server:\n  allow_any_probe_target: {str(allow_any).lower()}\n"
        )
        hashes = {
            user: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=10)).decode()
            for user, pw in (("prometheus", PASSWORD), ("grafana", GRAFANA_PASSWORD))
        }
        web = workdir / "web.yml"
        web.write_text(
            "basic_auth_users:\n" + "".join(f"  {u}: '{h}'\n" for u, h in hashes.items())
        )
        port = simlab.free_tcp_port()
        log_path = workdir / "netmon.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(NETMON), "run", "-c", str(config), "--listen", f"127.0.0.1:{port}",
                 "--web-config", str(web)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:

            def all_results() -> bool:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                code, body = _get(f"{url}/api/targets")
                return code == 200 and all(t["results"] for t in json.loads(body))

            wait_until(all_results, 30, "netmon run's first results")
            yield Netmon(url, "127.0.0.1", port, log_path)
        finally:
            simlab.stop_process(proc, timeout=15)


# --- login abuse ----------------------------------------------------------------------


async def _attempt(http: aiohttp.ClientSession, url: str, auth: str) -> tuple[int, str | None]:
    async with http.get(f"{url}/metrics", headers={"Authorization": auth}) as resp:
        await resp.read()
        return resp.status, resp.headers.get("Retry-After")


async def test_a_burst_of_wrong_passwords_is_limited_and_probing_stays_on_time(
    tmp_path: Path,
) -> None:
    """200 wrong passwords in 10 s from 127.0.0.1 (20 at once, once a second), while
    "Prometheus" scrapes from the same address with the right one."""
    with netmon_run(tmp_path) as nm:
        attempts: list[tuple[int, str | None]] = []
        scrapes: list[int] = []
        runs: dict[str, set[float]] = {name: set() for name in TARGETS}
        ages: list[float] = []
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def scraper(http: aiohttp.ClientSession) -> None:
            while not stop.is_set():
                async with http.get(f"{nm.url}/metrics", headers={"Authorization": RIGHT}) as r:
                    scrapes.append(r.status)
                    assert "netmon_probe_success" in await r.text()
                async with http.get(f"{nm.url}/api/targets", headers={"Authorization": RIGHT}) as r:
                    for target in await r.json():
                        for result in target["results"].values():
                            runs[target["name"]].add(result["started_at"])
                            ages.append(result["age_seconds"])
                await asyncio.sleep(0.5)

        async with aiohttp.ClientSession() as http, aiohttp.ClientSession() as attacker:
            started = time.monotonic()
            watch = asyncio.create_task(scraper(http))
            for wave in range(10):
                tick = loop.time()
                attempts += await asyncio.gather(*(
                    _attempt(attacker, nm.url, basic("prometheus", f"guess-{wave}-{i}"))
                    for i in range(20)
                ))  # fmt: skip
                await asyncio.sleep(max(0.0, 1.0 - (loop.time() - tick)))
            elapsed = time.monotonic() - started
            stop.set()
            await watch

            # Another client network has a bucket of its own ...
            other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(connector=other) as elsewhere:
                answer = await _attempt(elsewhere, nm.url, basic("prometheus", "wrong"))
                assert answer == (401, None)
            # ... and a first login from the limited address waits like a guess would:
            # telling it apart from one needs the bcrypt check the limit is there to save.
            status, _ = await _attempt(attacker, nm.url, basic("grafana", GRAFANA_PASSWORD))
            assert status == 429
            async with http.get(f"{nm.url}/metrics", headers={"Authorization": RIGHT}) as resp:
                assert resp.status == 200
                after = parse(await resp.text())
        log = nm.log_text()

    statuses = [s for s, _ in attempts]
    assert len(statuses) == 200 and set(statuses) <= {401, 429}, set(statuses)
    checked = statuses.count(401)  # each one a bcrypt check
    assert 1 <= checked <= FAILURE_BURST + math.ceil(FAILURE_RATE * elapsed) + 1, checked
    limited = [retry for status, retry in attempts if status == 429]
    assert limited and all(
        r is not None and r.isdigit() and 1 <= int(r) <= math.ceil(1 / FAILURE_RATE)
        for r in limited
    ), set(limited)
    # The right password from the same address was answered throughout.
    assert len(scrapes) >= 10 and set(scrapes) == {200}
    # Probing went on: every target got fresh results during the burst.
    for name, seen in runs.items():
        assert len(seen) >= elapsed / INTERVAL / 2, (name, len(seen), elapsed)
    assert max(ages) < 5 * INTERVAL, max(ages)
    # The counters say what happened, one log line says who is limited, no secrets.
    failures = after["netmon_web_auth_failures_total"]
    assert failures == [({}, float(checked + 1))]
    rate_limited = {lbl["reason"]: v for lbl, v in after["netmon_web_auth_rate_limited_total"]}
    assert sum(rate_limited.values()) == len(limited) + 1
    assert log.count("too many failed logins from 127.0.0.1") == 1, log[-3000:]
    assert "127.0.0.2" not in log
    for secret in (PASSWORD, GRAFANA_PASSWORD, "guess-"):
        assert secret not in log
    assert "Traceback" not in log


# --- hostile input --------------------------------------------------------------------


class _NoBackend:
    """Enough of a backend to build the app and read its router."""


def routes() -> list[tuple[str, str]]:
    """(method, path) of every route the real app serves, ``{name}`` filled in."""
    app = create_app(cast(WebBackend, _NoBackend()))
    out = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path = re.sub(r"\{[^}]+\}", TARGETS[0], route.resource.canonical)  # type: ignore[union-attr]
        out.append((route.method, path))
    return out


QUERIES = [
    b"?" + b"a" * 7000,
    b"?" + b"a=1&" * 1500,
    b"?target=" + b"x" * 7000,
    b"?target=%00", b"?target=web-1%00", b"?target=web-1%0d%0aX-Injected:%201",
    b"?target=%ff%fe", b"?target=%c3%28", b"?target=%ed%a0%80", b"?target=%F0%9F%92%A9",
    b"?%", b"?target=%zz", b"?&&&==&", b"?target=web-1&target=web-2",
    b"?target=../../etc/passwd", b"?target=..%2f..%2fetc%2fpasswd", b"?target=web-1;id",
    b"?target=127.0.0.1:%C2%B2", b"?target=127.0.0.1:99999", b"?target=[::1]:0",
    b"?target=web-1&probe=%00", b"?target=web-1&probe=" + b"p" * 3000,
    b"?target=web-1&module=%00%ff", b"?target=web-1&module=../../x",
    b"?target=web-1&probe=tcp&module=" + b"m" * 500,
]  # fmt: skip
#: Raw bytes the HTTP parser itself refuses (answered 400 before any handler runs).
RAW_QUERIES = [b"?target=\x00", b"?target=\xff\xfe", b"?module=\xc3\x28", b"?a=\x7f", b"?a b=c"]
PATH_TRICKS = [
    b"/..", b"/%2e%2e", b"/%2e%2e/%2e%2e/etc/passwd", b"/../../../etc/passwd", b"//",
    b"/.", b"/%2e", b"\\..\\", b"%5c..%5c", b"%2f..%2f", b"%2F", b"/%00", b"%00", b"/%ff",
    b"/\xff", b"/%c0%ae%c0%ae/", b";x=1", b"/" + b"a" * 7000,
]  # fmt: skip
PATH_PREFIXES = [b"//", b"/./", b"/api/../", b"/%2e/", b"/%2F"]


def _auth_line(value: bytes) -> bytes:
    return b"Authorization: " + value + b"\r\n"


RIGHT_LINE = _auth_line(RIGHT.encode())
LONG_AUTH = _auth_line(b"Basic " + b"A" * 9000)  # over aiohttp's 8 KiB line limit
HEADER_TRICKS = [
    _auth_line(b"Basic \xff\xfe"),
    _auth_line(b"Basic " + base64.b64encode(b"\xff:\x00")),
    _auth_line(b"Basic " + base64.b64encode(b"prometheus:\xff\xfe")),
    _auth_line(b"Basic " + base64.b64encode(b"prometheus")),  # no colon
    _auth_line(b"Basic " + base64.b64encode(b"prometheus:" + b"x" * 5000)),
    _auth_line(b"Basic !!!notbase64"),
    _auth_line(b"Bearer abc"),
    _auth_line(b"\xc3\xa9 \xff"),
    _auth_line(b""),
    LONG_AUTH,
    RIGHT_LINE + b"Accept-Encoding: \xff gzip;q=nan, *;q=-1\r\n",
    RIGHT_LINE + b"Accept-Encoding: " + b"gzip," * 1500 + b"\r\n",
    RIGHT_LINE + b"X-Nul: a\x00b\r\n",
    RIGHT_LINE + b"".join(b"X-%d: y\r\n" % i for i in range(200)),
    RIGHT_LINE + b"Content-Length: 99999999999999999999\r\n",
    RIGHT_LINE + b"Content-Length: -1\r\n",
    RIGHT_LINE + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
    RIGHT_LINE + b"Host: \xff\r\n",
    RIGHT_LINE + b"X-Forwarded-For: 127.0.0.9\r\nForwarded: for=127.0.0.9\r\n",
]
REQUEST_LINES = [
    b"GET * HTTP/1.1", b"OPTIONS * HTTP/1.1", b"GET metrics HTTP/1.1",
    b"GET http://127.0.0.1/metrics HTTP/1.1", b"GET http://x:99999/metrics HTTP/1.1",
    b"GET /metrics HTTP/9.9", b"G\x00T /metrics HTTP/1.1", b"BREW /metrics HTTP/1.1",
    b"TRACE /metrics HTTP/1.1", b"CONNECT 127.0.0.1:22 HTTP/1.1", b"GET /metrics",
    b"GET /metrics HTTP/1.1 extra",
]  # fmt: skip


def exchange(host: str, port: int, request: bytes) -> bytes:
    """Send ``request`` as written; the whole answer (the server closes after it)."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    match = re.match(rb"HTTP/\d\.\d (\d{3}) ", answer)
    return int(match.group(1)) if match else 0


def test_hostile_requests_on_every_route_get_4xx_never_500_or_a_traceback(
    tmp_path: Path,
) -> None:
    served = routes()
    assert {p for _, p in served} >= {
        "/metrics", "/probe", "/-/healthy", "/-/ready", "/-/reload", "/api/targets",
        f"/api/targets/{TARGETS[0]}", "/api/alerts", "/", f"/device/{TARGETS[0]}",
    }  # fmt: skip
    requests: list[bytes] = []

    def add(line: bytes, headers: bytes = RIGHT_LINE) -> None:
        requests.append(line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers + b"\r\n")

    for method, path in served:
        other = b"POST" if method == "GET" else b"GET"
        for verb in (method.encode(), other):
            for query in [b"", *QUERIES, *RAW_QUERIES]:
                add(verb + b" " + path.encode() + query + b" HTTP/1.1")
        for trick in PATH_TRICKS:
            add(method.encode() + b" " + path.encode() + trick + b" HTTP/1.1")
        for prefix in PATH_PREFIXES:
            add(method.encode() + b" " + prefix + path.encode().lstrip(b"/") + b" HTTP/1.1")
    for path in (b"/metrics", b"/probe?target=web-1", b"/-/healthy", b"/"):
        for headers in HEADER_TRICKS:
            add(b"GET " + path + b" HTTP/1.1", headers)
        add(b"GET " + path + b" HTTP/1.1", b"")  # no credentials at all
    for line in REQUEST_LINES:
        add(line)
    add(b"GET /probe?target=web-1 HTTP/1.1")  # the harmless baseline

    with netmon_run(tmp_path, allow_any=True) as nm:
        answers = [exchange(nm.host, nm.port, request) for request in requests]
        statuses = [status_of(answer) for answer in answers]
        # Still serving afterwards.
        assert _get(f"{nm.url}/-/healthy", auth=None)[0] == 200
        code, text = _get(f"{nm.url}/metrics")
        assert code == 200 and "netmon_probe_success" in text
        log = nm.log_text()

    bad = [
        (status, request[:100], answer[-200:])
        for status, request, answer in zip(statuses, requests, answers, strict=True)
        if not (200 <= status < 300 or 400 <= status < 500)
    ]
    assert not bad, f"{len(bad)} of {len(requests)} requests: {bad[:5]}"
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log, log[-3000:]
    assert "Error handling request" not in log
    assert base64.b64encode(b"prometheus:" + b"x" * 5000).decode()[:40] not in log
    assert "A" * 100 not in log  # aiohttp would quote the over-long header
    assert PASSWORD not in log

    by_request = dict(zip(requests, answers, strict=True))

    def answer_to(line: bytes, headers: bytes = RIGHT_LINE) -> bytes:
        request = line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers + b"\r\n"
        return by_request[request]

    # A few answers in detail: the handlers' own checks, not only the parser's.
    for query in (b"?target=%00", b"?target=%ff%fe", b"?target=web-1%0d%0aX-Injected:%201",
                  b"?target=127.0.0.1:%C2%B2", b"?target=" + b"x" * 7000):  # fmt: skip
        answer = answer_to(b"GET /probe" + query + b" HTTP/1.1")
        assert status_of(answer) == 400, (query, answer)
        assert b"is neither a target name nor an address" in answer
        assert b"X-Injected" not in answer.partition(b"\r\n\r\n")[0]
    assert status_of(answer_to(b"GET /probe?target=web-1&module=%00%ff HTTP/1.1")) == 400
    answer = answer_to(b"GET /probe?target=web-1&probe=" + b"p" * 3000 + b" HTTP/1.1")
    assert status_of(answer) == 400 and len(answer) < 1000  # the value is not echoed whole
    assert status_of(answer_to(b"GET /metrics HTTP/1.1", _auth_line(b"Basic \xff\xfe"))) == 401
    assert status_of(answer_to(b"GET /metrics HTTP/1.1", LONG_AUTH)) == 400
    assert status_of(answer_to(b"GET /api/targets/%2e%2e HTTP/1.1")) == 404
    assert status_of(answer_to(b"GET /probe?target=web-1 HTTP/1.1")) == 200


# --- BasicAuth's admission rules, on the object --------------------------------------


def _users() -> dict[str, bytes]:
    return {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4))}


async def test_concurrent_wrong_attempts_from_one_address_cost_one_burst_of_checks() -> None:
    """100 at once: each takes a token before bcrypt runs, so only a burst's worth run."""
    auth = BasicAuth(_users(), limiter=FailureLimiter(burst=10, rate=0.001), max_waiting=1000)
    try:
        verdicts = await asyncio.gather(*(
            auth.verify(basic("prometheus", f"guess-{i}"), "192.0.2.7") for i in range(100)
        ))  # fmt: skip
    finally:
        await auth.close()
    assert [v.reason for v in verdicts].count("client") == 90
    assert auth.failures == 10
    assert all(v.retry_after and v.retry_after > 0 for v in verdicts if v.reason)


async def test_many_addresses_together_are_capped_by_the_waiting_checks() -> None:
    """50 addresses, one guess each, all at once: AUTH_MAX_WAITING checks, the rest busy."""
    auth = BasicAuth(_users())
    try:
        verdicts = await asyncio.gather(*(
            auth.verify(basic("prometheus", "guess"), f"192.0.2.{i}") for i in range(50)
        ))  # fmt: skip
    finally:
        await auth.close()
    assert auth.failures == AUTH_MAX_WAITING
    assert [v.reason for v in verdicts].count("busy") == 50 - AUTH_MAX_WAITING
    assert auth.rate_limited == {"client": 0, "busy": 50 - AUTH_MAX_WAITING}


async def test_a_known_credential_gets_through_while_its_address_is_limited() -> None:
    now = [1000.0]
    auth = BasicAuth(
        _users(), clock=lambda: now[0],
        limiter=FailureLimiter(burst=2, rate=0.001, clock=lambda: now[0]),
    )  # fmt: skip
    try:
        assert await auth.check(RIGHT, "192.0.2.7")
        for i in range(5):
            await auth.check(basic("prometheus", f"guess-{i}"), "192.0.2.7")
        assert auth.failures == 2  # the address is limited now
        assert (await auth.verify(basic("prometheus", "guess"), "192.0.2.7")).reason == "client"
        assert await auth.check(RIGHT, "192.0.2.7")  # cached: no limit, no bcrypt
        now[0] += AUTH_CACHE_SECONDS + 1  # expired, but known: bcrypt again, no limit
        assert await auth.check(RIGHT, "192.0.2.7")
        assert auth.failures == 2
        # A first login from the limited address is not let through unchecked.
        verdict = await auth.verify(basic("prometheus", PASSWORD + " "), "192.0.2.7")
        assert verdict.reason == "client"
    finally:
        await auth.close()


async def test_a_known_credential_has_places_of_its_own_in_the_queue() -> None:
    now = [1000.0]
    auth = BasicAuth(_users(), clock=lambda: now[0])
    try:
        assert await auth.check(RIGHT, "192.0.2.7")
        now[0] += AUTH_CACHE_SECONDS + 1
        guesses = [
            asyncio.ensure_future(auth.verify(basic("prometheus", "guess"), f"198.51.100.{i}"))
            for i in range(AUTH_MAX_WAITING + 3)
        ]
        known = asyncio.ensure_future(auth.verify(RIGHT, "203.0.113.5"))
        verdicts: list[Any] = await asyncio.gather(*guesses, known)
    finally:
        await auth.close()
    assert [v.reason for v in verdicts[:-1]].count("busy") == 3
    assert verdicts[-1].ok


async def test_failed_checks_share_one_cpu_budget_across_addresses() -> None:
    """Each address is within its own limit, but together their failures used up the
    server-wide CPU share: the next unknown login waits, a known one still passes."""
    now = [1000.0]
    users = {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=6))}
    auth = BasicAuth(users, clock=lambda: now[0], failure_cpu_share=0.01,
                     failure_cpu_burst=0.0001)  # fmt: skip
    try:
        assert await auth.check(RIGHT, "203.0.113.5")  # successes cost the budget nothing
        assert not await auth.check(basic("prometheus", "guess"), "192.0.2.1")
        verdict = await auth.verify(basic("prometheus", "guess"), "192.0.2.2")
        assert verdict.reason == "busy" and verdict.retry_after and verdict.retry_after > 0
        assert auth.failures == 1
        now[0] += AUTH_CACHE_SECONDS + 1
        assert await auth.check(RIGHT, "203.0.113.5")  # known: not held by the budget
        now[0] += 3600  # refilled
        assert not await auth.check(basic("prometheus", "guess"), "192.0.2.2")
        assert auth.failures == 2
    finally:
        await auth.close()
