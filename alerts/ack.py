"""Acknowledgements: "I'm on it" for a firing alert, and the signed links and form tokens
that let people say so from an email or the status page.

An acknowledgement belongs to one episode of one alert instance: it names the alert's
fingerprint and the time the episode began (``active_since``), so it ends by itself when
the alert resolves; if the same alert fires again later, nobody has acknowledged that.
While it holds, the dispatcher sends no repeat notifications for the alert (a new alert
in the same group still goes out, and the resolved notice is sent as usual).

Acknowledgements live in the alert state file (table ``alert_acks``), so
``netmon alerts ack`` in a shell reaches the running daemon at its next tick, like
``netmon silence add``.

Tokens (HMAC-SHA256 with a random secret kept next to the state file, mode 0600):

- an email's acknowledge link carries ``FINGERPRINT.EXPIRES.SIGNATURE``: bound to one
  alert, valid :data:`LINK_SECONDS`; it opens a confirm page whose POST does the ack;
- the status page's forms carry a CSRF token ``ISSUED.SIGNATURE`` bound to the
  basic-auth user, valid :data:`CSRF_SECONDS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.db import ensure_schema, transaction
from alerts.model import Alert

ACK_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS alert_acks (
        fingerprint TEXT NOT NULL, active_since REAL NOT NULL, author TEXT NOT NULL,
        comment TEXT NOT NULL, acked_at REAL NOT NULL, via TEXT NOT NULL,
        PRIMARY KEY (fingerprint, active_since))""",
)
#: Acknowledgements of episodes that began this long ago are deleted (the alert has
#: long resolved, or it still fires and nobody cares to repeat it).
KEEP_SECONDS = 30 * 86400.0
#: How long an email's acknowledge link works.
LINK_SECONDS = 7 * 86400.0
#: How long a status page form's CSRF token works (the page reloads every 30 s).
CSRF_SECONDS = 12 * 3600.0
#: The secret's file name, in the state file's directory.
SECRET_FILE = "netmon-web.secret"


@dataclass(frozen=True, slots=True)
class Ack:
    fingerprint: str
    active_since: float
    author: str
    comment: str
    acked_at: float
    #: ``cli``, ``page`` or ``email``.
    via: str

    def to_json(self) -> dict[str, Any]:
        return {"author": self.author, "comment": self.comment, "acked_at": self.acked_at,
                "via": self.via}  # fmt: skip


def ensure_ack_schema(conn: sqlite3.Connection) -> None:
    ensure_schema(conn, "acks", 1, ACK_SCHEMA)


def episode(alert: Alert) -> float:
    """When the alert's current episode began (what an acknowledgement is bound to)."""
    return alert.active_since or alert.starts_at or 0.0


def acknowledge(conn: sqlite3.Connection, alerts: Sequence[Alert], *, author: str,
                comment: str, via: str, now: float) -> list[Alert]:
    """Acknowledge the active ones of ``alerts``; returns those acknowledged now (an
    episode already acknowledged keeps its first acknowledgement)."""
    ensure_ack_schema(conn)
    done = []
    with transaction(conn):
        for a in alerts:
            if not a.is_active:
                continue
            cur = conn.execute("INSERT OR IGNORE INTO alert_acks VALUES (?, ?, ?, ?, ?, ?)",
                               (a.fingerprint, episode(a), author, comment, now, via))
            if cur.rowcount:
                done.append(a)
        conn.execute("DELETE FROM alert_acks WHERE active_since < ?", (now - KEEP_SECONDS,))
    return done


def unacknowledge(conn: sqlite3.Connection, alerts: Sequence[Alert]) -> list[Alert]:
    """Take back the acknowledgements of ``alerts``' current episodes; returns those."""
    ensure_ack_schema(conn)
    done = []
    with transaction(conn):
        for a in alerts:
            cur = conn.execute("DELETE FROM alert_acks WHERE fingerprint = ? AND active_since = ?",
                               (a.fingerprint, episode(a)))
            if cur.rowcount:
                done.append(a)
    return done


def current_acks(conn: sqlite3.Connection, alerts: Iterable[Alert]) -> dict[str, Ack]:
    """The acknowledgements of the active ``alerts``' current episodes, by fingerprint."""
    try:
        rows = conn.execute("SELECT * FROM alert_acks").fetchall()
    except sqlite3.OperationalError:  # no table yet: nobody acknowledged anything
        return {}
    if not rows:  # the usual case, checked every second: no walk over the alerts
        return {}
    by_fp: dict[str, list[sqlite3.Row]] = {}
    for r in rows:
        by_fp.setdefault(r["fingerprint"], []).append(r)
    found = {}
    for a in alerts:
        mine = by_fp.get(a.fingerprint)
        if mine is None or not a.is_active:
            continue
        since = episode(a)
        for row in mine:
            if row["active_since"] == since:
                found[a.fingerprint] = Ack(row["fingerprint"], since, row["author"],
                                           row["comment"], row["acked_at"], row["via"])
    return found


def with_acks(alerts: Sequence[Alert], acks: Mapping[str, Ack]) -> list[Alert]:
    """``alerts`` with ``extra["ack"]`` set on the acknowledged ones (new extra dicts:
    the engine's copies share theirs)."""
    for a in alerts:
        ack = acks.get(a.fingerprint)
        if ack is not None:
            a.extra = {**a.extra, "ack": ack}
    return list(alerts)


def ack_of(alert: Alert) -> Ack | None:
    found = alert.extra.get("ack")
    return found if isinstance(found, Ack) else None


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as ``/api/alerts`` and ``netmon alerts list --json`` show it: with
    ``ack`` (null, or author, comment, acked_at and via)."""
    found = ack_of(alert)
    return {**alert.to_json(), "ack": found.to_json() if found else None}


# --- tokens -------------------------------------------------------------------------------


class TokenError(ValueError):
    """A link or form token that cannot be used; ``reason`` is ``expired`` or ``invalid``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_secret(path: Path) -> bytes:
    """The signing secret in ``path``, created (32 random bytes, mode 0600) if missing.
    It survives restarts, so links in emails sent before one still work."""
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(32)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return data


def _sign(secret: bytes, *parts: str) -> str:
    mac = hmac.new(secret, "|".join(parts).encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def link_token(secret: bytes, fingerprint: str, now: float, valid: float = LINK_SECONDS) -> str:
    """The token of an email's acknowledge link for one alert."""
    expires = str(int(now + valid))
    return f"{fingerprint}.{expires}.{_sign(secret, 'ack', fingerprint, expires)}"


def check_link_token(secret: bytes, token: str, now: float) -> str:
    """The fingerprint a link token is for; raises :class:`TokenError`."""
    fingerprint, _, rest = token.partition(".")
    expires, _, signature = rest.partition(".")
    if not (fingerprint and expires.isdigit() and signature) or not hmac.compare_digest(
        signature, _sign(secret, "ack", fingerprint, expires)
    ):
        raise TokenError("invalid")
    if now >= int(expires):
        raise TokenError("expired")
    return fingerprint


def csrf_token(secret: bytes, user: str, now: float) -> str:
    """A form token for ``user`` (double-submit is not needed: it is an HMAC of the
    user and the time, which only the server can make)."""
    issued = str(int(now))
    return f"{issued}.{_sign(secret, 'csrf', user, issued)}"


def check_csrf_token(secret: bytes, token: str, user: str, now: float) -> None:
    """Raises :class:`TokenError` unless ``token`` was made for ``user`` recently."""
    issued, _, signature = token.partition(".")
    if not (issued.isdigit() and signature) or not hmac.compare_digest(
        signature, _sign(secret, "csrf", user, issued)
    ):
        raise TokenError("invalid")
    if not 0 <= now - int(issued) < CSRF_SECONDS:
        raise TokenError("expired")
