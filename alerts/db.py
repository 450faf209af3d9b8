"""The alert state file: one SQLite database (standard library) shared by the engine
(alert states, silences, flap history) and the notifiers (outbox, notification log).

Each part owns its tables and creates them with :meth:`StateStore.ensure_schema`. Writes
are small and happen on the asyncio loop; WAL mode keeps readers (``netmon alerts list``
in another process) from blocking the daemon. Every write commits before the caller acts
on it, so a crash loses at most the change in progress.

The daemon reaches the file through a :class:`StateStore`, which keeps alerting going
when the file cannot be used (disk full, read-only, corrupt, locked by another process,
deleted while running):

- at start-up, :meth:`StateStore.open` checks the file and raises :class:`StateStoreError`
  whose text says what is wrong and what to do;
- while running, the first failing read or write switches the store to an in-memory copy
  of the last committed state: the engine and the notifier carry on against it (so
  notifications still go out), the fault is logged once, then every
  :data:`REMIND_SECONDS`, and ``netmon_state_store_ok`` is 0. Every
  :data:`RETRY_SECONDS` the store tries the file again; once it works, the in-memory
  state (alerts, flips, silences, outbox, notification log) is written to it whole, and
  nothing queued meanwhile is lost.

Faults are classified by SQLite's error code (and errno) into :data:`REASONS`.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from probes.errors import NetmonError
from probes.result import Sample

log = logging.getLogger("netmon.alerts.store")

T = TypeVar("T")

#: Why the state file cannot be used; the ``reason`` of netmon_state_store_faults_total.
REASONS = ("disk_full", "read_only", "corrupt", "locked", "deleted", "io_error")
#: Seconds between attempts to use the file again while it is faulty, doubled after each
#: failed attempt up to :data:`RETRY_MAX_SECONDS` (an attempt copies the whole state:
#: ~150 ms for 10,000 alerts).
RETRY_SECONDS = 2.0
RETRY_MAX_SECONDS = 30.0
#: Seconds between reminders in the log while the file stays faulty.
REMIND_SECONDS = 60.0
#: How long a write waits for another process's lock before the file counts as locked.
BUSY_SECONDS = 2.0


def open_db(path: str | Path, *, busy_seconds: float = 10.0) -> sqlite3.Connection:
    """Open (creating it and its directory) the state file; ``":memory:"`` for tests."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=busy_seconds, isolation_level=None,
                           check_same_thread=False)  # fmt: skip
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
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
    """``with transaction(conn):`` BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error).

    Inside an open transaction it adds nothing: the outer one commits or rolls back."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._outer = False

    def __enter__(self) -> sqlite3.Connection:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
            self._outer = True
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._outer:
            return
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:
                _rollback(self.conn)  # a failed COMMIT (SQLITE_BUSY) leaves it open
                raise
        _rollback(self.conn)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:  # SQLite may have rolled back already (disk full, I/O error)
            pass


# --- what is wrong, in words -----------------------------------------------------------


class StateStoreError(NetmonError):
    """The alert state file cannot be used; the text is the whole message for the user."""

    def __init__(self, path: Path, reason: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


def classify(exc: BaseException, path: Path | None = None) -> str | None:
    """The reason (one of :data:`REASONS`) a storage error means, or None for a bug
    (a constraint, an SQL mistake). Vague codes (I/O error, cannot open) are refined
    by looking at the file system of ``path``."""
    reason: str | None = None
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc).lower()
        if name.startswith("SQLITE_FULL") or "disk is full" in text:
            reason = "disk_full"
        elif name.startswith("SQLITE_READONLY") or "readonly" in text:
            reason = "read_only"
        elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or (
            "malformed" in text or "not a database" in text
        ):
            reason = "corrupt"
        elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
            reason = "locked"
        elif name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PERM")) or (
            "i/o error" in text or "unable to open" in text
        ):
            reason = "io_error"
    elif isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = "disk_full"
        elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            reason = "read_only"
        else:
            reason = "io_error"
    if reason in ("io_error", "read_only") and path is not None:
        fs = _filesystem(path)
        if fs is not None and fs.f_flag & os.ST_RDONLY:
            reason = "read_only"
        elif fs is not None and fs.f_bavail == 0:
            reason = "disk_full"
    return reason


def describe(path: Path, reason: str, detail: str = "") -> tuple[str, str]:
    """(what is wrong, what to do) for the state file ``path``, in plain words."""
    where = _existing_dir(path)
    mount = _mount_point(where)
    extra = f" ({detail})" if detail else ""
    if reason == "disk_full":
        fs = _filesystem(path)
        left = f"{_bytes(fs.f_bavail * fs.f_frsize)} left" if fs is not None else "no space left"
        return (f"{path}: the disk is full ({left} on {mount}){extra}",
                f"free space on {where}")
    if reason == "read_only":
        fs = _filesystem(path)
        if fs is not None and fs.f_flag & os.ST_RDONLY:
            why, fix = f"{mount} is mounted read-only", f"remount {mount} read-write"
        else:
            why = f"netmon (uid {os.geteuid()}) may not write it or its directory {where}"
            fix = f"give netmon write access to {path} and {where} (chown, chmod, chattr -i)"
        return (f"{path}: the file is read-only: {why}{extra}",
                f"{fix}, or set alerts.state_file to a writable place")
    if reason == "corrupt":
        return (f"{path}: the file is not a netmon state database (corrupt?){extra}",
                "move it aside; netmon will start with empty alert state")
    if reason == "locked":
        holders = ", ".join(f"pid {pid} ({cmd})" if cmd else f"pid {pid}"
                            for pid, cmd in lock_holders(path)) or "pid unknown"
        problem = f"{path}: locked by another process (is another netmon running? {holders})"
        return (problem + extra,
                "stop the other process, or give each netmon its own --state-file")
    if reason == "deleted":
        return (f"{path}: the file was deleted or replaced while netmon was running",
                f"let netmon create it again: {where} must exist and be writable")
    return (f"{path}: cannot read or write the file{extra}",
            f"check the disk holding {where} (dmesg, fsck)")


def lock_holders(path: Path) -> list[tuple[int, str]]:
    """Other processes holding a POSIX lock on the file or its ``-shm`` (``/proc/locks``),
    with their command lines."""
    inodes = set()
    for p in (Path(path), Path(f"{path}-shm"), Path(f"{path}-wal")):
        try:
            st = p.stat()
        except OSError:
            continue
        inodes.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    pids: list[int] = []
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        try:
            pid = int(fields[4])
            major, minor, ino = fields[5].split(":")
            key = (int(major, 16), int(minor, 16), int(ino))
        except (IndexError, ValueError):
            continue
        if key in inodes and pid != os.getpid() and pid not in pids:
            pids.append(pid)
    out = []
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            cmd = " ".join(raw.decode(errors="replace").replace("\0", " ").split())[:100]
        except OSError:
            cmd = ""
        out.append((pid, cmd))
    return out


def _existing_dir(path: Path) -> Path:
    d = Path(path).absolute().parent
    while not d.exists() and d != d.parent:
        d = d.parent
    return d


def _mount_point(d: Path) -> Path:
    while not os.path.ismount(d) and d != d.parent:
        d = d.parent
    return d


def _filesystem(path: Path) -> os.statvfs_result | None:
    try:
        return os.statvfs(_existing_dir(path))
    except OSError:
        return None


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


# --- the store -------------------------------------------------------------------------


class StateStore:
    """The state file behind a connection that keeps working (see the module docstring).

    ``conn`` is the file's connection while it is healthy and an in-memory copy while
    it is not; callers go through :meth:`read` and :meth:`write` so a storage error is
    handled here, once. Built on a plain connection (``":memory:"`` in tests) it never
    faults and only passes calls through."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None, *,
                 retry_seconds: float = RETRY_SECONDS, remind_seconds: float = REMIND_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.path = path
        self.retry_seconds = retry_seconds
        self.remind_seconds = remind_seconds
        self.monotonic = monotonic
        self._file: sqlite3.Connection | None = conn
        self._mem: sqlite3.Connection | None = None
        self._identity = _identity(path)
        #: The file kept open to read its header: closing any descriptor of a database
        #: file drops the process's POSIX locks on it, SQLite's included, so it is
        #: opened once and closed only after SQLite's connection.
        self._header_fd = _open_fd(path)
        self._schemas: dict[str, tuple[int, tuple[str, ...]]] = {}
        self._depth = 0
        #: The current fault (one of REASONS) and its words, None while healthy.
        self.reason: str | None = None
        self.problem = ""
        self.fix = ""
        self.faults: Counter[str] = Counter()
        #: Raised each time the in-memory copy had to start empty (the file was
        #: unreadable): owners of in-memory state write all of it again.
        self.generation = 0
        self._since = 0.0
        self._next_try = 0.0
        self._tries = 0
        self._next_reminder = 0.0

    @classmethod
    def open(cls, path: str | Path, **kwargs: float) -> StateStore:
        """Open and check the state file (readable, a database, writable, not locked);
        raises :class:`StateStoreError` saying what is wrong and what to do."""
        path = Path(path)
        conn: sqlite3.Connection | None = None
        try:
            conn = open_db(path, busy_seconds=BUSY_SECONDS)
            _check_database(conn)
            _check_writable(conn)
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            raise error_for(path, exc) from None
        return cls(conn, path, **kwargs)  # type: ignore[arg-type]

    @property
    def conn(self) -> sqlite3.Connection:
        conn = self._mem if self._mem is not None else self._file
        assert conn is not None
        return conn

    @property
    def ok(self) -> bool:
        return self.reason is None

    def ensure_schema(self, part: str, version: int, statements: Iterable[str]) -> None:
        """:func:`ensure_schema`, remembered so an in-memory copy can be set up too."""
        stmts = tuple(statements)
        self._schemas[part] = (version, stmts)
        self.write(lambda conn: ensure_schema(conn, part, version, stmts))

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)``; on a storage fault, again on the in-memory copy."""
        if self._depth or self._mem is not None or self.path is None:
            return fn(self.conn)
        try:
            return fn(self.conn)
        except (sqlite3.Error, OSError) as exc:
            self._fault(exc)
        return fn(self.conn)

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` in one transaction; if the file fails (the transaction rolled
        back), again on the in-memory copy of the last committed state. Nested calls run
        inside the outer transaction."""
        if self._depth:
            return fn(self.conn)
        if self._mem is None and self.path is not None:
            try:
                return self._in_transaction(fn)
            except (sqlite3.Error, OSError) as exc:
                self._fault(exc)
        return self._in_transaction(fn)

    def _in_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self.conn
        self._depth += 1
        try:
            with transaction(conn):
                return fn(conn)
        finally:
            self._depth -= 1

    def check(self) -> None:
        """Call every second or so: notices a deleted or replaced file; while faulty,
        tries the file again every ``retry_seconds`` and reminds every ``remind_seconds``."""
        if self.path is None:
            return
        now = self.monotonic()
        if self._mem is None:
            if _identity(self.path) != self._identity:
                self._enter("deleted", "", quiet=True)  # logged by _heal, either way
                self._heal()
            elif not _has_sqlite_header(self._header_fd):
                # Overwritten under netmon: its cache and WAL would hide this for long.
                self._enter("corrupt", "its header is no longer SQLite's")
            return
        if now >= self._next_try:
            self._next_try = now + min(self.retry_seconds * 2**self._tries, RETRY_MAX_SECONDS)
            self._tries += 1
            if self._heal():
                return
        if now >= self._next_reminder:
            self._next_reminder = now + self.remind_seconds
            log.error("alert state still kept in memory only, for %.0f s now: %s; to fix: %s",
                      now - self._since, self.problem, self.fix)

    def samples(self) -> list[Sample]:
        """``netmon_state_store_ok`` and ``netmon_state_store_faults_total{reason}``."""
        out = [Sample.of("netmon_state_store_ok", 1.0 if self.ok else 0.0)]
        out += [Sample.of("netmon_state_store_faults_total", self.faults.get(r, 0), reason=r)
                for r in REASONS]
        return out

    def close(self) -> None:
        """Last attempt to write the in-memory state to the file, then close."""
        if self._mem is not None and self.path is not None and not self._heal():
            log.error("alert state NOT saved, the file is still unusable: %s; to fix: %s "
                      "(netmon starts from what the file held before the fault)",
                      self.problem, self.fix)
        for conn in (self._mem, self._file):
            if conn is not None:
                conn.close()
        self._mem = self._file = None
        self._close_fd()

    def _close_fd(self) -> None:
        if self._header_fd is not None:
            os.close(self._header_fd)
            self._header_fd = None

    # --- faults and recovery -----------------------------------------------------------

    def _fault(self, exc: BaseException) -> None:
        assert self.path is not None
        reason = classify(exc, self.path)
        if reason is None:
            raise exc  # not the file's fault: a bug, let it show
        self._enter(reason, str(exc))

    def _enter(self, reason: str, detail: str, *, quiet: bool = False) -> None:
        """Switch to an in-memory copy of the file's last committed state."""
        assert self.path is not None
        mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        mem.row_factory = sqlite3.Row
        old, self._file = self._file, None
        copied = False
        if old is not None:
            _rollback(old)
            try:
                copy_tables(old, mem)
                copied = True
            except sqlite3.Error:
                pass
            try:
                old.close()
            except sqlite3.Error:
                pass
        self._close_fd()
        if not copied:
            mem.close()
            mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            mem.row_factory = sqlite3.Row
            for part, (version, stmts) in self._schemas.items():
                ensure_schema(mem, part, version, stmts)
            self.generation += 1
        self._mem = mem
        self._set_fault(reason, detail, copied, quiet=quiet)
        now = self.monotonic()
        self._since = now
        self._next_try = now + (0 if reason == "deleted" else self.retry_seconds)
        self._tries = 0
        self._next_reminder = now + self.remind_seconds

    def _set_fault(self, reason: str, detail: str, copied: bool = True, *,
                   quiet: bool = False) -> None:
        assert self.path is not None
        if self.reason == "deleted":
            detail = f"deleted while running, cannot be created again: {detail}"
        self.reason = reason
        self.faults[reason] += 1
        self.problem, self.fix = describe(self.path, reason, detail)
        if quiet:
            return
        kept = ("alerting continues in memory (notifications still go out) and netmon "
                "writes to the file again as soon as it can")
        if not copied:
            kept += "; the file could not be read, so what it held is rewritten from memory"
        log.error("alert state file unusable: %s; %s; to fix: %s", self.problem, kept, self.fix)

    def _heal(self) -> bool:
        """Write the in-memory state to the file (a new one if it is gone); True if done."""
        assert self.path is not None and self._mem is not None
        new: sqlite3.Connection | None = None
        try:
            new = open_db(self.path, busy_seconds=0.2)
            _check_database(new, quick=False)
            for table in ("silences", "alert_acks"):
                # Added from a shell (``netmon silence add``, ``alerts ack``) meanwhile.
                if new.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
                    rows = [tuple(r) for r in new.execute(f'SELECT * FROM "{table}"')]
                    if rows:
                        marks = ", ".join("?" * len(rows[0]))
                        with transaction(self._mem):
                            self._mem.executemany(
                                f'INSERT OR IGNORE INTO "{table}" VALUES ({marks})', rows)
            copy_tables(self._mem, new)
        except (sqlite3.Error, OSError) as exc:
            if new is not None:
                new.close()
            reason = classify(exc, self.path) or "io_error"
            if reason != self.reason:
                self._set_fault(reason, str(exc))
            return False
        was, took = self.reason, self.monotonic() - self._since
        self._mem.close()
        self._mem, self._file = None, new
        self._identity = _identity(self.path)
        self._close_fd()
        self._header_fd = _open_fd(self.path)
        self.reason, self.problem, self.fix = None, "", ""
        outbox = 0
        try:
            outbox = new.execute(
                "SELECT COUNT(*) FROM notify_outbox WHERE delivered_at IS NULL").fetchone()[0]
        except sqlite3.Error:
            pass
        if was == "deleted" and took < self.retry_seconds + 1:
            log.warning("alert state file %s was deleted or replaced while netmon was running: "
                        "created it again with netmon's in-memory state (%d notifications "
                        "waiting)", self.path, outbox)
        else:
            log.warning("alert state file %s usable again after %.0f s (%s): wrote the "
                        "in-memory state to it (%d notifications waiting)", self.path, took,
                        was, outbox)
        return True


def copy_tables(src: sqlite3.Connection, dst: sqlite3.Connection) -> None:
    """Make ``dst``'s tables those of ``src`` (schema and rows), in one transaction of
    ``dst``. Unlike sqlite3's backup(), which retries a locked database forever, this
    gives up after the connections' busy timeouts."""
    schema = src.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' ORDER BY type = 'index'").fetchall()
    tables = [name for kind, name, _ in schema if kind == "table"]
    data = {name: src.execute(f'SELECT * FROM "{name}"').fetchall() for name in tables}
    sequence = []
    if src.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        sequence = [tuple(r) for r in src.execute("SELECT name, seq FROM sqlite_sequence")]
    with transaction(dst):
        for name in tables:
            dst.execute(f'DROP TABLE IF EXISTS "{name}"')
        for _, _, sql in schema:
            dst.execute(sql)
        for name, rows in data.items():
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                dst.executemany(f'INSERT INTO "{name}" VALUES ({marks})', [tuple(r) for r in rows])
        if sequence:
            dst.execute("DELETE FROM sqlite_sequence")
            dst.executemany("INSERT INTO sqlite_sequence VALUES (?, ?)", sequence)


def error_for(path: Path, exc: BaseException) -> StateStoreError:
    """The start-up error for a storage exception (unknown ones count as I/O errors)."""
    reason = classify(exc, path) or "io_error"
    problem, fix = describe(path, reason, str(exc))
    return StateStoreError(path, reason, f"{problem}: {fix}")


def _check_database(conn: sqlite3.Connection, *, quick: bool = True) -> None:
    """Raise SQLITE_CORRUPT-like errors for a file that is not a sound database."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if tables and "schema_versions" not in tables:
        raise sqlite3.DatabaseError(
            f"not a database netmon wrote: it has tables ({', '.join(tables[:5])}) but none "
            "of netmon's")
    if quick:
        bad = [r[0] for r in conn.execute("PRAGMA quick_check(5)") if r[0] != "ok"]
        if bad:
            raise sqlite3.DatabaseError(f"database disk image is malformed: {'; '.join(bad)}")


def _check_writable(conn: sqlite3.Connection) -> None:
    """A real write (a WAL frame): read-only files, full disks and locks show here."""
    with transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_versions "
                     "(part TEXT PRIMARY KEY, version INTEGER)")
        conn.execute("CREATE TABLE IF NOT EXISTS store_owner "
                     "(id INTEGER PRIMARY KEY, pid INTEGER, started_at REAL)")
        conn.execute("INSERT OR REPLACE INTO store_owner VALUES (1, ?, ?)",
                     (os.getpid(), time.time()))


def _open_fd(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _has_sqlite_header(fd: int | None) -> bool:
    """The file starts as every SQLite database does (or is still empty)."""
    if fd is None:
        return True
    try:
        head = os.pread(fd, 16, 0)
    except OSError:
        return True  # unreadable: the next read or write says why
    return head in (b"", b"SQLite format 3\0")


def _identity(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def as_store(conn: sqlite3.Connection | StateStore) -> StateStore:
    """A store for ``conn`` (tests and tools pass plain connections)."""
    return conn if isinstance(conn, StateStore) else StateStore(conn)
