"""Pure ICMP logic: packets built and parsed byte by byte, checksums, error quoting,
and how ping statistics become a status, an explanation and samples."""

from __future__ import annotations

import socket
import struct

import pytest
from pydantic import ValidationError

from probes.icmp import IcmpSettings, _judge, icmp_samples, jitter
from probes.icmp_engine import (
    IP_RECVERR,
    IPV6_RECVERR,
    SOL_IPV6,
    PingStats,
    build_echo_request,
    canonical,
    checksum,
    parse_errqueue,
    parse_icmp,
    payload_bytes,
)
from probes.metrics import METRICS
from probes.result import Status


def ipv4_header(src: str, dst: str, proto: int = 1, length: int = 84) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, length, 0x1234, 0, 64, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:]


def ipv6_header(src: str, dst: str, next_header: int = 58) -> bytes:
    return struct.pack(
        "!IHBB16s16s", 6 << 28, 64, next_header, 64,
        socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst),
    )


def test_checksum_rfc1071_example() -> None:
    # RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_checksum_odd_length_pads_with_zero() -> None:
    assert checksum(b"\x12\x34\x56") == checksum(b"\x12\x34\x56\x00")


def test_ipv4_echo_request_bytes_and_checksum_verifies() -> None:
    packet = build_echo_request(False, 0xABCD, 7, b"hi")
    assert packet[:2] == b"\x08\x00"
    assert struct.unpack("!HH", packet[4:8]) == (0xABCD, 7)
    assert packet[8:] == b"hi"
    assert checksum(packet) == 0  # a correct checksum makes the whole sum ones
    assert checksum(build_echo_request(False, 0xABCD, 8, b"hi")) == 0


def test_ipv6_echo_request_leaves_checksum_to_kernel() -> None:
    packet = build_echo_request(True, 1, 2, b"")
    assert packet == bytes([128, 0, 0, 0, 0, 1, 0, 2])


def test_payload_has_requested_size() -> None:
    assert len(payload_bytes(0)) == 0
    assert len(payload_bytes(56)) == 56
    assert len(payload_bytes(1000)) == 1000


def test_parse_ipv4_echo_reply_after_ip_header() -> None:
    reply = struct.pack("!BBHHH", 0, 0, 0, 0x1111, 42) + b"data"
    raw = ipv4_header("127.0.0.1", "127.0.0.1") + reply
    parsed = parse_icmp(raw, ipv6=False, has_ip_header=True)
    assert parsed is not None and parsed.is_reply
    assert (parsed.ident, parsed.seq) == (0x1111, 42)
    # Datagram sockets deliver the ICMP message without the IP header.
    parsed = parse_icmp(reply, ipv6=False, has_ip_header=False)
    assert parsed is not None and (parsed.is_reply, parsed.seq) == (True, 42)


def test_parse_ignores_echo_requests_and_short_junk() -> None:
    request = build_echo_request(False, 1, 1, b"")
    assert parse_icmp(request, ipv6=False, has_ip_header=False) is None
    assert parse_icmp(b"\x00\x00", ipv6=False, has_ip_header=False) is None
    assert parse_icmp(b"", ipv6=False, has_ip_header=True) is None


def test_parse_ipv4_host_unreachable_quotes_our_request() -> None:
    original = build_echo_request(False, 0x2222, 513, payload_bytes(56))
    quoted = ipv4_header("10.254.0.1", "10.254.0.5") + original[:8]
    error = struct.pack("!BBHI", 3, 1, 0, 0) + quoted
    raw = ipv4_header("10.254.0.2", "10.254.0.1", length=20 + len(error)) + error
    parsed = parse_icmp(raw, ipv6=False, has_ip_header=True)
    assert parsed is not None and not parsed.is_reply
    assert (parsed.ident, parsed.seq, parsed.dest) == (0x2222, 513, "10.254.0.5")
    assert parsed.error == "destination unreachable: host unreachable"


def test_parse_ipv4_time_exceeded_and_prohibited() -> None:
    quoted = ipv4_header("10.254.0.1", "10.254.0.9") + build_echo_request(False, 5, 6, b"")
    exceeded = parse_icmp(struct.pack("!BBHI", 11, 0, 0, 0) + quoted, False, False)
    assert exceeded is not None and exceeded.error is not None
    assert "time exceeded" in exceeded.error and exceeded.dest == "10.254.0.9"
    filtered = parse_icmp(struct.pack("!BBHI", 3, 13, 0, 0) + quoted, False, False)
    assert filtered is not None and "prohibited" in str(filtered.error)


def test_parse_ipv4_error_quoting_udp_is_ignored() -> None:
    quoted = ipv4_header("10.254.0.1", "10.254.0.9", proto=17) + b"\0" * 8
    assert parse_icmp(struct.pack("!BBHI", 3, 3, 0, 0) + quoted, False, False) is None


def test_parse_ipv6_reply_and_unreachable() -> None:
    reply = struct.pack("!BBHHH", 129, 0, 0, 9, 10)
    parsed = parse_icmp(reply, ipv6=True, has_ip_header=False)
    assert parsed is not None and (parsed.is_reply, parsed.ident, parsed.seq) == (True, 9, 10)
    quoted = ipv6_header("fd00::1", "fd00::99") + build_echo_request(True, 9, 11, b"x" * 8)
    error = struct.pack("!BBHI", 1, 3, 0, 0) + quoted
    parsed = parse_icmp(error, ipv6=True, has_ip_header=False)
    assert parsed is not None and not parsed.is_reply
    assert (parsed.ident, parsed.seq, parsed.dest) == (9, 11, "fd00::99")
    assert parsed.error == "destination unreachable: address unreachable"


def test_parse_errqueue_message_from_datagram_socket() -> None:
    sent = struct.pack("!BBHHH", 8, 0, 0, 4321, 77) + b"payload"
    offender = struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton("10.254.0.2"))
    # struct sock_extended_err: errno, origin=ICMP, type=3, code=10, pad, info, data
    ee = struct.pack("=IBBBBII", 113, 2, 3, 10, 0, 0, 0) + offender
    found = parse_errqueue(sent, [(socket.SOL_IP, IP_RECVERR, ee)])
    text = "destination unreachable: host administratively prohibited (from 10.254.0.2)"
    assert found == (77, text)
    offender6 = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0,
                            socket.inet_pton(socket.AF_INET6, "fd00::2"), 0)
    ee6 = struct.pack("=IBBBBII", 113, 3, 1, 0, 0, 0, 0) + offender6
    found = parse_errqueue(sent, [(SOL_IPV6, IPV6_RECVERR, ee6)])
    assert found == (77, "destination unreachable: no route to destination (from fd00::2)")


def test_parse_errqueue_local_error_uses_errno_text() -> None:
    sent = struct.pack("!BBHHH", 8, 0, 0, 1, 5)
    ee = struct.pack("=IBBBBII", 90, 1, 0, 0, 0, 0, 0)  # SO_EE_ORIGIN_LOCAL, EMSGSIZE
    assert parse_errqueue(sent, [(socket.SOL_IP, IP_RECVERR, ee)]) == (5, "Message too long")
    assert parse_errqueue(sent, []) is None


def test_canonical_matches_kernel_spelling() -> None:
    assert canonical("0:0:0:0:0:0:0:1") == "::1"
    assert canonical("fe80::1%eth0") == "fe80::1"
    assert canonical("127.0.0.1") == "127.0.0.1"


def test_jitter_is_mean_consecutive_difference() -> None:
    assert jitter([0.010]) == 0.0
    assert jitter([0.010, 0.012, 0.009]) == pytest.approx(0.0025)


@pytest.mark.parametrize(
    ("stats", "status", "words"),
    [
        (PingStats("h", 3, 3, [0.001] * 3), Status.OK, ["3 of 3", "avg 1.00 ms"]),
        (PingStats("h", 3, 2, [0.0004, 0.0004]), Status.PARTIAL, ["2 of 3", "33% loss", "0.40 ms"]),
        (PingStats("h", 3, 0), Status.TIMEOUT, ["no reply to 3 echo requests within 1s"]),
        (PingStats("h", 3, 0, [], ["destination unreachable: host unreachable (from r)"]),
         Status.UNREACHABLE, ["unreachable", "host unreachable"]),
        (PingStats("h", 3, 0, [], ["no route to host (EHOSTUNREACH)"] * 3),
         Status.UNREACHABLE, ["EHOSTUNREACH"]),
    ],
)
def test_status_and_explanation(stats: PingStats, status: Status, words: list[str]) -> None:
    got, explanation = _judge(stats, IcmpSettings())
    assert not explanation.startswith("h")  # the caller names the target
    assert got is status
    for word in words:
        assert word in explanation


def test_samples_never_report_latency_for_a_silent_host() -> None:
    silent = {s.metric: s.value for s in icmp_samples(PingStats("h", 3, 0))}
    assert silent == {
        "netmon_icmp_packets_sent": 3,
        "netmon_icmp_packets_received": 0,
        "netmon_icmp_packet_loss_ratio": 1.0,
    }
    answered = icmp_samples(PingStats("h", 4, 2, [0.001, 0.003]))
    rtt = {s.label_dict["stat"]: s.value for s in answered if s.metric == "netmon_icmp_rtt_seconds"}
    assert rtt == {"min": 0.001, "avg": pytest.approx(0.002), "max": 0.003}
    loss = [s.value for s in answered if s.metric == "netmon_icmp_packet_loss_ratio"]
    assert loss == [0.5]
    assert all(s.metric in METRICS for s in answered)


def test_settings_accept_config_spellings_and_bound_the_run() -> None:
    s = IcmpSettings.model_validate({"interval": "10ms", "timeout": "2s", "family": 6})
    assert (s.interval, s.timeout, s.family) == (0.01, 2.0, "6")
    assert s.deadline() >= (s.count - 1) * s.interval + s.timeout
    with pytest.raises(ValidationError):
        IcmpSettings.model_validate({"family": "ipx"})
    with pytest.raises(ValidationError):
        IcmpSettings.model_validate({"count": 0})
    with pytest.raises(ValidationError):
        IcmpSettings.model_validate({"cuont": 3})
