"""Misbehaving SNMP agents on real loopback UDP sockets, for the client's failure tests.

Each runs in a daemon thread with blocking sockets, independent of the test's event
loop, and stops when its ``with`` block ends. Only 127.0.0.1 is ever used.

:func:`serve_chaos` is the exception: many misbehaving agents (silent, slow, garbage,
truncated) on many 127.0.0.0/8 addresses in one process of their own, so a fleet's agents
use a CPU that is measured apart from netmon's (``tests/chaos_fleet_lab.py`` starts it).
"""

from __future__ import annotations

import heapq
import ipaddress
import json
import os
import random
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api

Handler = Callable[[bytes], bytes | None]


class FakeAgent:
    """A UDP server on 127.0.0.1 that answers each datagram with ``handler(datagram)``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.host, self.port = "127.0.0.1", int(self.sock.getsockname()[1])
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received += 1
            reply = self.handler(data)
            if reply is not None:
                self.sock.sendto(reply, addr)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def garbage_agent() -> FakeAgent:
    """Answers everything with bytes that are not SNMP (as a misdirected service would)."""
    return FakeAgent(lambda _data: b"HTTP/1.0 400 Bad Request\r\n\r\n")


#: The single OID the looping agent answers with, whatever it is asked.
LOOP_OID = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 1)


def _loop_reply(data: bytes) -> bytes | None:
    """A v2c agent whose GETNEXT/GETBULK always returns LOOP_OID: the first answer is
    fine, the second is not greater than the request (a real firmware bug)."""
    pmod = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    try:
        request, _ = decoder.decode(data, asn1Spec=pmod.Message())
    except PyAsn1Error:  # anything unreadable (e.g. an SNMPv3 probe) gets no answer
        return None
    response = pmod.apiMessage.get_response(request)
    pmod.apiPDU.set_varbinds(pmod.apiMessage.get_pdu(response), [(LOOP_OID, pmod.Integer(1))])
    return bytes(encoder.encode(response))


def looping_agent() -> FakeAgent:
    return FakeAgent(_loop_reply)


class CuttingProxy:
    """Forwards requests to a real agent and relays only its first ``responses``
    answers; after that the agent seems to die mid-walk."""

    def __init__(self, upstream: tuple[str, int], responses: int) -> None:
        self.upstream = upstream
        self.responses = responses
        self.relayed = 0
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(upstream)
        self.host, self.port = "127.0.0.1", int(self.front.getsockname()[1])
        self._client: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.front, selectors.EVENT_READ)
            sel.register(self.back, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.05):
                    if key.fileobj is self.front:
                        data, self._client = self.front.recvfrom(65535)
                        self.back.send(data)
                    else:
                        data = self.back.recv(65535)
                        if self.relayed < self.responses and self._client:
                            self.relayed += 1
                            self.front.sendto(data, self._client)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.front.close()
        self.back.close()


# -- malformed answers: real responses, mutated ------------------------------------------

#: BER tags of the SNMP PDUs a manager sends, and of the answer.
GET_TAG, GETNEXT_TAG, RESPONSE_TAG, GETBULK_TAG = 0xA0, 0xA1, 0xA2, 0xA5


@dataclass(frozen=True, slots=True)
class Tlv:
    """One BER TLV inside a datagram: offsets of its tag, content and end."""

    tag: int
    start: int
    body: int
    end: int
    depth: int


def ber_length(n: int) -> bytes:
    """A definite BER length field."""
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def parse_tlvs(data: bytes, max_depth: int = 8) -> list[Tlv]:
    """Every TLV of well-formed BER ``data`` in pre-order (single-byte tags, definite
    lengths: what SNMP agents send). Raises ValueError on anything else."""
    out: list[Tlv] = []

    def walk(pos: int, end: int, depth: int) -> None:
        if depth > max_depth:
            raise ValueError("BER nested too deep")
        while pos < end:
            if end - pos < 2 or data[pos] & 0x1F == 0x1F:
                raise ValueError(f"no TLV header at {pos}")
            tag, first = data[pos], data[pos + 1]
            body = pos + 2
            length = first
            if first & 0x80:
                size = first & 0x7F
                if not 0 < size <= 4 or body + size > end:
                    raise ValueError(f"bad length field at {pos}")
                length = int.from_bytes(data[body : body + size], "big")
                body += size
            if body + length > end:
                raise ValueError(f"TLV at {pos} overruns its parent")
            out.append(Tlv(tag, pos, body, body + length, depth))
            if tag & 0x20:
                walk(body, body + length, depth + 1)
            pos = body + length

    walk(0, len(data), 0)
    return out


def splice(data: bytes, nodes: list[Tlv], index: int, replacement: bytes, *,
           fix_lengths: bool) -> bytes:
    """Replace TLV ``index`` with ``replacement``; with ``fix_lengths`` the enclosing
    TLVs' lengths are rewritten so the result is still well-formed BER."""
    node = nodes[index]
    out = data[: node.start] + replacement + data[node.end :]
    if not fix_lengths:
        return out
    delta = len(replacement) - (node.end - node.start)
    enclosing = [n for n in nodes[:index] if n.start < node.start and n.end >= node.end]
    for parent in sorted(enclosing, key=lambda n: n.depth, reverse=True):  # innermost first
        old_header = parent.body - parent.start
        header = bytes([parent.tag]) + ber_length(parent.end - parent.body + delta)
        out = out[: parent.start] + header + out[parent.body :]
        delta += len(header) - old_header
    return out


#: Replacement length fields a decoder must refuse: longer than any datagram, an
#: overflowing length-of-length, the indefinite form, the reserved 0xFF.
HUGE_LENGTHS = (b"\x84\xff\xff\xff\xff", b"\x84\x7f\xff\xff\xff", b"\x89" + b"\xff" * 9,
                b"\x80", b"\xff")

MUTATION_KINDS = ("truncate", "flip", "length", "huge_length", "drop", "dup", "retag",
                  "empty_varbind", "empty_varbinds", "replace_value", "trailing", "cut_random",
                  "random")


@dataclass(frozen=True, slots=True)
class Mutation:
    """How a real response is damaged. ``at`` picks a byte or TLV (modulo their count),
    ``value`` a byte, tag or length, ``extra`` bytes to insert; ``fix`` keeps the
    enclosing lengths consistent after a TLV is dropped, duplicated or replaced."""

    kind: str
    at: int = 0
    value: int = 0
    extra: bytes = b""
    fix: bool = False

    def __call__(self, data: bytes) -> bytes:
        if self.kind == "random":
            return self.extra
        if self.kind == "trailing":
            return data + (self.extra or b"\x00")
        if self.kind == "truncate":
            return data[: self.at % len(data)]
        if self.kind == "cut_random":  # a real start, then random bytes
            return data[: self.at % len(data)] + self.extra
        if self.kind == "flip":
            pos = self.at % len(data)
            return data[:pos] + bytes([data[pos] ^ (self.value % 255 + 1)]) + data[pos + 1 :]
        nodes = parse_tlvs(data)
        i = self.at % len(nodes)
        node = nodes[i]
        if self.kind == "length":  # the content is left as it was
            return data[: node.start + 1] + ber_length(self.value) + data[node.body :]
        if self.kind == "huge_length":
            field = HUGE_LENGTHS[self.value % len(HUGE_LENGTHS)]
            return data[: node.start + 1] + field + data[node.body :]
        if self.kind == "retag":
            tag = self.value & 0xFF
            tag = tag if tag != node.tag else tag ^ 0x01
            return data[: node.start] + bytes([tag]) + data[node.start + 1 :]
        whole = data[node.start : node.end]
        if self.kind == "drop":
            return splice(data, nodes, i, b"", fix_lengths=self.fix)
        if self.kind == "dup":
            return splice(data, nodes, i, whole + whole, fix_lengths=self.fix)
        if self.kind == "replace_value":  # same tag, other content (e.g. a 5-byte IpAddress)
            leaves = [j for j, n in enumerate(nodes) if not n.tag & 0x20] or [i]
            j = leaves[self.at % len(leaves)]
            leaf = nodes[j]
            new = bytes([leaf.tag]) + ber_length(len(self.extra)) + self.extra
            return splice(data, nodes, j, new, fix_lengths=True)
        if self.kind == "empty_varbind":
            return empty_varbind(data, self.at)
        if self.kind == "empty_varbinds":
            return empty_varbinds(data)
        raise ValueError(f"unknown mutation {self.kind!r}")


def varbind_list(nodes: list[Tlv]) -> int:
    """Index of the PDU's variable-bindings SEQUENCE (its last child)."""
    pdu = next(n for n in nodes if n.depth == 1 and 0xA0 <= n.tag <= 0xA8)
    return max(j for j, n in enumerate(nodes) if n.depth == 2 and pdu.start < n.start < pdu.end)


def empty_varbinds(data: bytes) -> bytes:
    """The response with an empty variable-bindings SEQUENCE (``30 00``), lengths fixed."""
    nodes = parse_tlvs(data)
    return splice(data, nodes, varbind_list(nodes), b"\x30\x00", fix_lengths=True)


def empty_varbind(data: bytes, which: int = 0) -> bytes:
    """The response with one variable binding replaced by an empty SEQUENCE (``30 00``:
    no name, no value; gufo-snmp 0.13 panics on it), lengths fixed."""
    nodes = parse_tlvs(data)
    vbl = nodes[varbind_list(nodes)]
    bindings = [j for j, n in enumerate(nodes) if n.depth == 3 and vbl.start < n.start < vbl.end]
    if not bindings:
        return splice(data, nodes, varbind_list(nodes), b"\x30\x02\x30\x00", fix_lengths=True)
    return splice(data, nodes, bindings[which % len(bindings)], b"\x30\x00", fix_lengths=True)


def request_kind(data: bytes) -> int | None:
    """The PDU tag of a v1/v2c request, or None for anything else (SNMPv3, garbage)."""
    try:
        nodes = parse_tlvs(data)
    except ValueError:
        return None
    top = [n for n in nodes if n.depth == 1]
    if len(top) != 3 or top[0].tag != 0x02 or data[top[0].body : top[0].end] not in (b"\x00",
                                                                                      b"\x01"):
        return None
    return top[2].tag


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request the mutating agent answered: the real answer and what it sent."""

    kind: int
    request: bytes
    real: bytes
    sent: bytes | None
    mutated: bool


class MutatingAgent:
    """Relays each v1/v2c request to a real agent on loopback and answers with that
    agent's real response (so the request-id matches), damaged by the armed mutation:
    GET answers always, walk (GETNEXT/GETBULK) answers from the ``skip``-th on, so the
    walk has good rows first. SNMPv3 requests (discovery probes) get no answer, as from
    an agent without SNMPv3. ``exchanges`` records what was sent since ``arm``."""

    def __init__(self, upstream: tuple[str, int], upstream_timeout: float = 1.0) -> None:
        if not ipaddress.ip_address(upstream[0]).is_loopback:
            raise ValueError("the mutating agent relays to loopback only")
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.front.settimeout(0.05)
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(upstream)
        self.upstream_timeout = upstream_timeout
        self.host, self.port = "127.0.0.1", int(self.front.getsockname()[1])
        self.exchanges: list[Exchange] = []
        self._mutation: Callable[[bytes], bytes | None] | None = None
        self._skip = 0
        self._walk_answers = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def arm(self, mutation: Callable[[bytes], bytes | None] | None, skip: int = 0) -> None:
        """Damage answers with ``mutation`` (None: relay them unchanged) from now on."""
        with self._lock:
            self._mutation, self._skip, self._walk_answers = mutation, skip, 0
            self.exchanges = []

    def _relay(self, request: bytes) -> bytes | None:
        self.back.setblocking(False)
        try:
            for _ in range(64):  # drop late answers to earlier requests
                self.back.recv(65535)
        except OSError:
            pass
        self.back.settimeout(self.upstream_timeout)
        try:
            self.back.send(request)
            return self.back.recv(65535)
        except OSError:  # timeout or ICMP unreachable: no answer
            return None

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                request, addr = self.front.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            kind = request_kind(request)
            real = self._relay(request) if kind is not None else None
            if kind is None or real is None:
                continue
            with self._lock:
                mutation = self._mutation
                if kind in (GETNEXT_TAG, GETBULK_TAG):
                    mutation = mutation if self._walk_answers >= self._skip else None
                    self._walk_answers += 1
                sent = mutation(real) if mutation is not None else real
                self.exchanges.append(Exchange(kind, request, real, sent, mutation is not None))
            if sent is not None:
                try:
                    self.front.sendto(sent, addr)
                except OSError:  # e.g. an empty or oversized datagram refused
                    continue

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.front.close()
        self.back.close()


# -- a fleet of misbehaving agents in one process (the chaos fleet) -----------------------

#: What a chaos agent does with each request: drop it, answer it late, answer with bytes
#: that are not SNMP, or answer with a real response cut short.
CHAOS_KINDS = ("silent", "slow", "garbage", "truncated")


@dataclass(frozen=True, slots=True)
class ChaosSpec:
    """One misbehaving agent: its loopback address, kind, and (``slow``) the delay of
    every answer in seconds. ``slow`` and ``truncated`` answer from the recordings
    (community = the recording's path), through benchmarks/fast_agent.py's encoder."""

    address: str
    kind: str
    delay: float = 0.0


def garbage_answer(address: str, n: int) -> bytes:
    """Not SNMP, in three flavours by address and request number: a text protocol's
    error, random bytes, and a BER SEQUENCE of the right length full of random bytes."""
    rng = random.Random(f"{address}/{n}")
    flavour = (sum(map(int, address.split("."))) + n) % 3
    if flavour == 0:
        return b"HTTP/1.0 400 Bad Request\r\n\r\n"
    body = rng.randbytes(rng.randint(1, 200))
    if flavour == 1:
        return body
    return bytes([0x30, len(body)]) + body if len(body) < 0x80 else \
        bytes([0x30, 0x81, len(body)]) + body


def truncated_answer(real: bytes, address: str, n: int) -> bytes:
    """The real answer cut somewhere after its first two bytes (its lengths overrun)."""
    rng = random.Random(f"{address}/{n}")
    return real[: rng.randint(2, max(2, len(real) - 1))]


def serve_chaos(specs: Sequence[ChaosSpec], port: int, max_seconds: float,
                ready: Any = None) -> dict[str, int]:
    """Serve every spec on ``address:port`` in this process until SIGTERM/SIGINT, the
    parent's death or ``max_seconds``; returns what was done. Loopback addresses only."""
    repo = str(Path(__file__).resolve().parents[2])
    if repo not in sys.path:  # run as a script
        sys.path.insert(0, repo)
    from benchmarks import fast_agent

    agent = fast_agent.Agent(fast_agent.load_recordings())
    stats = {"requests": 0, "dropped": 0, "answered": 0}
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    due: list[tuple[float, int, socket.socket, bytes, tuple[str, int]]] = []
    seq = 0
    try:
        for spec in specs:
            if spec.kind not in CHAOS_KINDS:
                raise ValueError(f"unknown chaos kind {spec.kind!r}")
            if not ipaddress.ip_address(spec.address).is_loopback:
                raise ValueError(f"{spec.address} is not a loopback address")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((spec.address, port))
            s.setblocking(False)
            socks.append(s)
            sel.register(s, selectors.EVENT_READ, (s, spec))
        if ready is not None:
            ready.write(json.dumps({"ready": len(socks), "pid": os.getpid()}) + "\n")
            ready.flush()
        deadline = time.monotonic() + max_seconds
        while not stop and time.monotonic() < deadline and os.getppid() == parent:
            wait = 0.5 if not due else min(0.5, max(0.0, due[0][0] - time.monotonic()))
            for key, _ in sel.select(timeout=wait):
                s, spec = key.data
                for _ in range(64):  # a bounded burst, then the others
                    try:
                        data, peer = s.recvfrom(65535)
                    except OSError:
                        break
                    stats["requests"] += 1
                    seq += 1
                    reply: bytes | None = None
                    if spec.kind == "garbage":
                        reply = garbage_answer(spec.address, seq)
                    elif spec.kind in ("slow", "truncated"):
                        reply = agent.handle(data)
                        if reply is not None and spec.kind == "truncated":
                            reply = truncated_answer(reply, spec.address, seq)
                    if reply is None:
                        stats["dropped"] += 1
                        continue
                    at = time.monotonic() + (spec.delay if spec.kind == "slow" else 0.0)
                    heapq.heappush(due, (at, seq, s, reply, peer))
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, _, s, reply, peer = heapq.heappop(due)
                try:
                    s.sendto(reply, peer)
                    stats["answered"] += 1
                except OSError:
                    stats["dropped"] += 1
    finally:
        sel.close()
        for s in socks:
            s.close()
    return stats


def _chaos_main() -> int:
    """``python tests/integration/fake_agents.py --chaos PORT MAX_SECONDS``: specs as
    JSON lines on stdin; a ready line, and at the end the stats, on stdout."""
    port, max_seconds = int(sys.argv[2]), float(sys.argv[3])
    specs = [ChaosSpec(**json.loads(line)) for line in sys.stdin if line.strip()]
    stats = serve_chaos(specs, port, max_seconds, ready=sys.stdout)
    sys.stdout.write(json.dumps({"stats": stats}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--chaos"]:
        raise SystemExit(_chaos_main())
    raise SystemExit("usage: fake_agents.py --chaos PORT MAX_SECONDS < specs.jsonl")
