"""Test helpers for notifications: a recording SMTP server (aiosmtpd, plain, STARTTLS
with auth or implicit TLS, with a self-signed certificate) and a real Alertmanager
(``/usr/bin/prometheus-alertmanager``) on free loopback ports.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import shutil
import ssl
import subprocess
import tempfile
import threading
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.demo.simlab import free_tcp_port, stop_process, wait_ready

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@dataclass(frozen=True)
class SelfSignedCert:
    """A key + certificate for 127.0.0.1/localhost, written as PEM files in ``directory``."""

    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path) -> SelfSignedCert:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netmon test SMTP")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return cls(cert_file, key_file)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


@dataclass
class SmtpRecorder:
    """An SMTP server on 127.0.0.1 keeping every accepted message in ``messages``.

    ``refuse = True`` answers DATA with a temporary failure (451); ``stop()`` closes the
    port (server down) and ``start()`` opens it again on the same port.
    """

    security: Literal["none", "starttls", "tls"] = "none"
    cert: SelfSignedCert | None = None
    #: (username, password) required when set (aiosmtpd requires TLS for AUTH).
    login: tuple[str, str] | None = None
    port: int = field(default_factory=free_tcp_port)
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: bool = False
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return "451 4.3.0 test server refuses mail for now"
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self._lock:
            self.messages.append(msg)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self.login is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.login)
        return AuthResult(success=ok, handled=False)

    def start(self) -> Self:
        kwargs: dict[str, Any] = {}
        if self.security != "none":
            assert self.cert is not None, "TLS needs a certificate"
            if self.security == "starttls":
                kwargs.update(tls_context=self.cert.server_context(), require_starttls=True)
            else:
                # aiosmtpd only counts STARTTLS as TLS; this whole connection is TLS.
                kwargs.update(ssl_context=self.cert.server_context(), auth_require_tls=False)
        if self.login is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def message_ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for m in self.messages]


@dataclass
class AlertmanagerServer:
    """A running Alertmanager; ``url`` is its web address, ``cluster`` its gossip address."""

    url: str
    cluster: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def alerts(self, active_only: bool = True) -> list[dict[str, Any]]:
        query = "" if not active_only else "?active=true&silenced=false&inhibited=false"
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts{query}", timeout=5) as resp:
            data: list[dict[str, Any]] = json.load(resp)
            return data

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        return (self.workdir / "alertmanager.log").read_text(errors="replace")


def alertmanager_available() -> str | None:
    if not Path(ALERTMANAGER).exists():
        return "Alertmanager is not installed (apt-get install prometheus-alertmanager)"
    return None


def start_alertmanager(config_yaml: str, *, peers: list[str] | None = None,
                       cluster: bool = False, timeout: float = 30.0) -> AlertmanagerServer:
    """Run Alertmanager with ``config_yaml`` on free loopback ports and a private storage
    dir. Clustering is off unless ``cluster`` or ``peers`` (gossip addresses) are given."""
    workdir = Path(tempfile.mkdtemp(prefix="netmon-alertmanager-"))
    (workdir / "alertmanager.yml").write_text(config_yaml)
    port = free_tcp_port()
    args = [ALERTMANAGER, f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    gossip = ""
    if cluster or peers:
        gossip = f"127.0.0.1:{free_tcp_port()}"
        args += [f"--cluster.listen-address={gossip}", f"--cluster.advertise-address={gossip}",
                 "--cluster.peer-timeout=1s", "--cluster.gossip-interval=100ms",
                 "--cluster.pushpull-interval=1s"]
        args += [f"--cluster.peer={p}" for p in peers or []]
    else:
        args.append("--cluster.listen-address=")
    log = (workdir / "alertmanager.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    server = AlertmanagerServer(f"http://127.0.0.1:{port}", gossip, proc, workdir)
    if wait_ready(server.url, proc, timeout):
        return server
    tail = server.log()[-2000:]
    server.stop()
    raise RuntimeError(f"Alertmanager did not become ready on {server.url}:\n{tail}")
