"""netmon's SNMP I/O layer: GET and walks on gufo-snmp; pysnmp only to explain failures.

Everything a device does wrong comes back as an :class:`SnmpFailure` inside the result,
never as an exception. Values come from gufo already as plain Python (``int``, ``bytes``,
dotted ``str``; see ``probes.snmp.types``).

Who does what, and why:

* **gufo-snmp** (Rust) encodes requests, decodes answers and owns each session's UDP
  socket: ~15x less CPU per varbind than pysnmp + pyasn1, where 75 % of the time went.
* **this module** owns the sessions (a bounded pool, one request in flight per session,
  requests in flight bounded overall), timeouts and retries as configured (gufo has no
  retries), walk limits (``max_rows``, OIDs that do not increase), per-agent memory
  (max-repetitions adapted to the agent, round-trip times, SNMPv3 engine IDs and keys),
  and the probe's deadline: a walk that would overrun it stops with the rows it has.
* **probes.snmp.ber** checks each answer's structure before gufo decodes it (gufo 0.13
  panics on some truncated answers) and reads the error-status gufo ignores.
* **pysnmp** (``probes.snmp.pysnmp_client``) is imported only after a failure, to say
  precisely why: an SNMPv3 discovery probe tells a wrong community from a dead agent,
  and it re-asks a rejected SNMPv3 request to name the USM error (unknown user, wrong
  digest, decryption error, not in time window, unsupported security level). gufo
  alone reports all of these as "authentication failed" or a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

# A Rust panic prints a backtrace to stderr when RUST_BACKTRACE is set; malformed
# answers are caught before they can panic gufo, and the rare one that still does is a
# protocol_error, not a page of Rust frames in the log. Must be set before a panic.
os.environ["RUST_BACKTRACE"] = "0"

from gufo.snmp import _fast
from gufo.snmp.user import (
    Aes128Key,
    Aes192Key,
    Aes256Key,
    BaseAuthKey,
    BasePrivKey,
    DesKey,
    KeyType,
    Md5Key,
    Sha1Key,
    Sha224Key,
    Sha256Key,
    Sha384Key,
    Sha512Key,
    User,
)

from probes.result import Status
from probes.snmp import ber
from probes.snmp.credentials import SnmpCredentials
from probes.snmp.types import (
    OID,
    GetResult,
    SnmpEndpoint,
    SnmpFailure,
    WalkResult,
    loop_failure,
    oid_str,
    resolve,
    silence_failure,
)

if TYPE_CHECKING:
    from probes.snmp.pysnmp_client import PysnmpClient

__all__ = ["SnmpClient", "SnmpEndpoint"]

log = logging.getLogger("netmon.probes.snmp")
T = TypeVar("T")

AUTH_KEYS: dict[str, type[BaseAuthKey]] = {
    "MD5": Md5Key, "SHA": Sha1Key, "SHA-224": Sha224Key, "SHA-256": Sha256Key,
    "SHA-384": Sha384Key, "SHA-512": Sha512Key,
}  # fmt: skip
#: net-snmp's AES-192/256 expand keys the Blumenthal way, gufo's default.
PRIV_KEYS: dict[str, type[BasePrivKey]] = {
    "DES": DesKey, "AES": Aes128Key, "AES-192": Aes192Key, "AES-256": Aes256Key,
}  # fmt: skip

#: Requests in flight at once per client (each on its own session socket), in two lanes:
#: agents that answer promptly, and agents that went silent, answer slowly or have not
#: answered yet. Requests in the second lane mostly wait (a timeout, a late answer), so
#: it is wider, and a fleet's dead and slow devices never hold a healthy one's turn.
MAX_IN_FLIGHT = 64
MAX_IN_FLIGHT_SLOW = 512
#: Round trips slower than this (smoothed) put an agent in the slow lane.
SLOW_LANE_RTT = 0.5
#: Idle sessions kept, in all (at most; see _idle_cap) and per agent; each holds two
#: file descriptors.
MAX_IDLE_SESSIONS = 2048
MAX_IDLE_PER_AGENT = 4
RCVBUF_BYTES = 256 * 1024
#: An SNMPv3 session idle this long re-learns the agent's boots/time first
#: (agents reject requests more than 150 s off their clock, RFC 3414 section 3.2).
V3_REFRESH_AFTER = 100.0
#: Adaptive max-repetitions: answers above this size risk IP fragmentation.
MAX_ANSWER_BYTES = 1400
#: Round trips slower than this make the next walks ask for more rows per request.
SLOW_ROUND_TRIP = 0.25
REPS_CEILING = 64
TOO_BIG_RETRIES = 3
#: gufo asks SNMPv3 agents for answers of at most 2,048 bytes (msgMaxSize); some agents
#: drop a larger answer instead of shortening it. Keep expected answers below this.
V3_ANSWER_BUDGET = 1700

_AUTH_STATUS = {"authorizationError", "noAccess"}


class _Failed(Exception):
    """One request's failure, carried out of the request loop."""

    def __init__(self, failure: SnmpFailure, *, diagnosed: bool = False,
                 rejected: bool = False) -> None:
        super().__init__(failure.explanation)
        self.failure = failure
        self.diagnosed = diagnosed  # already says why; no silence diagnosis
        self.rejected = rejected  # SNMPv3: the agent sent a Report (USM error)


class _Deadline(Exception):
    """The probe's deadline comes before another request could finish."""


#: What a request returns when gufo says the walk ended (its StopAsyncIteration).
_END: Any = object()


@dataclass(slots=True)
class _Agent:
    """What the client remembers about one agent between polls."""

    reps: int = 0  # max-repetitions for the next walk; 0 = the endpoint's setting
    rtt: float = 0.0  # smoothed round-trip time, seconds
    engine_id: bytes = b""
    requests_last_poll: int = 0  # requests of the last complete probe run
    slow_lane: bool = True  # until it answers promptly (see MAX_IN_FLIGHT_SLOW)


class _Session:
    __slots__ = ("agent_key", "fd", "key", "last_used", "peek", "sock", "version")

    def __init__(self, key: tuple[Any, ...], agent_key: tuple[str, int], sock: Any,
                 version: str) -> None:
        self.key = key
        self.agent_key = agent_key
        self.sock = sock
        self.version = version
        self.fd: int = sock.get_fd()
        # A second descriptor of the same socket, to MSG_PEEK at each answer (checked
        # by probes.snmp.ber) before gufo takes it off the queue.
        self.peek = socket.socket(fileno=os.dup(self.fd))
        self.peek.setblocking(False)
        self.last_used = 0.0

    def close(self) -> None:
        self.peek.close()
        self.sock = None  # gufo closes its socket when the object goes


def _recv_get_many(sock: Any) -> Any:
    return sock.recv_get_many()


def _is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"


def _oid_tuple(text: str) -> OID:
    return tuple(map(int, text.split(".")))


def _idle_cap() -> int:
    """Sessions hold sockets: let this process use all the descriptors it may, and
    keep at most a sixteenth of them in idle sessions (two descriptors each)."""
    soft = 1024
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return max(32, min(MAX_IDLE_SESSIONS, soft // 16))


class SnmpClient:
    """GET and walk against many agents; one client per process (see ProbeContext)."""

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._in_flight_limit = max_in_flight
        self._in_flight: asyncio.Semaphore | None = None
        self._in_flight_slow: asyncio.Semaphore | None = None
        self._idle: OrderedDict[tuple[Any, ...], list[_Session]] = OrderedDict()
        self._idle_count = 0
        self._agents: dict[tuple[str, int], _Agent] = {}
        self._masters: dict[str, tuple[bytes, bytes]] = {}
        self._fingerprints: dict[int, tuple[SnmpCredentials, str]] = {}
        self._diagnoser: PysnmpClient | None = None
        self._idle_limit = _idle_cap()

    def __repr__(self) -> str:
        return f"SnmpClient({self._idle_count} idle sessions, {len(self._agents)} agents)"

    # -- public API -----------------------------------------------------------------

    async def get(self, ep: SnmpEndpoint, oids: Sequence[OID], *,
                  stop_at: float | None = None) -> GetResult:
        """GET ``oids``; ones the agent lacks are just missing from ``values``."""
        if ep.credentials.context:
            return await self._pysnmp().get(ep, oids)  # gufo 0.13 sends no context name
        result = GetResult()
        pending = list(oids)
        names = {oid_str(o): o for o in pending}

        def send(sock: Any) -> None:
            sock.send_get_many([oid_str(o) for o in pending])

        while pending:
            result.requests += 1
            try:
                header, got = await self._request(ep, stop_at, send, _recv_get_many)
            except _Failed as exc:
                result.failure = await self._explain(ep, exc, result.requests == 1,
                                                     get=pending)
                return result
            except _Deadline:
                result.requests -= 1
                result.failure = self._slow(ep)
                result.slow = True
                return result
            status = ber.ERROR_STATUS.get(header.error_status, str(header.error_status))
            # SNMPv1 fails the whole GET for one missing OID: drop it and ask again.
            if status == "noSuchName" and 0 < header.error_index <= len(pending):
                del pending[header.error_index - 1]
                continue
            if header.error_status:
                result.failure = _status_failure(ep, status, header.error_index, pending)
                return result
            if got is _END:
                break
            for name, value in got.items():
                result.values[names.get(name) or _oid_tuple(name)] = value
            if not result.values and header.pdu == 0 and pending:
                # SNMPv3 with privacy: the error-status is encrypted; nothing at all came
                # back, so ask pysnmp what the agent says (access denied, ...).
                return await self._pysnmp_get(ep, pending, result.requests)
            break
        return result

    async def walk(self, ep: SnmpEndpoint, base: OID, *,
                   stop_at: float | None = None) -> WalkResult:
        """All rows below ``base``: GETBULK (v2c/v3) or GETNEXT (v1), never past ``base``,
        at most ``ep.max_rows`` rows, stopping on OIDs that do not increase. ``stop_at``
        (event-loop time) is the probe's deadline: the walk stops before it and says so."""
        if ep.credentials.context:
            return await self._pysnmp().walk(ep, base)  # gufo 0.13 sends no context name
        result = WalkResult(base=tuple(base))
        agent = self._agent(ep)
        for _ in range(TOO_BIG_RETRIES + 1):
            reps = agent.reps or ep.max_repetitions
            try:
                await self._walk(ep, result, agent, reps, stop_at)
                return result
            except _TooBig as exc:
                agent.reps = exc.reps  # and walk again with smaller answers
        result.failure = SnmpFailure(
            Status.PROTOCOL_ERROR,
            f"agent {ep.address} answered tooBig, or dropped its answers, even for "
            f"{agent.reps} rows per request",
        )
        return result

    def remember_poll(self, ep: SnmpEndpoint, requests: int) -> None:
        """A probe run completed in ``requests`` requests (the next slow run's estimate)."""
        self._agent(ep).requests_last_poll = requests

    def agent_stats(self, ep: SnmpEndpoint) -> tuple[float, int]:
        """(smoothed round-trip seconds, requests of the last complete run) of ``ep``."""
        agent = self._agent(ep)
        return agent.rtt, agent.requests_last_poll

    async def diagnose_silence(self, ep: SnmpEndpoint) -> SnmpFailure:
        """Why did ``ep`` not answer? An SNMPv3 discovery probe (pysnmp's module) tells
        a wrong community or user from a dead agent."""
        return await self._pysnmp().diagnose_silence(ep)

    async def aclose(self) -> None:
        """Close every session; the client may be used again afterwards."""
        for sessions in self._idle.values():
            for s in sessions:
                s.close()
        self._idle.clear()
        self._idle_count = 0
        self._agents.clear()
        self._in_flight = self._in_flight_slow = None  # may be reused in a new loop
        if self._diagnoser is not None:
            await self._diagnoser.aclose()
            self._diagnoser = None

    # -- walks ------------------------------------------------------------------------

    async def _walk(self, ep: SnmpEndpoint, result: WalkResult, agent: _Agent, reps: int,
                    stop_at: float | None) -> None:
        rows = result.rows
        base = result.base
        current = base
        v1 = ep.credentials.version == "1"
        ctx = _fast.GetIter(oid_str(base), None if v1 else max(1, min(reps, ep.max_rows + 1)))
        if v1:
            send: Callable[[Any], None] = lambda s: s.send_get_next(ctx)
            recv: Callable[[Any], Any] = lambda s: [s.recv_get_next(ctx)]
        else:
            send = lambda s: s.send_get_bulk(ctx)
            recv = lambda s: s.recv_get_bulk(ctx)
        largest = 0
        per_row = 0.0  # bytes per row in this walk's answers, at most
        first_request = result.requests
        v3 = ep.credentials.version == "3"
        prefix = oid_str(base) + "."
        skip = len(prefix)
        while True:
            result.requests += 1
            try:
                header, items = await self._request(ep, stop_at, send, recv)
            except _Failed as exc:
                if rows and exc.failure.status is Status.TIMEOUT and not v1 and reps > 1:
                    fewer = max(1, reps // 2)
                    if v3 and per_row:
                        fewer = max(1, min(fewer, int(V3_ANSWER_BUDGET // per_row)))
                    if v3 and largest > V3_ANSWER_BUDGET // 2:
                        # Likely the agent dropped an answer over gufo's msgMaxSize
                        # (snmpsim does): the same walk again, with smaller answers.
                        raise _TooBig(fewer) from None
                    agent.reps = fewer  # maybe the answer was too big to pass
                failure = await self._explain(ep, exc, result.requests == 1)
                result.failure = _after_rows(base, failure, len(rows))
                return
            except _Deadline:
                result.requests -= 1
                result.failure = self._slow(ep, len(rows), base)
                result.slow = True
                return
            if header.error_status:
                status = ber.ERROR_STATUS.get(header.error_status, str(header.error_status))
                if status == "noSuchName":  # SNMPv1's end of the MIB
                    break
                if status == "tooBig" and not v1 and reps > 1:
                    raise _TooBig(max(1, reps // 2))
                failure = _status_failure(ep, status, header.error_index, [current])
                result.failure = _after_rows(base, failure, len(rows))
                return
            if items is _END:
                break
            largest = max(largest, header.size)
            if items:
                per_row = max(per_row, header.size / len(items))
            for item in items:
                if item is None:  # gufo: the next OID left the subtree
                    self._adapt(agent, ep, reps, largest, per_row, result.requests - first_request)
                    return
                name, value = item
                if not name.startswith(prefix):
                    self._adapt(agent, ep, reps, largest, per_row, result.requests - first_request)
                    return
                o = base + tuple(map(int, name[skip:].split(".")))
                if o <= current:
                    result.failure = loop_failure(ep, base, len(rows), o, current)
                    return
                if len(rows) >= ep.max_rows:
                    result.truncated = True
                    result.failure = SnmpFailure(
                        Status.PARTIAL,
                        f"walk of {oid_str(base)} stopped after {len(rows)} rows (max_rows)",
                    )
                    return
                rows[o] = value
                current = o
        self._adapt(agent, ep, reps, largest, per_row, result.requests - first_request)

    @staticmethod
    def _adapt(agent: _Agent, ep: SnmpEndpoint, reps: int, largest: int, per_row: float,
               requests: int) -> None:
        """Rows per request for this agent's next walks: more when its round trips are
        slow and its answers would stay one unfragmented datagram when doubled; for
        SNMPv3, few enough that answers fit gufo's msgMaxSize. (Fewer also come from
        tooBig and from answers lost mid-walk, in ``walk``.)"""
        version = ep.credentials.version
        if version == "1":
            return
        if version == "3" and per_row and per_row * reps > V3_ANSWER_BUDGET:
            agent.reps = max(1, int(V3_ANSWER_BUDGET // per_row))
            return
        ceiling = max(ep.max_repetitions, REPS_CEILING)
        if (requests > 1 and agent.rtt > SLOW_ROUND_TRIP and largest * 2 <= MAX_ANSWER_BYTES
                and reps < ceiling):
            agent.reps = min(ceiling, reps * 2)

    # -- one request ----------------------------------------------------------------

    async def _request(self, ep: SnmpEndpoint, stop_at: float | None,
                       send: Callable[[Any], None],
                       recv: Callable[[Any], T]) -> tuple[ber.Header, T]:
        """One request with the endpoint's timeout and retries on a pooled session, in
        the agent's lane (prompt, or silent/slow)."""
        if self._in_flight is None or self._in_flight_slow is None:
            self._in_flight = asyncio.Semaphore(self._in_flight_limit)
            self._in_flight_slow = asyncio.Semaphore(
                max(self._in_flight_limit, min(MAX_IN_FLIGHT_SLOW, self._idle_limit // 2)))
        lane = self._in_flight_slow if self._agent(ep).slow_lane else self._in_flight
        async with lane:
            for attempt in (1, 2):
                session = await self._session(ep, stop_at)
                reused = session.last_used > 0
                try:
                    out = await self._exchange(ep, session, stop_at, send, recv)
                except _Failed as exc:
                    # A session that saw garbage or a rejection is not reused.
                    if exc.failure.status is not Status.TIMEOUT:
                        session.close()
                    else:
                        self._release(session)
                    stale = exc.rejected or (
                        exc.failure.status is Status.TIMEOUT and session.version == "3")
                    if stale and reused and attempt == 1:
                        # The agent may have rebooted or been replaced since this session
                        # learnt its engine ID, boots and time (it then drops or rejects
                        # our requests): learn them again and ask once more.
                        self._agents[session.agent_key].engine_id = b""
                        self._drop_idle(session.key)
                        if not exc.rejected:
                            await self._rediscover(ep, stop_at)
                        continue
                    raise
                except _Deadline:
                    self._release(session)
                    raise
                except BaseException:
                    session.close()
                    raise
                self._release(session)
                return out
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _exchange(self, ep: SnmpEndpoint, s: _Session, stop_at: float | None,
                        send: Callable[[Any], None],
                        recv: Callable[[Any], T]) -> tuple[ber.Header, T]:
        loop = asyncio.get_running_loop()
        agent = self._agents[s.agent_key]
        for _ in range(ep.retries + 1):
            now = loop.time()
            until = now + ep.timeout
            if stop_at is not None:
                if stop_at - now < min(ep.timeout, max(agent.rtt * 2, 0.05)):
                    raise _Deadline
                until = min(until, stop_at)
            try:
                send(s.sock)
            except BlockingIOError:
                await asyncio.sleep(0.001)  # send buffer full for a moment
                continue
            except (ValueError, _fast.SnmpEncodeError) as exc:
                raise _Failed(SnmpFailure(
                    Status.CONFIG_ERROR, f"cannot encode a request to {ep.address}: {exc}"
                ), diagnosed=True) from None
            except OSError as exc:
                raise _Failed(SnmpFailure(
                    Status.UNREACHABLE, f"cannot send to {ep.address}: {exc.strerror or exc}"
                ), diagnosed=True) from None
            sent = time.monotonic()
            while True:
                if not await _readable(loop, s.fd, until):
                    break  # this try timed out
                header = _peek(ep, s)
                if header is None:
                    continue
                try:
                    value = recv(s.sock)
                except BlockingIOError:
                    continue  # an answer to an earlier request, dropped by gufo
                except (StopAsyncIteration, _fast.NoSuchInstance):
                    value = _END
                except _fast.SnmpAuthError:
                    raise _Failed(_rejected(ep), rejected=True) from None
                except _fast.SnmpError as exc:
                    raise _Failed(_malformed(ep, str(exc)), diagnosed=True) from None
                except TimeoutError:
                    continue  # ICMP port unreachable (gufo: "connection refused")
                except OSError as exc:
                    raise _Failed(SnmpFailure(
                        Status.UNREACHABLE, f"cannot receive from {ep.address}: {exc}"
                    ), diagnosed=True) from None
                except BaseException as exc:
                    if _is_panic(exc):
                        raise _Failed(_malformed(ep, "its answer crashed the decoder"),
                                      diagnosed=True) from None
                    raise
                rtt = time.monotonic() - sent
                agent.rtt = rtt if not agent.rtt else agent.rtt * 0.7 + rtt * 0.3
                agent.slow_lane = agent.rtt > SLOW_LANE_RTT
                return header, value
        agent.slow_lane = True
        tries = ep.retries + 1
        raise _Failed(SnmpFailure(
            Status.TIMEOUT,
            f"no answer from {ep.address} within {ep.timeout:g}s after {tries} "
            f"{'try' if tries == 1 else 'tries'}",
        ))

    # -- sessions -------------------------------------------------------------------

    def _agent(self, ep: SnmpEndpoint) -> _Agent:
        key = (ep.host, ep.port)
        agent = self._agents.get(key)
        if agent is None:
            agent = self._agents[key] = _Agent()
        return agent

    async def _session(self, ep: SnmpEndpoint, stop_at: float | None) -> _Session:
        creds = ep.credentials
        key = (ep.host, ep.port, self._fingerprint(creds))
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            s = idle.pop()
            self._idle_count -= 1
            if not idle:
                del self._idle[key]
            if creds.version == "3" and now - s.last_used > V3_REFRESH_AFTER:
                try:
                    await self._exchange(ep, s, stop_at, lambda k: k.send_refresh(),
                                         lambda k: k.recv_refresh())
                except _Failed:
                    s.close()
                    break
                except BaseException:
                    s.close()
                    raise
            return s
        ip = await resolve(ep)
        if isinstance(ip, SnmpFailure):
            raise _Failed(ip, diagnosed=True)
        agent_key = (ep.host, ep.port)
        self._agent(ep)
        addr = f"[{ip}]:{ep.port}" if ":" in ip else f"{ip}:{ep.port}"
        try:
            if creds.version != "3":
                assert creds.community is not None  # enforced by SnmpCredentials
                cls = _fast.SnmpV1ClientSocket if creds.version == "1" else \
                    _fast.SnmpV2cClientSocket
                sock = cls(addr, creds.community.get_secret_value(), 0, 0, RCVBUF_BYTES, 0)
                return _Session(key, agent_key, sock, creds.version)
            return await self._v3_session(ep, key, agent_key, addr, stop_at)
        except OSError as exc:
            raise _Failed(SnmpFailure(
                Status.UNREACHABLE,
                f"cannot open a local UDP socket to reach {ep.address}: {exc.strerror or exc}",
            ), diagnosed=True) from None

    async def _v3_session(self, ep: SnmpEndpoint, key: tuple[Any, ...],
                          agent_key: tuple[str, int], addr: str,
                          stop_at: float | None) -> _Session:
        """An SNMPv3 session: the agent's engine ID (learnt once, by a discovery Report),
        keys localized to it from master keys computed once per credential set, then
        one authenticated refresh for the agent's boots and time."""
        agent = self._agents[agent_key]
        user = self._user(ep.credentials)
        if not agent.engine_id:
            sock = _fast.SnmpV3ClientSocket(addr, b"", "", 0, b"", 0, b"", 0, 0,
                                            RCVBUF_BYTES, 0)
            probe = _Session(key, agent_key, sock, "3")
            try:
                await self._exchange(ep, probe, stop_at, lambda k: k.send_refresh(),
                                     lambda k: k.recv_refresh())
                agent.engine_id = sock.get_engine_id()
            finally:
                probe.close()
            if not agent.engine_id:
                raise _Failed(SnmpFailure(
                    Status.PROTOCOL_ERROR,
                    f"agent {ep.address} answered SNMPv3 discovery without an engine ID",
                ), diagnosed=True)
        sock = _fast.SnmpV3ClientSocket(
            addr, agent.engine_id, user.name, user.get_auth_alg(), user.get_auth_key(),
            user.get_priv_alg(), user.get_priv_key(), 0, 0, RCVBUF_BYTES, 0,
        )
        s = _Session(key, agent_key, sock, "3")
        if user.require_auth():
            try:
                await self._exchange(ep, s, stop_at, lambda k: k.send_refresh(),
                                     lambda k: k.recv_refresh())
            except BaseException:
                s.close()
                raise
        return s

    def _fingerprint(self, creds: SnmpCredentials) -> str:
        """``creds.fingerprint()`` once per credentials object (it hashes on every request)."""
        known = self._fingerprints.get(id(creds))
        if known is not None and known[0] is creds:
            return known[1]
        if len(self._fingerprints) > 10_000:
            self._fingerprints.clear()
        fp = creds.fingerprint()
        self._fingerprints[id(creds)] = (creds, fp)  # holding creds keeps its id unique
        return fp

    def _user(self, creds: SnmpCredentials) -> User:
        """A gufo user with master keys, derived (1 MB of hashing each) once per set."""
        assert creds.user is not None
        if not creds.auth:
            return User(creds.user)
        fp = self._fingerprint(creds)
        masters = self._masters.get(fp)
        auth_cls = AUTH_KEYS[creds.auth.protocol]
        if masters is None:
            auth_master = auth_cls.get_master_key(creds.auth.password.get_secret_value().encode())
            priv_master = auth_cls.get_master_key(
                creds.priv.password.get_secret_value().encode()) if creds.priv else b""
            masters = self._masters[fp] = (auth_master, priv_master)
        priv = PRIV_KEYS[creds.priv.protocol](masters[1], KeyType.Master) if creds.priv else None
        return User(creds.user, auth_key=auth_cls(masters[0], KeyType.Master), priv_key=priv)

    async def _rediscover(self, ep: SnmpEndpoint, stop_at: float | None) -> None:
        """A fresh SNMPv3 session for ``ep`` (engine discovery first) into the pool; an
        agent silent to discovery too is down, and explained as such."""
        try:
            self._release(await self._session(ep, stop_at))
        except _Failed as exc:
            if exc.failure.status is Status.TIMEOUT:
                raise _Failed(silence_failure(ep), diagnosed=True) from None
            raise

    def _drop_idle(self, key: tuple[Any, ...]) -> None:
        for s in self._idle.pop(key, []):
            s.close()
            self._idle_count -= 1

    def _release(self, s: _Session) -> None:
        if s.sock is None:
            return
        s.last_used = time.monotonic()
        idle = self._idle.setdefault(s.key, [])
        if len(idle) >= MAX_IDLE_PER_AGENT:
            s.close()
            return
        idle.append(s)
        self._idle.move_to_end(s.key)
        self._idle_count += 1
        while self._idle_count > self._idle_limit:  # least recently used agent first
            _, oldest = next(iter(self._idle.items()))
            oldest.pop(0).close()
            self._idle_count -= 1
            if not oldest:
                self._idle.popitem(last=False)

    # -- failures -------------------------------------------------------------------

    def _pysnmp(self) -> PysnmpClient:
        if self._diagnoser is None:
            from probes.snmp.pysnmp_client import PysnmpClient

            self._diagnoser = PysnmpClient(max_in_flight=8)
        return self._diagnoser

    async def _explain(self, ep: SnmpEndpoint, exc: _Failed, first: bool,
                       get: Sequence[OID] = ()) -> SnmpFailure:
        """A timeout on the very first request is diagnosed; later ones were real. An
        SNMPv3 rejection is asked again through pysnmp, which names the USM error."""
        if exc.rejected:
            self._agent(ep).engine_id = b""  # rediscover: the device may have been replaced
            res = await (self._pysnmp().get(ep, get) if get else
                         self._pysnmp().walk(ep, (1, 3, 6, 1, 2, 1, 1)))
            if res.failure is not None:
                return res.failure
            return exc.failure
        if exc.failure.status is Status.TIMEOUT and first and not exc.diagnosed:
            return await self.diagnose_silence(ep)
        return exc.failure

    async def _pysnmp_get(self, ep: SnmpEndpoint, oids: Sequence[OID],
                          requests: int) -> GetResult:
        res = await self._pysnmp().get(ep, oids)
        res.requests += requests
        return res

    def _slow(self, ep: SnmpEndpoint, rows: int = 0, base: OID | None = None) -> SnmpFailure:
        """The deadline came first (the probe words the whole story; see probe_snmp)."""
        rtt = self._agent(ep).rtt
        where = f"walk of {oid_str(base)} stopped after {rows} rows: " if base else ""
        return SnmpFailure(
            Status.PARTIAL,
            f"{where}{ep.address} answers slowly ({rtt:.1f}s per request); the probe's "
            "deadline came first",
        )


class _TooBig(Exception):
    """The agent's answers are too big: walk again with ``reps`` rows per request."""

    def __init__(self, reps: int) -> None:
        super().__init__(reps)
        self.reps = reps


# -- helpers ------------------------------------------------------------------------------


async def _readable(loop: asyncio.AbstractEventLoop, fd: int, until: float) -> bool:
    """Wait until ``fd`` can be read (True) or the loop's clock reaches ``until``."""
    fut: asyncio.Future[bool] = loop.create_future()

    def done(value: bool) -> None:
        if not fut.done():
            fut.set_result(value)

    loop.add_reader(fd, done, True)
    timer = loop.call_at(until, done, False)
    try:
        return await fut
    finally:
        loop.remove_reader(fd)
        timer.cancel()


def _peek(ep: SnmpEndpoint, s: _Session) -> ber.Header | None:
    """The next answer's header, checked; a malformed answer is taken off the queue and
    fails the request. None when nothing is there after all."""
    try:
        data = s.peek.recv(65535, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return None
    except ConnectionRefusedError:
        return None  # ICMP port unreachable: keep waiting, like a silent agent
    except OSError as exc:
        raise _Failed(SnmpFailure(
            Status.UNREACHABLE, f"cannot receive from {ep.address}: {exc.strerror or exc}"
        ), diagnosed=True) from None
    try:
        return ber.read(data)
    except ber.Malformed as exc:
        with contextlib.suppress(OSError):
            s.peek.recv(65535)
        raise _Failed(_malformed(ep, str(exc), data), diagnosed=True) from None


def _malformed(ep: SnmpEndpoint, why: str, data: bytes = b"\x30") -> SnmpFailure:
    port = ep.address.rsplit(":", 1)[1]
    if not data or data[0] != 0x30:
        return SnmpFailure(
            Status.PROTOCOL_ERROR,
            f"something answered on UDP port {port} of {ep.host} but not with SNMP "
            f"(a malformed answer: {why})",
        )
    return SnmpFailure(
        Status.PROTOCOL_ERROR,
        f"agent {ep.address} sent a malformed answer ({why}); firmware bug, or something "
        f"else answering on UDP port {port}",
    )


def _rejected(ep: SnmpEndpoint) -> SnmpFailure:
    return SnmpFailure(
        Status.AUTH_ERROR,
        f"the agent rejected our requests as SNMPv3 user {ep.credentials.user!r}: wrong "
        "authentication password or protocol, unknown user, or not in its time window",
    )


def _status_failure(ep: SnmpEndpoint, status: str, index: int,
                    oids: Sequence[OID]) -> SnmpFailure:
    at = f" at {oid_str(oids[index - 1])}" if 0 < index <= len(oids) else ""
    if status in _AUTH_STATUS:
        return SnmpFailure(
            Status.AUTH_ERROR,
            f"agent {ep.address} refused access ({status}{at}): its view for "
            "this community/user does not include the requested objects",
        )
    return SnmpFailure(Status.PROTOCOL_ERROR, f"agent {ep.address} answered with error {status}{at}")


def _after_rows(base: OID, failure: SnmpFailure, rows: int) -> SnmpFailure:
    if rows == 0:
        return failure
    return SnmpFailure(
        failure.status, f"walk of {oid_str(base)} stopped after {rows} rows: {failure.explanation}"
    )


