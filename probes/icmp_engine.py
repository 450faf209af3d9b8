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
import os
import random
import socket
import struct
import sys
import time
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
    if ipv6:
        return struct.pack("!BBHHH", ICMP6_ECHO, 0, 0, ident, seq) + payload
    if payload_sum is None:
        payload_sum = word_sum(payload)
    csum = _fold((ICMP_ECHO << 8) + ident + seq + payload_sum)
    return struct.pack("!BBHHH", ICMP_ECHO, 0, csum, ident, seq) + payload


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


class _Request:
    """Book-keeping of one ``ping()`` call, shared by its echo requests."""

    __slots__ = ("all_sent", "done", "outstanding", "stats", "timeout_ns")

    def __init__(self, stats: PingStats, timeout_ns: int, done: asyncio.Future[None]) -> None:
        self.stats = stats
        self.timeout_ns = timeout_ns
        self.outstanding = 0
        self.all_sent = False
        self.done = done

    def answered(self) -> None:
        self.outstanding -= 1
        if self.all_sent and self.outstanding == 0 and not self.done.done():
            self.done.set_result(None)


_Key = tuple[str, int]  # (canonical source address, sequence number)


class _Channel:
    """One socket of one address family, its reader callback and its pending requests."""

    def __init__(self, engine: IcmpEngine, sock: socket.socket, ipv6: bool) -> None:
        self.engine = engine
        self.sock = sock
        self.ipv6 = ipv6
        self.raw = engine.mode == "raw"
        self.has_ip_header = self.raw and not ipv6
        self.pending: dict[_Key, tuple[_Request, int]] = {}
        self.buffer = bytearray(65536)
        self.view = memoryview(self.buffer)
        self.ancsize = socket.CMSG_SPACE(16) + 64
        rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        #: Echo requests sent per loop iteration before the reader gets a turn.
        self.send_budget = max(32, rcvbuf // _BYTES_PER_QUEUED_REPLY)
        self.sent_this_turn = 0
        self.turn: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.loop is None:
            self.loop = loop
            loop.add_reader(self.sock.fileno(), self.on_readable)

    async def wait_turn(self) -> None:
        """Keep a burst of sends from overflowing the receive buffer before we read:
        past ``send_budget`` sends in one loop iteration, wait for the next one."""
        assert self.loop is not None
        if self.turn is None:
            self.turn = self.loop.create_future()
            self.loop.call_soon(self._next_turn)
        await asyncio.shield(self.turn)

    def _next_turn(self) -> None:
        self.sent_this_turn = 0
        turn, self.turn = self.turn, None
        if turn is not None and not turn.done():
            turn.set_result(None)

    def on_readable(self) -> None:
        """Drain every queued packet, then (datagram) the error queue."""
        sock, view, ancsize = self.sock, self.view, self.ancsize
        while True:
            try:
                size, ancdata, _, addr = sock.recvmsg_into([view], ancsize)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # a pending socket error (datagram); the error queue has details
            parsed = parse_icmp(view[:size], self.ipv6, self.has_ip_header)
            if parsed is None or (self.raw and parsed.ident != self.engine.ident):
                continue
            if parsed.is_reply:
                self._reply(_source(addr[0]), parsed.seq, _kernel_time_ns(ancdata))
            elif parsed.dest is not None and parsed.error is not None:
                self._error(parsed.dest, parsed.seq, f"{parsed.error} (from {addr[0]})")
        if not self.raw:
            self._drain_errqueue()

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

    def _reply(self, source: str, seq: int, recv_ns: int) -> None:
        entry = self.pending.pop((source, seq), None)
        if entry is None:
            return  # late, duplicate or someone else's
        request, send_ns = entry
        rtt_ns = max(recv_ns - send_ns, 0)
        if rtt_ns <= request.timeout_ns:
            request.stats.received += 1
            request.stats.rtts.append(rtt_ns / 1e9)
        request.answered()

    def _error(self, dest: str, seq: int, text: str) -> None:
        entry = self.pending.pop((dest, seq), None)
        if entry is not None:
            entry[0].stats.errors.append(text)
            entry[0].answered()

    def close(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for request, _ in self.pending.values():
            if not request.done.done():
                request.done.set_result(None)
        self.pending.clear()


def _source(address: str) -> str:
    return address.split("%", 1)[0] if "%" in address else address


def _kernel_time_ns(ancdata: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("@qq", data)
            return int(sec * 1_000_000_000 + nsec)
    return time.time_ns()


class IcmpEngine:
    """Shared ICMP echo engine. ``mode=None`` picks raw if allowed, else datagram.

    Raises :class:`IcmpPermissionError` (with the fix) when neither socket kind may be
    opened. Create it anywhere; it attaches to the running loop on the first ``ping``.
    """

    def __init__(self, mode: IcmpMode | None = None) -> None:
        self._channels: dict[int, _Channel] = {}
        self._seq = random.randrange(0x10000)
        #: Identifier in our echo requests (raw mode; the kernel rewrites it otherwise).
        self.ident = random.randrange(1, 0x10000)
        self._payloads: dict[int, tuple[bytes, int]] = {}
        self._closed = False
        self._mode: IcmpMode
        sock: socket.socket | None = None
        for candidate in ("raw", "datagram") if mode is None else (mode,):
            sock = _try_open(socket.AF_INET, candidate)
            if sock is not None:
                self._mode = candidate
                break
        if sock is None:
            raise IcmpPermissionError(permission_message(mode))
        self._channels[socket.AF_INET] = _Channel(self, _configure(sock, self._mode), False)

    @property
    def mode(self) -> IcmpMode:
        return self._mode

    def _channel(self, family: int) -> _Channel:
        channel = self._channels.get(family)
        if channel is None:
            sock = _try_open(family, self._mode)
            if sock is None:
                raise IcmpPermissionError(permission_message(self._mode))
            channel = self._channels[family] = _Channel(
                self, _configure(sock, self._mode), family == socket.AF_INET6
            )
        channel.attach(asyncio.get_running_loop())
        return channel

    def _next_seq(self, channel: _Channel, address: str) -> int:
        for _ in range(0x10000):
            self._seq = (self._seq + 1) & 0xFFFF
            if (address, self._seq) not in channel.pending:
                return self._seq
        raise RuntimeError("65,536 echo requests in flight to one address")

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
        sockaddr = _sockaddr(address, ipv6)
        loop = asyncio.get_running_loop()
        cached = self._payloads.get(payload_size)
        if cached is None:
            payload = payload_bytes(payload_size)
            cached = self._payloads[payload_size] = (payload, word_sum(payload))
        payload, payload_sum = cached
        request = _Request(stats, int(timeout * 1e9), loop.create_future())
        keys: list[_Key] = []
        last_send = loop.time()
        try:
            for i in range(count):
                if i:
                    await asyncio.sleep(interval)
                channel.sent_this_turn += 1
                if channel.sent_this_turn > channel.send_budget:
                    await channel.wait_turn()
                seq = self._next_seq(channel, key_address)
                packet = build_echo_request(ipv6, self.ident, seq, payload, payload_sum)
                stats.sent += 1
                send_ns = time.time_ns()  # same clock as SO_TIMESTAMPNS (CLOCK_REALTIME)
                try:
                    channel.sock.sendto(packet, sockaddr)
                    error = None
                except OSError:
                    error, send_ns = await _send(channel.sock, packet, sockaddr)
                last_send = loop.time()
                if error:
                    stats.errors.append(error)
                    continue
                key = (key_address, seq)
                channel.pending[key] = (request, send_ns)
                keys.append(key)
                request.outstanding += 1
            request.all_sent = True
            if request.outstanding:
                async with asyncio.timeout_at(last_send + timeout):
                    await request.done
        except TimeoutError:
            pass
        finally:
            for key in keys:
                channel.pending.pop(key, None)
        return stats

    async def aclose(self) -> None:
        """Close the sockets; pending pings return with what they have."""
        self._closed = True
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()


async def _send(
    sock: socket.socket, packet: bytes, sockaddr: tuple[object, ...]
) -> tuple[str | None, int]:
    """Send one packet: (error text if the kernel refused it, send time in ns)."""
    for attempt in range(20):
        send_ns = time.time_ns()  # same clock as SO_TIMESTAMPNS (CLOCK_REALTIME)
        try:
            sock.sendto(packet, sockaddr)
            return None, send_ns
        except (BlockingIOError, InterruptedError):
            await asyncio.sleep(0.001 * (attempt + 1))  # send buffer full: let it drain
        except OSError as exc:
            return _send_error_text(exc), send_ns
    return "the send buffer stayed full", time.time_ns()


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
