"""The chaos fleet: healthy and misbehaving SNMP agents, live and dead hosts, and a real
``netmon run`` watching them (shared by benchmarks/chaos_fleet.py and
tests/integration/test_chaos_fleet.py, which runs it small).

The mix of SNMP devices (issue 16), each kind with the status netmon must give it:

============================  ======  ==============  ==================================
kind                          share   status          served by
============================  ======  ==============  ==================================
healthy (switch or printer)   55 %    ok              benchmarks/fast_agent.py
silent (never answers)        20 %    timeout         a bound UDP socket that drops
slow (1-3 s per request)      10 %    ok or partial   chaos agent, answers late
garbage (not SNMP)            2.5 %   protocol_error  chaos agent
truncated (BER cut short)     2.5 %   protocol_error  chaos agent
wrong community               5 %     auth_error      net-snmp snmpd (v2c)
SNMPv3, wrong password        5 %     auth_error      the same snmpd (SHA user)
============================  ======  ==============  ==================================

"Silent" is a socket that reads and drops, so netmon sees a timeout; a port with
nothing listening would instead draw ICMP port-unreachable (netmon waits it out as
silence too). The chaos agents (``tests/integration/fake_agents.py --chaos``) run in a
process of their own. Slow agents serve the largest switch recording (about 20 requests
for system + interfaces): every answer comes, late, so every run must bring data, ``ok``
when the walks end before the probe's deadline (1-2.5 s per request), ``partial``
with "answers slowly" when the deadline comes first (3 s), never a timeout. The two
auth kinds are told apart by their explanation ("wrong community" vs "wrong digest").

ICMP targets: live ones on 127.78.0.0/16, dead ones in 10.253.0.0/16 routed into a
network namespace made here, whose kernel does not forward and an nftables rule drops
them too: no reply and no ICMP error, a ``timeout``. SNMP agents listen on
127.77.0.0/16. Nothing is sent anywhere else.

:func:`fleet` starts every agent and writes the inventory (:func:`netmon_config`);
:class:`NetmonRun` runs the daemon and scrapes its ``/metrics`` like Prometheus;
:func:`evaluate` turns the scrapes into the figures and :func:`table` prints them.
Every wait and loop is bounded.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import fast_agent
from monitor.config import load_config, resolve_targets
from monitor.demo import simlab
from monitor.scheduler import _EPOCH, ProbeJob, plan_jobs
from tests import netns as nn

REPO = Path(__file__).resolve().parent.parent

NETMON = REPO / ".venv" / "bin" / "netmon"
FAKE_AGENTS = REPO / "tests" / "integration" / "fake_agents.py"

#: (kind, share of the SNMP devices), in the order of the table.
SNMP_SHARES: tuple[tuple[str, float], ...] = (
    ("healthy", 0.55), ("silent", 0.20), ("slow", 0.10), ("garbage", 0.025),
    ("truncated", 0.025), ("wrong_community", 0.05), ("v3_wrong_password", 0.05),
)  # fmt: skip
DEAD_ICMP_SHARE = 0.20
#: Per-request delays of the slow agents, spread over the fleet (seconds).
SLOW_DELAYS = (1.0, 1.5, 2.0, 2.5, 3.0)
SLOW_RECORDING = "switch/hp-procurve-e2910al-24g-poe"
#: SNMP settings of the whole fleet: the timeout is above the slowest agent's delay.
SNMP_TIMEOUT, SNMP_RETRIES = 4.0, 1
SNMPD_COMMUNITY = "chaos-right-community"
V3_USER, V3_RIGHT, V3_WRONG = "chaos-v3", "right-password-1234", "wrong-password-5678"


@dataclass(frozen=True, slots=True)
class Expect:
    """The statuses a kind may get (one, but for slow agents), phrases one of which its
    explanation must contain, and whether every run must bring data (varbinds)."""

    statuses: tuple[str, ...]
    says: tuple[str, ...]
    data: bool = False

    @property
    def status(self) -> str:
        return " or ".join(self.statuses)


EXPECTED: dict[str, Expect] = {
    "healthy": Expect(("ok",), ("values in",), data=True),
    # Data in every run: ok when the walks finish before the probe's deadline, else
    # partial, "answers slowly" (never a timeout: every answer comes, late).
    "slow": Expect(("ok", "partial"), ("values in", "answers slowly"), data=True),
    "silent": Expect(("timeout",), ("no answer from",)),
    "garbage": Expect(("protocol_error",), ("malformed answer",)),
    "truncated": Expect(("protocol_error",), ("malformed answer",)),
    "wrong_community": Expect(("auth_error",), ("wrong community",)),
    "v3_wrong_password": Expect(("auth_error",), ("wrong digest",)),
    "icmp_live": Expect(("ok",), ("echo replies",)),
    "icmp_dead": Expect(("timeout",), ("host down",)),
}
SWITCHES = sorted(p.relative_to(simlab.RECORDINGS).with_suffix("").as_posix()
                  for p in (simlab.RECORDINGS / "switch").glob("*.snmprec"))  # fmt: skip
PRINTERS = sorted(p.relative_to(simlab.RECORDINGS).with_suffix("").as_posix()
                  for p in (simlab.RECORDINGS / "printer").glob("*.snmprec"))  # fmt: skip


# --- the plan ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Device:
    """One SNMP device: name, kind, loopback address, recording (its community) and,
    for slow ones, the delay of every answer."""

    name: str
    kind: str
    address: str
    recording: str
    delay: float = 0.0


def split(n: int, shares: Sequence[tuple[str, float]]) -> dict[str, int]:
    """``n`` split by ``shares`` (largest remainder: the counts add up to ``n``)."""
    raw = [(kind, n * share) for kind, share in shares]
    counts = {kind: math.floor(x) for kind, x in raw}
    rest = n - sum(counts.values())
    for kind, x in sorted(raw, key=lambda kx: kx[1] - math.floor(kx[1]), reverse=True)[:rest]:
        counts[kind] += 1
    return counts


def snmp_address(i: int) -> str:
    if not 0 <= i < 250 * 250:
        raise ValueError("at most 62,500 SNMP devices")
    return f"127.77.{1 + i // 250}.{1 + i % 250}"


def plan_devices(n: int) -> list[Device]:
    """``n`` SNMP devices in the issue's mix, kinds interleaved over the addresses."""
    counts = split(n, SNMP_SHARES)
    devices: list[Device] = []
    for kind, count in counts.items():
        for k in range(count):
            i = len(devices)
            if kind == "healthy":
                pool = SWITCHES if k % 2 == 0 else PRINTERS
                recording = pool[(k // 2) % len(pool)]
            elif kind in ("slow", "truncated", "silent"):
                recording = SLOW_RECORDING if kind == "slow" else SWITCHES[k % len(SWITCHES)]
            else:
                recording = SWITCHES[k % len(SWITCHES)]
            delay = SLOW_DELAYS[k % len(SLOW_DELAYS)] if kind == "slow" else 0.0
            devices.append(Device(f"{kind.replace('_', '-')}-{k}", kind, snmp_address(i),
                                  recording, delay))  # fmt: skip
    return devices


# --- agents ------------------------------------------------------------------------------


@dataclass
class Agents:
    """Every agent process of the fleet (for their CPU, apart from netmon's)."""

    port: int
    fast: fast_agent.FastAgents | None = None
    chaos: subprocess.Popen[str] | None = None
    snmpd: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None

    @property
    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        if self.fast is not None:
            out["fast_agent (healthy)"] = self.fast.pids
        if self.chaos is not None:
            out["chaos agent (silent, slow, garbage, truncated)"] = [self.chaos.pid]
        if self.snmpd is not None:
            out["snmpd (wrong community, SNMPv3)"] = [self.snmpd.pid]
        return out

    def stop(self) -> None:
        for proc in (self.chaos, self.snmpd):
            if proc is not None:
                simlab.stop_process(proc)
        if self.fast is not None:
            self.fast.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _start_chaos(devices: Sequence[Device], port: int, max_seconds: float) -> subprocess.Popen[str]:
    specs = [{"address": d.address, "kind": d.kind, "delay": d.delay} for d in devices]
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_AGENTS), "--chaos", str(port), str(max_seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("".join(json.dumps(s) + "\n" for s in specs))
    proc.stdin.close()
    proc.stdin = None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else ""
    if '"ready"' not in line:
        proc.kill()
        proc.wait(timeout=5)
        raise RuntimeError(f"the chaos agents did not start (exit {proc.poll()}): {line!r}")
    return proc


def _start_snmpd(devices: Sequence[Device], port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """One net-snmp snmpd on every address of ``devices``: community SNMPD_COMMUNITY and
    SNMPv3 user V3_USER (SHA, V3_RIGHT)."""
    if reason := simlab.snmpd_available():
        raise RuntimeError(reason)
    exe = shutil.which("snmpd") or "/usr/sbin/snmpd"
    conf = workdir / "snmpd.conf"
    conf.write_text(
        f"rocommunity {SNMPD_COMMUNITY} default\n"
        f'createUser {V3_USER} SHA "{V3_RIGHT}"\nrouser {V3_USER} auth\n'
        "dontLogTCPWrappersConnects yes\n"
    )
    endpoints = ",".join(f"udp:{d.address}:{port}" for d in devices)
    env = dict(os.environ, SNMP_PERSISTENT_DIR=str(workdir / "persist"), MIBS="",
               MIBDIRS="/dev/null")  # fmt: skip
    proc = subprocess.Popen(
        [exe, "-f", "-C", "-c", str(conf), "-I", "-smux", "-Lf", str(workdir / "snmpd.log"),
         endpoints], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    for d in (devices[0], devices[-1]):
        if not simlab.wait_for_agent(d.address, port, SNMPD_COMMUNITY, 20, proc):
            proc.kill()
            proc.wait(timeout=5)
            log = (workdir / "snmpd.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"snmpd did not answer on {d.address}:{port}:\n{log}")
    return proc


def _free_port(addresses: Sequence[str]) -> int:
    """A UDP port free on every address (checked by binding them all, then released)."""
    for _ in range(20):
        port = simlab.free_udp_port(addresses[0])
        socks = []
        try:
            for a in addresses:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no UDP port is free on all the fleet's addresses")


def start_agents(devices: Sequence[Device], max_seconds: float,
                 fast_processes: int = 1) -> Agents:  # fmt: skip
    """Start every SNMP agent of ``devices`` on one UDP port; stop them with ``stop()``."""
    port = _free_port([d.address for d in devices])
    workdir = Path(tempfile.mkdtemp(prefix="netmon-chaos-agents-"))
    agents = Agents(port, workdir=workdir)
    try:
        healthy = [d.address for d in devices if d.kind == "healthy"]
        if healthy:
            agents.fast = fast_agent.start(healthy, port, processes=fast_processes,
                                           max_seconds=max_seconds)  # fmt: skip
        chaos = [d for d in devices if d.kind in ("silent", "slow", "garbage", "truncated")]
        if chaos:
            agents.chaos = _start_chaos(chaos, port, max_seconds)
        auth = [d for d in devices if d.kind in ("wrong_community", "v3_wrong_password")]
        if auth:
            agents.snmpd = _start_snmpd(auth, port, workdir)
    except BaseException:
        agents.stop()
        raise
    return agents


@dataclass(frozen=True)
class DeadHosts:
    """Addresses routed into a namespace that neither answers nor sends ICMP errors."""

    block: ipaddress.IPv4Network
    addresses: list[str]


def _free_block(prefixlen: int) -> ipaddress.IPv4Network:
    """A block in 10.253.0.0/16 that no interface or route here uses."""
    used = nn.sh("ip", "-o", "addr", "show").stdout + nn.sh("ip", "route").stdout
    size = 2 ** (32 - prefixlen)
    count = 65536 // size
    start = (os.getpid() * 7) % count
    base = int(ipaddress.IPv4Address("10.253.0.0"))
    for i in range(count):
        net = ipaddress.IPv4Network(f"{ipaddress.IPv4Address(base + ((start + i) % count) * size)}"
                                    f"/{prefixlen}")  # fmt: skip
        if f"{net.network_address}." not in used and str(net) not in used and not any(
            f" {a}/" in used for a in (net.network_address, *list(net.hosts())[:2])
        ):
            return net
    raise RuntimeError("no free block in 10.253.0.0/16")


@contextmanager
def dead_hosts(n: int) -> Iterator[DeadHosts]:
    """``n`` dead addresses: a block routed over a veth into a namespace of our own
    (forwarding off there, and an nftables drop), removed afterwards."""
    prefixlen = 32 - max(2, math.ceil(math.log2(n + 2)))
    with nn.netns("nmcf") as ns, nn.veth(ns, nn.free_subnet()) as link:
        block = _free_block(prefixlen)
        nn.sh("ip", "route", "add", str(block), "via", link.inner, "dev", link.outer_dev)
        ns.sysctl("net.ipv4.ip_forward", "0")
        rules = (
            "table inet chaos_dead {\n chain prerouting { type filter hook prerouting "
            f"priority 0; policy accept;\n  ip daddr {block} drop\n }}\n}}\n"
        )
        subprocess.run([*ns.prefix(), "nft", "-f", "-"], input=rules, text=True, check=True,
                       capture_output=True, timeout=30)  # fmt: skip
        yield DeadHosts(block, [str(a) for a in list(block.hosts())[:n]])
        # the route goes with the veth when nn.veth deletes it


# --- the inventory -----------------------------------------------------------------------


def _ranges(addresses: Sequence[str]) -> list[str]:
    """Consecutive IPv4 addresses as ``A-B`` ranges."""
    nums = sorted(int(ipaddress.IPv4Address(a)) for a in addresses)
    out: list[str] = []
    start = prev = nums[0]
    for x in [*nums[1:], -1]:
        if x != prev + 1 or (x & 0xFF) == 0:
            out.append(f"{ipaddress.IPv4Address(start)}-{ipaddress.IPv4Address(prev)}")
            start = x
        prev = x
    return out


def icmp_live_addresses(n: int) -> list[str]:
    return [f"127.78.{j // 250}.{1 + j % 250}" for j in range(n)]


def netmon_config(devices: Sequence[Device], port: int, live: Sequence[str],
                  dead: Sequence[str], interval: float) -> dict[str, Any]:  # fmt: skip
    """The inventory: one group per (kind, recording), SNMP only for the SNMP devices
    (so ICMP counts only the ICMP targets), the label ``chaos`` = the kind."""
    credentials: dict[str, Any] = {}
    groups: list[dict[str, Any]] = []
    by_group: dict[tuple[str, str], list[Device]] = {}
    for d in devices:
        by_group.setdefault((d.kind, d.recording), []).append(d)
    for (kind, recording), members in by_group.items():
        cred = f"{kind}-{recording.replace('/', '-')}"
        if kind == "wrong_community":
            credentials[cred] = {"version": "2c", "community": "not-the-community"}
        elif kind == "v3_wrong_password":
            credentials[cred] = {"version": "3", "user": V3_USER,
                                 "auth": {"protocol": "SHA", "password": V3_WRONG}}  # fmt: skip
        else:
            credentials[cred] = {"version": "2c", "community": recording}
        groups.append({
            "name": cred, "role": "printer" if recording.startswith("printer/") else "switch",
            "probes": ["snmp"], "credentials": cred, "labels": {"chaos": kind},
            "targets": [{"name": d.name, "address": d.address} for d in members],
        })  # fmt: skip
    for kind, addresses in (("icmp_live", live), ("icmp_dead", dead)):
        if addresses:
            prefix = kind.replace("_", "-")
            groups.append({
                "name": prefix, "role": "lab", "probes": ["icmp"], "labels": {"chaos": kind},
                "targets": [{"range": r, "name_prefix": f"{prefix}-{k}"}
                            for k, r in enumerate(_ranges(addresses))],
            })  # fmt: skip
    return {
        "defaults": {
            "interval": f"{interval:g}s",
            "icmp": {"count": 3, "timeout": "1s"},
            "snmp": {"port": port, "timeout": f"{SNMP_TIMEOUT:g}s", "retries": SNMP_RETRIES},
        },
        "credentials": credentials,
        "groups": groups,
    }


# --- the fleet ---------------------------------------------------------------------------


@dataclass
class Fleet:
    """Agents, dead hosts and the inventory file of one chaos fleet."""

    devices: list[Device]
    agents: Agents
    live: list[str]
    dead: list[str]
    config: Path
    interval: float


@contextmanager
def fleet(n_snmp: int, n_icmp: int, interval: float, workdir: Path, max_seconds: float,
          fast_processes: int = 1) -> Iterator[Fleet]:  # fmt: skip
    """Start the whole fleet (needs root for the dead hosts' namespace when
    ``n_icmp`` > 0) and write its inventory to ``workdir/netmon.yml``."""
    devices = plan_devices(n_snmp)
    n_dead = round(n_icmp * DEAD_ICMP_SHARE)
    live = icmp_live_addresses(n_icmp - n_dead)
    with ExitStack() as stack:
        dead: list[str] = []
        if n_dead:
            dead = stack.enter_context(dead_hosts(n_dead)).addresses
        agents = start_agents(devices, max_seconds, fast_processes)
        stack.callback(agents.stop)
        config = workdir / "netmon.yml"
        config.write_text(yaml.safe_dump(
            netmon_config(devices, agents.port, live, dead, interval), sort_keys=False))  # fmt: skip
        yield Fleet(devices, agents, live, dead, config, interval)


# --- netmon and its /metrics ---------------------------------------------------------------

_LINE = re.compile(rb'^(\w+)\{([^}]*)\} (\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_WANTED = (b"netmon_probe_status{", b"netmon_probe_last_run_timestamp_seconds{",
           b"netmon_scheduler_lag_seconds{", b"netmon_probe_runs_total{",
           b"netmon_scheduler_skipped_runs_total{", b"netmon_snmp_varbinds{")  # fmt: skip


@dataclass
class Scrape:
    """What one ``/metrics`` scrape said: per job (target, probe) its status and last run's
    finish time; the scheduler's lag stats and run counters."""

    at: float
    seconds: float
    size: int
    status: dict[tuple[str, str], str] = field(default_factory=dict)
    last_run: dict[tuple[str, str], float] = field(default_factory=dict)
    kind: dict[tuple[str, str], str] = field(default_factory=dict)
    varbinds: dict[tuple[str, str], float] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=dict)
    runs: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, float] = field(default_factory=dict)


def parse_scrape(body: bytes, at: float, seconds: float) -> Scrape:
    out = Scrape(at, seconds, len(body))
    for line in body.split(b"\n"):
        if not line.startswith(_WANTED):
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        name = m[1].decode()
        labels = dict(_LABEL.findall(m[2].decode()))
        value = float(m[3])
        job = (labels.get("target", ""), labels.get("probe", ""))
        if name == "netmon_probe_status":
            out.status[job] = labels["status"]
            out.kind[job] = labels.get("chaos", "")
        elif name == "netmon_probe_last_run_timestamp_seconds":
            out.last_run[job] = value
        elif name == "netmon_snmp_varbinds":
            out.varbinds[job] = value
        elif name == "netmon_scheduler_lag_seconds":
            out.lag[labels["stat"]] = value
        elif name == "netmon_probe_runs_total":
            out.runs[f"{labels['probe']}/{labels['status']}"] = value
        elif name == "netmon_scheduler_skipped_runs_total":
            out.skipped[f"{labels['probe']}/{labels['reason']}"] = value
    return out


def http_get(url: str, timeout: float = 60.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except OSError:
        return 0, b""


@dataclass
class NetmonRun:
    """``netmon run`` on the fleet's inventory (own work dir and alert state file)."""

    fleet: Fleet
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    spawned_at: float = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "netmon.log"

    def start(self, timeout: float = 60.0) -> float:
        """Spawn the daemon; returns when ``/-/healthy`` answers (seconds it took)."""
        self.port = simlab.free_tcp_port()
        with self.log_path.open("ab") as log:
            self.spawned_at = time.time()
            self.process = subprocess.Popen(
                [str(NETMON), "run", "-c", str(self.fleet.config), "--listen",
                 f"127.0.0.1:{self.port}", "--state-file", str(self.workdir / "state.db")],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"netmon exited ({self.process.returncode}):\n{self.log_tail()}")
            if http_get(f"{self.base}/-/healthy", 5)[0] == 200:
                return time.time() - self.spawned_at
            time.sleep(0.2)
        raise RuntimeError(f"netmon did not become healthy in {timeout:g} s:\n{self.log_tail()}")

    def scrape(self) -> Scrape:
        t0 = time.time()
        status, body = http_get(f"{self.base}/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}:\n{self.log_tail()}")
        return parse_scrape(body, t0, time.time() - t0)

    def targets(self) -> list[dict[str, Any]]:
        status, body = http_get(f"{self.base}/api/targets")
        if status != 200:
            raise RuntimeError(f"/api/targets answered {status}")
        return list(json.loads(body))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            simlab.stop_process(self.process, timeout=15)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def observe(run: NetmonRun, seconds: float, every: float,
            until: Any = None) -> list[Scrape]:  # fmt: skip
    """Scrape every ``every`` s: for ``seconds``, then on until ``until(scrapes)`` is
    true, but never past ``2 * seconds``. Raises if netmon exits."""
    scrapes: list[Scrape] = []
    t0 = time.time()
    while True:
        if not run.alive():
            raise RuntimeError(f"netmon exited:\n{run.log_tail()}")
        scrapes.append(run.scrape())
        elapsed = time.time() - t0
        if elapsed >= seconds and (until is None or until(scrapes) or elapsed >= 2 * seconds):
            return scrapes
        time.sleep(max(0.0, every - scrapes[-1].seconds))


# --- figures -------------------------------------------------------------------------------

_PANIC = re.compile(r"PanicException|panicked at|pyo3_runtime", re.IGNORECASE)


def log_problems(text: str) -> dict[str, int]:
    """Tracebacks, pyasn1 errors and Rust panics in netmon's log."""
    lines = text.splitlines()
    return {
        "tracebacks": sum("Traceback (most recent call last)" in line for line in lines),
        "pyasn1": sum("pyasn1" in line.lower() for line in lines),
        "panics": sum(bool(_PANIC.search(line)) for line in lines),
    }


@dataclass
class KindFigures:
    """How one kind of device fared: statuses over every observation of every device."""

    kind: str
    devices: int
    expected: Expect
    statuses: dict[str, int]  # status -> observations, most common first
    got_it: int  # devices observed, every time with an expected status
    unseen: int  # devices never observed with a result
    explained: int  # devices whose latest explanation has one of expected.says
    with_data: int  # devices whose every observed run brought varbinds (expected.data)
    example: str

    @property
    def ok(self) -> bool:
        data = self.with_data == self.devices or not self.expected.data
        return self.got_it == self.devices and self.explained == self.devices and data


@dataclass
class Figures:
    kinds: list[KindFigures]
    healthy_jobs: int
    healthy_every_interval: int
    healthy_fires: int
    healthy_fires_met: int
    icmp_live_jobs: int
    icmp_live_every_interval: int
    lag_p99_worst: float
    lag_max_worst: float
    window_s: float
    scrapes: int
    runs: dict[str, int]
    skipped: dict[str, int]
    log: dict[str, int]
    missed_examples: list[str]


def _fires(phase: float, interval: float, t0: float, t1: float) -> list[float]:
    """Fire times of a job with ``phase`` inside [t0, t1]."""
    first = _EPOCH.timestamp() + phase
    k0 = math.ceil((t0 - first) / interval)
    k1 = math.floor((t1 - first) / interval)
    return [first + k * interval for k in range(k0, k1 + 1)]


def regular_jobs(fleet_: Fleet) -> list[ProbeJob]:
    """The fleet's jobs that poll every interval: a switch's topology job (every 15
    minutes, not waited for) is not what the fleet measures."""
    return [j for j in plan_jobs(resolve_targets(load_config(fleet_.config))) if j.awaited]


def evaluate(fleet_: Fleet, scrapes: Sequence[Scrape], targets: Sequence[dict[str, Any]],
             log_text: str, window: tuple[float, float]) -> Figures:  # fmt: skip
    """The figures of a run: per kind the statuses given; healthy jobs probed every
    interval inside ``window`` (every fire time in it whose interval ended before the
    last scrape has a run finishing inside that interval); lag; log problems."""
    jobs = regular_jobs(fleet_)
    kind_of = {(j.target.name, j.probe): j.target.labels.get("chaos", "") for j in jobs}
    seen: dict[tuple[str, str], Counter[str]] = {job: Counter() for job in kind_of}
    finishes: dict[tuple[str, str], set[float]] = {job: set() for job in kind_of}
    data: dict[tuple[str, str], list[float]] = {job: [] for job in kind_of}
    for s in scrapes:
        for job, status in s.status.items():
            if job in seen:
                seen[job][status] += 1
        for job, ts in s.last_run.items():
            if job in finishes:
                finishes[job].add(ts)
        for job, n in s.varbinds.items():
            if job in data:
                data[job].append(n)
    latest = {}
    for t in targets:
        for probe, result in (t.get("results") or {}).items():
            latest[(t["name"], probe)] = result
    kinds: list[KindFigures] = []
    order = [k for k, _ in SNMP_SHARES] + ["icmp_live", "icmp_dead"]
    for kind in order:
        members = [job for job, k in kind_of.items() if k == kind]
        if not members:
            continue
        expect = EXPECTED[kind]
        total: Counter[str] = Counter()
        got = unseen = explained = with_data = 0
        example = ""
        for job in members:
            total.update(seen[job])
            if not seen[job]:
                unseen += 1
            elif set(seen[job]) <= set(expect.statuses):
                got += 1
            if seen[job] and data[job] and min(data[job]) > 0:
                with_data += 1
            explanation = str((latest.get(job) or {}).get("explanation", ""))
            if any(phrase in explanation for phrase in expect.says):
                explained += 1
            if not example and explanation:
                example = f"{job[0]}: {explanation}"
        kinds.append(KindFigures(kind, len(members), expect, dict(total.most_common()), got,
                                 unseen, explained, with_data, example))  # fmt: skip
    t0, t1 = window
    last = scrapes[-1].at
    interval = fleet_.interval

    def every_interval(kind: str) -> tuple[int, int, int, int, list[str]]:
        n = met_jobs = fires = met = 0
        missed: list[str] = []
        for j in jobs:
            if kind_of[(j.target.name, j.probe)] != kind:
                continue
            n += 1
            done = sorted(finishes[(j.target.name, j.probe)])
            ok = True
            for f in _fires(j.phase, j.interval, t0, min(t1, last - interval)):
                fires += 1
                if any(f <= r < f + interval for r in done):
                    met += 1
                else:
                    ok = False
                    if len(missed) < 3:
                        missed.append(f"{j.id} fired at {f:.0f} without a run finishing in time")
            met_jobs += ok
        return n, met_jobs, fires, met, missed

    h_jobs, h_met_jobs, h_fires, h_met, missed = every_interval("healthy")
    i_jobs, i_met_jobs, _, _, missed_icmp = every_interval("icmp_live")
    first, final = scrapes[0], scrapes[-1]
    runs = {k: int(v - first.runs.get(k, 0.0)) for k, v in final.runs.items()
            if v - first.runs.get(k, 0.0)}  # fmt: skip
    skipped = {k: int(v - first.skipped.get(k, 0.0)) for k, v in final.skipped.items()
               if v - first.skipped.get(k, 0.0)}  # fmt: skip
    in_window = [s for s in scrapes if t0 <= s.at <= t1 + 1] or list(scrapes)
    return Figures(
        kinds=kinds, healthy_jobs=h_jobs, healthy_every_interval=h_met_jobs,
        healthy_fires=h_fires, healthy_fires_met=h_met, icmp_live_jobs=i_jobs,
        icmp_live_every_interval=i_met_jobs,
        lag_p99_worst=max((s.lag.get("p99", 0.0) for s in in_window), default=float("nan")),
        lag_max_worst=max((s.lag.get("max", 0.0) for s in in_window), default=float("nan")),
        window_s=t1 - t0, scrapes=len(scrapes), runs=runs, skipped=skipped,
        log=log_problems(log_text), missed_examples=missed + missed_icmp,
    )  # fmt: skip


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(fig: Figures) -> str:
    """The figures as Markdown tables: healthy devices, faults, log."""
    h_share = fig.healthy_every_interval / max(1, fig.healthy_jobs)
    i_share = fig.icmp_live_every_interval / max(1, fig.icmp_live_jobs)
    lines = [
        f"measured {fig.window_s:.0f} s ({fig.scrapes} scrapes of /metrics)",
        "",
        _row("healthy devices", "measured"),
        "|---|---|",
        _row("SNMP: probed every interval",
             f"{fig.healthy_every_interval}/{fig.healthy_jobs} devices ({h_share:.1%}); "
             f"{fig.healthy_fires_met}/{fig.healthy_fires} scheduled runs done in their interval"),
        _row("ICMP (live): probed every interval",
             f"{fig.icmp_live_every_interval}/{fig.icmp_live_jobs} ({i_share:.1%})"),
        _row("scheduler lag p99 / max (worst scrape)",
             f"{fig.lag_p99_worst:.3f} / {fig.lag_max_worst:.3f} s"),
        "",
        _row("kind", "devices", "status expected", "statuses given (observations)",
             "every device got it", "explanation says", "data in every run"),
        "|---|---:|---|---|---|---|---|",
    ]  # fmt: skip
    for k in fig.kinds:
        given = ", ".join(f"{s} {n}" for s, n in k.statuses.items()) or "none"
        never = f", {k.unseen} never probed" if k.unseen else ""
        got = f"{_mark(k.got_it == k.devices)} ({k.got_it}/{k.devices}{never})"
        phrases = " / ".join(f"'{p}'" for p in k.expected.says)
        says = f"{_mark(k.explained == k.devices)} {phrases} ({k.explained}/{k.devices})"
        data = f"{_mark(k.with_data == k.devices)} ({k.with_data}/{k.devices})"
        lines.append(_row(k.kind, k.devices, k.expected.status, given, got, says,
                          data if k.expected.data else ""))  # fmt: skip
    lg = fig.log
    lines.append("")
    lines.append(f"netmon's log: {lg['tracebacks']} tracebacks, {lg['pyasn1']} pyasn1 lines, "
                 f"{lg['panics']} Rust panics (all must be 0) {_mark(not any(lg.values()))}")
    lines.append(f"runs from the first to the last scrape, by status: {fig.runs}; skipped: "
                 f"{fig.skipped or 'none'}")
    if fig.missed_examples:
        lines.append("missed: " + "; ".join(fig.missed_examples))
    lines.append("")
    lines.append("one explanation of each kind (/api/targets):")
    lines += [f"- {k.kind}: {k.example[:240]}" for k in fig.kinds]
    return "\n".join(lines)
