"""One shared ICMP echo engine: one socket per address family, replies demultiplexed once.

Why the socket layer is our own and not icmplib's: icmplib opens a socket per task. With
raw sockets every one of them receives a copy of every ICMP packet on the host, so cost
grows with concurrency squared and replies get lost past ~100 concurrent pings (116x
fping's CPU); with datagram sockets it still costs a socket, a send and a receive
syscall dance per task (10x fping). Its RTTs are measured after the asyncio loop got
round to the reply, which under load is loop latency, not network latency.

Here one engine owns at most one socket per family, registered with ``loop.add_reader``.
One callback drains every ready packet (non-blocking, until EAGAIN) and hands each reply
to the request waiting for it, keyed by (source address, sequence) after checking our
identifier (raw) or by the kernel, which rewrites the identifier to the socket's port
and delivers only our replies (datagram). Receive times come from the kernel
(``SO_TIMESTAMPNS``, CLOCK_REALTIME) and send times from ``time.time_ns()`` just before
``sendto``, so RTTs stay honest however busy the loop is. Errors: raw sockets receive
destination-unreachable / time-exceeded packets whose quoted header names the request;
datagram sockets get them on the error queue (``IP_RECVERR``/``IPV6_RECVERR``).
icmplib is still used where it helps: name resolution with address-family fallback
(:func:`icmplib.async_resolve`, in :mod:`probes.icmp`).
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import socket
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from probes.errors import IcmpPermissionError

IcmpMode = Literal["raw", "datagram"]

# Linux constants the socket module does not export.
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
IP_RECVERR = 11
IPV6_RECVERR = 25
SOL_IPV6 = socket.IPPROTO_IPV6
SOL_SOCKET = socket.SOL_SOCKET
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
MSG_ERRQUEUE = 0x2000

ICMP_ECHO_REPLY, ICMP_UNREACH, ICMP_ECHO, ICMP_TIME_EXCEEDED = 0, 3, 8, 11
ICMP6_UNREACH, ICMP6_TIME_EXCEEDED, ICMP6_ECHO, ICMP6_ECHO_REPLY = 1, 3, 128, 129

#: Receive buffer asked for: room for thousands of queued replies during a burst.
RCVBUF_BYTES = 8 << 20
#: Rough kernel memory one queued reply costs (skb truesize), to size the send budget.
_BYTES_PER_QUEUED_REPLY = 2048

_UNREACH_V4 = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    5: "source route failed",
    6: "network unknown",
    7: "host unknown",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    11: "network unreachable for TOS",
    12: "host unreachable for TOS",
    13: "communication administratively prohibited (filtered)",
}
_UNREACH_V6 = {
    0: "no route to destination",
    1: "communication administratively prohibited",
    2: "beyond scope of source address",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed ingress/egress policy",
    6: "reject route to destination",
}

FIX_PERMISSION = (
    "ICMP needs raw sockets (root or CAP_NET_RAW) or datagram 'ping' sockets allowed "
    "for this process's group {gid} (net.ipv4.ping_group_range is now {current!r}). "
    "Fix one of: (1) allow ping sockets for all groups: "
    'sysctl -w net.ipv4.ping_group_range="0 2147483647" and keep it across reboots with '
    "echo 'net.ipv4.ping_group_range = 0 2147483647' > /etc/sysctl.d/60-netmon-ping.conf; "
    "(2) give the interpreter the capability: setcap cap_net_raw+ep {python}; "
    "(3) under systemd, add AmbientCapabilities=CAP_NET_RAW to the netmon service."
)


# ---------------------------------------------------------------- pure packet logic


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    return _fold(word_sum(data))


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def payload_bytes(size: int) -> bytes:
    """A recognisable echo payload of ``size`` bytes."""
    pattern = b"netmon-icmp-echo"
    return (pattern * (size // len(pattern) + 1))[:size]


def build_echo_request(
    ipv6: bool, ident: int, seq: int, payload: bytes, payload_sum: int | None = None
) -> bytes:
    """An ICMP(v6) echo request; the checksum is filled in for ICMPv4 only.

    For ICMPv6 and for datagram sockets the kernel computes it (ICMPv6's covers a
    pseudo-header this process does not know). ``payload_sum`` (see :func:`word_sum`)
    saves summing the same payload for every packet.
    """
    if payload_sum is None:
        payload_sum = word_sum(payload)
    return bytes(_Template(ipv6, ident, payload, payload_sum).fill(seq))


def word_sum(data: bytes) -> int:
    """Sum of the big-endian 16-bit words of ``data`` (zero-padded), unfolded."""
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one received ICMP message says: a reply, or an error about one request."""

    is_reply: bool
    ident: int
    seq: int
    #: For errors: the original destination, from the quoted header; None for replies.
    dest: str | None = None
    error: str | None = None


def describe_error(ipv6: bool, icmp_type: int, code: int) -> str | None:
    """Human text for an ICMP error type/code, or None if it is not one we report."""
    if not ipv6 and icmp_type == ICMP_UNREACH:
        return f"destination unreachable: {_UNREACH_V4.get(code, f'code {code}')}"
    if ipv6 and icmp_type == ICMP6_UNREACH:
        return f"destination unreachable: {_UNREACH_V6.get(code, f'code {code}')}"
    if (icmp_type, ipv6) in ((ICMP_TIME_EXCEEDED, False), (ICMP6_TIME_EXCEEDED, True)):
        return "time exceeded in transit (TTL expired: routing loop?)" if code == 0 else (
            "fragment reassembly time exceeded"
        )
    return None


def parse_icmp(data: bytes | memoryview, ipv6: bool, has_ip_header: bool) -> Parsed | None:
    """Parse a received ICMP message; None when it is neither an echo reply nor an error
    quoting one of our echo requests. ``has_ip_header``: raw IPv4 sockets get the IP
    header in front of the ICMP message, nothing else does.
    """
    offset = (data[0] & 0x0F) * 4 if has_ip_header and len(data) else 0
    if len(data) < offset + 8:
        return None
    icmp_type, code, _, ident, seq = struct.unpack_from("!BBHHH", data, offset)
    if icmp_type == (ICMP6_ECHO_REPLY if ipv6 else ICMP_ECHO_REPLY):
        return Parsed(True, ident, seq)
    error = describe_error(ipv6, icmp_type, code)
    if error is None:
        return None
    quoted = offset + 8  # the offending packet's IP header starts here
    if ipv6:
        if len(data) < quoted + 48 or data[quoted + 6] != socket.IPPROTO_ICMPV6:
            return None
        dest = socket.inet_ntop(socket.AF_INET6, bytes(data[quoted + 24 : quoted + 40]))
        inner = quoted + 40
        echo = ICMP6_ECHO
    else:
        if len(data) < quoted + 20:
            return None
        ihl = (data[quoted] & 0x0F) * 4
        if data[quoted + 9] != socket.IPPROTO_ICMP or len(data) < quoted + ihl + 8:
            return None
        dest = socket.inet_ntop(socket.AF_INET, bytes(data[quoted + 16 : quoted + 20]))
        inner = quoted + ihl
        echo = ICMP_ECHO
    q_type, _, _, q_ident, q_seq = struct.unpack_from("!BBHHH", data, inner)
    if q_type != echo:
        return None
    return Parsed(False, q_ident, q_seq, dest, error)


def parse_errqueue(data: bytes | memoryview, ancdata: list[tuple[int, int, bytes]]) -> (
    tuple[int, str] | None
):
    """From one ``MSG_ERRQUEUE`` message of a datagram socket: (quoted seq, error text).

    ``data`` is our own echo request as sent; the ``*_RECVERR`` cmsg carries a
    ``struct sock_extended_err`` (errno, origin, type, code, ..., then the offender).
    """
    if len(data) < 8:
        return None
    seq = struct.unpack_from("!H", data, 6)[0]
    for level, kind, cdata in ancdata:
        if (level, kind) not in ((socket.SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)):
            continue
        ee_errno, origin, icmp_type, code = struct.unpack_from("=IBBB", cdata)
        text = None
        if origin in (2, 3):  # SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6
            text = describe_error(origin == 3, icmp_type, code)
        if text is None:
            text = os.strerror(ee_errno)
        offender = _offender(cdata[16:])
        return seq, f"{text} (from {offender})" if offender else text
    return None


def _offender(raw: bytes) -> str | None:
    if len(raw) >= 8:
        family = struct.unpack_from("=H", raw)[0]
        if family == socket.AF_INET:
            return socket.inet_ntop(socket.AF_INET, raw[4:8])
        if family == socket.AF_INET6 and len(raw) >= 24:
            return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None


def canonical(address: str) -> str:
    """The address spelled as the kernel reports a reply's source (no zone suffix)."""
    bare = address.split("%", 1)[0]
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    return socket.inet_ntop(family, socket.inet_pton(family, bare))


# ---------------------------------------------------------------- the engine


@dataclass(slots=True)
class PingStats:
    """What one ``ping()`` saw. ``sent`` counts attempts, including failed sends."""

    address: str
    sent: int = 0
    received: int = 0
    #: Round-trip times in seconds, in arrival order; only replies within the timeout.
    rtts: list[float] = field(default_factory=list)
    #: ICMP errors received and send failures, as text, one per affected request.
    errors: list[str] = field(default_factory=list)


_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_TIMESPEC = struct.Struct("@qq")
#: Attempts at one echo request while the send buffer is full, 1 ms more apart each time.
_SEND_ATTEMPTS = 20


class _Template:
    """A reusable echo request buffer: only sequence and checksum change per packet."""

    __slots__ = ("base", "buffer", "ident", "type")

    def __init__(self, ipv6: bool, ident: int, payload: bytes, payload_sum: int) -> None:
        self.buffer = bytearray(8 + len(payload))
        self.buffer[8:] = payload
        self.ident = ident
        self.type = ICMP6_ECHO if ipv6 else ICMP_ECHO
        # One's-complement sum of everything but the sequence, folded to 16 bits (-1 for
        # ICMPv6, whose checksum the kernel computes), so a packet costs one addition.
        base = -1
        if not ipv6:
            base = (ICMP_ECHO << 8) + ident + payload_sum
            while base >> 16:
                base = (base & 0xFFFF) + (base >> 16)
        self.base = base

    def fill(self, seq: int) -> bytearray:
        """The buffer holding the request with sequence ``seq`` (valid until the next fill)."""
        csum = 0
        if self.base >= 0:
            total = self.base + seq
            csum = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
        _HEADER.pack_into(self.buffer, 0, self.type, 0, csum, self.ident, seq)
        return self.buffer


class _Probe:
    """Book-keeping of one ``ping()`` call, shared by its echo requests.

    While it is live the engine's heap holds exactly one event for it: when its next
    echo request is due or, once all are sent, the deadline of the last reply.
    """

    __slots__ = ("address", "attempts", "channel", "done", "due", "finished", "interval",
                 "outstanding", "seqs", "sockaddr", "stats", "template", "timeout",
                 "timeout_ns", "to_send")

    def __init__(self, channel: _Channel, address: str, sockaddr: tuple[object, ...],
                 template: _Template, stats: PingStats, count: int, interval: float,
                 timeout: float, done: asyncio.Future[None]) -> None:
        self.channel = channel
        self.address = address
        self.sockaddr = sockaddr
        self.template = template
        self.stats = stats
        self.to_send = count
        self.interval = interval
        self.timeout = timeout
        self.timeout_ns = int(timeout * 1e9)
        self.done = done
        self.outstanding = 0
        self.attempts = 0
        self.due = 0.0  # loop time of its next event
        self.finished = False
        self.seqs: list[int] = []

    def finish(self) -> None:
        """Stop waiting: forget unanswered requests, wake the ``ping()`` call once."""
        self.finished = True
        if self.outstanding:
            pending, address = self.channel.pending, self.address
            for seq in self.seqs:
                entry = pending.get((address, seq))
                if entry is not None and entry[0] is self:
                    del pending[address, seq]
        if not self.done.done():
            self.done.set_result(None)

    def answered(self) -> None:
        self.outstanding -= 1
        if not self.outstanding and not self.to_send:
            self.finish()


_Key = tuple[str, int]  # (canonical source address, sequence number)


class _Channel:
    """One socket of one address family, its reader callback and its pending requests."""

    def __init__(self, engine: IcmpEngine, sock: socket.socket, ipv6: bool) -> None:
        self.engine = engine
        self.sock = sock
        self.ipv6 = ipv6
        self.raw = engine.mode == "raw"
        self.has_ip_header = self.raw and not ipv6
        self.pending: dict[_Key, tuple[_Probe, int]] = {}
        self.buffer = bytearray(65536)
        self.view = memoryview(self.buffer)
        self.ancsize = socket.CMSG_SPACE(16) + 64
        rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        #: Echo requests sent per loop iteration before the reader gets a turn.
        self.send_budget = max(32, rcvbuf // _BYTES_PER_QUEUED_REPLY)
        self.loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.loop is None:
            self.loop = loop
            loop.add_reader(self.sock.fileno(), self.on_readable)

    def on_readable(self) -> None:
        """Drain every queued packet, then (datagram) the error queue.

        Echo replies, nearly every packet, are handled inline: that is the hot path.
        """
        sock, buffer, buffers, ancsize = self.sock, self.buffer, [self.view], self.ancsize
        pending, has_ip_header, ipv6 = self.pending, self.has_ip_header, self.ipv6
        reply_type = ICMP6_ECHO_REPLY if ipv6 else ICMP_ECHO_REPLY
        ident = self.engine.ident if self.raw else -1  # the kernel checks it (datagram)
        unpack, unpack_timespec = _HEADER.unpack_from, _TIMESPEC.unpack_from
        while True:
            try:
                size, ancdata, _, addr = sock.recvmsg_into(buffers, ancsize)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # a pending socket error (datagram); the error queue has details
            offset = (buffer[0] & 0x0F) * 4 if has_ip_header else 0
            if size < offset + 8:
                continue
            icmp_type, _, _, reply_ident, seq = unpack(buffer, offset)
            if icmp_type != reply_type:
                self._other(size, addr[0])
                continue
            if ident >= 0 and reply_ident != ident:
                continue
            source = _source(addr[0]) if ipv6 else addr[0]
            entry = pending.pop((source, seq), None)
            if entry is None:
                continue  # late, duplicate or someone else's
            probe, send_ns = entry
            level, kind, data = ancdata[0] if ancdata else (0, 0, b"")
            if kind == SO_TIMESTAMPNS and level == SOL_SOCKET:
                sec, nsec = unpack_timespec(data)
                rtt_ns = sec * 1_000_000_000 + nsec - send_ns
            else:
                rtt_ns = _kernel_time_ns(ancdata) - send_ns
            if rtt_ns <= probe.timeout_ns:
                stats = probe.stats
                stats.received += 1
                stats.rtts.append(rtt_ns / 1e9 if rtt_ns > 0 else 0.0)
            probe.outstanding -= 1
            if not probe.outstanding and not probe.to_send:
                probe.finish()
        if not self.raw:
            self._drain_errqueue()

    def _other(self, size: int, source: str) -> None:
        """A packet that is not an echo reply: an ICMP error about one of ours?"""
        parsed = parse_icmp(self.view[:size], self.ipv6, self.has_ip_header)
        if parsed is None or parsed.is_reply or (self.raw and parsed.ident != self.engine.ident):
            return
        if parsed.dest is not None and parsed.error is not None:
            self._error(parsed.dest, parsed.seq, f"{parsed.error} (from {source})")

    def _drain_errqueue(self) -> None:
        while True:
            try:
                size, ancdata, _, addr = self.sock.recvmsg_into(
                    [self.view], 512, MSG_ERRQUEUE
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            found = parse_errqueue(self.view[:size], ancdata)
            if found is not None and addr:
                self._error(_source(addr[0]), found[0], found[1])

    def _error(self, dest: str, seq: int, text: str) -> None:
        entry = self.pending.pop((dest, seq), None)
        if entry is not None:
            entry[0].stats.errors.append(text)
            entry[0].answered()

    def close(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for probe, _ in list(self.pending.values()):
            probe.finish()
        self.pending.clear()


def _source(address: str) -> str:
    return address.split("%", 1)[0] if "%" in address else address


def _kernel_time_ns(ancdata: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancdata:
        if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET and len(data) >= 16:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return int(sec * 1_000_000_000 + nsec)
    return time.time_ns()


class IcmpEngine:
    """Shared ICMP echo engine. ``mode=None`` picks raw if allowed, else datagram.

    Raises :class:`IcmpPermissionError` (with the fix) when neither socket kind may be
    opened. Create it anywhere; it attaches to the running loop on the first ``ping``.

    Sending is paced by one timer per engine, not by a task and timers per echo request:
    time-ordered queues hold each live ping's next event (echo request due, or reply
    deadline) and one callback sends every due request in a batch and expires overdue
    pings. That keeps the per-echo cost to a queue entry, a ``sendto`` and a dict entry.
    """

    def __init__(self, mode: IcmpMode | None = None) -> None:
        self._channels: dict[int, _Channel] = {}
        self._seq = int.from_bytes(os.urandom(2))
        #: Identifier in our echo requests (raw mode; the kernel rewrites it otherwise).
        self.ident = int.from_bytes(os.urandom(2)) % 0xFFFF + 1
        self._templates: dict[tuple[bool, int], _Template] = {}
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Every live probe, waiting for its next event (``probe.due``) in one FIFO per
        #: delay (interval, timeout, 0 for a first send): appended at now + delay, each
        #: FIFO is in time order. Finished probes are dropped when they reach the head.
        self._queues: dict[float, deque[_Probe]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._send_budget = 1 << 30
        self._mode: IcmpMode
        sock: socket.socket | None = None
        for candidate in ("raw", "datagram") if mode is None else (mode,):
            sock = _try_open(socket.AF_INET, candidate)
            if sock is not None:
                self._mode = candidate
                break
        if sock is None:
            raise IcmpPermissionError(permission_message(mode))
        self._add_channel(socket.AF_INET, sock)

    @property
    def mode(self) -> IcmpMode:
        return self._mode

    def _add_channel(self, family: int, sock: socket.socket) -> _Channel:
        channel = _Channel(self, _configure(sock, self._mode), family == socket.AF_INET6)
        self._channels[family] = channel
        self._send_budget = min(self._send_budget, channel.send_budget)
        return channel

    def _channel(self, family: int) -> _Channel:
        channel = self._channels.get(family)
        if channel is None:
            sock = _try_open(family, self._mode)
            if sock is None:
                raise IcmpPermissionError(permission_message(self._mode))
            channel = self._add_channel(family, sock)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._timer, self._timer_at = None, math.inf
        channel.attach(loop)
        return channel

    def _template(self, ipv6: bool, payload_size: int) -> _Template:
        template = self._templates.get((ipv6, payload_size))
        if template is None:
            payload = payload_bytes(payload_size)
            template = self._templates[ipv6, payload_size] = _Template(
                ipv6, self.ident, payload, word_sum(payload)
            )
        return template

    async def ping(
        self, address: str, *, count: int, interval: float, timeout: float, payload_size: int
    ) -> PingStats:
        """Send ``count`` echo requests to an IP address, ``interval`` apart, and wait up
        to ``timeout`` after each for its reply. Never raises for network trouble.
        """
        if self._closed:
            raise RuntimeError("IcmpEngine is closed")
        ipv6 = ":" in address
        key_address = canonical(address)
        stats = PingStats(key_address)
        try:
            channel = self._channel(socket.AF_INET6 if ipv6 else socket.AF_INET)
        except OSError as exc:
            stats.sent, stats.errors = count, [f"cannot open an ICMP socket: {exc.strerror}"]
            return stats
        loop = self._loop
        assert loop is not None
        probe = _Probe(channel, key_address, _sockaddr(address, ipv6),
                       self._template(ipv6, payload_size), stats, count, interval, timeout,
                       loop.create_future())
        self._schedule(0.0, loop.time(), probe)
        try:
            await probe.done
        finally:
            if not probe.finished:
                probe.finish()  # cancelled: forget its requests
        return stats

    def _schedule(self, delay: float, when: float, probe: _Probe) -> None:
        """Queue the probe's next event, due at ``when`` = now + ``delay``."""
        queue = self._queues.get(delay)
        if queue is None:
            queue = self._queues[delay] = deque()
        probe.due = when
        queue.append(probe)
        if when < self._timer_at:
            self._arm(when)

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._pace)

    def _pace(self) -> None:
        """Send every due echo request and expire every ping whose deadline passed.

        Past ``send_budget`` sends it re-arms for the next loop iteration (timers run
        after reader callbacks there), so replies are read before the buffer overflows.
        """
        self._timer, self._timer_at = None, math.inf
        loop, queues, budget = self._loop, self._queues, self._send_budget
        assert loop is not None
        now = loop.time()
        for queue in list(queues.values()):
            while queue:
                probe = queue[0]
                if probe.due > now or not budget:
                    break
                queue.popleft()
                if probe.finished:
                    continue
                if not probe.to_send:
                    probe.finish()  # the reply deadline passed
                    continue
                budget -= 1
                retry_in = self._send(probe)
                if retry_in:  # send buffer full: hold every send until it drained a little
                    self._schedule(retry_in, loop.time() + retry_in, probe)
                    return
                if probe.to_send:
                    delay = probe.interval
                elif probe.outstanding:
                    delay = probe.timeout
                else:
                    probe.finish()  # every request failed to send: nothing to wait for
                    continue
                later = queues.get(delay)
                if later is None:
                    later = queues[delay] = deque()
                probe.due = loop.time() + delay
                later.append(probe)
        if not budget:
            self._arm(now)
            return
        next_at = math.inf
        for delay, queue in list(queues.items()):
            if not queue:
                del queues[delay]
            elif queue[0].due < next_at:
                next_at = queue[0].due
        if next_at < math.inf:
            self._arm(next_at)

    def _send(self, probe: _Probe) -> float:
        """Send the probe's next echo request; seconds to wait before retrying, or 0."""
        channel, address = probe.channel, probe.address
        pending = channel.pending
        seq = self._seq = (self._seq + 1) & 0xFFFF
        key = (address, seq)
        if key in pending:
            seq = self._next_seq(pending, address)
            key = (address, seq)
        packet = probe.template.fill(seq)
        send_ns = time.time_ns()  # same clock as SO_TIMESTAMPNS (CLOCK_REALTIME)
        try:
            channel.sock.sendto(packet, probe.sockaddr)
        except (BlockingIOError, InterruptedError):
            probe.attempts += 1
            if probe.attempts < _SEND_ATTEMPTS:
                return 0.001 * probe.attempts
            error = "the send buffer stayed full"
        except OSError as exc:
            error = _send_error_text(exc)
        else:
            probe.to_send -= 1
            probe.stats.sent += 1
            pending[key] = (probe, send_ns)
            probe.seqs.append(seq)
            probe.outstanding += 1
            return 0.0
        probe.attempts = 0
        probe.to_send -= 1
        probe.stats.sent += 1
        probe.stats.errors.append(error)
        return 0.0

    def _next_seq(self, pending: dict[_Key, tuple[_Probe, int]], address: str) -> int:
        for _ in range(0x10000):
            self._seq = (self._seq + 1) & 0xFFFF
            if (address, self._seq) not in pending:
                return self._seq
        raise RuntimeError("65,536 echo requests in flight to one address")

    async def aclose(self) -> None:
        """Close the sockets; pending pings return with what they have."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        for queue in self._queues.values():
            for probe in queue:
                if not probe.finished:
                    probe.finish()
        self._queues.clear()
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()


def _send_error_text(exc: OSError) -> str:
    hints = {
        errno.EHOSTUNREACH: "no route to host (EHOSTUNREACH)",
        errno.ENETUNREACH: "network unreachable (ENETUNREACH)",
        errno.EACCES: "a route or firewall rule on this machine prohibits it (EACCES)",
        errno.EPERM: "this machine's firewall blocked the echo request (EPERM)",
        errno.ENETDOWN: "the network interface towards it is down (ENETDOWN)",
        errno.EADDRNOTAVAIL: "the address cannot be used from this machine (EADDRNOTAVAIL)",
        errno.EINVAL: "the route to it is a blackhole or invalid (EINVAL)",
    }
    return hints.get(exc.errno or 0, f"send failed: {exc.strerror}")


def _sockaddr(address: str, ipv6: bool) -> tuple[object, ...]:
    if not ipv6:
        return (address, 0)
    info = socket.getaddrinfo(address, 0, socket.AF_INET6, 0, 0, socket.AI_NUMERICHOST)
    return tuple(info[0][4])


def _try_open(family: int, mode: IcmpMode) -> socket.socket | None:
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    kind = socket.SOCK_RAW if mode == "raw" else socket.SOCK_DGRAM
    try:
        return socket.socket(family, kind, proto)
    except PermissionError:
        return None
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return None
        raise


def _configure(sock: socket.socket, mode: IcmpMode) -> socket.socket:
    """Non-blocking, big receive buffer, kernel timestamps, filters / error queue."""
    sock.setblocking(False)
    ipv6 = sock.family == socket.AF_INET6
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)  # capped by rmem_max
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    if mode == "raw" and not ipv6:
        allowed = (1 << ICMP_ECHO_REPLY) | (1 << ICMP_UNREACH) | (1 << ICMP_TIME_EXCEEDED)
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", ~allowed & 0xFFFFFFFF))
    elif mode == "raw":
        blocked = [0xFFFFFFFF] * 8  # a set bit blocks that ICMPv6 type
        for kind in (ICMP6_ECHO_REPLY, ICMP6_UNREACH, ICMP6_TIME_EXCEEDED):
            blocked[kind >> 5] &= ~(1 << (kind & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *blocked))
    elif ipv6:
        sock.setsockopt(SOL_IPV6, IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
    return sock


def permission_message(mode: IcmpMode | None) -> str:
    """The IcmpPermissionError text: what is wrong and the three ways to fix it."""
    try:
        current = " ".join(Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    except OSError:
        current = "unknown"
    what = {None: "", "raw": "raw ICMP sockets are not allowed. ",
            "datagram": "datagram ICMP sockets are not allowed. "}[mode]
    return what + FIX_PERMISSION.format(
        gid=os.getgid(), current=current, python=os.path.realpath(sys.executable)
    )
