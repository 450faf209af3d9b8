"""Real servers for the alerting HA and Prometheus-equivalence tests, all on loopback.

- The SMTP server is :class:`tests.alerting.SmtpRecorder` (the notify tests' own).
- :class:`AlertmanagerPeer` / :func:`start_alertmanager_cluster`: Debian's Alertmanager,
  N peers gossiping on 127.0.0.1, whose route emails the sink (group_wait 1s,
  group_interval 2s, one group per label set). A peer can be killed and started again
  with the same ports and data directory.
- :class:`NetmonProcess`: one ``netmon run`` subprocess (own config dir, so its own state
  file, or an explicit ``--state-file``) that can be SIGKILLed like a crash and started
  again.
- :class:`TcpService`: a TCP port on 127.0.0.1 that a test opens and closes to start and
  end a ``tcp_service_down`` incident.

Every wait is bounded (:func:`wait_until`); nothing here sends a packet off loopback.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from monitor.demo.simlab import free_tcp_port, stop_process
from tests.alerting import ALERTMANAGER, SmtpRecorder, alertmanager_available
from tests.waiting import LabError, http_json, http_status, wait_until

NETMON = Path(sys.executable).parent / "netmon"


def _log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# --- SMTP ------------------------------------------------------------------------------


def subjects(smtp: SmtpRecorder) -> list[str]:
    """Subjects of the messages ``smtp`` (tests/alerting.py) received, in arrival order."""
    with smtp._lock:
        return [str(m.get("Subject", "")) for m in smtp.messages]


# --- Alertmanager ----------------------------------------------------------------------


def alertmanager_config(smtp_port: int, *, group_wait: str = "1s", group_interval: str = "2s",
                        repeat_interval: str = "1h") -> str:
    """A route that emails every alert group (one group per label set) to the sink."""
    return f"""\
global:
  smtp_smarthost: 127.0.0.1:{smtp_port}
  smtp_from: alertmanager@school.example
  smtp_require_tls: false
  smtp_hello: localhost
route:
  receiver: it-team
  group_by: ['...']
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: {repeat_interval}
receivers:
  - name: it-team
    email_configs:
      - to: it@school.example
        send_resolved: true
"""


@dataclass
class AlertmanagerPeer:
    """One Alertmanager process of a cluster; ``start`` may be called again after ``kill``
    and comes back on the same ports with the same storage (tests/alerting.py's
    ``start_alertmanager`` picks new ports each time, so a netmon configured with the
    peers' URLs could not reach a restarted one)."""

    name: str
    web_port: int
    cluster_port: int
    peers: list[int]
    workdir: Path
    peer_timeout: str = "2s"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        cmd = [
            ALERTMANAGER,
            f"--config.file={self.workdir / 'alertmanager.yml'}",
            f"--storage.path={self.workdir / self.name}",
            f"--web.listen-address=127.0.0.1:{self.web_port}",
            f"--cluster.listen-address=127.0.0.1:{self.cluster_port}",
            f"--cluster.advertise-address=127.0.0.1:{self.cluster_port}",
            "--cluster.gossip-interval=100ms",
            "--cluster.pushpull-interval=1s",
            "--cluster.settle-timeout=2s",
            "--cluster.probe-interval=500ms",
            "--cluster.reconnect-interval=1s",
            f"--cluster.peer-timeout={self.peer_timeout}",
            *(f"--cluster.peer=127.0.0.1:{p}" for p in self.peers),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: http_status(f"{self.url}/-/ready") == 200 or not self.alive,
                       30, f"{self.name} to become ready")
        except LabError:
            raise LabError(f"{self.name} did not become ready:\n{_log_tail(self.log_path)}") from None
        if not self.alive:
            raise LabError(f"{self.name} exited at start:\n{_log_tail(self.log_path)}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def cluster_size(self) -> int:
        """Peers this instance sees as members of its cluster (itself included)."""
        try:
            status = http_json(f"{self.url}/api/v2/status")
        except (OSError, ValueError):
            return 0
        return len((status.get("cluster") or {}).get("peers") or [])

    def alerts(self, **match: str) -> list[dict[str, Any]]:
        """Active (not resolved) alerts this instance holds whose labels contain ``match``."""
        got = http_json(f"{self.url}/api/v2/alerts?active=true&silenced=true&inhibited=true")
        return [a for a in got if all(a["labels"].get(k) == v for k, v in match.items())]

    def post(self, alerts: list[dict[str, Any]]) -> None:
        http_json(f"{self.url}/api/v2/alerts", alerts)


@dataclass
class AlertmanagerCluster:
    peers: list[AlertmanagerPeer]
    workdir: Path

    @property
    def urls(self) -> list[str]:
        return [p.url for p in self.peers]

    def wait_formed(self, timeout: float = 30) -> None:
        """Until every live peer sees every live peer."""
        live = [p for p in self.peers if p.alive]
        wait_until(lambda: all(p.cluster_size() == len(live) for p in live), timeout,
                   f"the Alertmanager cluster to have {len(live)} members")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{_log_tail(p.log_path, 1500)}" for p in self.peers)

    def stop(self) -> None:
        for peer in self.peers:
            peer.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_alertmanager_cluster(config_yaml: str, size: int = 2) -> AlertmanagerCluster:
    """``size`` Alertmanager peers on loopback, each peered with all others, formed."""
    if reason := alertmanager_available():
        raise LabError(reason)
    workdir = Path(tempfile.mkdtemp(prefix="netmon-am-"))
    (workdir / "alertmanager.yml").write_text(config_yaml)
    webs = [free_tcp_port() for _ in range(size)]
    clusters = [free_tcp_port() for _ in range(size)]
    peers = [
        AlertmanagerPeer(f"am{i}", webs[i], clusters[i],
                         [c for j, c in enumerate(clusters) if j != i], workdir)
        for i in range(size)
    ]
    cluster = AlertmanagerCluster(peers, workdir)
    try:
        for peer in peers:
            peer.start()
        cluster.wait_formed()
    except LabError as exc:
        logs = cluster.logs()
        cluster.stop()
        raise LabError(f"{exc}\n{logs}") from None
    return cluster


# --- netmon ----------------------------------------------------------------------------


@dataclass
class NetmonProcess:
    """``netmon run`` with its own config directory (so its own alert state file)."""

    name: str
    config_text: str
    workdir: Path
    port: int = field(default_factory=free_tcp_port)
    #: ``--state-file``: the alert state of this instance (default: the config's).
    state_file: Path | None = None
    #: What must answer 200 before it counts as started (``/-/healthy`` behind basic auth).
    ready_path: str = "/-/ready"
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "netmon.yml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "netmon.log"

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.config_text)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(NETMON), "run", "-c", str(self.config), "--listen", f"127.0.0.1:{self.port}",
                 *(["--state-file", str(self.state_file)] if self.state_file else [])],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
        try:
            wait_until(lambda: http_status(self.url + self.ready_path) == 200 or not self.alive,
                       timeout, f"{self.name} to become ready")
        except LabError:
            raise LabError(f"{self.name} did not become ready:\n{self.log_tail()}") from None
        if not self.alive:
            raise LabError(f"{self.name} exited at start:\n{self.log_tail()}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut: no clean shutdown."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            stop_process(self.process, timeout=15)

    def log_tail(self, chars: int = 3000) -> str:
        return _log_tail(self.log_path, chars)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``netmon ARGS -c <this config>`` (e.g. ``alerts list --json``)."""
        return subprocess.run([str(NETMON), *args, "-c", str(self.config)], capture_output=True,
                              text=True, timeout=timeout, cwd=self.workdir, check=False)

    def alerts(self) -> list[dict[str, Any]]:
        """``netmon alerts list --json``: the alerts in this instance's state file."""
        state = ["--state-file", str(self.state_file)] if self.state_file else []
        proc = self.cli("alerts", "list", "--json", *state)
        if proc.returncode != 0:
            raise LabError(f"netmon alerts list --json failed ({proc.returncode}): {proc.stderr}")
        doc = json.loads(proc.stdout)
        items = doc.get("alerts", []) if isinstance(doc, dict) else doc
        return list(items)


# --- a service to break ----------------------------------------------------------------


class TcpService:
    """A listening TCP port on 127.0.0.1 that can be closed (down) and reopened (up)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_tcp_port()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, args=(sock,), daemon=True)
        self._thread.start()

    def _accept(self, sock: socket.socket) -> None:
        while self._sock is sock:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    def down(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None


def firing(subjects: Sequence[str]) -> list[str]:
    """Subjects of Alertmanager's default FIRING emails ("[FIRING:1] ...")."""
    return [s for s in subjects if s.startswith("[FIRING")]


def resolved(subjects: Sequence[str]) -> list[str]:
    return [s for s in subjects if s.startswith("[RESOLVED")]
