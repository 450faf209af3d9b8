"""Storage faults of the alert state file (issue 16 item 2), on real files and real file
systems: a small tmpfs mounted here (full disk, read-only), garbage, truncation, a WAL
from another database, a lock held by another process, the file deleted while running.

At start-up ``netmon run`` must exit with one line saying what is wrong and what to do,
never a traceback. While running, the alert service keeps alerting in memory
(notifications still reach a real webhook receiver), logs the fault once, shows it on
``netmon_state_store_ok`` / ``netmon_state_store_faults_total``, and once the fault is
cleared writes everything to the file again, so a restarted netmon loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from alerts.db import open_db
from alerts.model import Observation
from alerts.service import AlertService
from alerts.settings import AlertsSettings
from monitor.demo.simlab import free_tcp_port
from tests.conftest import need_root
from tests.ha_lab import NETMON

T0 = 1_800_000_000.0


# --- file systems ----------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on a fresh directory (root only); unmounted after."""
    need_root()
    if shutil.which("mount") is None:
        pytest.fail("mount(8) is missing")
    where = Path(tempfile.mkdtemp(prefix="netmon-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                   check=True, capture_output=True, timeout=30)
    try:
        yield where
    finally:
        for _ in range(3):  # a bind mount on top first, then the tmpfs
            if subprocess.run(["umount", str(where)], capture_output=True, timeout=30,
                              check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30,
                               check=False)
            if not os.path.ismount(where):
                break
        shutil.rmtree(where, ignore_errors=True)


def fill(directory: Path) -> Path:
    """Write a file until the disk is full (bounded by the tmpfs size); returns it."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as f:
        for _ in range(4096):  # 256 MiB at most; a test tmpfs is 1-2 MiB
            try:
                f.write(chunk)
                f.flush()
            except OSError:
                break
        with contextlib.suppress(OSError):
            os.fsync(f.fileno())
    # Top up the last partial block byte-wise (tmpfs counts pages).
    with contextlib.suppress(OSError), filler.open("ab") as f:
        for _ in range(4096):
            f.write(b"\0")
            f.flush()
    assert os.statvfs(directory).f_bavail == 0, "the tmpfs is not full"
    return filler


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True,
                   capture_output=True, timeout=30)


@contextlib.contextmanager
def read_only_bind(directory: Path) -> Iterator[None]:
    """``directory`` read-only for new opens (a read-only bind mount on itself)."""
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True,
                   capture_output=True, timeout=30)
    try:
        remount(directory, "bind,ro")
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True, capture_output=True, timeout=30)


class Locker:
    """Another process holding ``BEGIN EXCLUSIVE`` on a database until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        code = ("import sqlite3, sys\n"
                f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
                "c.execute('BEGIN EXCLUSIVE')\n"
                "print('locked', flush=True)\n"
                "sys.stdin.readline()\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)


def make_state(path: Path, alerts: int = 0) -> None:
    """A real netmon state file: created by netmon's own alert service."""
    svc = AlertService(AlertsSettings.model_validate({"state_file": str(path)}),
                       base_dir=path.parent, schedules={}, clock=lambda: T0)
    for i in range(alerts):
        svc.engine.observe(f"dev-{i}", [down(f"dev-{i}")], T0)
    svc.tick(T0)
    svc.store.close()


def stored_alerts(path: Path) -> set[str]:
    """Targets of the alerts in the file, read as ``netmon alerts list`` would."""
    conn = open_db(path)
    try:
        return {r[0] for r in conn.execute("SELECT target FROM alerts")}
    finally:
        conn.close()


def stored_outbox(path: Path) -> dict[str, bool]:
    """group key -> delivered, for every outbox row in the file."""
    conn = open_db(path)
    try:
        return {r[0]: r[1] is not None
                for r in conn.execute("SELECT group_key, delivered_at FROM notify_outbox")}
    finally:
        conn.close()


# --- start-up: `netmon run` says what is wrong -------------------------------------------


def netmon_config(state_file: Path) -> str:
    return yaml.safe_dump({
        "defaults": {"interval": "5s", "tcp": {"timeout": "1s"}},
        "groups": [{"name": "servers", "role": "server", "probes": ["tcp"], "tcp_ports": [1],
                    "targets": [{"name": "intranet", "address": "127.0.0.1"}]}],
        "alerts": {"state_file": str(state_file)},
    })


def run_netmon(workdir: Path, state_file: Path, timeout: float = 30) -> tuple[int | None, str]:
    """``netmon run``; (exit code or None if it kept running, its output)."""
    config = workdir / "netmon.yml"
    config.write_text(netmon_config(state_file))
    proc = subprocess.Popen([str(NETMON), "run", "-c", str(config), "--listen",
                             f"127.0.0.1:{free_tcp_port()}"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=workdir)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
        return None, out


def assert_refused(code: int | None, out: str, *words: str) -> None:
    assert code == 1, f"netmon run should exit 1, got {code}:\n{out}"
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.startswith("netmon: ")]
    assert len(lines) == 1, f"expected one 'netmon: ...' line:\n{out}"
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


def test_startup_on_a_sound_file_runs(tmp_path: Path) -> None:
    """The control: the same command with a good state file keeps running."""
    make_state(tmp_path / "netmon-alerts.db", alerts=2)
    code, out = run_netmon(tmp_path, tmp_path / "netmon-alerts.db", timeout=6)
    assert code is None, out
    assert "Traceback" not in out, out


def test_startup_disk_full() -> None:
    with tmpfs("1m") as disk:
        state = disk / "netmon-alerts.db"
        make_state(state, alerts=3)
        fill(disk)
        code, out = run_netmon(Path(tempfile.mkdtemp()), state)
        assert_refused(code, out, str(state), "the disk is full", f"free space on {disk}")


def test_startup_read_only_file_system() -> None:
    with tmpfs("1m") as disk:
        state = disk / "netmon-alerts.db"
        make_state(state, alerts=3)
        remount(disk, "ro")
        code, out = run_netmon(Path(tempfile.mkdtemp()), state)
        assert_refused(code, out, str(state), "the file is read-only",
                       f"{disk} is mounted read-only", "remount")


def test_startup_read_only_directory_without_the_file() -> None:
    """A new state file in a directory netmon may not write (read-only bind mount)."""
    with tmpfs("1m") as disk:
        (disk / "state").mkdir()
        with read_only_bind(disk / "state"):
            state = disk / "state" / "netmon-alerts.db"
            code, out = run_netmon(Path(tempfile.mkdtemp()), state)
            assert_refused(code, out, str(state), "the file is read-only")


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not SQLite\n" * 300)


def _truncated(path: Path) -> None:
    make_state(path, alerts=60)
    with path.open("r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _foreign_wal(path: Path) -> None:
    """A WAL left by another database copied next to netmon's file: SQLite replays it,
    and what results is not netmon's."""
    make_state(path, alerts=5)
    other = path.with_name("other.db")
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE grades (pupil TEXT, mark INTEGER)")
    conn.executemany("INSERT INTO grades VALUES (?, ?)", [(f"p{i}", i) for i in range(300)])
    shutil.copy(f"{other}-wal", f"{path}-wal")
    conn.close()


@pytest.mark.parametrize("damage", [_garbage, _truncated, _foreign_wal],
                         ids=["garbage", "truncated", "foreign-wal"])
def test_startup_corrupt(tmp_path: Path, damage: Any) -> None:
    state = tmp_path / "netmon-alerts.db"
    damage(state)
    code, out = run_netmon(tmp_path, state)
    assert_refused(code, out, str(state), "not a netmon state database (corrupt?)",
                   "move it aside; netmon will start with empty alert state")
    # ... and it does:
    state.rename(tmp_path / "moved-aside.db")
    for suffix in ("-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    code, out = run_netmon(tmp_path, state, timeout=6)
    assert code is None, out


def test_cli_on_a_corrupt_file_says_so(tmp_path: Path) -> None:
    """``netmon alerts list`` and ``netmon silence add`` read the same file."""
    state = tmp_path / "netmon-alerts.db"
    _garbage(state)
    (tmp_path / "netmon.yml").write_text(netmon_config(state))
    for args in (["alerts", "list"], ["silence", "add", "-m", "target=intranet", "--duration",
                                      "1h", "--author", "sam", "--comment", "reimaging"]):
        proc = subprocess.run([str(NETMON), *args, "-c", str(tmp_path / "netmon.yml")],
                              capture_output=True, text=True, timeout=60, check=False)
        assert_refused(proc.returncode, proc.stdout + proc.stderr, str(state),
                       "not a netmon state database (corrupt?)", "move it aside")


def test_startup_locked_by_another_process(tmp_path: Path) -> None:
    state = tmp_path / "netmon-alerts.db"
    make_state(state, alerts=1)
    locker = Locker(state)
    try:
        code, out = run_netmon(tmp_path, state)
    finally:
        locker.release()
    assert_refused(code, out, str(state), "locked by another process",
                   "is another netmon running?", f"pid {locker.proc.pid}")


# --- while running: the alert service in memory, then back on the file ----------------


@dataclass
class Hook:
    """A webhook receiver on 127.0.0.1 keeping every body; ``status`` answers 200 or not."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200

    def targets(self) -> list[str]:
        return [str(b["groupLabels"]["target"]) for b in self.bodies]


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    port = free_tcp_port()
    rec = Hook(f"http://127.0.0.1:{port}/hook")

    async def handle(request: web.Request) -> web.Response:
        if rec.status == 200:
            rec.bodies.append(await request.json())
        return web.Response(status=rec.status)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield rec
    await runner.cleanup()


def down(target: str) -> Observation:
    return Observation(rule="device_down", target=target,
                       labels={"alertname": "device_down", "severity": "critical",
                               "target": target},
                       active=True, value=1.0, summary=f"{target} is down", reachability=True)


class Lab:
    """One alert service on ``path`` sending to ``hook``, driven by a fake clock."""

    def __init__(self, path: Path, hook: Hook) -> None:
        self.path, self.hook, self.t = path, hook, T0
        settings = AlertsSettings.model_validate({
            "state_file": str(path),
            "receivers": [{"name": "it", "webhook": {"url": hook.url, "send_resolved": False,
                                                     "timeout": "2s"}}],
            "route": {"receiver": "it", "group_by": ["target"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "retry": {"initial": "1s", "max": "1s"},
        })
        self.svc = AlertService(settings, base_dir=path.parent, schedules={},
                                clock=lambda: self.t)
        self.svc.store.retry_seconds = 0  # try the file again at every tick

    async def step(self, *down_targets: str) -> None:
        """One second: the targets' devices are down, tick, deliver."""
        self.t += 1
        for target in down_targets:
            self.svc.engine.observe(target, [down(target)], self.t)
        self.svc.tick(self.t)
        await self.svc.notifier.deliver_due(self.t)

    def metric(self, name: str, **labels: str) -> float:
        return next(s.value for s in self.svc.samples()
                    if s.metric == name and labels.items() <= dict(s.labels).items())

    async def close(self) -> None:
        await self.svc.notifier.stop()
        self.svc.store.close()


def faults_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.ERROR and "alert state file unusable" in r.getMessage()]


async def _fault_and_recover(lab: Lab, caplog: pytest.LogCaptureFixture, reason: str,
                             words: tuple[str, ...], clear: Any) -> None:
    """Alerts during the fault go out; one log line; metric 0; after ``clear()`` the
    file holds everything and a restarted service sends nothing twice."""
    assert not lab.svc.store.ok and lab.svc.store.reason == reason, lab.svc.store.reason
    for i in range(3):
        await lab.step(f"during-{i}")
    assert {"during-0", "during-1", "during-2"} <= set(lab.hook.targets())
    logged = faults_logged(caplog)
    assert len(logged) == 1, logged
    for word in words:
        assert word in logged[0], f"{word!r} not in {logged[0]!r}"
    assert lab.metric("netmon_state_store_ok") == 0
    assert lab.metric("netmon_state_store_faults_total", reason=reason) == 1
    # A reminder a minute later (one, however many writes), not a line per write.
    later = time.monotonic() + 61
    lab.svc.store.monotonic = lambda: later
    for _ in range(3):
        await lab.step("reminded")
    reminders = [r.getMessage() for r in caplog.records if "still kept in memory" in r.getMessage()]
    assert len(reminders) == 1 and words[0] in reminders[0], reminders
    assert len(faults_logged(caplog)) == 1
    # The receiver goes down too: these wait in the in-memory outbox.
    lab.hook.status = 503
    await lab.step("queued-0", "queued-1")
    clear()
    await lab.step()
    assert lab.svc.store.ok, lab.svc.store.problem
    assert lab.metric("netmon_state_store_ok") == 1
    assert {"before", "during-0", "during-2", "queued-1"} <= stored_alerts(lab.path)
    outbox = {key.rsplit('"', 2)[-2]: done for key, done in stored_outbox(lab.path).items()}
    assert outbox["during-1"] is True and outbox["queued-0"] is False, outbox
    # A crash now (no clean stop) and a new netmon on the file: the queued notices go
    # out, nothing already delivered is sent again.
    await lab.svc.notifier.stop()
    sent = list(lab.hook.targets())
    lab.hook.status = 200
    again = Lab(lab.path, lab.hook)
    again.t = lab.t
    await again.step()
    try:
        assert sorted(lab.hook.targets()[len(sent):]) == ["queued-0", "queued-1"]
        assert len(lab.hook.targets()) == len(set(lab.hook.targets()))
    finally:
        await again.close()
        lab.svc.store.close()


async def test_other_processes_see_every_write(tmp_path: Path, hook: Hook) -> None:
    """The store's own checks (every tick) must not disturb SQLite's locks: another
    process (``netmon alerts list``) sees each new alert while the service runs."""
    lab = Lab(tmp_path / "netmon-alerts.db", hook)
    code = ("import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1])\n"
            "print(' '.join(sorted(r[0] for r in c.execute('SELECT target FROM alerts'))))\n")
    try:
        for i in range(3):
            await lab.step(f"dev-{i}")
            await lab.step()
            proc = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", code, str(lab.path)], check=True,
                capture_output=True, text=True, timeout=30)
            seen = proc.stdout.split()
            assert seen == [f"dev-{j}" for j in range(i + 1)], seen
    finally:
        await lab.close()


async def test_running_disk_full(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    with tmpfs("1m") as disk:
        lab = Lab(disk / "netmon-alerts.db", hook)
        await lab.step("before")
        filler = fill(disk)
        # New alerts need new pages; the first write that finds no space switches over.
        for i in range(40):
            await lab.step(*(f"more-{i}-{j}" for j in range(20)))
            if not lab.svc.store.ok:
                break
        await _fault_and_recover(lab, caplog, "disk_full",
                                 ("the disk is full", f"free space on {disk}",
                                  "alerting continues in memory"), filler.unlink)


async def test_running_locked(tmp_path: Path, hook: Hook,
                              caplog: pytest.LogCaptureFixture) -> None:
    lab = Lab(tmp_path / "netmon-alerts.db", hook)
    await lab.step("before")
    locker = Locker(lab.path)
    try:
        await lab.step("first-under-lock")  # waits out the busy timeout once, then memory
        await _fault_and_recover(lab, caplog, "locked",
                                 ("locked by another process", f"pid {locker.proc.pid}"),
                                 locker.release)
    finally:
        locker.release()


async def test_running_deleted_is_recreated(tmp_path: Path, hook: Hook,
                                            caplog: pytest.LogCaptureFixture) -> None:
    lab = Lab(tmp_path / "netmon-alerts.db", hook)
    await lab.step("before")
    silence = lab.svc.engine.add_silence(["target=quiet"], ends_at=T0 + 3600, author="sam",
                                         comment="reimaging")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{lab.path}{suffix}").unlink()
    await lab.step("after")
    assert lab.path.exists() and lab.svc.store.ok
    assert lab.metric("netmon_state_store_faults_total", reason="deleted") == 1
    assert {"before", "after"} <= stored_alerts(lab.path)
    conn = open_db(lab.path)
    assert [r[0] for r in conn.execute("SELECT id FROM silences")] == [silence.id]
    conn.close()
    assert hook.targets() == ["before", "after"]
    said = [r.getMessage() for r in caplog.records if "was deleted" in r.getMessage()]
    assert len(said) == 1 and "created it again" in said[0], said
    await lab.close()


async def test_running_read_only_after_deletion(hook: Hook,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Open files stay writable when a file system turns read-only, so a running netmon
    meets "read-only" when it must open the file again: here after a deletion, in a
    directory that has become read-only."""
    with tmpfs("1m") as disk:
        (disk / "state").mkdir()
        lab = Lab(disk / "state" / "netmon-alerts.db", hook)
        await lab.step("before")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{lab.path}{suffix}").unlink()
        with contextlib.ExitStack() as bind:
            bind.enter_context(read_only_bind(disk / "state"))
            await lab.step()
            await _fault_and_recover(lab, caplog, "read_only",
                                     ("the file is read-only", "mounted read-only",
                                      "deleted while running"), bind.close)


async def test_running_corrupted_file(tmp_path: Path, hook: Hook,
                                      caplog: pytest.LogCaptureFixture) -> None:
    """Garbage written over the open file: the engine's memory is written to a new file
    once the bad one is moved aside."""
    lab = Lab(tmp_path / "netmon-alerts.db", hook)
    await lab.step("before")
    lab.svc.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = lab.path.stat().st_size
    with lab.path.open("r+b") as f:
        f.write(os.urandom(size))
    await lab.step("after")
    assert lab.svc.store.reason == "corrupt", lab.svc.store.reason
    assert hook.targets()[-1] == "after"
    logged = faults_logged(caplog)
    assert len(logged) == 1 and "move it aside" in logged[0], logged
    await lab.step()
    assert not lab.svc.store.ok  # still the bad file: nothing overwritten
    lab.path.rename(tmp_path / "bad.db")
    for suffix in ("-wal", "-shm"):
        Path(f"{lab.path}{suffix}").unlink(missing_ok=True)
    await lab.step("later")
    assert lab.svc.store.ok
    assert {"before", "after", "later"} <= stored_alerts(lab.path)
    await lab.close()
