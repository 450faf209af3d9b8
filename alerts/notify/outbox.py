"""The notification outbox and the dispatcher's notification log, in the alert state file.

Every notification is committed here before any delivery attempt, so nothing is lost
when netmon stops or a server is down. A row is marked delivered in its own commit right
after the server accepted it. The one window left is at-least-once: if the process dies
after the server accepted a message but before that commit, the row is sent again after
the restart (emails carry the same Message-ID, so mail clients show one message).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from alerts.db import StateStore, as_store, transaction
from alerts.model import Alert, Notification

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS notify_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        receiver TEXT NOT NULL, integration TEXT NOT NULL, group_key TEXT NOT NULL,
        kind TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '', delivered_at REAL)""",
    "CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (delivered_at, next_attempt_at)",
    # One row per active notification group: what was last told to its receiver.
    """CREATE TABLE IF NOT EXISTS notify_groups (
        group_key TEXT PRIMARY KEY, receiver TEXT NOT NULL, group_labels TEXT NOT NULL,
        first_seen_at REAL NOT NULL, last_sent_at REAL, sent TEXT NOT NULL DEFAULT '{}',
        thread_id TEXT NOT NULL DEFAULT '')""",
    # Alert instances whose flapping notice went out (one per episode).
    "CREATE TABLE IF NOT EXISTS notify_flapping (fingerprint TEXT PRIMARY KEY, since REAL NOT NULL)",
    # Per Alertmanager url: when alerts were last posted and which were firing.
    """CREATE TABLE IF NOT EXISTS notify_alertmanager (
        url TEXT PRIMARY KEY, last_sent_at REAL NOT NULL, firing TEXT NOT NULL)""",
)

#: Delivered rows are kept this long (for inspection), then deleted.
KEEP_DELIVERED_SECONDS = 7 * 86400.0


@dataclass(slots=True)
class OutboxRow:
    """One stored notification for one integration of one receiver."""

    notification: Notification
    integration: str
    #: Integration-specific extras: group_labels, message_id, thread_id, items (Alertmanager).
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class GroupState:
    group_key: str
    receiver: str
    group_labels: dict[str, str]
    first_seen_at: float
    last_sent_at: float | None
    #: fingerprint -> the alert as last notified (``Alert.to_json``).
    sent: dict[str, dict[str, Any]]
    thread_id: str


class Outbox:
    """Small typed access to the notifier's tables (the caller owns the connection).

    Writers wrap a batch of calls in ``outbox.store.write``; reads called on their own
    go through ``store.read``, so a faulty state file is handled by the store."""

    def __init__(self, conn: sqlite3.Connection | StateStore) -> None:
        self.store = as_store(conn)
        self.store.ensure_schema("notify", 1, SCHEMA)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn

    # --- outbox rows ---
    def add(self, row: OutboxRow) -> int:
        """Store a notification (inside the caller's transaction when there is one)."""
        n = row.notification
        payload = {**row.data, "alerts": [a.to_json() for a in n.alerts]}
        cur = self.conn.execute(
            "INSERT INTO notify_outbox (receiver, integration, group_key, kind, payload, created_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (n.receiver, row.integration, n.group_key, n.kind, json.dumps(payload), n.created_at,
             n.created_at),
        )
        n.id = int(cur.lastrowid or 0)
        return n.id

    def add_alertmanager(self, url: str, items: dict[str, dict[str, Any]], now: float,
                         busy: set[int]) -> None:
        """Queue a post of ``items`` (fingerprint -> body item) to ``url``; when an earlier
        post is still undelivered (and not in flight), merge into it: newer state wins and
        resolved items not superseded are kept, so an outage queues one row, not hundreds."""
        row = self.conn.execute(
            "SELECT id, payload FROM notify_outbox WHERE receiver = ? AND integration = "
            "'alertmanager' AND delivered_at IS NULL ORDER BY id DESC LIMIT 1", (url,),
        ).fetchone()
        if row is not None and row["id"] not in busy:
            merged = {**json.loads(row["payload"])["items"], **items}
            self.conn.execute("UPDATE notify_outbox SET payload = ? WHERE id = ?",
                              (json.dumps({"items": merged, "alerts": []}), row["id"]))
            return
        self.conn.execute(
            "INSERT INTO notify_outbox (receiver, integration, group_key, kind, payload, created_at,"
            " next_attempt_at) VALUES (?, 'alertmanager', '', 'alerts', ?, ?, ?)",
            (url, json.dumps({"items": items, "alerts": []}), now, now),
        )

    def due(self, now: float) -> list[OutboxRow]:
        """Undelivered rows, oldest first (callers keep per-destination order)."""
        rows = self.store.read(lambda conn: conn.execute(
            "SELECT * FROM notify_outbox WHERE delivered_at IS NULL ORDER BY id").fetchall())
        out = []
        for r in rows:
            payload = json.loads(r["payload"])
            alerts = [Alert.from_json(a) for a in payload.pop("alerts")]
            n = Notification(
                receiver=r["receiver"], group_key=r["group_key"], kind=r["kind"], alerts=alerts,
                created_at=r["created_at"], id=r["id"], attempts=r["attempts"],
                next_attempt_at=r["next_attempt_at"], last_error=r["last_error"],
            )
            out.append(OutboxRow(n, r["integration"], payload))
        return out

    def mark_delivered(self, row_id: int, now: float) -> None:
        self.store.write(lambda conn: conn.execute(
            "UPDATE notify_outbox SET delivered_at = ?, last_error = '' WHERE id = ?",
            (now, row_id)))

    def mark_failed(self, row_id: int, error: str, next_attempt_at: float) -> None:
        self.store.write(lambda conn: conn.execute(
            "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
            " WHERE id = ?", (error, next_attempt_at, row_id)))

    def mark_dropped(self, row_id: int, error: str, now: float) -> None:
        """Give up on a row (its destination is gone): one failed attempt, then done."""
        self.store.write(lambda conn: conn.execute(
            "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?, delivered_at = ?"
            " WHERE id = ?", (error, now, row_id)))

    def pending_counts(self) -> dict[tuple[str, str], int]:
        rows = self.store.read(lambda conn: conn.execute(
            "SELECT receiver, integration, COUNT(*) FROM notify_outbox WHERE delivered_at IS NULL"
            " GROUP BY receiver, integration").fetchall())
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def prune(self, now: float) -> None:
        self.store.write(lambda conn: conn.execute(
            "DELETE FROM notify_outbox WHERE delivered_at < ?", (now - KEEP_DELIVERED_SECONDS,)))

    # --- notification log (groups, flapping, Alertmanager) ---
    def groups(self) -> dict[str, GroupState]:
        return {
            r["group_key"]: GroupState(
                r["group_key"], r["receiver"], json.loads(r["group_labels"]), r["first_seen_at"],
                r["last_sent_at"], json.loads(r["sent"]), r["thread_id"])
            for r in self.conn.execute("SELECT * FROM notify_groups")
        }

    def save_group(self, g: GroupState) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO notify_groups VALUES (?, ?, ?, ?, ?, ?, ?)",
            (g.group_key, g.receiver, json.dumps(g.group_labels), g.first_seen_at, g.last_sent_at,
             json.dumps(g.sent), g.thread_id))

    def delete_group(self, key: str) -> None:
        self.conn.execute("DELETE FROM notify_groups WHERE group_key = ?", (key,))

    def flapping(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT fingerprint FROM notify_flapping")}

    def set_flapping(self, add: dict[str, float], remove: set[str]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO notify_flapping VALUES (?, ?)", add.items())
        self.conn.executemany("DELETE FROM notify_flapping WHERE fingerprint = ?",
                              [(fp,) for fp in remove])

    def alertmanager_state(self, url: str) -> tuple[float, dict[str, dict[str, Any]]] | None:
        r = self.conn.execute("SELECT last_sent_at, firing FROM notify_alertmanager WHERE url = ?",
                              (url,)).fetchone()
        return None if r is None else (r[0], json.loads(r[1]))

    def save_alertmanager_state(self, url: str, now: float, firing: dict[str, dict[str, Any]]) -> None:
        self.conn.execute("INSERT OR REPLACE INTO notify_alertmanager VALUES (?, ?, ?)",
                          (url, now, json.dumps(firing)))


__all__ = ["GroupState", "Outbox", "OutboxRow", "transaction"]
