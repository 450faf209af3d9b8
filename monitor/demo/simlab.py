"""Real SNMP agents on loopback for the demo, the tests and the benchmarks.

``start_snmpsim`` serves the device recordings (``.snmprec``) with snmpsim from its own
venv (``.venv-sim``; snmpsim needs pysmi, which netmon must not import).
``start_snmpd`` runs net-snmp's ``snmpd`` with a generated config (v1/v2c communities
and SNMPv3 users). Both wait until the agent answers before returning.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = PROJECT_ROOT / "tests" / "fixtures" / "snmprec"
SIM_VENV = PROJECT_ROOT / ".venv-sim"


class AgentError(RuntimeError):
    """An agent could not be started; the message says why and how to fix it."""


@dataclass
class Agent:
    """A running agent process on ``host:port``."""

    name: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    _cleanup: list[Path] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ber_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _ber_len(len(body)) + body


def v2c_get_sysuptime(community: str, request_id: int = 1) -> bytes:
    """A minimal SNMPv2c GET of sysUpTime.0, used only to see whether an agent is up."""
    oid = bytes([0x2B, 6, 1, 2, 1, 1, 3, 0])  # 1.3.6.1.2.1.1.3.0
    varbind = _tlv(0x30, _tlv(0x06, oid) + b"\x05\x00")
    pdu = _tlv(
        0xA0,
        _tlv(0x02, request_id.to_bytes(2, "big")) + b"\x02\x01\x00\x02\x01\x00" + _tlv(0x30, varbind),
    )
    return _tlv(0x30, b"\x02\x01\x01" + _tlv(0x04, community.encode()) + pdu)


def wait_for_agent(
    host: str, port: int, community: str, timeout: float, process: subprocess.Popen[bytes]
) -> bool:
    """Poll with a v2c GET until any answer arrives, the process dies, or time runs out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                s.sendto(v2c_get_sysuptime(community), (host, port))
                s.recvfrom(65535)
                return True
            except OSError:  # timeout, or ICMP port unreachable while still starting
                continue
    return False


def snmpsim_available() -> str | None:
    """None when snmpsim can run, else the reason it cannot."""
    exe = SIM_VENV / "bin" / "snmpsim-command-responder"
    if not exe.exists():
        return f"snmpsim is not installed in {SIM_VENV} (run scripts/setup.sh)"
    return None


def start_snmpsim(
    data_dir: Path = RECORDINGS,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    extra_endpoints: Sequence[tuple[str, int]] = (),
    ready_community: str = "printer/canon-lbp6670",
    timeout: float = 30.0,
    command_prefix: Sequence[str] = (),
) -> Agent:
    """Serve every recording in ``data_dir``; the community is the file's relative path.
    ``command_prefix`` runs it through another command (``ip netns exec NS``: an agent
    that a test's network namespace takes down with its link)."""
    if reason := snmpsim_available():
        raise AgentError(reason)
    port = port or free_udp_port(host)
    workdir = Path(tempfile.mkdtemp(prefix="netmon-snmpsim-"))
    log_path = workdir / "snmpsim.log"
    flag = "--agent-udpv6-endpoint" if ":" in host else "--agent-udpv4-endpoint"
    cmd = [
        str(SIM_VENV / "bin" / "snmpsim-command-responder"),
        f"--data-dir={data_dir}",
        f"{flag}={'[' + host + ']' if ':' in host else host}:{port}",
        f"--cache-dir={workdir / 'cache'}",
        "--log-level=error",
    ]
    for h, p in extra_endpoints:
        f = "--agent-udpv6-endpoint" if ":" in h else "--agent-udpv4-endpoint"
        cmd.append(f"{f}={'[' + h + ']' if ':' in h else h}:{p}")
    env = dict(os.environ, SNMPSIM_ALLOW_ROOT="true")
    with log_path.open("wb") as logf:
        proc = subprocess.Popen([*command_prefix, *cmd], stdout=logf, stderr=subprocess.STDOUT,
                                env=env)  # fmt: skip
    agent = Agent("snmpsim", host, port, proc, workdir, log_path, [workdir])
    if not wait_for_agent(host, port, ready_community, timeout, proc):
        tail = agent.log_tail()
        agent.stop()
        raise AgentError(f"snmpsim did not answer on {agent.endpoint} within {timeout}s:\n{tail}")
    return agent


@dataclass(frozen=True)
class V3User:
    """An SNMPv3 user for snmpd. ``auth``/``priv`` use net-snmp's names (SHA-256, AES256...)."""

    name: str
    auth: str | None = None
    auth_password: str | None = None
    priv: str | None = None
    priv_password: str | None = None

    @property
    def level(self) -> str:
        if self.priv:
            return "priv"
        return "auth" if self.auth else "noauth"


def snmpd_available() -> str | None:
    if not shutil.which("snmpd") and not Path("/usr/sbin/snmpd").exists():
        return "net-snmp's snmpd is not installed (apt-get install snmpd)"
    return None


def start_snmpd(
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    communities: Sequence[str] = ("public",),
    users: Sequence[V3User] = (),
    extra_config: Sequence[str] = (),
    timeout: float = 15.0,
) -> Agent:
    """Run snmpd on ``host:port`` with read-only communities and SNMPv3 users."""
    if reason := snmpd_available():
        raise AgentError(reason)
    exe = shutil.which("snmpd") or "/usr/sbin/snmpd"
    port = port or free_udp_port(host)
    workdir = Path(tempfile.mkdtemp(prefix="netmon-snmpd-"))
    log_path = workdir / "snmpd.log"
    conf = workdir / "snmpd.conf"
    lines = [f"rocommunity {c} default" if ":" not in host else f"rocommunity6 {c} default" for c in communities]
    for u in users:
        parts = ["createUser", u.name]
        if u.auth:
            parts += [u.auth, f'"{u.auth_password}"']
            if u.priv:
                parts += [u.priv, f'"{u.priv_password}"']
        lines.append(" ".join(parts))
        lines.append(f"rouser {u.name} {u.level}")
    lines.append("dontLogTCPWrappersConnects yes")
    lines += list(extra_config)
    conf.write_text("\n".join(lines) + "\n")
    endpoint = f"udp6:[{host}]:{port}" if ":" in host else f"udp:{host}:{port}"
    cmd = [exe, "-f", "-C", "-c", str(conf), "-I", "-smux", "-Lf", str(log_path), endpoint]
    env = dict(os.environ, SNMP_PERSISTENT_DIR=str(workdir / "persist"), MIBS="", MIBDIRS="/dev/null")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    agent = Agent("snmpd", host, port, proc, workdir, log_path, [workdir])
    ready = communities[0] if communities else "public"
    if communities and not wait_for_agent(host, port, ready, timeout, proc):
        tail = agent.log_tail()
        agent.stop()
        raise AgentError(f"snmpd did not answer on {agent.endpoint} within {timeout}s:\n{tail}")
    if not communities:
        time.sleep(0.5)
        if proc.poll() is not None:
            raise AgentError(f"snmpd exited at start:\n{agent.log_tail()}")
    return agent


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class DemoLab:
    """Lab machines that are down or on a lossy link, each alone in a network namespace
    reached over its own veth pair (root only). Addresses come from 198.18.0.0/15, the
    range RFC 2544 sets aside for network benchmarking, so they cannot clash with a
    school's real network; the routes exist only while the lab does."""

    namespaces: list[str]
    addresses: list[str]

    #: (what it is, nftables rule dropping its incoming packets) per simulated machine.
    #: nftables rather than ``tc netem``: many cloud and micro-VM kernels ship without
    #: sch_netem, while nftables' random ``numgen`` is nearly always built in.
    MACHINES = (("down", "drop"), ("lossy", "numgen random mod 100 < 30 drop"))

    @classmethod
    def create(cls) -> DemoLab | None:
        lab = cls([], [])
        try:
            for n, (kind, rule) in enumerate(cls.MACHINES, start=1):
                ns, host_if = f"netmon-demo-{os.getpid()}-{kind}", f"nmd{os.getpid() % 10000}{n}"
                net = f"198.18.{200 + n}"
                _ip("netns", "add", ns)
                lab.namespaces.append(ns)
                _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("addr", "add", f"{net}.1/30", "dev", host_if)
                _ip("link", "set", host_if, "up")
                _ip("-n", ns, "addr", "add", f"{net}.2/30", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                ruleset = f"table inet netmon {{\n chain input {{\n type filter hook input priority 0;\n {rule}\n }}\n}}\n"
                subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=ruleset,
                               check=True, capture_output=True, text=True)
                lab.addresses.append(f"{net}.2")
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or exc
            print(f"(could not build the namespace lab: {str(detail).strip()}; leaving it out)")
            lab.destroy()
            return None
        return lab

    def destroy(self) -> None:
        for ns in self.namespaces:  # deleting a namespace removes its veth pair too
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.namespaces.clear()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL (a server that will not stop)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll ``url``/-/ready (Prometheus, Alertmanager) until it answers 200; False when
    ``timeout`` passes or the process exits first."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def free_tcp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def prometheus_available() -> str | None:
    if not shutil.which("prometheus"):
        return "Prometheus is not installed (apt-get install prometheus)"
    return None


@dataclass
class PrometheusServer:
    """A real Prometheus on loopback with a private data directory."""

    url: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def query(self, promql: str) -> list[dict[str, object]]:
        """Instant query; returns the ``result`` list of the HTTP API's answer."""
        import json
        import urllib.parse
        import urllib.request

        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        if body.get("status") != "success":
            raise AgentError(f"Prometheus query {promql!r} failed: {body}")
        return list(body["data"]["result"])

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_prometheus(
    scrape_config_yaml: str, *, rule_files: Sequence[Path] = (), timeout: float = 30.0
) -> PrometheusServer:
    """Start Prometheus with ``scrape_configs`` given as YAML text (a list), optional
    alerting ``rule_files``, a 1 s evaluation interval and a throw-away TSDB; returns once
    its API answers."""
    if reason := prometheus_available():
        raise AgentError(reason)
    import json

    workdir = Path(tempfile.mkdtemp(prefix="netmon-prometheus-"))
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        + f"rule_files: {json.dumps([str(f) for f in rule_files])}\nscrape_configs:\n"
        + "\n".join("  " + line for line in scrape_config_yaml.strip().splitlines())
        + "\n"
    )
    port = free_tcp_port()
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}", proc, workdir)
    if wait_ready(server.url, proc, timeout):
        return server
    tail = (workdir / "prometheus.log").read_text(errors="replace")[-2000:]
    server.stop()
    raise AgentError(f"Prometheus did not become ready on {server.url}:\n{tail}")
