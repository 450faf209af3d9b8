"""Misbehaving SNMP agents on real loopback UDP sockets, for the client's failure tests.

Each runs in a daemon thread with blocking sockets, independent of the test's event
loop, and stops when its ``with`` block ends. Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

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
