"""netmon's SNMP I/O layer: GET and walks over ONE shared pysnmp engine.

Everything a device does wrong comes back as an :class:`SnmpFailure` inside the result,
never as an exception. Values are converted to plain Python (see ``probes.snmp.types``).

Design points, each measured or required:

* one :class:`SnmpEngine` per client (creating one costs ~90 ms CPU); created lazily
  inside the running loop, with its UDP sockets opened by us so that SO_RCVBUF can be
  enlarged before a burst of responses arrives;
* no MIB lookups (``lookupMib=False``: +54 % CPU otherwise);
* in-flight requests bounded by a semaphore, so 200 concurrent walks lose no responses;
* SNMPv3 users are registered per (credentials, agent engine ID) with keys localized
  for that engine only, so two agents that know the same user name with different
  passwords both work, and repeated polls derive no keys;
* silence is diagnosed with an SNMPv3 engine-ID discovery probe (any v3-capable agent
  answers it whatever the community) to tell "wrong community" from "agent down".
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

from pyasn1.codec.ber import decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES_BLUMENTHAL,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    USM_PRIV_NONE,
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from probes.result import Status
from probes.snmp.credentials import SnmpCredentials
from probes.snmp.types import (
    OID,
    GetResult,
    SnmpEndpoint,
    SnmpFailure,
    Value,
    WalkResult,
    loop_failure,
    oid_str,
    resolve,
    silence_failure,
)

#: net-snmp protocol names (as in ``SnmpCredentials``) -> pysnmp protocol objects.
#: net-snmp's AES-192/AES-256 localize keys the Blumenthal way (draft-blumenthal-aes-usm).
AUTH_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "MD5": USM_AUTH_HMAC96_MD5,
    "SHA": USM_AUTH_HMAC96_SHA,
    "SHA-224": USM_AUTH_HMAC128_SHA224,
    "SHA-256": USM_AUTH_HMAC192_SHA256,
    "SHA-384": USM_AUTH_HMAC256_SHA384,
    "SHA-512": USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "DES": USM_PRIV_CBC56_DES,
    "AES": USM_PRIV_CFB128_AES,
    "AES-192": USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES-256": USM_PRIV_CFB256_AES_BLUMENTHAL,
}

log = logging.getLogger("netmon.probes.snmp")

#: Requests in flight at once per client; above ~100 the engine socket overflowed.
MAX_IN_FLIGHT = 64
RCVBUF_BYTES = 4 * 1024 * 1024

_AUTH_STATUS = {"authorizationError", "noAccess"}
_ABSENT = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView, rfc1902.Null)


def _converter(cls: type) -> Callable[[Any], Value | None]:
    """How to turn values of pysnmp/pyasn1 class ``cls`` into plain Python."""
    if issubclass(cls, _ABSENT):
        return lambda _v: None
    if issubclass(cls, rfc1902.IpAddress):  # an OctetString subclass: test it first
        return lambda v: ".".join(str(b) for b in v.asOctets())
    if issubclass(cls, univ.OctetString):  # also Opaque and Bits
        return lambda v: v.asOctets()
    if issubclass(cls, univ.ObjectIdentifier):
        return lambda v: ".".join(str(p) for p in v)
    if issubclass(cls, univ.Integer):  # Integer32, Counter32/64, Gauge32, TimeTicks, ...
        return int
    return lambda _v: None


_CONVERTERS: dict[type, Callable[[Any], Value | None]] = {}


def convert(value: Any) -> Value | None:
    """A pysnmp/pyasn1 value -> int/bytes/str, or None for 'not there' markers."""
    cls = type(value)
    fn = _CONVERTERS.get(cls)
    if fn is None:
        fn = _CONVERTERS[cls] = _converter(cls)
    return fn(value)


class _Response:
    """One PDU exchange, reduced to what the walk and get logic need."""

    __slots__ = ("diagnosed", "error_index", "error_status", "failure", "varbinds")

    def __init__(
        self,
        failure: SnmpFailure | None = None,
        error_status: str = "",
        error_index: int = 0,
        varbinds: Sequence[tuple[Any, Any]] = (),
        *,
        diagnosed: bool = False,
    ) -> None:
        self.failure = failure
        self.diagnosed = diagnosed  # the failure already says why the agent was silent
        self.error_status = error_status
        self.error_index = error_index
        self.varbinds = varbinds


class PysnmpClient:
    """GET and walk against many agents over one lazily created SNMP engine."""

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._engine: SnmpEngine | None = None
        self._sockets: dict[tuple[int, ...], asyncio.Task[None]] = {}
        self._in_flight_limit = max_in_flight
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._auth: dict[tuple[str, bytes], CommunityData | UsmUserData] = {}
        self._engine_ids: dict[tuple[str, int], bytes] = {}
        self._targets: dict[tuple[str, int, float, int], Any] = {}

    def __repr__(self) -> str:
        state = "open" if self._engine is not None else "idle"
        return f"PysnmpClient({state}, {len(self._targets)} targets)"

    # -- public API -----------------------------------------------------------------

    async def get(self, ep: SnmpEndpoint, oids: Sequence[OID]) -> GetResult:
        """GET ``oids``; ones the agent lacks are just missing from ``values``."""
        result = GetResult()
        pending = list(oids)
        while pending:
            rsp = await self._request(ep, "get", pending)
            result.requests += 1
            if rsp.failure:
                result.failure = await self._diagnosed(ep, rsp, result.requests == 1)
                return result
            # SNMPv1 fails the whole GET for one missing OID: drop it and ask again.
            if rsp.error_status == "noSuchName" and 0 < rsp.error_index <= len(pending):
                del pending[rsp.error_index - 1]
                continue
            if rsp.error_status:
                result.failure = self._status_failure(ep, rsp, pending)
                return result
            for name, value in rsp.varbinds:
                converted = convert(value)
                if converted is not None:
                    result.values[tuple(name)] = converted
            break
        return result

    async def walk(self, ep: SnmpEndpoint, base: OID) -> WalkResult:
        """All rows below ``base``: GETBULK (v2c/v3) or GETNEXT (v1), never past ``base``,
        at most ``ep.max_rows`` rows, stopping on OIDs that do not increase."""
        result = WalkResult(base=tuple(base))
        rows = result.rows
        n = len(base)
        current = tuple(base)
        kind = "next" if ep.credentials.version == "1" else "bulk"
        while True:
            # One repetition past the limit tells "exactly max_rows" from "more".
            reps = max(1, min(ep.max_repetitions, ep.max_rows - len(rows) + 1))
            rsp = await self._request(ep, kind, [current], reps)
            result.requests += 1
            if rsp.failure:
                failure = await self._diagnosed(ep, rsp, result.requests == 1)
                result.failure = self._after_rows(base, failure, len(rows))
                return result
            if rsp.error_status == "noSuchName":  # SNMPv1's end of the MIB
                return result
            if rsp.error_status:
                failure = self._status_failure(ep, rsp, [current])
                result.failure = self._after_rows(base, failure, len(rows))
                return result
            if not rsp.varbinds:
                return result
            for name, value in rsp.varbinds:
                o = tuple(name)
                if o[:n] != base or isinstance(value, rfc1905.EndOfMibView):
                    return result
                if o <= current:
                    result.failure = loop_failure(ep, base, len(rows), o, current)
                    return result
                if len(rows) >= ep.max_rows:
                    result.truncated = True
                    result.failure = SnmpFailure(
                        Status.PARTIAL,
                        f"walk of {oid_str(base)} stopped after {len(rows)} rows (max_rows)",
                    )
                    return result
                converted = convert(value)
                if converted is not None:
                    rows[o] = converted
                current = o

    async def diagnose_silence(self, ep: SnmpEndpoint) -> SnmpFailure:
        """Why did ``ep`` not answer? Send an SNMPv3 engine-ID discovery probe, which
        an agent answers with a Report whatever community or user we use."""
        resolved = await resolve(ep)
        if isinstance(resolved, SnmpFailure):
            return resolved
        reply = await _udp_exchange(resolved, ep.port, _discovery_message(), ep.timeout, ep.retries)
        if reply is None:
            return silence_failure(ep)
        if not _is_snmp(reply):
            return SnmpFailure(
                Status.PROTOCOL_ERROR,
                f"something answered on UDP port {ep.port} of {ep.host} but not with SNMP",
            )
        if ep.credentials.version == "3":
            why = (
                f"the agent answers, but ignored our requests as {ep.credentials.describe()}: "
                + ("most likely a wrong privacy password or protocol (agents silently drop "
                   "what they cannot decrypt), else " if ep.credentials.priv else "")
                + "its access list (VACM) excludes this user or this manager"
            )
        else:
            why = (
                "the agent answers, but ignored our requests: wrong community "
                f"(SNMPv{ep.credentials.version}) or the agent's access list excludes "
                "this manager"
            )
        return SnmpFailure(Status.AUTH_ERROR, why)

    async def aclose(self) -> None:
        """Close the engine's sockets; the client may be used again afterwards."""
        for task in self._sockets.values():
            task.cancel()
        if self._engine is not None:
            self._engine.close_dispatcher()
        self._engine = None
        self._in_flight = asyncio.Semaphore(self._in_flight_limit)  # may be reused in a new loop
        self._sockets.clear()
        self._auth.clear()
        self._engine_ids.clear()
        self._targets.clear()

    # -- one request ----------------------------------------------------------------

    async def _request(
        self, ep: SnmpEndpoint, kind: str, oids: Sequence[OID], reps: int = 0
    ) -> _Response:
        resolved = await resolve(ep)
        if isinstance(resolved, SnmpFailure):
            return _Response(resolved)
        try:
            engine = await self._ready_engine(resolved)
        except OSError as exc:
            return _Response(SnmpFailure(
                Status.UNREACHABLE,
                f"cannot open a local UDP socket to reach {ep.address}: {exc.strerror or exc}",
            ))
        auth = await self._auth_data(ep, resolved)
        if isinstance(auth, SnmpFailure):
            return _Response(auth, diagnosed=True)
        target = await self._target(ep, resolved)
        context = ContextData(contextName=ep.credentials.context)
        varbinds = [ObjectType(ObjectIdentity(o)) for o in oids]
        async with self._in_flight:
            try:
                if kind == "get":
                    ind, status, index, vbs = await get_cmd(
                        engine, auth, target, context, *varbinds, lookupMib=False
                    )
                elif kind == "next":
                    ind, status, index, vbs = await next_cmd(
                        engine, auth, target, context, *varbinds, lookupMib=False
                    )
                else:
                    ind, status, index, vbs = await bulk_cmd(
                        engine, auth, target, context, 0, reps, *varbinds, lookupMib=False
                    )
            except PyAsn1Error as exc:
                return _Response(SnmpFailure(
                    Status.PROTOCOL_ERROR, f"agent {ep.address} sent an unreadable answer: {exc}"
                ))
        if ind:
            return _Response(self._indication_failure(ep, ind, resolved))
        return _Response(None, status.prettyPrint() if status else "", int(index or 0), vbs)

    async def _ready_engine(self, ip: str) -> SnmpEngine:
        """The engine, with the socket of ``ip``'s address family open and tuned."""
        if self._engine is None:
            self._engine = SnmpEngine()
        domain = udp6.DOMAIN_NAME if ":" in ip else udp.DOMAIN_NAME
        task = self._sockets.get(domain)
        if task is None:
            task = self._sockets[domain] = asyncio.ensure_future(
                self._open_socket(self._engine, domain)
            )
        try:
            await asyncio.shield(task)
        except OSError:
            self._sockets.pop(domain, None)  # try again on the next request
            raise
        return self._engine

    @staticmethod
    async def _open_socket(engine: SnmpEngine, domain: tuple[int, ...]) -> None:
        """Open the engine's socket ourselves so we can enlarge its receive buffer
        (bursts of responses to many concurrent requests overflow the default)."""
        proto = (udp6.Udp6AsyncioTransport if domain == udp6.DOMAIN_NAME
                 else udp.UdpAsyncioTransport)().open_client_mode()
        config.add_transport(engine, domain, proto)
        _guard_receive(proto)
        transport, _ = await proto._lport  # the create_datagram_endpoint future
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
                try:
                    if option is not None:
                        sock.setsockopt(socket.SOL_SOCKET, option, RCVBUF_BYTES)
                        break
                except OSError:  # SO_RCVBUFFORCE needs CAP_NET_ADMIN
                    continue

    async def _target(self, ep: SnmpEndpoint, ip: str) -> Any:
        key = (ip, ep.port, ep.timeout, ep.retries)
        target = self._targets.get(key)
        if target is None:
            cls = Udp6TransportTarget if ":" in ip else UdpTransportTarget
            target = await cls.create((ip, ep.port), timeout=ep.timeout, retries=ep.retries)
            self._targets[key] = target
        return target

    async def _auth_data(
        self, ep: SnmpEndpoint, ip: str
    ) -> CommunityData | UsmUserData | SnmpFailure:
        """Cached pysnmp auth object; for v3 bound to the agent's engine ID."""
        creds = ep.credentials
        engine_id = b""
        if creds.version == "3":
            known = self._engine_ids.get((ip, ep.port))
            if known is None:
                found = await self._discover_engine_id(ep, ip)
                if isinstance(found, SnmpFailure):
                    return found
                known = self._engine_ids[(ip, ep.port)] = found
            engine_id = known
        key = (creds.fingerprint(), engine_id)
        auth = self._auth.get(key)
        if auth is None:
            auth = self._auth[key] = _make_auth(creds, engine_id)
        return auth

    async def _discover_engine_id(self, ep: SnmpEndpoint, ip: str) -> bytes | SnmpFailure:
        reply = await _udp_exchange(ip, ep.port, _discovery_message(), ep.timeout, ep.retries)
        engine_id = _engine_id_of(reply) if reply is not None else None
        if engine_id:
            return engine_id
        return silence_failure(ep) if reply is None else SnmpFailure(
            Status.PROTOCOL_ERROR,
            f"agent {ep.address} answered SNMPv3 discovery without an engine ID"
            if _is_snmp(reply) else
            f"something answered on UDP port {ep.port} of {ep.host} but not with SNMP",
        )

    # -- failures -------------------------------------------------------------------

    async def _diagnosed(self, ep: SnmpEndpoint, rsp: _Response, first: bool) -> SnmpFailure:
        """A timeout on the very first request is diagnosed; later ones were real."""
        assert rsp.failure is not None
        if rsp.failure.status is Status.TIMEOUT and first and not rsp.diagnosed:
            return await self.diagnose_silence(ep)
        return rsp.failure

    @staticmethod
    def _after_rows(base: OID, failure: SnmpFailure, rows: int) -> SnmpFailure:
        if rows == 0:
            return failure
        return SnmpFailure(
            failure.status, f"walk of {oid_str(base)} stopped after {rows} rows: {failure.explanation}"
        )

    def _indication_failure(self, ep: SnmpEndpoint, ind: Any, ip: str) -> SnmpFailure:
        """pysnmp's error indication -> a failure an IT person can act on."""
        user = f"SNMPv3 user {ep.credentials.user!r}"
        if isinstance(ind, errind.RequestTimedOut):
            tries = ep.retries + 1
            return SnmpFailure(
                Status.TIMEOUT,
                f"no answer from {ep.address} within {ep.timeout:g}s after {tries} "
                f"{'try' if tries == 1 else 'tries'}",
            )
        if isinstance(ind, (errind.UnknownEngineID, errind.UnknownSecurityName,
                            errind.EngineIDMismatch)):
            self._engine_ids.pop((ip, ep.port), None)  # rediscover on the next poll
            return SnmpFailure(
                Status.AUTH_ERROR,
                f"the agent's SNMPv3 engine ID changed or is unknown (device replaced or "
                f"reset?); netmon will rediscover it on the next poll ({ind})",
            )
        usm = {
            errind.UnknownUserName: f"{user} is unknown to the agent: create it there or "
            "fix the user name",
            errind.WrongDigest: f"wrong authentication password or protocol for {user} "
            "(the agent reported a wrong digest)",
            errind.DecryptionError: f"the agent could not decrypt our request: wrong privacy "
            f"password or protocol (DES/AES) for {user}",
            errind.UnsupportedSecurityLevel: f"the agent does not allow security level "
            f"{ep.credentials.security_level} for {user}: configure auth/priv as on the agent",
            errind.NotInTimeWindow: f"requests for {user} fell outside the agent's time "
            "window (agent rebooted or clock jumped); retry, and check the engine boots",
            errind.AuthenticationFailure: f"the agent's answer failed authentication for "
            f"{user}: wrong authentication password or protocol",
            errind.AuthenticationError: f"authentication failed for {user}: wrong "
            "authentication password or protocol",
        }
        for cls, text in usm.items():
            if isinstance(ind, cls):
                return SnmpFailure(Status.AUTH_ERROR, text)
        return SnmpFailure(Status.PROTOCOL_ERROR, f"SNMP error talking to {ep.address}: {ind}")

    @staticmethod
    def _status_failure(ep: SnmpEndpoint, rsp: _Response, oids: Sequence[OID]) -> SnmpFailure:
        at = ""
        if 0 < rsp.error_index <= len(oids):
            at = f" at {oid_str(oids[rsp.error_index - 1])}"
        if rsp.error_status in _AUTH_STATUS:
            return SnmpFailure(
                Status.AUTH_ERROR,
                f"agent {ep.address} refused access ({rsp.error_status}{at}): its view for "
                "this community/user does not include the requested objects",
            )
        return SnmpFailure(
            Status.PROTOCOL_ERROR, f"agent {ep.address} answered with error {rsp.error_status}{at}"
        )


def _guard_receive(proto: Any) -> None:
    """pysnmp decodes each datagram in an event-loop callback, and an undecodable one
    (random bytes, truncated BER) escapes it as an asyncio "Exception in callback"
    traceback in the log. Drop such datagrams quietly: the request they did not answer
    times out and is explained like any silent agent."""
    inner = proto._callback_function
    if inner is None:
        return

    def receive(*args: Any) -> None:
        try:
            inner(*args)
        except Exception as exc:  # noqa: BLE001 -- pyasn1/pysnmp errors of every kind
            log.debug("pysnmp dropped an unreadable datagram: %s", type(exc).__name__)

    proto._callback_function = receive


# -- credentials -> pysnmp ------------------------------------------------------------


def _make_auth(creds: SnmpCredentials, engine_id: bytes) -> CommunityData | UsmUserData:
    if creds.version != "3":
        assert creds.community is not None  # enforced by SnmpCredentials
        return CommunityData(
            creds.community.get_secret_value(), mpModel=0 if creds.version == "1" else 1
        )
    assert creds.user is not None
    return UsmUserData(
        creds.user,
        authKey=creds.auth.password.get_secret_value() if creds.auth else None,
        privKey=creds.priv.password.get_secret_value() if creds.priv else None,
        authProtocol=AUTH_PROTOCOLS[creds.auth.protocol] if creds.auth else USM_AUTH_NONE,
        privProtocol=PRIV_PROTOCOLS[creds.priv.protocol] if creds.priv else USM_PRIV_NONE,
        securityEngineId=engine_id or None,
    )


# -- SNMPv3 discovery on a plain socket -------------------------------------------------

_msg_ids = itertools.count(0x4E4D0000)


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x82, n >> 8, n & 0xFF])
    return bytes([tag]) + length + body


def _int(v: int) -> bytes:
    return _tlv(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big"))


def _discovery_message() -> bytes:
    """An unauthenticated, reportable SNMPv3 GET with empty engine ID and user (RFC 3414
    section 4): every SNMPv3 agent answers it with a Report carrying its engine ID."""
    msg_id = next(_msg_ids) & 0x7FFFFFFF
    header = _tlv(0x30, _int(msg_id) + _int(65507) + _tlv(0x04, b"\x04") + _int(3))
    usm = _tlv(0x04, _tlv(0x30, _tlv(0x04, b"") + _int(0) + _int(0) + b"\x04\x00" * 3))
    pdu = _tlv(0xA0, _int(msg_id) + _int(0) + _int(0) + _tlv(0x30, b""))
    scoped = _tlv(0x30, _tlv(0x04, b"") + _tlv(0x04, b"") + pdu)
    return _tlv(0x30, _int(3) + header + usm + scoped)


def _decode_v3(data: bytes) -> Any | None:
    try:
        msg, rest = decoder.decode(data, asn1Spec=SNMPv3Message())
    except (PyAsn1Error, ValueError, TypeError):
        return None
    return None if rest else msg


def _is_snmp(data: bytes) -> bool:
    """True for any BER SEQUENCE that starts with an SNMP version (v1, v2c or v3)."""
    if _decode_v3(data) is not None:
        return True
    try:
        seq, _ = decoder.decode(data)
        return int(seq[0]) in (0, 1, 3)
    except (PyAsn1Error, ValueError, TypeError, IndexError, KeyError):
        return False


def _engine_id_of(data: bytes) -> bytes | None:
    msg = _decode_v3(data)
    if msg is None:
        return None
    try:
        params, _ = decoder.decode(
            bytes(msg["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters()
        )
        return bytes(params["msgAuthoritativeEngineId"]) or None
    except (PyAsn1Error, ValueError, TypeError):
        return None


class _OneReply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: keep waiting
        pass


async def _udp_exchange(ip: str, port: int, payload: bytes, timeout: float,
                        retries: int) -> bytes | None:
    """Send ``payload`` up to ``retries + 1`` times; the first datagram back, or None."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        transport, proto = await loop.create_datagram_endpoint(
            _OneReply, remote_addr=(ip, port), family=family
        )
    except OSError:
        return None
    try:
        for _ in range(retries + 1):
            transport.sendto(payload)
            try:
                return await asyncio.wait_for(asyncio.shield(proto.reply), timeout)
            except TimeoutError:
                continue
        return None
    finally:
        transport.close()
