"""The web server over real HTTP on loopback: a fake backend holds a real ResultStore filled
by real probes (ICMP to 127.0.0.1, TCP to a local listener); aiohttp clients talk to the
server started by ``monitor.web.serve``, with and without TLS and basic auth."""

from __future__ import annotations

import base64
import datetime
import gzip
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.config import InventoryTarget
from monitor.exporter import render
from monitor.store.results import ResultStore
from monitor.web import server as web_module
from monitor.web.server import (
    AUTH_CACHE_SECONDS,
    DEFAULT_PORT,
    BasicAuth,
    WebConfig,
    WebConfigError,
    create_app,
    gzip_accepted,
    gzip_exposition,
    load_web_config,
    serve,
)
from probes.context import ProbeContext
from probes.icmp import IcmpSettings
from probes.registry import run_probe
from probes.result import ProbeResult, Sample, Status
from probes.tcp import TcpSettings
from tests.conftest import need
from tests.exposition import one, parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "web"
ICMP = IcmpSettings(count=1, interval=0.01, timeout=1.0)
PASSWORD = "correct horse battery staple"
#: What a scheduler's self_samples() returns: not tied to any target.
EXTRA = [
    Sample.of("netmon_scheduler_lag_seconds", 0.25, stat="p99"),
    Sample.of("netmon_probe_runs_total", 7, probe="icmp", status="ok"),
]


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header (built by hand: aiohttp 3.14 deprecates its BasicAuth)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def inventory_target(name: str, address: str, tcp_port: int | None = None) -> InventoryTarget:
    return InventoryTarget(
        name=name, address=address, port=None, group="lab-1", role="lab",
        labels={"site": "main", "room": "204"}, modules=(),
        probes=("icmp", "tcp") if tcp_port else ("icmp",), credentials=None,
        credentials_name=None, interval=60.0, parent=None,
        tcp_ports=(tcp_port,) if tcp_port else (),
    )  # fmt: skip


class FakeBackend:
    """A WebBackend over a real store and real probes; records what the web layer asked."""

    def __init__(self, ctx: ProbeContext, targets: list[InventoryTarget]) -> None:
        self.store = ResultStore()
        self.ctx = ctx
        self._targets = targets
        self.ready = False
        self.reload_problems: list[str] = []
        self.reloads = 0
        self.probe_calls: list[tuple[str, str | None, str | None]] = []
        self.extra: list[Sample] = list(EXTRA)

    def is_ready(self) -> bool:
        return self.ready

    async def reload(self) -> list[str]:
        self.reloads += 1
        return list(self.reload_problems)

    def targets(self) -> list[InventoryTarget]:
        return list(self._targets)

    def extra_samples(self) -> list[Sample]:
        return list(self.extra)

    async def _run(self, t: InventoryTarget, probe: str | None) -> list[tuple[str, ProbeResult]]:
        out = []
        for kind in [probe] if probe else t.probes:
            if kind == "icmp":
                out.append(("icmp", await run_probe("icmp", t.as_target(), ICMP, self.ctx)))
            elif kind == "tcp":
                for port in t.tcp_ports:
                    result = await run_probe("tcp", t.as_target(port), TcpSettings(), self.ctx)
                    out.append((f"tcp-{port}", result))
            else:
                raise ValueError(f"the {kind} probe is not configured for {t.name}")
        return out

    async def probe_once(
        self, target: str, probe: str | None, module: str | None
    ) -> list[ProbeResult]:
        self.probe_calls.append((target, probe, module))
        known = {t.name: t for t in self._targets}
        if target in known:
            t = known[target]
        elif ipaddress.ip_address(target).is_loopback:  # only loopback, never anything else
            t = inventory_target(target, target)
        else:
            raise KeyError(target)
        return [result for _, result in await self._run(t, probe)]

    async def fill(self) -> None:
        """Run every target's probes once and store them as the scheduler would."""
        for t in self._targets:
            for store_name, result in await self._run(t, None):
                if result.status is Status.PERMISSION_ERROR:
                    need(result.explanation)
                labels = {"role": t.role, "group": t.group, **t.labels}
                self.store.put(result, labels, t.interval, probe=store_name)


@pytest.fixture
def listener() -> Iterator[int]:
    """A listening TCP port on loopback (the kernel completes handshakes, no accept())."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
async def backend(ctx: ProbeContext, listener: int) -> FakeBackend:
    fake = FakeBackend(ctx, [inventory_target("lab-pc-1", "127.0.0.1", listener),
                             inventory_target("lab-pc-2", "127.0.0.3")])  # fmt: skip
    await fake.fill()
    return fake


@asynccontextmanager
async def running(
    backend: FakeBackend, web_config: WebConfig | None = None, *, allow_any: bool = False
) -> AsyncIterator[str]:
    """Serve ``backend`` on a free loopback port; yields the base URL."""
    app = create_app(backend, web_config, allow_any_probe_target=allow_any)
    runner = await serve(app, "127.0.0.1", 0, web_config)
    try:
        port = runner.addresses[0][1]
        scheme = "https" if web_config and web_config.tls else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()




# --- plain HTTP -----------------------------------------------------------------------


def test_default_port_is_outside_the_allocated_exporter_range() -> None:
    assert not 9090 <= DEFAULT_PORT <= 9999
    assert 1024 < DEFAULT_PORT < 32768  # not privileged, below Linux's ephemeral range


async def test_metrics_serves_the_store_and_extra_samples(
    backend: FakeBackend, listener: int
) -> None:
    async with (
        running(backend) as url,
        aiohttp.ClientSession() as http,
        http.get(f"{url}/metrics") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        series = parse(await resp.text())
    assert one(series, "netmon_probe_success", target="lab-pc-1", probe="icmp",
               role="lab", group="lab-1", site="main", room="204") == 1  # fmt: skip
    assert one(series, "netmon_probe_success", target="lab-pc-1", probe=f"tcp-{listener}") == 1
    assert one(series, "netmon_tcp_connect_seconds", target="lab-pc-1", port=str(listener)) > 0
    assert one(series, "netmon_probe_success", target="lab-pc-2", probe="icmp") == 1
    assert one(series, "netmon_scheduler_lag_seconds", stat="p99") == 0.25
    assert one(series, "netmon_probe_runs_total", probe="icmp", status="ok") == 7
    assert "target" not in series["netmon_scheduler_lag_seconds"][0][0]
    assert one(series, "netmon_build_info") == 1


async def test_an_uncatalogued_extra_sample_is_dropped_not_fatal(backend: FakeBackend) -> None:
    backend.extra = [Sample.of("netmon_not_in_the_catalogue", 1), *EXTRA]
    async with (
        running(backend) as url,
        aiohttp.ClientSession() as http,
        http.get(f"{url}/metrics") as resp,
    ):
        assert resp.status == 200
        series = parse(await resp.text())
    assert "netmon_not_in_the_catalogue" not in series
    assert one(series, "netmon_scheduler_lag_seconds", stat="p99") == 0.25


async def _get_raw(url: str, accept_encoding: str | None) -> tuple[dict[str, str], bytes]:
    """Headers and the body as sent (no automatic Accept-Encoding, no decompression)."""
    headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    async with (
        aiohttp.ClientSession(auto_decompress=False, skip_auto_headers=["Accept-Encoding"]) as http,
        http.get(url, headers=headers) as resp,
    ):
        assert resp.status == 200
        return dict(resp.headers), await resp.read()


async def test_metrics_is_gzipped_when_the_scraper_accepts_gzip(backend: FakeBackend) -> None:
    """As client_python: gzip when Accept-Encoding names gzip (Prometheus sends it),
    the plain text otherwise; both hold the same exposition."""
    async with running(backend) as url:
        plain_headers, plain = await _get_raw(f"{url}/metrics", None)
        for accept in ("gzip", "deflate, gzip;q=1.0, *;q=0.5", "GZIP", " br , gzip "):
            headers, body = await _get_raw(f"{url}/metrics", accept)
            assert headers["Content-Encoding"] == "gzip", accept
            assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            assert gzip.decompress(body) == plain, accept
        for accept in ("identity", "deflate, br", "x-gzip", ""):
            headers, body = await _get_raw(f"{url}/metrics", accept)
            assert "Content-Encoding" not in headers, accept
            assert body == plain, accept
        probe_headers, probed = await _get_raw(f"{url}/probe?target=lab-pc-2", "gzip")
    assert "Content-Encoding" not in plain_headers
    assert one(parse(plain.decode()), "netmon_probe_success", target="lab-pc-1", probe="icmp") == 1
    assert probe_headers["Content-Encoding"] == "gzip"
    probe_series = parse(gzip.decompress(probed).decode())
    assert one(probe_series, "netmon_probe_success", target="lab-pc-2", probe="icmp") == 1


async def test_a_large_scrape_is_streamed_in_batches(
    backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above one batch the answer is streamed (chunked), plain or gzipped, and holds
    exactly what a whole render would: the district-scale scrape is never one buffer."""
    monkeypatch.setattr(web_module, "STREAM_BATCH", 64)
    async with running(backend) as url:
        plain_headers, plain = await _get_raw(f"{url}/metrics", None)
        gzip_headers, packed = await _get_raw(f"{url}/metrics", "gzip")
    assert plain_headers.get("Transfer-Encoding") == "chunked"
    assert gzip_headers.get("Transfer-Encoding") == "chunked"
    assert gzip_headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed) == plain
    assert plain == render(backend.store, extra=EXTRA)
    assert len(plain) > 10 * 64  # many batches, not one
    assert one(parse(plain.decode()), "netmon_probe_success", target="lab-pc-1", probe="icmp") == 1


def test_gzip_accepted_follows_client_python() -> None:
    from prometheus_client.exposition import gzip_accepted as client_pythons

    for header in (None, "", "gzip", "GZip", "deflate", "gzip;q=0", "x-gzip", "br, gzip;q=0.5",
                   "identity", "*", "gzip, deflate, br, zstd", ",,gzip,,"):  # fmt: skip
        assert gzip_accepted(header) == client_pythons(header), header


def test_gzip_exposition_is_the_rendered_text_compressed(backend: FakeBackend) -> None:
    store = backend.store
    now = max(s.finished_at for s in store.snapshot()) + 1
    assert gzip.decompress(gzip_exposition(store, now, EXTRA)) == render(store, now, EXTRA)


async def test_probe_runs_a_known_target_now(backend: FakeBackend, listener: int) -> None:
    async with running(backend) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/probe", params={"target": "lab-pc-1"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            series = parse(await resp.text())
        async with http.get(f"{url}/probe", params={"target": "lab-pc-1", "probe": "tcp"}) as resp:
            tcp_only = parse(await resp.text())
    assert backend.probe_calls == [("lab-pc-1", None, None), ("lab-pc-1", "tcp", None)]
    assert one(series, "netmon_probe_success", target="lab-pc-1", probe="icmp", role="lab") == 1
    assert one(series, "netmon_icmp_packets_received", target="lab-pc-1") == 1
    assert one(series, "netmon_tcp_connect_seconds", port=str(listener)) > 0
    assert {lbl["probe"] for lbl, _ in tcp_only["netmon_probe_success"]} == {"tcp"}
    # only this target's fresh results, not the whole store
    assert all(lbl["target"] == "lab-pc-1" for lbl, _ in series["netmon_probe_success"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"target": "127.0.0.2"}, "'127.0.0.2' is not a target in the inventory"),
        ({}, "the target parameter is missing"),
        ({"target": "lab-pc-1", "probe": "http"}, "unknown probe 'http'; use one of icmp, snmp, tcp"),
        ({"target": "lab-pc-1", "probe": "snmp"}, "cannot probe 'lab-pc-1': the snmp probe is not configured"),
    ],
)  # fmt: skip
async def test_probe_rejects_bad_requests_with_400(
    backend: FakeBackend, params: dict[str, str], message: str
) -> None:
    async with (
        running(backend) as url,
        aiohttp.ClientSession() as http,
        http.get(f"{url}/probe", params=params) as resp,
    ):
        assert resp.status == 400
        assert message in await resp.text()
    expected_calls = 1 if params.get("probe") == "snmp" else 0
    assert len(backend.probe_calls) == expected_calls


async def test_allow_any_probe_target_lets_other_targets_through(backend: FakeBackend) -> None:
    async with running(backend, allow_any=True) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/probe", params={"target": "127.0.0.2"}) as resp:
            assert resp.status == 200
            series = parse(await resp.text())
        # the backend still has the last word: a name it cannot probe is a 400
        async with http.get(f"{url}/probe", params={"target": "::1"}) as resp:
            assert resp.status == 200
        async with http.get(f"{url}/probe", params={"target": "10.0.0.1"}) as resp:
            assert resp.status == 400
            assert "'10.0.0.1' is not a target netmon can probe" in await resp.text()
    assert one(series, "netmon_probe_success", target="127.0.0.2", probe="icmp") == 1
    assert [call[0] for call in backend.probe_calls] == ["127.0.0.2", "::1", "10.0.0.1"]


async def test_health_readiness_and_reload(backend: FakeBackend) -> None:
    async with running(backend) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/-/healthy") as resp:
            assert resp.status == 200
        async with http.get(f"{url}/-/ready") as resp:
            assert resp.status == 503
            assert "not ready" in await resp.text()
        backend.ready = True
        async with http.get(f"{url}/-/ready") as resp:
            assert resp.status == 200

        async with http.get(f"{url}/-/reload") as resp:
            assert resp.status == 405
        assert backend.reloads == 0
        async with http.post(f"{url}/-/reload") as resp:
            assert resp.status == 200
            assert await resp.text() == "reloaded\n"
        backend.reload_problems = ["netmon.yml:7: groups[0].role: unknown role 'printr'"]
        async with http.post(f"{url}/-/reload") as resp:
            assert resp.status == 400
            text = await resp.text()
    assert "the old config stays in use" in text
    assert "netmon.yml:7: groups[0].role: unknown role 'printr'" in text
    assert backend.reloads == 2


async def test_api_targets_lists_targets_with_latest_results(
    backend: FakeBackend, listener: int
) -> None:
    async with running(backend) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/targets") as resp:
            assert resp.status == 200
            targets = await resp.json()
        async with http.get(f"{url}/api/targets/lab-pc-1") as resp:
            single = await resp.json()
        async with http.get(f"{url}/api/targets/no-such-pc") as resp:
            assert resp.status == 404
            assert "no-such-pc" in (await resp.json())["error"]
    assert [t["name"] for t in targets] == ["lab-pc-1", "lab-pc-2"]
    first = targets[0]
    for entry in (single, first):  # ages moved on between the two requests
        for result in entry["results"].values():
            assert result.pop("age_seconds") >= 0
    assert single == first
    assert first["address"] == "127.0.0.1"
    assert first["labels"] == {"site": "main", "room": "204"}
    assert (first["group"], first["role"]) == ("lab-1", "lab")
    assert set(first["results"]) == {"icmp", f"tcp-{listener}"}
    icmp = first["results"]["icmp"]
    assert icmp["status"] == "ok" and icmp["success"] is True
    assert icmp["explanation"]
    assert icmp["duration_seconds"] > 0 and icmp["interval_seconds"] == 60.0
    assert "samples" not in icmp
    assert set(targets[1]["results"]) == {"icmp"}


# --- basic auth -----------------------------------------------------------------------


def auth_config() -> WebConfig:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4))
    return WebConfig(users={"prometheus": hashed})


async def test_basic_auth_guards_every_route_but_healthy(backend: FakeBackend) -> None:
    config = auth_config()
    right = basic("prometheus", PASSWORD)
    async with running(backend, config) as url, aiohttp.ClientSession() as http:
        for path in ("/metrics", "/-/ready", "/api/targets", "/probe?target=lab-pc-1"):
            async with http.get(f"{url}{path}") as resp:
                assert resp.status == 401, path
                assert resp.headers["WWW-Authenticate"].startswith('Basic realm="netmon"')
        async with http.post(f"{url}/-/reload") as resp:
            assert resp.status == 401
        for wrong in (basic("prometheus", "wrong"), basic("nobody", PASSWORD)):
            async with http.get(f"{url}/metrics", headers=wrong) as resp:
                assert resp.status == 401
                assert config.users["prometheus"].decode() not in await resp.text()
        async with http.get(
            f"{url}/metrics", headers={"Authorization": "Basic !!notbase64"}
        ) as resp:
            assert resp.status == 401
        async with http.get(f"{url}/-/healthy") as resp:
            assert resp.status == 200
        for _ in range(2):  # the second one is answered from the cache
            async with http.get(f"{url}/metrics", headers=right) as resp:
                assert resp.status == 200
                assert "netmon_probe_success" in await resp.text()
        async with http.post(f"{url}/-/reload", headers=right) as resp:
            assert resp.status == 200
    assert backend.reloads == 1
    assert backend.probe_calls == []


async def test_auth_cache_remembers_success_briefly() -> None:
    now = [1000.0]
    auth = BasicAuth(auth_config().users, clock=lambda: now[0])
    header = basic("prometheus", PASSWORD)["Authorization"]
    assert await auth.check(header)
    # The hash changes underneath; the cached success holds until it expires.
    auth.users["prometheus"] = bcrypt.hashpw(b"another", bcrypt.gensalt(rounds=4))
    assert await auth.check(header)
    now[0] += AUTH_CACHE_SECONDS + 1
    assert not await auth.check(header)
    assert not await auth.check(None)
    long = basic("prometheus", "x" * 100)["Authorization"]  # bcrypt 5 rejects > 72 bytes
    assert not await auth.check(long)


# --- TLS and the web-config file ------------------------------------------------------


def write_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netmon test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = directory / "netmon.crt", directory / "netmon.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


async def test_tls_with_basic_auth_from_a_web_config_file(
    backend: FakeBackend, tmp_path: Path
) -> None:
    cert_file, _ = write_cert(tmp_path)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_config:\n  cert_file: netmon.crt\n  key_file: netmon.key\n"
        f"  min_version: TLS12\nbasic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    config = load_web_config(path)
    assert config.tls is not None and config.tls.cert_file == cert_file
    assert set(config.users) == {"prometheus"}

    trust = ssl.create_default_context(cafile=str(cert_file))
    async with running(backend, config) as url:
        assert url.startswith("https://")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as https:
            async with https.get(f"{url}/-/healthy") as resp:
                assert resp.status == 200
            async with https.get(f"{url}/metrics") as resp:
                assert resp.status == 401
            async with https.get(f"{url}/metrics", headers=basic("prometheus", PASSWORD)) as resp:
                assert resp.status == 200
                assert one(parse(await resp.text()), "netmon_probe_success",
                           target="lab-pc-1", probe="icmp") == 1  # fmt: skip
        plain_url = url.replace("https://", "http://")
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served
                async with http.get(f"{plain_url}/-/healthy") as resp:
                    await resp.read()
        untrusting = ssl.create_default_context()  # system CAs only: the cert is unknown
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=untrusting)) as https:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await https.get(f"{url}/-/healthy")


def test_an_empty_web_config_turns_nothing_on(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("# nothing yet\n")
    config = load_web_config(path)
    assert config.tls is None and not config.users


def test_a_key_that_does_not_match_the_certificate(tmp_path: Path) -> None:
    write_cert(tmp_path)
    (tmp_path / "other").mkdir()
    write_cert(tmp_path / "other")
    path = tmp_path / "web.yml"
    path.write_text("tls_server_config:\n  cert_file: netmon.crt\n  key_file: other/netmon.key\n")
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    assert f"{path}: tls_server_config: the certificate and key cannot be used together" in str(
        caught.value
    )


# One file per invalid case under tests/fixtures/web; expected problems, one per line.
BAD_CONFIGS = {
    "bad-yaml.yml": ["bad-yaml.yml:3: not valid YAML: expected ',' or ']'"],
    "unknown-key.yml": [
        (
            "unknown-key.yml:4: tls_server_config.cert_fiel: unknown key 'cert_fiel'; allowed: "
            "cert_file, key_file, client_auth_type, client_ca_file, min_version"
        ),
        "unknown-key.yml:2: tls_server_config.cert_file: file not found:",
    ],
    "toolkit-only-key.yml": [
        (
            "toolkit-only-key.yml:1: http_server_config: 'http_server_config' is an exporter-toolkit "
            "setting netmon does not support; supported here: tls_server_config, basic_auth_users"
        ),
    ],
    "missing-cert-file.yml": [
        "missing-cert-file.yml:2: tls_server_config.cert_file: file not found: ",
        "missing-cert-file.yml:3: tls_server_config.key_file: file not found: ",
    ],
    "missing-key-file-field.yml": [
        "missing-key-file-field.yml:2: tls_server_config.key_file: is required for TLS",
    ],
    "not-bcrypt.yml": [
        (
            "not-bcrypt.yml:3: basic_auth_users.admin: not a bcrypt hash; make one with "
            "`htpasswd -nBC 10 USER`"
        ),
    ],
    "client-auth-without-ca.yml": [
        (
            "client-auth-without-ca.yml:2: tls_server_config.client_ca_file: is required by "
            "RequireAndVerifyClientCert"
        ),
    ],
    "unsupported-client-auth.yml": [
        (
            "unsupported-client-auth.yml:2: tls_server_config.client_auth_type: netmon supports "
            "NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
        ),
        "unsupported-client-auth.yml:2: tls_server_config.cert_file: is required for TLS",
    ],
    "not-a-mapping.yml": [
        (
            "not-a-mapping.yml:1: a web config is a mapping with tls_server_config and/or "
            "basic_auth_users"
        ),
    ],
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_web_config_mistakes_name_file_line_and_field(name: str) -> None:
    path = FIXTURES / name
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    lines = str(caught.value).splitlines()
    for expected in BAD_CONFIGS[name]:
        full = f"{FIXTURES}/{expected}"
        assert any(line.startswith(full) for line in lines), f"{full!r} not in {lines}"
    assert len(lines) == len(caught.value.problems) >= len(BAD_CONFIGS[name])
    assert "hunter2" not in str(caught.value)


def test_every_bad_config_file_has_a_case() -> None:
    assert {p.name for p in FIXTURES.glob("*.yml")} == set(BAD_CONFIGS)


def test_a_missing_web_config_file(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match=r"web\.yml: cannot read: No such file"):
        load_web_config(tmp_path / "web.yml")
