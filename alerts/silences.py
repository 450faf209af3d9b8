"""Silences: "say nothing about alerts matching these labels until then" (``netmon silence``).

A silence has matchers (all must match, Alertmanager style), a start and an end, an
author and a comment. Matchers: ``label=value``, ``label!=value``, ``label=~regex``,
``label!~regex``; regexes match the whole value; a missing label counts as "". Silences
live in the alert state file, so ``netmon silence add`` in a shell reaches the running
daemon (its engine re-reads them every tick).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alerts.db import ensure_schema, transaction

SILENCE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS silences (
        id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at REAL NOT NULL,
        ends_at REAL NOT NULL, author TEXT NOT NULL, comment TEXT NOT NULL,
        created_at REAL NOT NULL)""",
)
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)(.*)$")
#: Expired silences are kept this long for ``netmon silence list --all``.
KEEP_EXPIRED_SECONDS = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``label=value``, ``label!=value``, ``label=~regex`` or ``label!~regex``."""
        m = _MATCHER.match(text)
        if not m:
            raise ValueError(
                f"{text!r} is not a matcher; use label=value, label!=value, label=~regex "
                "or label!~regex (e.g. target=lab-204-pc01)"
            )
        name, op, value = m.group(1), m.group(2), m.group(3).strip()
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise ValueError(f"{text!r}: invalid regular expression ({exc})") from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._regex is not None:
            return (self._regex.fullmatch(actual) is not None) == (self.op == "=~")
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    author: str
    comment: str
    created_at: float

    def is_active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "author": self.author,
            "comment": self.comment,
            "created_at": self.created_at,
        }


def ensure_silence_schema(conn: sqlite3.Connection) -> None:
    ensure_schema(conn, "silences", 1, SILENCE_SCHEMA)


def add_silence(
    conn: sqlite3.Connection,
    matchers: Sequence[Matcher | str],
    *,
    starts_at: float,
    ends_at: float,
    author: str,
    comment: str,
    now: float,
) -> Silence:
    """Store a new silence and return it (its ``id`` is what ``expire`` takes)."""
    parsed = tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)
    if not parsed:
        raise ValueError("a silence needs at least one matcher")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    ensure_silence_schema(conn)
    silence = Silence(uuid.uuid4().hex[:12], parsed, starts_at, ends_at, author, comment, now)
    with transaction(conn):
        conn.execute(
            "INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?, ?)",
            (silence.id, "\n".join(str(m) for m in parsed), starts_at, ends_at, author,
             comment, now),
        )  # fmt: skip
        conn.execute("DELETE FROM silences WHERE ends_at < ?", (now - KEEP_EXPIRED_SECONDS,))
    return silence


def list_silences(
    conn: sqlite3.Connection, *, now: float, include_expired: bool = False
) -> list[Silence]:
    """Active and future silences (and recently expired ones with ``include_expired``)."""
    ensure_silence_schema(conn)
    query = "SELECT * FROM silences" + ("" if include_expired else " WHERE ends_at > ?")
    rows = conn.execute(query + " ORDER BY starts_at, id", () if include_expired else (now,))
    return [
        Silence(
            row["id"],
            tuple(Matcher.parse(m) for m in row["matchers"].split("\n")),
            row["starts_at"],
            row["ends_at"],
            row["author"],
            row["comment"],
            row["created_at"],
        )
        for row in rows
    ]


def restore_silences(conn: sqlite3.Connection, silences: Sequence[Silence]) -> None:
    """Store ``silences`` again (kept in memory while the state file was unusable)."""
    ensure_silence_schema(conn)
    with transaction(conn):
        conn.executemany(
            "INSERT OR IGNORE INTO silences VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(s.id, "\n".join(str(m) for m in s.matchers), s.starts_at, s.ends_at, s.author,
              s.comment, s.created_at) for s in silences],
        )


def expire_silence(conn: sqlite3.Connection, silence_id: str, *, now: float) -> Silence | None:
    """End a silence now; ``silence_id`` may be a unique prefix. None: no such silence."""
    ensure_silence_schema(conn)
    with transaction(conn):
        rows = conn.execute(
            "SELECT id FROM silences WHERE id LIKE ? AND ends_at > ?",
            (silence_id.replace("%", "").replace("_", "") + "%", now),
        ).fetchall()
        if len(rows) != 1:
            return None
        conn.execute(
            "UPDATE silences SET ends_at = ?, starts_at = MIN(starts_at, ?) WHERE id = ?",
            (now, now, rows[0]["id"]),
        )
    return next((s for s in list_silences(conn, now=now, include_expired=True)
                 if s.id == rows[0]["id"]), None)  # fmt: skip
