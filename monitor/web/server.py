"""netmon's HTTP server: the exporter, the multi-target ``/probe`` endpoint, health and a JSON API.

Routes (aiohttp)::

    GET  /metrics            every fresh stored result + the backend's self-metrics
    GET  /probe?target=NAME[&probe=icmp|snmp|tcp][&module=M]
                             probe one inventory target now (Prometheus's multi-target
                             pattern); other names only with ``allow_any_probe_target``
    GET  /-/healthy          200 while the process serves (never behind auth)
    GET  /-/ready            200 once the backend is ready, else 503
    POST /-/reload           200 "reloaded", or 400 with the config's problems
    GET  /api/targets        JSON: inventory targets with their latest results and the
                             status page's state (up, attention, degraded, ...) and reason
    GET  /api/targets/{name} JSON: one of them (404 if unknown)
    GET  /api/history/{name}?metric=&probe=&since=&step=
                             JSON: a target's stored series (its catalog without metric)
    GET  /api/availability?since=30d&by=device|room|role
                             JSON: availability rows and recent outages (monitor.web.status)
    GET  /api/alerts         JSON: pending, firing and recently resolved alerts (with ack)
    POST /actions/ack, /actions/silence; GET+POST /ack/{token}: acknowledge and silence
                             from the page and from emails (monitor.web.actions)
    GET  /                   the status page; /device/{name}: one device (monitor.web.status)

TLS and basic auth come from a web-config file in the format of Prometheus's
exporter-toolkit (``--web.config.file``), so Prometheus users already know it::

    tls_server_config:
      cert_file: netmon.crt          # relative paths are relative to this file
      key_file: netmon.key
      client_auth_type: NoClientCert # or RequireAndVerifyClientCert / VerifyClientCertIfGiven
      client_ca_file: clients-ca.crt # needed by the two verifying types
      min_version: TLS12             # or TLS13
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hash, e.g. htpasswd -nBC 10 prometheus

With users configured, every route except ``/-/healthy`` needs them. bcrypt is slow on
purpose, so a successful check is remembered for :data:`AUTH_CACHE_SECONDS`, keyed by a
keyed hash (HMAC with a per-process random key) of the Authorization header, never by
the password itself. An unknown user costs a bcrypt check too, so timing does not reveal
which user names exist. Failed logins are limited per client network
(:mod:`monitor.web.ratelimit`): past the limit, or while too many checks wait for the one
bcrypt worker, a login gets 429 with ``Retry-After`` and costs no bcrypt at all.

Default port: :data:`DEFAULT_PORT` = 10190. Prometheus's wiki page "Default port
allocations" (github.com/prometheus/prometheus/wiki/Default-port-allocations) is the
registry of exporter ports. The live page was not reachable from here; the copy that
was (a fork's snapshot of Sep 21 2016, 96 revisions) lists 9090-9093 and exporters from
9100 upwards, and Chris Siebenmann's note of June 2023 ("Why Prometheus exporters really
need fixed TCP ports") reports the whole 9100-9999 exporter range as allocated. So netmon
stays out of 9090-9999 entirely and uses 10190, which is neither on that page nor in
/etc/services. Check the live page before registering a port there.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import math
import os
import re
import ssl
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import bcrypt
import yaml
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from alerts.ack import alert_json
from monitor import memory
from monitor.config import ConfigFileError, ConfigProblem, InventoryTarget
from monitor.exporter import RenderCache, render, render_chunks
from monitor.store.results import ResultStore
from monitor.web import actions, status
from monitor.web import topology as topology_pages
from monitor.web.ratelimit import FailureLimiter, client_network, retry_after
from probes.errors import ConfigError
from probes.result import ProbeResult, Sample

log = logging.getLogger("netmon.web")

DEFAULT_PORT = 10190
#: What ``/metrics`` and ``/probe`` answer with: the text format generate_latest writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: zlib level of gzip-encoded expositions: zlib's default, as the Go client (promhttp's
#: gzip.NewWriter) compresses. client_python's gzip.compress uses 9: on a district's
#: 90 MB scrape that takes ~3x as long (1.6 s against 0.5 s) for 7 % fewer bytes.
GZIP_LEVEL = 6
#: How long a successful basic-auth check is remembered, and how many are.
AUTH_CACHE_SECONDS = 60.0
AUTH_CACHE_SIZE = 256
#: How long a header once accepted skips the per-client limit (bcrypt still checks it).
AUTH_KNOWN_SECONDS = 3600.0
#: Threads running bcrypt: one, so password checks never take more than one core.
AUTH_WORKERS = 1
#: Password checks that may wait for the worker; more get 429 (busy) without one, but
#: a header accepted before has :data:`AUTH_KNOWN_EXTRA` places of its own.
AUTH_MAX_WAITING = 4
AUTH_KNOWN_EXTRA = 4
AUTH_BUSY_RETRY_SECONDS = 1.0
#: CPU that failed checks may use, server-wide: a quarter of a core, after a first 2 s
#: (many client networks, each within its own limit, must not add up to a core).
AUTH_FAILURE_CPU_SHARE = 0.25
AUTH_FAILURE_CPU_BURST = 2.0
PROBES = ("icmp", "snmp", "tcp")
REALM = 'Basic realm="netmon", charset="UTF-8"'

_BCRYPT = re.compile(r"^\$2[abxy]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")
_NOT_BCRYPT = (
    "not a bcrypt hash; make one with `htpasswd -nBC 10 USER` (the part after ':') or "
    "python -c 'import bcrypt; print(bcrypt.hashpw(b\"PASSWORD\", bcrypt.gensalt()).decode())'"
)
_TOP_KEYS = ("tls_server_config", "basic_auth_users")
_TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version")
#: exporter-toolkit settings netmon does not implement: named as such, not as typos.
_TOOLKIT_ONLY = frozenset(
    {
        "http_server_config",
        "rate_limit",
        "cert",
        "key",
        "client_ca",
        "max_version",
        "cipher_suites",
        "curve_preferences",
        "prefer_server_cipher_suites",
        "client_allowed_sans",
    }
)
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


class WebConfigError(ConfigFileError):
    """The web-config file has mistakes; ``problems`` lists every one of them."""


class WebBackend(Protocol):
    """What the web layer needs from the running monitor (monitor.daemon.Monitor)."""

    store: ResultStore

    def is_ready(self) -> bool: ...
    async def reload(self) -> list[str]: ...
    async def probe_once(
        self, target: str, probe: str | None, module: str | None
    ) -> list[ProbeResult]: ...
    def targets(self) -> list[InventoryTarget]: ...
    def extra_samples(self) -> list[Sample]: ...


@dataclass(frozen=True)
class TlsSettings:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"

    def ssl_context(self) -> ssl.SSLContext:
        """A server context; raises OSError / ssl.SSLError on unusable files."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = _TLS_VERSIONS[self.min_version]
        context.load_cert_chain(self.cert_file, self.key_file)
        context.verify_mode = _CLIENT_AUTH[self.client_auth_type]
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=self.client_ca_file)
        return context


@dataclass(frozen=True)
class WebConfig:
    """TLS and basic-auth settings of the web server (exporter-toolkit format)."""

    tls: TlsSettings | None = None
    #: user name -> bcrypt hash
    users: Mapping[str, bytes] = field(default_factory=dict)
    path: Path | None = None


# --- the web-config file --------------------------------------------------------------


def load_web_config(path: Path) -> WebConfig:
    """Read an exporter-toolkit web-config file; raise :class:`WebConfigError` listing
    every mistake as ``file:line: field: message`` (never echoing a hash or password)."""
    problems: list[ConfigProblem] = []
    name = str(path)

    def problem(node: yaml.Node | None, where: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        problems.append(ConfigProblem(name, line, where, message))

    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WebConfigError(
            [ConfigProblem(name, None, "", f"cannot read: {exc.strerror}")]
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or "not valid YAML"
        raise WebConfigError([ConfigProblem(name, line, "", f"not valid YAML: {what}")]) from exc
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == ""):
        return WebConfig(path=path)
    if not isinstance(root, yaml.MappingNode):
        message = "a web config is a mapping with tls_server_config and/or basic_auth_users"
        raise WebConfigError([ConfigProblem(name, root.start_mark.line + 1, "", message)])

    tls: TlsSettings | None = None
    users: dict[str, bytes] = {}
    for key_node, value in root.value:
        key = key_node.value
        if key == "tls_server_config":
            tls = _tls_settings(value, path.parent, problem)
        elif key == "basic_auth_users":
            users = _users(value, problem)
        else:
            problem(key_node, key, _unknown(key, _TOP_KEYS))
    if tls is not None and not problems:
        try:
            tls.ssl_context()
        except (OSError, ssl.SSLError) as exc:
            message = f"the certificate and key cannot be used together: {exc}"
            problem(None, "tls_server_config", message)
    if problems:
        raise WebConfigError(problems)
    return WebConfig(tls=tls, users=users, path=path)


def _unknown(key: str, allowed: tuple[str, ...]) -> str:
    if key in _TOOLKIT_ONLY:
        return (
            f"'{key}' is an exporter-toolkit setting netmon does not support; "
            f"supported here: {', '.join(allowed)}"
        )
    return f"unknown key '{key}'; allowed: {', '.join(allowed)}"


Problem = Callable[[yaml.Node | None, str, str], None]


def _tls_settings(node: yaml.Node, base: Path, problem: Problem) -> TlsSettings | None:
    if not isinstance(node, yaml.MappingNode):
        problem(node, "tls_server_config", "must be a mapping with cert_file and key_file")
        return None
    values: dict[str, str] = {}
    for key_node, value in node.value:
        key = key_node.value
        where = f"tls_server_config.{key}"
        if key not in _TLS_KEYS:
            problem(key_node, where, _unknown(key, _TLS_KEYS))
        elif not isinstance(value, yaml.ScalarNode) or value.value == "":
            problem(value, where, "must be a non-empty text value")
        else:
            values[key] = value.value
            if key in ("cert_file", "key_file", "client_ca_file"):
                file = base / value.value
                if not file.is_file():
                    problem(value, where, f"file not found: {file}")
            elif key == "client_auth_type" and value.value not in _CLIENT_AUTH:
                problem(value, where, f"netmon supports {', '.join(_CLIENT_AUTH)}")
            elif key == "min_version" and value.value not in _TLS_VERSIONS:
                problem(value, where, f"netmon supports {', '.join(_TLS_VERSIONS)}")
    for required in ("cert_file", "key_file"):
        if required not in values:
            problem(node, f"tls_server_config.{required}", "is required for TLS")
    auth = values.get("client_auth_type", "NoClientCert")
    if auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") and (
        "client_ca_file" not in values
    ):
        problem(node, "tls_server_config.client_ca_file", f"is required by {auth}")
    try:
        return TlsSettings(
            cert_file=base / values["cert_file"],
            key_file=base / values["key_file"],
            client_auth_type=auth,
            client_ca_file=base / values["client_ca_file"] if "client_ca_file" in values else None,
            min_version=values.get("min_version", "TLS12"),
        )
    except KeyError:
        return None


def _users(node: yaml.Node, problem: Problem) -> dict[str, bytes]:
    if not isinstance(node, yaml.MappingNode):
        problem(node, "basic_auth_users", "must be a mapping of user name to bcrypt hash")
        return {}
    users: dict[str, bytes] = {}
    for key_node, value in node.value:
        user = key_node.value
        where = f"basic_auth_users.{user}"
        if not isinstance(value, yaml.ScalarNode) or not _BCRYPT.match(value.value):
            # Never echo the value: it may be a password pasted by mistake.
            problem(value, where, _NOT_BCRYPT)
        elif ":" in user or not user:
            problem(key_node, where, "a user name is non-empty and has no ':'")
        else:
            users[user] = value.value.encode("ascii")
    return users


# --- basic auth -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    """The answer to one request's credentials: ``ok``, or a 401, or (``retry_after``
    set) a 429 given without checking the password."""

    ok: bool
    #: Seconds until the client may try again; None unless the request was limited.
    retry_after: float | None = None
    #: Why it was limited: ``client`` (its network failed too often) or ``busy``.
    reason: str = ""


_OK = AuthVerdict(True)
_DENIED = AuthVerdict(False)


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes, caching successes.

    The order of a check, cheapest first: a header verified less than
    :data:`AUTH_CACHE_SECONDS` ago is accepted at once, before any limit, so Prometheus
    keeps scraping from an address (a NAT) where someone else is guessing passwords. A
    header verified in the last :data:`AUTH_KNOWN_SECONDS` skips the per-client limit
    but gets bcrypt again. Any other header needs a token from the client's
    :class:`~monitor.ratelimit.FailureLimiter` bucket, a place among
    :data:`AUTH_MAX_WAITING` queued checks, and CPU left in the failed checks' budget
    (:data:`AUTH_FAILURE_CPU_SHARE` of a core server-wide; a check that fails pays its
    bcrypt CPU time into it), else it gets 429. bcrypt runs in one worker thread of its
    own (:data:`AUTH_WORKERS`), never on the event loop, so checks take at most one core
    even from the known lane, and wrong passwords from any number of networks a quarter.
    """

    def __init__(
        self,
        users: Mapping[str, bytes],
        clock: Callable[[], float] = time.monotonic,
        limiter: FailureLimiter | None = None,
        max_waiting: int = AUTH_MAX_WAITING,
        failure_cpu_share: float = AUTH_FAILURE_CPU_SHARE,
        failure_cpu_burst: float = AUTH_FAILURE_CPU_BURST,
    ):
        self.users = dict(users)
        self.clock = clock
        self.limiter = limiter if limiter is not None else FailureLimiter(clock=clock)
        self.max_waiting = max_waiting
        self._key = os.urandom(32)
        #: HMAC of a header -> when bcrypt last accepted it
        self._ok: dict[bytes, float] = {}
        # Checked when the user is unknown, so a miss costs as much as a wrong password.
        self._dummy = next(iter(self.users.values()))
        self._pool: ThreadPoolExecutor | None = None
        self._waiting = 0
        self._busy_logged_at = -math.inf
        self._cpu_share = failure_cpu_share
        self._cpu_burst = failure_cpu_burst
        self._cpu_left = failure_cpu_burst
        self._cpu_at = clock()
        #: bcrypt checks that failed, and requests answered 429 by reason
        self.failures = 0
        self.rate_limited = {"client": 0, "busy": 0}

    async def check(self, header: str | None, remote: str | None = None) -> bool:
        """Whether ``header`` holds a valid user and password (see :meth:`verify`)."""
        return (await self.verify(header, remote)).ok

    async def verify(self, header: str | None, remote: str | None = None) -> AuthVerdict:
        """Check one request's ``Authorization`` header, sent from address ``remote``."""
        if not header:
            return _DENIED
        digest = hmac.new(self._key, header.encode("utf-8", "surrogateescape"), "sha256").digest()
        now = self.clock()
        verified = self._ok.get(digest)
        if verified is not None and now - verified < AUTH_CACHE_SECONDS:
            return _OK
        known = verified is not None and now - verified < AUTH_KNOWN_SECONDS
        credentials = _credentials(header)
        if credentials is None:  # malformed: refused without a bcrypt check
            return _DENIED
        user, password = credentials
        network = client_network(remote)
        if self._waiting >= self.max_waiting + (AUTH_KNOWN_EXTRA if known else 0):
            return self._limited("busy", AUTH_BUSY_RETRY_SECONDS)
        if not known:
            cpu_left = self._failure_cpu_left(now)
            if cpu_left <= 0:
                return self._limited("busy", -cpu_left / self._cpu_share)
            wait = self.limiter.reserve(network)
            if wait > 0:
                return self._limited("client", wait)
        hashed = self.users.get(user)
        self._waiting += 1
        try:
            ok, cpu = await asyncio.get_running_loop().run_in_executor(
                self._worker(), _checkpw, password, hashed or self._dummy
            )
        finally:
            self._waiting -= 1
        if ok and hashed is not None:
            if not known:
                self.limiter.refund(network)
            self._remember(digest, now)
            return _OK
        self.failures += 1
        self._cpu_left -= cpu
        self._ok.pop(digest, None)
        return _DENIED

    def samples(self) -> list[Sample]:
        """Failed checks and limited requests, for ``/metrics``."""
        return [
            Sample.of("netmon_web_auth_failures_total", self.failures),
            *(
                Sample.of("netmon_web_auth_rate_limited_total", n, reason=reason)
                for reason, n in self.rate_limited.items()
            ),
        ]

    async def close(self) -> None:
        """Stop the bcrypt worker (checks still queued are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _worker(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(AUTH_WORKERS, thread_name_prefix="netmon-bcrypt")
        return self._pool

    def _failure_cpu_left(self, now: float) -> float:
        """Seconds of CPU failed checks may still use (refilled at the share's rate)."""
        refill = (now - self._cpu_at) * self._cpu_share
        self._cpu_left = min(self._cpu_burst, self._cpu_left + refill)
        self._cpu_at = now
        return self._cpu_left

    def _limited(self, reason: str, wait: float) -> AuthVerdict:
        self.rate_limited[reason] += 1
        now = self.clock()
        if reason == "busy" and now - self._busy_logged_at >= 60:
            self._busy_logged_at = now
            log.warning(
                "basic auth: too many failed logins server-wide (%d checks waiting); "
                "answering 429 to new logins for now (logged at most once a minute)",
                self._waiting,
            )  # fmt: skip
        return AuthVerdict(False, wait, reason)

    def _remember(self, digest: bytes, now: float) -> None:
        if digest not in self._ok and len(self._ok) >= AUTH_CACHE_SIZE:
            self._ok = {k: t for k, t in self._ok.items() if now - t < AUTH_KNOWN_SECONDS}
            if len(self._ok) >= AUTH_CACHE_SIZE:
                del self._ok[min(self._ok, key=self._ok.__getitem__)]
        self._ok[digest] = now


def _credentials(header: str) -> tuple[str, bytes] | None:
    """User and password of a ``Basic`` header; None if it is not one."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        # ValueError covers bad base64, non-ASCII text (str input) and bad UTF-8.
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:
        return None
    user, sep, password = decoded.partition(":")
    return (user, password.encode("utf-8")) if sep else None


def _checkpw(password: bytes, hashed: bytes) -> tuple[bool, float]:
    """Whether the password matches, and the CPU seconds the check took (this thread's)."""
    start = time.thread_time()
    try:
        ok = bcrypt.checkpw(password, hashed)
    except ValueError:  # bcrypt 5 refuses passwords over 72 bytes
        ok = False
    return ok, time.thread_time() - start


# --- the application ------------------------------------------------------------------

BACKEND = web.AppKey("backend", WebBackend)
ALLOW_ANY = web.AppKey("allow_any_probe_target", bool)
RENDER_CACHE = web.AppKey("render_cache", RenderCache)
AUTH = web.AppKey("basic_auth", BasicAuth)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    backend: WebBackend,
    web_config: WebConfig | None = None,
    *,
    allow_any_probe_target: bool = False,
) -> web.Application:
    """The aiohttp application serving ``backend``; basic auth when the config has users."""
    middlewares = []
    auth = BasicAuth(web_config.users) if web_config is not None and web_config.users else None
    if auth is not None:
        middlewares.append(_auth_middleware(auth))
    middlewares.append(actions.middleware)
    app = web.Application(middlewares=middlewares)
    if auth is not None:
        app[AUTH] = auth
        app.on_cleanup.append(lambda _: auth.close())
    app[BACKEND] = backend
    app[ALLOW_ANY] = allow_any_probe_target
    app[RENDER_CACHE] = RenderCache()
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/probe", _probe)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_post("/-/reload", _reload)
    app.router.add_get("/api/targets", _targets)
    app.router.add_get("/api/targets/{name}", _target)
    app.router.add_get("/api/alerts", _alerts)
    status.add_routes(app, backend)  # the status page: / and /device/{name}
    actions.add_routes(app, backend, app[status.STATUS_ENV])  # its buttons, email links
    topology_pages.add_routes(app)  # /map, /where and the device pages' topology lines
    return app


class _HttpLog(logging.Logger):
    """aiohttp's server log for netmon. A request aiohttp's HTTP parser rejects (a bad
    request line, header or escape, a line over 8 KiB, a NUL byte) was answered 400
    already: a client's mistake, logged as one debug line without a traceback and
    without the request's bytes, which aiohttp would quote (a header may hold a
    password). netmon's handlers read no request bodies, so such errors only come from
    the parser. Everything else, a handler's exception (500: a bug), keeps its traceback.
    """

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            self.debug(f"{msg}: %s, answered %s", *args, type(exc).__name__, exc.code)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


_HTTP_LOG = _HttpLog("netmon.web.http")
_HTTP_LOG.parent = log


async def serve(
    app: web.Application, host: str, port: int, web_config: WebConfig | None
) -> web.AppRunner:
    """Start serving ``app`` (over TLS when the config has it); ``runner.cleanup()`` stops.

    ``port`` 0 picks a free port; ``runner.addresses`` tells which.
    """
    ssl_context = web_config.tls.ssl_context() if web_config and web_config.tls else None
    runner = web.AppRunner(app, access_log=None, logger=_HTTP_LOG)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def _web_samples(app: web.Application) -> list[Sample]:
    """The web server's own metrics (basic auth's, when it is on)."""
    auth = app.get(AUTH)
    return auth.samples() if auth is not None else []


def _auth_middleware(auth: BasicAuth) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/-/healthy":
            return await handler(request)
        header = request.headers.get("Authorization")
        verdict = await auth.verify(header, request.remote)
        if verdict.ok:
            credentials = _credentials(header or "")
            request[actions.USER] = credentials[0] if credentials else ""
            return await handler(request)
        if verdict.retry_after is not None:
            wait = retry_after(verdict.retry_after)
            why = (
                "too many failed logins from your address"
                if verdict.reason == "client"
                else "too many logins are failing or waiting to be checked"
            )
            return web.Response(
                status=429, text=f"{why}; try again in {wait} s\n", headers={"Retry-After": wait}
            )
        return web.Response(
            status=401, text="authentication required\n", headers={"WWW-Authenticate": REALM}
        )

    return middleware


def gzip_accepted(accept_encoding: str | None) -> bool:
    """Whether the scraper accepts gzip: client_python's rule, any ``Accept-Encoding``
    entry whose coding is ``gzip`` (case-insensitive, parameters such as ``q`` ignored).
    Prometheus sends ``Accept-Encoding: gzip``."""
    return any(
        coding.split(";")[0].strip().lower() == "gzip"
        for coding in (accept_encoding or "").split(",")
    )


def gzip_exposition(
    store: ResultStore,
    now: float | None = None,
    extra: Iterable[Sample] = (),
    cache: RenderCache | None = None,
) -> bytes:
    """The exposition of :func:`monitor.exporter.render`, gzip-compressed (one gzip
    member, :data:`GZIP_LEVEL`) chunk by chunk as it is written."""
    return b"".join(_encoded(render_chunks(store, now, extra, cache), gzipped=True))


def _encoded(chunks: Iterable[bytes], *, gzipped: bool) -> Iterator[bytes]:
    """``chunks`` as they go on the wire: gzip-compressed chunk by chunk (one gzip member,
    :data:`GZIP_LEVEL`; zlib releases the GIL while it compresses) or as they are."""
    if not gzipped:
        yield from chunks
        return
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip
    for chunk in chunks:
        if packed := packer.compress(chunk):
            yield packed
    yield packer.flush()


#: Bytes of exposition handed from the rendering thread to the event loop at a time.
STREAM_BATCH = 1 << 20


def _next_batch(chunks: Iterator[bytes]) -> tuple[bytes, bool]:
    """Up to about :data:`STREAM_BATCH` bytes from ``chunks``, and whether they ran out."""
    batch: list[bytes] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= STREAM_BATCH:
            return b"".join(batch), False
    return b"".join(batch), True


def _exposition(body: bytes, *, gzipped: bool = False) -> web.Response:
    headers = {"Content-Type": CONTENT_TYPE}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


async def _stream_exposition(
    request: web.Request, chunks: Iterator[bytes], *, gzipped: bool
) -> web.StreamResponse:
    """Send ``chunks`` as the answer, rendered (and compressed) in a worker thread a batch
    at a time and written as the client takes them. A district's scrape is ~80 MB of
    text: built whole, it and the socket's copy of what the client had not yet read
    were the process's peak memory; streamed, a scrape holds one batch in flight."""
    stream = _encoded(chunks, gzipped=gzipped)
    # The first batch includes collecting the snapshot: if that fails, the client still
    # gets a plain 500 rather than a cut-off 200.
    body, done = await asyncio.to_thread(_next_batch, stream)
    if done:
        return _exposition(body, gzipped=gzipped)
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    await response.prepare(request)
    while True:
        await response.write(body)  # waits while the client is behind: bounded memory
        if done:
            break
        body, done = await asyncio.to_thread(_next_batch, stream)
    await response.write_eof()
    return response


def _bad_request(message: str) -> web.Response:
    return web.Response(status=400, text=message + "\n")


async def _metrics(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    extra = [*backend.extra_samples(), *_web_samples(request.app)]
    # Rendering a large school takes a second or more; worker threads keep the event
    # loop, and so every scheduled probe, running meanwhile. The store hands out an
    # immutable snapshot, so reading it from another thread is safe.
    chunks = render_chunks(backend.store, extra=extra, cache=request.app[RENDER_CACHE])
    gzipped = gzip_accepted(request.headers.get("Accept-Encoding"))
    response = await _stream_exposition(request, chunks, gzipped=gzipped)
    await asyncio.to_thread(memory.trim)  # the scrape's buffers back to the OS
    return response


async def _probe(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    name = request.query.get("target", "")
    probe = request.query.get("probe") or None
    module = request.query.get("module") or None
    if not name:
        return _bad_request("the target parameter is missing, e.g. /probe?target=printer-lib-1")
    if not _TARGET_PARAM.match(name):
        return _bad_request(
            f"target={_shown(name)} is neither a target name nor an address: use letters, "
            "digits and . _ - (an address also : [ ] %), at most 300 characters"
        )
    if probe is not None and probe not in PROBES:
        return _bad_request(f"unknown probe {_shown(probe)}; use one of {', '.join(PROBES)}")
    if module is not None and not _MODULE_PARAM.match(module):
        return _bad_request(f"module={_shown(module)} is not a module name, e.g. module=system")
    known = {t.name: t for t in backend.targets()}
    inventory = known.get(name)
    if inventory is None and not request.app[ALLOW_ANY]:
        return _bad_request(
            f"'{name}' is not a target in the inventory; /probe only probes inventory "
            "targets (set server.allow_any_probe_target to allow others)"
        )
    try:
        results = await backend.probe_once(name, probe, module)
    except KeyError:
        return _bad_request(f"'{name}' is not a target netmon can probe")
    except (ValueError, ConfigError) as exc:
        return _bad_request(f"cannot probe '{name}': {exc}")
    labels = _static_labels(inventory)
    interval = inventory.interval if inventory else 60.0
    store = ResultStore()
    used: set[str] = set()
    for result in results:
        store_name = result.probe or probe or "probe"
        if store_name in used and "port" in result.facts:
            store_name = f"{store_name}-{result.facts['port']}"
        while store_name in used:
            store_name += "_"
        used.add(store_name)
        store.put(result, labels, interval, probe=store_name)
    if gzip_accepted(request.headers.get("Accept-Encoding")):  # one target: small
        return _exposition(gzip_exposition(store), gzipped=True)
    return _exposition(render(store))


#: What a /probe target (an inventory name, HOST, HOST:PORT, [IPv6]:PORT, fe80::1%eth0)
#: and module name can be; anything else is refused before a lookup or a probe.
_TARGET_PARAM = re.compile(r"[A-Za-z0-9._:\[\]%-]{1,300}\Z")
_MODULE_PARAM = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")


def _shown(value: str) -> str:
    """A query value quoted for an error message: ASCII, escapes for anything else,
    at most 60 characters of it."""
    return ascii(value if len(value) <= 60 else value[:60] + "...")


def _static_labels(target: InventoryTarget | None) -> dict[str, str]:
    """The labels the scheduler stores with a target's results."""
    if target is None:
        return {}
    return {"role": target.role, "group": target.group, **target.labels}


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="healthy\n")


async def _ready(request: web.Request) -> web.Response:
    if request.app[BACKEND].is_ready():
        return web.Response(text="ready\n")
    return web.Response(status=503, text="not ready: the first probe runs are not done yet\n")


async def _reload(request: web.Request) -> web.Response:
    # No lock here: the backend folds requests that come during a reload into one more.
    problems = await request.app[BACKEND].reload()
    if problems:
        text = "reload failed, the old config stays in use:\n" + "\n".join(problems) + "\n"
        return web.Response(status=400, text=text)
    return web.Response(text="reloaded\n")


async def _targets(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    latest = _latest_by_target(backend.store)
    targets, alerts = backend.targets(), status.alerts_of(backend)  # alerts: on the loop
    views = await asyncio.to_thread(status.build_views, targets, backend.store, alerts, time.time())
    return web.json_response(
        [_target_json(t, latest.get(t.name, {}), views[t.name]) for t in targets]
    )


async def _target(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    name = request.match_info["name"]
    targets = backend.targets()
    for target in targets:
        if target.name == name:
            latest = _latest_by_target(backend.store)
            now = time.time()
            # The state needs the parents' states: the whole inventory's views.
            views = status.build_views(targets, backend.store, status.alerts_of(backend), now)
            return web.json_response(_target_json(target, latest.get(name, {}), views[name]))
    return web.json_response({"error": f"no target named '{name}'"}, status=404)


async def _alerts(request: web.Request) -> web.Response:
    """Pending, firing and recently resolved alerts, suppressed ones with their reason."""
    service = getattr(request.app[BACKEND], "alerts", None)
    if service is None:
        return web.json_response({"error": "alerting is not running"}, status=503)
    return web.json_response([alert_json(a) for a in service.alerts()])


def _latest_by_target(store: ResultStore) -> dict[str, dict[str, dict[str, Any]]]:
    """Fresh results as JSON, by target name then stored probe name."""
    now = time.time()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for stored in store.snapshot(now):
        data = stored.result.to_json()
        del data["samples"]
        data["age_seconds"] = round(max(0.0, now - stored.finished_at), 3)
        data["interval_seconds"] = stored.interval
        out.setdefault(stored.target, {})[stored.probe] = data
    return out


def _target_json(
    target: InventoryTarget, results: dict[str, dict[str, Any]], view: status.DeviceView
) -> dict[str, Any]:
    """One inventory target as the JSON API shows it (credential names only, no secrets),
    with its state as the status page shows it."""
    return {
        "name": target.name,
        "address": target.address,
        "port": target.port,
        "group": target.group,
        "role": target.role,
        "labels": dict(target.labels),
        "probes": list(target.probes),
        "modules": list(target.modules),
        "tcp_ports": list(target.tcp_ports),
        "interval_seconds": target.interval,
        "parent": target.parent,
        "state": view.state.value,
        "state_reason": view.reason,
        "results": results,
    }
