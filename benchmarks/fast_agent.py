"""A fast SNMP v1/v2c agent for the benchmarks: serves the ``.snmprec`` recordings.

    .venv/bin/python benchmarks/fast_agent.py --addresses 127.0.1.1-127.0.1.250 --port 16100
    .venv/bin/python benchmarks/fast_agent.py --selftest           # vs snmpsim, net-snmp tools
    .venv/bin/python benchmarks/fast_agent.py --capacity --seconds 10

Why: snmpsim (pure Python, pyasn1) answers ~2,500 varbinds per second per process, so at
1,000 devices the agents, not netmon, become the bottleneck of ``daemon_scale.py``.

How: at start-up every recording is parsed once, its OIDs sorted numerically and every
varbind (OID + value TLV) encoded to bytes. A request is parsed by hand (BER: version,
community, PDU, request-id, the two integers, the varbind OIDs); the answer is a bisect
into the sorted OIDs plus a join of pre-encoded varbinds under fresh headers. It behaves
like snmpsim 1.2 (pysnmp's command responder) where a client can see it:

* community = the recording's path below the data dir without ``.snmprec``;
  an unknown community, SNMPv3 or an unparsable request gets no answer at all;
* GETNEXT/GETBULK past the last OID: endOfMibView (v2c) with the requested OID;
  GETBULK fills all max-repetitions rows (pysnmp does too), non-repeaters per RFC 3416;
* v1: noSuchName (error-status 2, index of the first failing varbind, the request's
  varbinds echoed) at the end of the MIB or for a missing OID; Counter64 values do not
  exist in v1: GET answers noSuchName, GETNEXT skips them (RFC 2576 4.1.2.1);
* v2c GET of a missing OID: noSuchObject (snmpsim answers noSuchInstance; netmon treats
  both as "missing");
* SET: notWritable (v2c) / noSuchName (v1); responses stay under 65,000 bytes (GETBULK
  drops trailing rows, else tooBig).

One process binds one UDP socket per address (``selectors``); ``start(..., processes=K)``
splits the addresses over K worker processes. Workers stop on SIGTERM/SIGINT, when their
parent dies, or after ``max_seconds``; they only bind 127.0.0.0/8 addresses.
"""

from __future__ import annotations

import argparse
import bisect
import ipaddress
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

REPO = Path(__file__).resolve().parent.parent
RECORDINGS = REPO / "tests" / "fixtures" / "snmprec"
MAX_RESPONSE = 65_000
CLK_TCK = os.sysconf("SC_CLK_TCK")

OID_KEY = tuple[int, ...]

# PDU tags and v2c exception values.
GET, GETNEXT, RESPONSE, SET, GETBULK = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5
NO_SUCH_OBJECT, END_OF_MIB_VIEW = b"\x80\x00", b"\x82\x00"
TOO_BIG, NO_SUCH_NAME, NOT_WRITABLE = 1, 2, 17


class BadRequest(ValueError):
    """A datagram that is not an SNMP v1/v2c request this agent answers."""


# --- BER encoding ----------------------------------------------------------------------


def ber_length(n: int) -> bytes:
    """Definite length, short form below 128."""
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + ber_length(len(body)) + body


def encode_signed(tag: int, value: int) -> bytes:
    """Two's complement, minimal length (INTEGER)."""
    size = ((value if value >= 0 else ~value).bit_length()) // 8 + 1
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def encode_unsigned(tag: int, value: int, bits: int) -> bytes:
    """Counter32/Gauge32/TimeTicks/Counter64: non-negative, a leading 0 when the top bit is set."""
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{value} is out of range for {bits} bits")
    return tlv(tag, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def encode_oid(arcs: Sequence[int]) -> bytes:
    """OBJECT IDENTIFIER TLV (first two arcs as 40*X+Y, then base 128)."""
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"not an OID: {'.'.join(map(str, arcs))}")
    body = bytearray()
    for arc in (arcs[0] * 40 + arcs[1], *arcs[2:]):
        if arc < 0:
            raise ValueError("negative OID arc")
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def parse_oid_text(text: str) -> OID_KEY:
    arcs = tuple(int(a) for a in text.strip().strip(".").split("."))
    encode_oid(arcs)  # validates
    return arcs


# --- recordings ------------------------------------------------------------------------


def unescape(text: str) -> bytes:
    r"""snmpsim's ``e`` encoding: a Python-like escaped string (\n, \t, \xHH, ...)."""
    escapes = {
        "\\": 92,
        "'": 39,
        '"': 34,
        "a": 7,
        "b": 8,
        "f": 12,
        "n": 10,
        "r": 13,
        "t": 9,
        "v": 11,
    }
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append(ord(ch))
            i += 1
        elif text[i + 1 : i + 2] == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        elif text[i + 1 : i + 2] in escapes:
            out.append(escapes[text[i + 1]])
            i += 2
        else:
            raise ValueError(f"unknown escape {text[i : i + 2]!r}")
    return bytes(out)


def encode_value(tag_text: str, value: str) -> bytes:
    """The value TLV of one ``.snmprec`` row (TAG as written: ``4``, ``4x``, ``64``...)."""
    if ":" in tag_text:
        raise ValueError(f"tag {tag_text!r} names a snmpsim variation module")
    tag, enc = (tag_text[:-1], tag_text[-1]) if tag_text[-1:] in ("x", "e") else (tag_text, "")
    if tag in ("4", "64", "68"):  # OCTET STRING, IpAddress, Opaque
        if enc == "x":
            raw = bytes.fromhex(value)
        elif enc == "e":
            raw = unescape(value)
        elif tag == "64":
            raw = ipaddress.IPv4Address(value).packed
        else:
            raw = value.encode("iso-8859-1")  # snmpsim reads the file as ISO-8859-1
        if tag == "64" and len(raw) != 4:
            raise ValueError(f"IpAddress of {len(raw)} bytes")
        return tlv({"4": 0x04, "64": 0x40, "68": 0x44}[tag], raw)
    if enc:
        raise ValueError(f"tag {tag_text!r}: hex/escaped form only for strings")
    if tag == "2":
        number = int(value)
        if not -(1 << 31) <= number < 1 << 31:
            raise ValueError(f"Integer32 out of range: {number}")
        return encode_signed(0x02, number)
    if tag in ("65", "66", "67"):  # Counter32, Gauge32, TimeTicks
        return encode_unsigned(0x40 + int(tag) - 64, int(value), 32)
    if tag == "70":
        return encode_unsigned(0x46, int(value), 64)
    if tag == "6":
        return encode_oid(parse_oid_text(value))
    if tag == "5":
        return b"\x05\x00"
    raise ValueError(f"tag {tag_text!r} is not supported")


@dataclass
class Recording:
    """One device: OIDs sorted numerically, each with its pre-encoded varbind.

    The ``v1_*`` lists leave out Counter64 rows (v1 has no Counter64)."""

    name: str
    oids: list[OID_KEY] = field(default_factory=list)
    varbinds: list[bytes] = field(default_factory=list)
    oid_tlvs: list[bytes] = field(default_factory=list)
    counter64: list[bool] = field(default_factory=list)
    index: dict[OID_KEY, int] = field(default_factory=dict)
    v1_oids: list[OID_KEY] = field(default_factory=list)
    v1_varbinds: list[bytes] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def load_recording(path: Path, name: str) -> Recording:
    """Parse and pre-encode one ``.snmprec``; rows that cannot be served are skipped with
    the reason kept in ``skipped`` (snmpsim would fail the request at such a row)."""
    rows: dict[OID_KEY, tuple[bytes, bytes, bool]] = {}
    rec = Recording(name)
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        line = raw.decode("iso-8859-1").strip()  # as snmpsim's grammar reads it
        if not line or line.startswith("#"):
            continue
        try:
            oid_text, tag, value = line.split("|", 2)
            key = parse_oid_text(oid_text)
            if key in rows:
                raise ValueError("duplicate OID")
            oid_tlv = encode_oid(key)
            value_tlv = encode_value(tag, value)
        except ValueError as exc:
            rec.skipped.append(f"{path.name}:{lineno}: {exc} ({line[:60]!r})")
            continue
        rows[key] = (oid_tlv, tlv(0x30, oid_tlv + value_tlv), tag == "70")
    for i, key in enumerate(sorted(rows)):
        oid_tlv, varbind, is_c64 = rows[key]
        rec.oids.append(key)
        rec.varbinds.append(varbind)
        rec.oid_tlvs.append(oid_tlv)
        rec.counter64.append(is_c64)
        rec.index[key] = i
        if not is_c64:
            rec.v1_oids.append(key)
            rec.v1_varbinds.append(varbind)
    return rec


def load_recordings(data_dir: Path = RECORDINGS) -> dict[bytes, Recording]:
    """Every ``*.snmprec`` below ``data_dir``, keyed by community (relative path, no suffix)."""
    out: dict[bytes, Recording] = {}
    for path in sorted(data_dir.rglob("*.snmprec")):
        name = path.relative_to(data_dir).with_suffix("").as_posix()
        out[name.encode()] = load_recording(path, name)
    return out


# --- request handling ------------------------------------------------------------------


def _header(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, body start, body end) of the TLV at ``pos``; raises BadRequest."""
    if pos + 2 > end:
        raise BadRequest("truncated")
    tag, length = buf[pos], buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 4 or pos + n > end:
            raise BadRequest("bad length")
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if pos + length > end:
        raise BadRequest("truncated")
    return tag, pos, pos + length


def _int(buf: bytes, start: int, stop: int) -> int:
    if not 1 <= stop - start <= 8:
        raise BadRequest("bad INTEGER")
    return int.from_bytes(buf[start:stop], "big", signed=True)


def decode_oid(body: bytes) -> OID_KEY:
    """OBJECT IDENTIFIER contents -> arcs."""
    if not body or body[-1] & 0x80:
        raise BadRequest("bad OID")
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return (*head, *arcs[1:])


def _int_tlv(value: int) -> bytes:
    return encode_signed(0x02, value)


@dataclass
class Stats:
    """What one worker did (printed as JSON when it stops)."""

    requests: int = 0
    answered: int = 0
    varbinds: int = 0
    dropped: int = 0
    send_errors: int = 0


class Agent:
    """The request -> response function over a set of recordings (no sockets)."""

    def __init__(self, recordings: dict[bytes, Recording]) -> None:
        self.recordings = recordings
        self.stats = Stats()

    def handle(self, data: bytes) -> bytes | None:
        """The response datagram, or None (unknown community, not a v1/v2c request)."""
        self.stats.requests += 1
        try:
            reply = self._handle(data)
        except (BadRequest, IndexError):
            reply = None
        if reply is None:
            self.stats.dropped += 1
        else:
            self.stats.answered += 1
        return reply

    def _handle(self, buf: bytes) -> bytes | None:
        end = len(buf)
        tag, pos, msg_end = _header(buf, 0, end)
        if tag != 0x30:
            raise BadRequest("not a SEQUENCE")
        tag, start, stop = _header(buf, pos, msg_end)
        if tag != 0x02:
            raise BadRequest("no version")
        version = _int(buf, start, stop)
        if version not in (0, 1):
            return None  # SNMPv3 or unknown
        version_tlv = buf[pos:stop]
        tag, start, stop_c = _header(buf, stop, msg_end)
        if tag != 0x04:
            raise BadRequest("no community")
        rec = self.recordings.get(buf[start:stop_c])
        if rec is None:
            return None
        community_tlv = buf[stop:stop_c]
        pdu_tag, pos, pdu_end = _header(buf, stop_c, msg_end)
        if pdu_tag not in (GET, GETNEXT, SET, GETBULK) or (pdu_tag == GETBULK and version == 0):
            return None
        tag, start, stop = _header(buf, pos, pdu_end)
        if tag != 0x02:
            raise BadRequest("no request-id")
        _int(buf, start, stop)
        reqid_tlv = buf[pos:stop]
        tag, start, stop = _header(buf, stop, pdu_end)
        first = _int(buf, start, stop) if tag == 0x02 else None
        tag, start, stop = _header(buf, stop, pdu_end)
        second = _int(buf, start, stop) if tag == 0x02 else None
        if first is None or second is None:
            raise BadRequest("no error-status/index")
        tag, vbl_start, vbl_end = _header(buf, stop, pdu_end)
        if tag != 0x30:
            raise BadRequest("no varbind list")
        raw_vbl = buf[stop:vbl_end]
        oids: list[OID_KEY] = []
        oid_tlvs: list[bytes] = []
        pos = vbl_start
        while pos < vbl_end:
            tag, start, vb_end = _header(buf, pos, vbl_end)
            if tag != 0x30:
                raise BadRequest("bad varbind")
            tag, o_start, o_end = _header(buf, start, vb_end)
            if tag != 0x06:
                raise BadRequest("bad varbind OID")
            oids.append(decode_oid(buf[o_start:o_end]))
            oid_tlvs.append(buf[start:o_end])
            pos = vb_end

        def answer(varbinds: list[bytes], status: int = 0, index: int = 0) -> bytes:
            pdu = tlv(
                RESPONSE,
                reqid_tlv + _int_tlv(status) + _int_tlv(index) + tlv(0x30, b"".join(varbinds)),
            )
            return tlv(0x30, version_tlv + community_tlv + pdu)

        def error(status: int, index: int) -> bytes:  # the request's varbinds echoed
            pdu = tlv(RESPONSE, reqid_tlv + _int_tlv(status) + _int_tlv(index) + raw_vbl)
            return tlv(0x30, version_tlv + community_tlv + pdu)

        out: list[bytes] = []
        if pdu_tag == SET:
            return error(NO_SUCH_NAME if version == 0 else NOT_WRITABLE, 1 if oids else 0)
        if pdu_tag == GET:
            for i, key in enumerate(oids):
                j = rec.index.get(key)
                if j is not None and not (version == 0 and rec.counter64[j]):
                    out.append(rec.varbinds[j])
                elif version == 0:
                    return error(NO_SUCH_NAME, i + 1)
                else:
                    out.append(tlv(0x30, oid_tlvs[i] + NO_SUCH_OBJECT))
        elif pdu_tag == GETNEXT:
            keys, vbs = (rec.v1_oids, rec.v1_varbinds) if version == 0 else (rec.oids, rec.varbinds)
            for i, key in enumerate(oids):
                j = bisect.bisect_right(keys, key)
                if j < len(keys):
                    out.append(vbs[j])
                elif version == 0:
                    return error(NO_SUCH_NAME, i + 1)
                else:
                    out.append(tlv(0x30, oid_tlvs[i] + END_OF_MIB_VIEW))
        else:
            bulk = self._bulk(rec, oids, oid_tlvs, first, second)
            if bulk is None:
                return answer([], TOO_BIG, 0)
            out = bulk
        reply = answer(out)
        if len(reply) > MAX_RESPONSE:
            return answer([], TOO_BIG, 0)
        self.stats.varbinds += len(out)
        return reply

    @staticmethod
    def _bulk(
        rec: Recording,
        oids: list[OID_KEY],
        oid_tlvs: list[bytes],
        non_repeaters: int,
        max_repetitions: int,
    ) -> list[bytes] | None:
        """RFC 3416 4.2.3: N non-repeaters once, then M rows of the R others; every row is
        filled (endOfMibView past the end, as pysnmp does); rows that would push the
        message past MAX_RESPONSE are dropped (None: not even the first fits)."""
        n = min(max(non_repeaters, 0), len(oids))
        m = max(max_repetitions, 0)
        keys, vbs, last = rec.oids, rec.varbinds, len(rec.oids)
        out: list[bytes] = []
        budget = MAX_RESPONSE - 100  # headers: community <= ~60 bytes, ids, lengths
        for i in range(n):
            j = bisect.bisect_right(keys, oids[i])
            out.append(vbs[j] if j < last else tlv(0x30, oid_tlvs[i] + END_OF_MIB_VIEW))
            budget -= len(out[-1])
        if budget < 0:
            return None
        # Per repeater: the index of its next OID, and the OID TLV of its last answer.
        cursors = [bisect.bisect_right(keys, key) for key in oids[n:]]
        ends = [oid_tlvs[n + c] for c in range(len(cursors))]
        for _ in range(m if cursors else 0):
            row: list[bytes] = []
            for c, j in enumerate(cursors):
                if j < last:
                    row.append(vbs[j])
                    ends[c] = rec.oid_tlvs[j]
                    cursors[c] = j + 1
                else:
                    row.append(tlv(0x30, ends[c] + END_OF_MIB_VIEW))
            size = sum(len(v) for v in row)
            if size > budget:
                if not out:
                    return None
                break
            budget -= size
            out.extend(row)
        return out


# --- the socket loop -------------------------------------------------------------------


def check_loopback(addresses: Iterable[str]) -> list[str]:
    """The addresses, each checked to be in 127.0.0.0/8 (this agent serves loopback only)."""
    out = []
    for a in addresses:
        if ipaddress.IPv4Address(a) not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ValueError(f"{a} is not a 127.0.0.0/8 address")
        out.append(a)
    return out


def parse_addresses(spec: str) -> list[str]:
    """``127.0.1.1-127.0.1.250,127.0.2.1`` -> addresses (ranges inclusive)."""
    out: list[str] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, _, hi = part.partition("-")
        a, b = int(ipaddress.IPv4Address(lo)), int(ipaddress.IPv4Address(hi or lo))
        if b < a or b - a > 65_535:
            raise ValueError(f"bad range {part!r}")
        out += [str(ipaddress.IPv4Address(x)) for x in range(a, b + 1)]
    return check_loopback(out)


def serve(
    recordings: dict[bytes, Recording],
    addresses: Sequence[str],
    port: int,
    max_seconds: float,
    ready: Any = None,
) -> Stats:
    """Answer on every ``address:port`` until SIGTERM/SIGINT, parent death or ``max_seconds``.

    ``ready`` (a text stream) gets one JSON line once every socket is bound."""
    agent = Agent(recordings)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    sel = selectors.DefaultSelector()
    sockets = []
    try:
        for address in check_loopback(addresses):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((address, port))
            s.setblocking(False)
            sockets.append(s)
            sel.register(s, selectors.EVENT_READ, s)
        if ready is not None:
            ready.write(json.dumps({"ready": len(sockets), "pid": os.getpid()}) + "\n")
            ready.flush()
        deadline = time.monotonic() + max_seconds
        handle, stats = agent.handle, agent.stats
        while not stop:
            for key, _ in sel.select(timeout=0.5):
                s = key.data
                for _ in range(64):  # drain a burst, bounded, then look at the others
                    try:
                        data, peer = s.recvfrom(65_535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    reply = handle(data)
                    if reply is not None:
                        try:
                            s.sendto(reply, peer)
                        except OSError:
                            stats.send_errors += 1
            if time.monotonic() > deadline or os.getppid() != parent:
                break
    finally:
        sel.close()
        for s in sockets:
            s.close()
    return agent.stats


def worker_main(args: argparse.Namespace) -> int:
    """A worker process: addresses one a line on stdin, ready line and stats on stdout."""
    addresses = [line.strip() for line in sys.stdin if line.strip()]
    recordings = load_recordings(Path(args.data_dir))
    stats = serve(recordings, addresses, args.port, args.max_seconds, ready=sys.stdout)
    sys.stdout.write(json.dumps({"stats": stats.__dict__}) + "\n")
    sys.stdout.flush()
    return 0


# --- the API the benchmarks use --------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class FastAgents:
    """Running worker processes; ``stop()`` ends them and collects their stats."""

    port: int
    addresses: list[str]
    processes: list[subprocess.Popen[str]]
    stats: list[dict[str, int]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) or 0.0 for pid in self.pids)

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                out, _ = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate(timeout=5)
            for line in (out or "").splitlines():
                if line.startswith('{"stats"'):
                    self.stats.append(json.loads(line)["stats"])

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    addresses: Sequence[str],
    port: int,
    *,
    processes: int = 1,
    data_dir: Path = RECORDINGS,
    max_seconds: float = 7200.0,
    timeout: float = 60.0,
) -> FastAgents:
    """Serve the recordings on every ``address:port`` from ``processes`` workers
    (addresses dealt round-robin); returns once every socket is bound."""
    addresses = check_loopback(addresses)
    k = max(1, min(processes, len(addresses)))
    agents = FastAgents(port, list(addresses), [])
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--max-seconds",
        str(max_seconds),
    ]
    try:
        for i in range(k):
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            agents.processes.append(p)
            assert p.stdin is not None
            p.stdin.write("\n".join(addresses[i::k]) + "\n")
            p.stdin.close()
            p.stdin = None  # communicate() in stop() must not flush it
        deadline = time.monotonic() + timeout
        for p in agents.processes:
            assert p.stdout is not None
            ready, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = p.stdout.readline() if ready else ""
            if '"ready"' not in line:
                raise RuntimeError(f"fast agent {p.pid} did not start (exit {p.poll()}): {line!r}")
    except BaseException:
        agents.stop()
        raise
    return agents


# --- self-test against snmpsim ---------------------------------------------------------

QUICK_RECORDINGS = ("switch/cisco-catalyst-2960", "printer/canon-lbp6670")


def _net_snmp(tool: str, endpoint: str, *args: str, timeout: float = 120.0) -> list[str]:
    """Run a net-snmp tool (``{ep}`` in ``args`` = ``endpoint``): its stdout lines, then its
    stderr lines (error reports; the endpoint written back as ``{ep}``) and exit code."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MIBS": "",
        "MIBDIRS": "/dev/null",
        "HOME": tempfile.gettempdir(),
    }
    proc = subprocess.run(
        [tool, "-On", "-t", "5", "-r", "1", *(a.replace("{ep}", endpoint) for a in args)],
        capture_output=True,
        check=False,
        text=True,
        errors="replace",
        env=env,
        timeout=timeout,
    )
    errors = [
        "stderr: " + line.replace(endpoint, "{ep}")
        for line in proc.stderr.splitlines()
        if not line.startswith("Created directory")
    ]
    return proc.stdout.splitlines() + errors + [f"(exit {proc.returncode})"]


def selftest(recordings: Sequence[str] | None = None, *, verbose: bool = True) -> list[str]:
    """Walk recordings through snmpsim and the fast agent with net-snmp and compare the
    printed lines exactly: ``snmpbulkwalk -v2c -Cr25``, ``snmpwalk -v1``, a GETBULK with
    non-repeaters and GETs (v1, v2c) of present, Counter64 and missing OIDs. Returns the
    differences (empty: identical), apart from the one documented one (v2c GET of a
    missing OID: noSuchObject here, noSuchInstance from snmpsim), which is only counted."""
    sys.path.insert(0, str(REPO))
    from monitor.demo import simlab

    all_recs = load_recordings()
    names = list(recordings) if recordings else [r.name for r in all_recs.values()]
    sim = simlab.start_snmpsim(port=simlab.free_udp_port())
    try:
        fast = start(["127.0.0.1"], simlab.free_udp_port())
    except BaseException:
        sim.stop()
        raise
    diffs: list[str] = []
    expected = 0
    try:
        for name in names:
            rec = all_recs[name.encode()]
            c64 = next((".".join(map(str, k)) for k, c in zip(rec.oids, rec.counter64) if c), None)
            gets = [
                ".".join(map(str, rec.oids[0])),
                ".".join(map(str, rec.oids[-1])),
                "1.3.6.1.2.1.1.3",
                "1.3.6.1.2.1.25.3.5.1.1.1",
                *([c64] if c64 else []),
            ]
            checks = [
                ("snmpbulkwalk", "-v2c", "-Cr25", "-c", name, "{ep}", ".1"),
                ("snmpwalk", "-v1", "-c", name, "{ep}", ".1"),
                (
                    "snmpbulkget",
                    "-v2c",
                    "-Cn2",
                    "-Cr7",
                    "-c",
                    name,
                    "{ep}",
                    "1.3.6.1.2.1.1.1",
                    "1.3.6.1.2.1.1.3.0",
                    "1.3.6.1.2.1.2.2.1.2",
                    "1.3.6.1.2.1.31.1.1.1.6",
                ),
                ("snmpgetnext", "-v2c", "-c", name, "{ep}", gets[1], gets[0]),
                ("snmpgetnext", "-v1", "-c", name, "{ep}", gets[1]),
                ("snmpget", "-v2c", "-c", name, "{ep}", *gets),
                *[("snmpget", "-v1", "-c", name, "{ep}", g) for g in gets],
            ]
            lines = 0
            for check in checks:
                tool, *rest = check
                a = _net_snmp(tool, sim.endpoint, *rest)
                b = _net_snmp(tool, f"127.0.0.1:{fast.port}", *rest)
                lines += len(a)
                if a == b:
                    continue
                norm = [
                    x.replace(
                        "No Such Instance currently exists",
                        "No Such Object available on this agent",
                    )
                    for x in a
                ]
                if tool == "snmpget" and "-v2c" in rest and norm == b:
                    expected += sum(x != y for x, y in zip(a, b))
                    continue
                bad = [f"  snmpsim: {x}\n  fast:    {y}" for x, y in zip(a, b) if x != y]
                if len(a) != len(b):
                    bad.append(f"  {len(a)} lines from snmpsim, {len(b)} from fast")
                diffs.append(f"{name}: {' '.join(check)}\n" + "\n".join(bad[:5]))
            raw = raw_checks(rec)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for what, datagram in raw:
                    a_raw = _exchange(sock, (sim.host, sim.port), datagram)
                    b_raw = _exchange(sock, ("127.0.0.1", fast.port), datagram)
                    if a_raw != b_raw:
                        diffs.append(f"{name}: {what}: bytes differ\n  snmpsim: "
                                     f"{a_raw and a_raw.hex()}\n  fast:    {b_raw and b_raw.hex()}")  # fmt: skip
            if verbose:
                print(
                    f"selftest {name}: {len(checks)} commands, {lines} lines; "
                    f"{len(raw)} requests compared byte for byte; "
                    f"{'identical' if not diffs else f'{len(diffs)} differences so far'}",
                    flush=True,
                )
    finally:
        try:
            fast.stop()
        finally:
            sim.stop()
    if verbose:
        print(
            f"selftest: {len(names)} recordings, {len(diffs)} differences; {expected} "
            "expected ones (v2c GET of a missing OID: noSuchObject vs snmpsim's "
            "noSuchInstance)"
        )
        for rec in all_recs.values():
            for reason in rec.skipped:
                print(f"  skipped row: {reason}")
    return diffs


# --- capacity --------------------------------------------------------------------------


def request(version: int, pdu_tag: int, community: bytes, request_id: int,
            oids: Sequence[OID_KEY], first: int = 0, second: int = 0) -> bytes:  # fmt: skip
    """An SNMP v1 (0) / v2c (1) request; ``first``/``second`` = error-status/index, or
    non-repeaters/max-repetitions for GETBULK."""
    vbl = tlv(0x30, b"".join(tlv(0x30, encode_oid(o) + b"\x05\x00") for o in oids))
    ints = _int_tlv(request_id) + _int_tlv(first) + _int_tlv(second)
    return tlv(0x30, _int_tlv(version) + tlv(0x04, community) + tlv(pdu_tag, ints + vbl))


def bulk_request(community: bytes, request_id: int, oid: OID_KEY, reps: int = 25) -> bytes:
    """A v2c GETBULK (non-repeaters 0, max-repetitions ``reps``) of one OID."""
    return request(1, GETBULK, community, request_id, [oid], 0, reps)


def _exchange(sock: socket.socket, endpoint: tuple[str, int], datagram: bytes) -> bytes | None:
    """One request, one answer (two tries of 5 s); stray late answers are skipped."""
    for _ in range(2):
        sock.sendto(datagram, endpoint)
        sock.settimeout(5.0)
        try:
            while True:
                answer = sock.recv(65_535)
                if _same_request(answer, datagram):
                    return answer
        except TimeoutError:
            continue
    return None


def _same_request(answer: bytes, datagram: bytes) -> bool:
    """Whether ``answer`` carries the request-id of ``datagram``."""

    def rid(buf: bytes) -> bytes:
        _, pos, end = _header(buf, 0, len(buf))
        _, _, pos = _header(buf, pos, end)  # version
        _, _, pos = _header(buf, pos, end)  # community
        _, pos, end = _header(buf, pos, end)  # PDU
        _, _, stop = _header(buf, pos, end)
        return buf[pos:stop]

    try:
        return rid(answer) == rid(datagram)
    except BadRequest:
        return False


def raw_checks(rec: Recording) -> list[tuple[str, bytes]]:
    """Requests whose answers must be byte-for-byte those of snmpsim: v2c GETBULK (25) from
    the start and from every 25th OID, v1 GETNEXT from every OID (so every row is served
    once each way, Counter64 skipped in v1), v2c GET of every 10th OID, v1/v2c past the end."""
    c, keys = rec.name.encode(), rec.oids
    out: list[tuple[str, bytes]] = []
    starts = [(1, 3), *keys[24::25], keys[-1]]
    out += [(f"v2c GETBULK {o}", request(1, GETBULK, c, 1000 + i, [o], 0, 25))
            for i, o in enumerate(starts)]  # fmt: skip
    out += [(f"v1 GETNEXT {o}", request(0, GETNEXT, c, 5000 + i, [o]))
            for i, o in enumerate([(1, 3), *keys])]  # fmt: skip
    out += [(f"v2c GET {o}", request(1, GET, c, 20000 + i, [o]))
            for i, o in enumerate(keys[::10])]  # fmt: skip
    out.append(("v2c GETNEXT 3 varbinds", request(1, GETNEXT, c, 9, [keys[0], keys[-1], (1, 3)])))
    return out


def load_loop(host: str, port: int, seconds: float, window: int = 32) -> dict[str, float]:
    """GETBULK (max-repetitions 25) from every 25th OID of every recording, ``window``
    requests in flight, for ``seconds``; counts answers (each has 25 varbinds)."""
    recs = load_recordings()
    pool = [
        bulk_request(c, 1, r.oids[i]) for c, r in recs.items() for i in range(0, len(r.oids), 25)
    ]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.settimeout(1.0)
    sent = answered = timeouts = 0
    t0 = time.monotonic()
    end = t0 + seconds
    for _ in range(window):
        s.sendto(pool[sent % len(pool)], (host, port))
        sent += 1
    while time.monotonic() < end:
        try:
            s.recv(65_535)
            answered += 1
        except TimeoutError:
            timeouts += 1
            for _ in range(window):  # refill the window after losses
                s.sendto(pool[sent % len(pool)], (host, port))
                sent += 1
            continue
        s.sendto(pool[sent % len(pool)], (host, port))
        sent += 1
    wall = time.monotonic() - t0
    s.close()
    return {"wall_s": wall, "answers": answered, "varbinds": answered * 25, "timeouts": timeouts}


def capacity(seconds: float = 10.0, agent: str = "fast") -> dict[str, float]:
    """Varbinds per agent CPU-second under a GETBULK load loop (one agent process)."""
    sys.path.insert(0, str(REPO))
    from monitor.demo import simlab

    port_host = "127.0.0.1"
    if agent == "fast":
        fast = start([port_host], simlab.free_udp_port())
        pid, stopper, port = fast.pids[0], fast.stop, fast.port
    else:
        sim = simlab.start_snmpsim(port=simlab.free_udp_port())
        pid, stopper, port = sim.process.pid, sim.stop, sim.port
    try:
        load_loop(port_host, port, 1.0)  # warm-up
        cpu0 = cpu_seconds(pid) or 0.0
        out = load_loop(port_host, port, seconds)
        cpu = (cpu_seconds(pid) or 0.0) - cpu0
    finally:
        stopper()
    out["agent_cpu_s"] = cpu
    out["agent_cpu_share"] = cpu / out["wall_s"]
    out["varbinds_per_s"] = out["varbinds"] / out["wall_s"]
    out["varbinds_per_cpu_s"] = out["varbinds"] / cpu if cpu else float("nan")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--addresses",
        default="127.0.0.1",
        help="addresses to serve: 127.0.1.1-127.0.1.250,127.0.2.1 (127/8 only)",
    )
    parser.add_argument("--port", type=int, default=16100, help="UDP port (default 16100)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--data-dir", default=str(RECORDINGS), help="the .snmprec tree")
    parser.add_argument(
        "--max-seconds", type=float, default=3600.0, help="stop after this long (default 3600)"
    )
    parser.add_argument(
        "--selftest", action="store_true", help="compare with snmpsim through net-snmp's tools"
    )
    parser.add_argument("--quick", action="store_true", help="selftest: two recordings only")
    parser.add_argument("--capacity", action="store_true", help="measure varbinds per CPU-second")
    parser.add_argument(
        "--agent",
        choices=("fast", "snmpsim"),
        default="fast",
        help="--capacity: which agent to load (default fast)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="--capacity: seconds")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)
    if args.selftest:
        return 1 if selftest(QUICK_RECORDINGS if args.quick else None) else 0
    if args.capacity:
        print(json.dumps(capacity(min(args.seconds, 300.0), args.agent), indent=2))
        return 0
    addresses = parse_addresses(args.addresses)
    agents = start(
        addresses,
        args.port,
        processes=args.processes,
        data_dir=Path(args.data_dir),
        max_seconds=args.max_seconds,
    )
    print(
        f"serving {len(addresses)} addresses on port {args.port} with pids {agents.pids}; "
        "Ctrl-C or SIGTERM stops",
        flush=True,
    )
    stopped = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        deadline = time.monotonic() + args.max_seconds
        while not stopped and time.monotonic() < deadline:
            if any(p.poll() is not None for p in agents.processes):
                break
            time.sleep(0.5)
    finally:
        agents.stop()
    print(json.dumps({"stats": agents.stats}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
