"""A slow host for tests on kernels without ``tc netem``: answers ICMPv4 echo requests
after a fixed delay. Run inside a test's network namespace (whose kernel echo replies
are switched off with ``net.ipv4.icmp_echo_ignore_all=1``)::

    ip netns exec NS python tests/echo_responder.py --delay-ms 50

It prints ``ready`` once its raw socket is open and runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_reply(request: bytes) -> bytes | None:
    """The echo reply for a raw IPv4 packet holding an echo request, else None."""
    ihl = (request[0] & 0x0F) * 4
    icmp = request[ihl:]
    if len(icmp) < 8 or icmp[0] != 8:
        return None
    body = b"\x00\x00\x00\x00" + icmp[4:]
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]


async def serve(delay: float) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)

    def on_readable() -> None:
        while True:
            try:
                packet, (source, _) = sock.recvfrom(65535)
            except BlockingIOError:
                return
            if (reply := echo_reply(packet)) is not None:
                loop.call_later(delay, sock.sendto, reply, (source, 0))

    loop.add_reader(sock.fileno(), on_readable)
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, required=True)
    asyncio.run(serve(parser.parse_args().delay_ms / 1000))


if __name__ == "__main__":
    main()
