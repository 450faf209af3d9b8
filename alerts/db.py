"""The alert state file: one SQLite database (standard library) shared by the engine
(alert states, silences, flap history) and the notifiers (outbox, notification log).

Each part owns its tables and creates them with :func:`ensure_schema`. Writes are small
and happen on the asyncio loop; WAL mode keeps readers (``netmon alerts list`` in another
process) from blocking the daemon. Every write commits before the caller acts on it, so
a crash loses at most the change in progress and never sends anything twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path


def open_db(path: str | Path) -> sqlite3.Connection:
    """Open (creating it and its directory) the state file; ``":memory:"`` for tests."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def ensure_schema(conn: sqlite3.Connection, part: str, version: int, statements: Iterable[str]) -> None:
    """Run ``statements`` (CREATE TABLE IF NOT EXISTS ...) once per (``part``, ``version``)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (part TEXT PRIMARY KEY, version INTEGER)"
    )
    row = conn.execute("SELECT version FROM schema_versions WHERE part = ?", (part,)).fetchone()
    if row is not None and row[0] >= version:
        return
    with transaction(conn):
        for stmt in statements:
            conn.execute(stmt)
        conn.execute(
            "INSERT INTO schema_versions (part, version) VALUES (?, ?) "
            "ON CONFLICT(part) DO UPDATE SET version = excluded.version",
            (part, version),
        )


class transaction:
    """``with transaction(conn):`` BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
