"""The running service behind ``netmon run``: inventory -> scheduled probes -> store -> web.

:class:`Monitor` owns the process-wide pieces (one :class:`ProbeContext`, one
:class:`ResultStore`, one :class:`ProbeScheduler`) and is the backend the web server
(:mod:`monitor.web.server`) talks to. :func:`run` wires it to the web server and to signals:
SIGHUP reloads the config (a bad one is logged and the old one kept; signals that come
during a reload are folded into one more), SIGTERM and SIGINT stop cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from alerts.db import StateStoreError
from alerts.engine import DEFAULT_STATE_FILE
from alerts.settings import AlertsSettings
from monitor.config import (
    ConfigFileError,
    ConfigProblem,
    InventoryTarget,
    NetmonConfig,
    _check_address,
    load_config,
    resolve_targets,
)
from monitor.scheduler import ProbeJob, ProbeScheduler, check_unique, plan_jobs
from monitor.store.history import HistoryError, HistoryStore, SilencePeriod, history_path
from monitor.store.results import ResultStore, StoredResult
from monitor.topology import PORTS as TOPOLOGY_PORTS
from monitor.topology import RECORDS as TOPOLOGY_RECORDS
from monitor.topology import Topology, effective_parents, port_samples, topology_path
from probes.context import ProbeContext
from probes.errors import ConfigError
from probes.registry import PROBES, run_probe
from probes.result import ProbeResult, Sample, Status

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiohttp import web as aioweb

    from alerts.rules import TargetInfo
    from alerts.service import AlertService

log = logging.getLogger("netmon.daemon")

#: Seconds between writes of the topology file (and one at exit).
TOPOLOGY_SAVE_EVERY = 60.0
#: Seconds past a target's longest interval that its alert rules wait, after start-up,
#: for the first result of every job (a job that never finishes must not hold them).
FIRST_RUN_SLACK = 30.0
#: Seconds between copies of the alert state file's silences into the history.
SILENCE_COPY_SECONDS = 60.0


class Monitor:
    """Config, probe context, store and scheduler of one netmon process (one shard)."""

    def __init__(
        self,
        config_path: Path,
        *,
        shard: tuple[int, int] | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.shard = shard
        #: Overrides ``alerts.state_file`` (two instances of one config, for HA).
        self.state_file = state_file
        #: The alerting pipeline (rules -> engine -> notifier); the status page and
        #: ``/api/alerts`` read it.
        self.alerts: AlertService | None = None
        #: The embedded history store (``history:``; None when disabled or unusable);
        #: the status page and the JSON API read it.
        self.history: HistoryStore | None = None
        self._silence_copier: asyncio.Task[None] | None = None
        self.store = ResultStore()
        self.ctx = ProbeContext()
        self.scheduler = ProbeScheduler(self.store, self.ctx)
        self.config: NetmonConfig | None = None
        self._targets: list[InventoryTarget] = []
        self._by_name: dict[str, InventoryTarget] = {}
        self._started_at: float | None = None
        self._ready = False
        #: The outcome of the reload that will serve the requests made since the last
        #: one started; a reload runs in ``_reloader``, never two at once.
        self._next_reload: asyncio.Future[list[str]] | None = None
        self._reloader: asyncio.Task[None] | None = None
        #: After start-up: targets whose alert rules wait for the first result of each
        #: of their jobs (store names still missing, and the monotonic time to give up).
        self._awaiting_first: dict[str, tuple[set[str], float]] = {}
        #: While a reload switches configs: targets whose alert evaluation waits for it.
        self._deferred: set[str] | None = None
        #: Reload requests (SIGHUP, ``POST /-/reload``) and their outcomes; requests
        #: minus applied minus rejected were folded into a reload already due.
        self.reload_counts: Counter[str] = Counter()
        #: Whether the last reload was applied (a rejected one keeps the old config),
        #: and when the running config was loaded: Prometheus's own reload metrics.
        self._last_reload_ok = True
        self._loaded_at = 0.0
        #: Called with each config put in place (the CLI's log filter learns its secrets).
        self.on_config: Callable[[NetmonConfig], None] | None = None
        #: Where every device is plugged in, from the switches' topology results; it
        #: gives the alerting the parents of targets whose parent is ``auto``.
        self.topology: Topology | None = None

    @property
    def allow_any_probe_target(self) -> bool:
        return bool(self.config and self.config.server.allow_any_probe_target)

    async def start(self) -> None:
        """Load the config (raises :class:`ConfigFileError`), plan the jobs, start probing."""
        cfg, targets, jobs = await self._load()
        self._install(cfg, targets, jobs)
        # Until each job of a target has a result (or an interval has passed), its
        # alert rules wait: the restored alert state must not see the probes that have
        # not run yet as recovered (a restart mid-incident would resolve and re-fire).
        first_runs: dict[str, tuple[set[str], float]] = {}
        for job in (j for j in jobs if j.awaited):
            names, wait = first_runs.get(job.target.name, (set(), 0.0))
            names.add(job.store_name)
            first_runs[job.target.name] = (names, max(wait, job.interval))
        self._awaiting_first = {
            name: (names, time.monotonic() + wait + FIRST_RUN_SLACK)
            for name, (names, wait) in first_runs.items()
            if len(names) > 1
        }
        await self._start_alerts(cfg, targets)
        await self._apply_history(cfg)
        self.store.subscribe(self._record_history)
        self.scheduler.start()
        self._started_at = time.monotonic()
        log.info("monitoring %d targets with %d probe jobs", len(targets), len(jobs))
        if self._next_reload is not None:  # asked for during start-up
            self._start_reloader()

    async def reload(self) -> list[str]:
        """Re-read the config; ``[]`` on success, else its problems (old config kept).
        Unchanged jobs keep their schedule and latest results. The file is read after
        this call: a reload already running when it comes is followed by one more."""
        return await asyncio.shield(self.request_reload())

    def request_reload(self) -> asyncio.Future[list[str]]:
        """Ask for a reload without waiting (SIGHUP); the future is its outcome.

        Reloads never overlap: requests that come while one runs are folded into a
        single next reload, so a storm of signals costs two reloads, not a queue of
        them, and the last file written wins. Before :meth:`start` is done the
        reload waits for it."""
        self.reload_counts["requested"] += 1
        if self._next_reload is None:
            self._next_reload = asyncio.get_running_loop().create_future()
        future = self._next_reload
        if self._started_at is not None:
            self._start_reloader()
        return future

    def _start_reloader(self) -> None:
        if self._reloader is None:
            loop = asyncio.get_running_loop()
            self._reloader = loop.create_task(self._reload_loop(), name="netmon-reload")

    async def _reload_loop(self) -> None:
        try:
            while (future := self._next_reload) is not None:
                self._next_reload = None
                try:
                    problems = await self._reload_once()
                except asyncio.CancelledError:
                    future.cancel()
                    raise
                except Exception as exc:  # a bug: say so once, keep the running config
                    log.exception("config not reloaded (a bug in netmon), keeping the running one")
                    problems = [f"{self.config_path}: reload failed: {exc!r}"]
                if not future.done():
                    future.set_result(problems)
        finally:
            self._reloader = None

    async def _reload_once(self) -> list[str]:
        try:
            cfg, targets, jobs = await self._load(reloading=True)
        except ConfigFileError as exc:
            problems = [str(p) for p in exc.problems]
        except (ConfigError, ValueError) as exc:
            problems = [f"{self.config_path}: {exc}"]
        else:
            await self._switch(cfg, targets, jobs)
            self.reload_counts["applied"] += 1
            self._last_reload_ok = True
            log.info(
                "reloaded: %d targets, %d probe jobs (%d reload requests, %d applied, %d rejected)",
                len(targets), len(jobs), self.reload_counts["requested"],
                self.reload_counts["applied"], self.reload_counts["rejected"],
            )  # fmt: skip
            return []
        self.reload_counts["rejected"] += 1
        self._last_reload_ok = False
        log.error("config not reloaded, keeping the running one: %s", _one_line(problems))
        return problems

    async def _switch(
        self, cfg: NetmonConfig, targets: list[InventoryTarget], jobs: list[ProbeJob]
    ) -> None:
        """Put a loaded config in place. The jobs, the targets the web shows and the
        store change in one step (no await between them); alert evaluations that come
        while the alerting is reconfigured wait and run on the new config after it."""
        deferred: set[str] = set()
        self._deferred = deferred
        try:
            old = {j.target.name for j in self.scheduler.jobs.values()}
            self._install(cfg, targets, jobs)
            for name in old - {j.target.name for j in jobs}:
                self.store.remove_target(name)
            if self.alerts is not None:
                await self.alerts.reconfigure(
                    self._alert_settings(cfg), cfg.schedules, _target_infos(targets, self.inferred_parents()),
                    external_url=cfg.server.external_url or "", grafana_url=cfg.dashboards.grafana_url or "",
                )  # fmt: skip
            await self._apply_history(cfg)
            if self.history is not None:
                self.history.forget_targets(t.name for t in targets)
        finally:
            self._deferred = None
        for name in deferred:
            if name in self._by_name:
                self._evaluate(name)

    async def _load(
        self, *, reloading: bool = False
    ) -> tuple[NetmonConfig, list[InventoryTarget], list[ProbeJob]]:
        return await asyncio.to_thread(self._read_config, reloading)

    def _read_config(
        self, reloading: bool
    ) -> tuple[NetmonConfig, list[InventoryTarget], list[ProbeJob]]:
        # In a worker thread: parsing thousands of targets must not stall probing.
        if reloading and _is_empty(self.config_path):
            # Valid YAML (no targets), but far more likely a file being written in
            # place: applying it would drop every target and its alert state.
            raise ConfigFileError([ConfigProblem(
                str(self.config_path), None, "", "the file is empty (still being written?); "
                "a config without targets needs at least `groups: []`",
            )])  # fmt: skip
        cfg = load_config(self.config_path)
        targets = resolve_targets(cfg)
        jobs = plan_jobs(targets, self.shard)
        check_unique(jobs)
        return cfg, targets, jobs

    def _install(
        self, cfg: NetmonConfig, targets: list[InventoryTarget], jobs: list[ProbeJob]
    ) -> None:
        self.scheduler.apply(jobs)
        if self.topology is None:
            from alerts.service import state_path

            base = self.config_path.resolve().parent
            self.topology = Topology(topology_path(state_path(self._alert_settings(cfg), base)))
            self.store.subscribe(self._on_topology)  # before the alerts: they read its parents
        self.topology.set_inventory(targets)
        self.config = cfg
        self._targets = targets
        self._by_name = {t.name: t for t in targets}
        self._loaded_at = time.time()
        if self.on_config is not None:
            self.on_config(cfg)

    def _alert_settings(self, cfg: NetmonConfig) -> AlertsSettings:
        """``cfg.alerts`` with this instance's state file (``--state-file``, per shard)."""
        settings = cfg.alerts
        path = Path(self.state_file) if self.state_file else None
        if path is None and self.shard is not None:
            base = Path(settings.state_file or DEFAULT_STATE_FILE)
            path = base.with_name(f"{base.stem}.shard{self.shard[0]}of{self.shard[1]}{base.suffix}")
        if path is not None:
            settings = settings.model_copy(update={"state_file": str(path)})
        return settings

    async def _start_alerts(self, cfg: NetmonConfig, targets: list[InventoryTarget]) -> None:
        from alerts.service import AlertService

        self.alerts = AlertService(
            self._alert_settings(cfg), base_dir=self.config_path.resolve().parent,
            schedules=cfg.schedules, external_url=cfg.server.external_url or "",
            grafana_url=cfg.dashboards.grafana_url or "", history=lambda: self.history,
        )  # fmt: skip
        self.alerts.set_targets(_target_infos(targets, self.inferred_parents()))
        self.store.subscribe(self._on_result)
        await self.alerts.start()
        log.info("alert state in %s", self.alerts.path)

    async def _apply_history(self, cfg: NetmonConfig) -> None:
        """Open, switch (another file) or close the history store for ``cfg.history``.
        A file that cannot be used is logged and netmon runs on without history."""
        from alerts.service import state_path

        settings = cfg.history
        base_dir = self.config_path.resolve().parent
        state_file = state_path(self._alert_settings(cfg), base_dir)
        path = history_path(settings, base_dir, state_file, self.shard)
        current = self.history
        if current is not None and settings.enabled and current.path == path:
            current.settings = settings  # retention and max_size: from the next trim
            return
        if current is not None:
            self.history = None
            await asyncio.to_thread(current.close)
        if not settings.enabled:
            return
        store = HistoryStore(path, settings)
        try:
            await asyncio.to_thread(store.start)
        except (HistoryError, OSError) as exc:
            log.error("running without history: %s", exc)
            return
        self.history = store
        log.info("history in %s", path)
        if self._silence_copier is None:
            self._silence_copier = asyncio.get_running_loop().create_task(self._copy_silences())

    def _record_history(self, stored: StoredResult) -> None:
        if self.history is not None:
            self.history.record(stored)

    async def _copy_silences(self) -> None:
        while True:
            self._save_silences()
            await asyncio.sleep(SILENCE_COPY_SECONDS)

    def _save_silences(self) -> None:
        """Copy the silences into the history: the alert state file forgets expired
        ones after a week, the availability report needs them for months."""
        if self.history is None or self.alerts is None:
            return
        try:
            silences = self.alerts.engine.list_silences(include_expired=True)
        except Exception:  # the state file's own faults are handled (and logged) there
            log.exception("silences not copied into the history")
            return
        self.history.record_silences(
            SilencePeriod(s.id, tuple(map(str, s.matchers)), s.starts_at, s.ends_at)
            for s in silences
        )

    def _on_topology(self, stored: StoredResult) -> None:
        """Feed a switch's topology result to the model (tell the alerting when the
        inferred parents changed); with each SNMP result of a switch, store its port
        roles first, so its interface rules are evaluated with them."""
        if self.topology is None or stored.probe == TOPOLOGY_PORTS:
            return
        if TOPOLOGY_RECORDS in stored.result.records:  # alone or in the SNMP job
            changed = self.topology.ingest(stored.target, stored.result, stored.finished_at)
            if changed:
                log.info("topology: inferred parents changed")
                if self.alerts is not None:
                    self.alerts.set_targets(_target_infos(self._targets, self.inferred_parents()))
            self.topology.save(every=0.0 if changed else TOPOLOGY_SAVE_EVERY)
        target = self._by_name.get(stored.target)
        if stored.probe == "snmp" and target is not None and target.role == "switch":
            self._put_port_roles(stored)

    def _put_port_roles(self, stored: StoredResult) -> None:
        from alerts.schedule import is_expected_online

        assert self.topology is not None and self.config is not None
        schedules, base, now = self.config.schedules, self.config_path.resolve().parent, time.time()

        def asleep(t: InventoryTarget) -> bool:
            schedule = schedules.get(t.expected_online) if t.expected_online else None
            return schedule is not None and not is_expected_online(schedule, now, base_dir=base)

        samples = port_samples(self.topology, stored.target, self._by_name, asleep)
        result = ProbeResult(Status.OK, "port roles from the topology", samples, target=stored.target,
                             probe=TOPOLOGY_PORTS, started_at=stored.result.started_at)  # fmt: skip
        self.store.put(result, stored.labels, stored.interval, probe=TOPOLOGY_PORTS)

    def inferred_parents(self) -> dict[str, str]:
        return self.topology.inferred_parents() if self.topology is not None else {}

    def _on_result(self, stored: StoredResult) -> None:
        """Evaluate the target's alert rules on its latest results (a store listener)."""
        if self._deferred is not None:
            self._deferred.add(stored.target)
        else:
            self._evaluate(stored.target)

    def _evaluate(self, target: str) -> None:
        if self.alerts is None:
            return
        latest = self.store.latest_for(target)
        awaiting = self._awaiting_first.get(target)
        if awaiting is not None:
            names, deadline = awaiting
            names.difference_update(latest)
            if names and time.monotonic() < deadline:
                return  # the target's observations are not complete yet
            del self._awaiting_first[target]
        self.alerts.evaluate(target, {name: s.result for name, s in latest.items()})

    def is_ready(self) -> bool:
        """Config loaded and every job ran once, or long enough for that has passed."""
        if not self._ready and self._started_at is not None:
            waited = time.monotonic() - self._started_at
            self._ready = (
                self.scheduler.has_run_all() or waited >= self.scheduler.max_first_run_wait()
            )
        return self._ready

    def targets(self) -> list[InventoryTarget]:
        """Every inventory target (all shards: ``/probe`` may ask for any of them)."""
        return list(self._targets)

    def extra_samples(self) -> list[Sample]:
        """The scheduler's, the alerting's and the process's own metrics, for ``/metrics``."""
        samples = self.scheduler.self_samples()
        if self.alerts is not None:
            samples += self.alerts.samples()
        if self.history is not None:
            samples += self.history.samples()
        samples += process_samples()
        samples += [
            Sample.of("netmon_config_last_reload_successful", float(self._last_reload_ok)),
            Sample.of("netmon_config_last_reload_success_timestamp_seconds", self._loaded_at),
            *(
                Sample.of("netmon_config_reloads_total", self.reload_counts[result], result=result)
                for result in ("applied", "rejected")
            ),
        ]
        return samples

    async def probe_once(
        self, target: str, probe: str | None = None, module: str | None = None
    ) -> list[ProbeResult]:
        """Run a target's probes now (for ``/probe``), without storing the results.

        ``probe`` picks one kind (default: the target's probes; ``snmp`` when a module
        is given), ``module`` one SNMP module. Each result's ``probe`` is its store name
        (``tcp-9100``), as on ``/metrics``. Unusable settings come back as a
        ``config_error`` result. Raises KeyError for a target not in the inventory,
        unless the config's ``server.allow_any_probe_target`` is on.
        """
        inv = self._by_name.get(target)
        if inv is None:
            if not self.allow_any_probe_target:
                raise KeyError(target)
            try:
                inv = self._adhoc_target(target)
            except ValueError as exc:
                return [_config_error(target, probe or "icmp", str(exc))]
        if module is not None and probe is None:
            probe = "snmp"
        if probe is not None:
            if probe not in PROBES:
                return [_config_error(inv.name, probe, f"unknown probe; use {', '.join(PROBES)}")]
            inv = dataclasses.replace(inv, probes=(probe,))
        if module is not None:
            inv = dataclasses.replace(inv, modules=(module,))
        try:
            jobs = plan_jobs([inv])
        except ValidationError as exc:  # e.g. an unknown module
            message = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            return [_config_error(inv.name, probe or "snmp", message)]
        except ValueError as exc:
            return [_config_error(inv.name, probe or "snmp", str(exc))]
        if module is None:  # slow modules' jobs (topology) only when asked for by name
            jobs = [j for j in jobs if j.awaited]
        if not jobs:
            why = "no TCP port configured for it" if probe == "tcp" else "no probes configured"
            return [_config_error(inv.name, probe or "icmp", why)]
        results = await asyncio.gather(
            *(run_probe(j.probe, j.probe_target, j.settings, self.ctx) for j in jobs)
        )
        return [dataclasses.replace(r, probe=j.store_name) for j, r in zip(jobs, results, strict=True)]  # fmt: skip

    def _adhoc_target(self, text: str) -> InventoryTarget:
        """A target outside the inventory (``HOST`` or ``HOST:PORT``) with the defaults."""
        assert self.config is not None
        d = self.config.defaults
        host, port = text, None
        if text.count(":") == 1:
            host, _, port_text = text.partition(":")
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ValueError(f"{text!r}: a port is a number from 1 to 65535")
            port = int(port_text)
        address = _check_address(host.strip("[]"))
        cred = d.snmp.credentials
        return InventoryTarget(
            name=text, address=address, port=None, group="adhoc", role="other", labels={},
            modules=("system",), probes=("icmp",),
            credentials=self.config.credentials.get(cred) if cred else None,
            credentials_name=cred, interval=d.interval, parent=None,
            tcp_ports=(port,) if port else (), snmp=d.snmp, icmp=d.icmp, tcp=d.tcp,
        )  # fmt: skip

    async def stop(self) -> None:
        """Stop probing and release sockets."""
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
        if self._next_reload is not None:
            self._next_reload.cancel()
            self._next_reload = None
        await self.scheduler.shutdown()
        if self.topology is not None:
            self.topology.save()
        if self._silence_copier is not None:
            self._silence_copier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._silence_copier
            self._silence_copier = None
        if self.history is not None:
            self._save_silences()
            history, self.history = self.history, None
            await asyncio.to_thread(history.close)
        if self.alerts is not None:
            await self.alerts.stop()
        await self.ctx.aclose()


def process_samples() -> list[Sample]:
    """The process's asyncio tasks and open file descriptors: a leak of either shows as
    growth over days. Each is left out where it cannot be read (no running event loop;
    no ``/proc``, i.e. not Linux)."""
    out: list[Sample] = []
    try:
        out.append(Sample.of("netmon_event_loop_tasks", len(asyncio.all_tasks())))
    except RuntimeError:  # called outside the event loop
        pass
    try:
        out.append(Sample.of("netmon_process_open_fds", len(os.listdir("/proc/self/fd"))))
    except OSError:
        pass
    return out


def _target_infos(
    targets: list[InventoryTarget], inferred: dict[str, str] | None = None
) -> list[TargetInfo]:
    """What the alert rules and engine need of each target: labels, parent (written, else
    inferred from the topology when the parent is ``auto``), schedule."""
    from alerts.rules import TargetInfo

    parents = effective_parents(targets, inferred or {})
    return [
        TargetInfo(
            t.name, {"group": t.group, "role": t.role, **t.labels},
            parents[t.name][0] if t.name in parents else None, t.expected_online,
            t.address,
        )
        for t in targets
    ]


def _is_empty(path: Path) -> bool:
    try:
        return not Path(path).read_bytes().strip()
    except OSError:
        return False  # load_config says what is wrong with it


def _one_line(problems: list[str], shown: int = 3) -> str:
    """A rejected config's problems as one log line (the first few, then how many more)."""
    text = "; ".join(problems[:shown])
    if len(problems) > shown:
        text += f"; and {len(problems) - shown} more (netmon check-config lists them all)"
    return text


def _config_error(target: str, probe: str, why: str) -> ProbeResult:
    return ProbeResult(Status.CONFIG_ERROR, why, probe=probe, target=target)


def parse_listen(text: str, default_port: int) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``[::1]:PORT`` or ``HOST`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port or (host.count(":") and not host.startswith("[")):
        host, port = text, ""  # no port given (a bare IPv6 address has colons)
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"--listen {text!r}: the port must be a number from 1 to 65535")
    return host.strip("[]") or "0.0.0.0", int(port) if port else default_port


async def run(
    config_path: Path,
    listen: str | None = None,
    shard: tuple[int, int] | None = None,
    web_config: Path | None = None,
    *,
    state_file: Path | None = None,
    on_config: Callable[[NetmonConfig], None] | None = None,
) -> int:
    """``netmon run``: probe the inventory and serve the results until SIGTERM/SIGINT.

    ``listen`` and ``web_config`` default to the config's ``server:`` section. Returns
    the exit code: 0 after a clean stop, 1 when the config or web config is unusable.
    """
    from monitor import memory
    from monitor.web import server as web

    memory.tune_malloc()  # glibc: fewer arenas, big scrape buffers unmapped when freed
    # Skipped and missed runs are counted in netmon_scheduler_skipped_runs_total; the
    # per-run INFO lines and per-skip warnings would flood a large school's log.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    monitor = Monitor(config_path, shard=shard, state_file=state_file)
    monitor.on_config = on_config
    # Before the config is read: a SIGHUP during start-up reloads once start-up is done
    # (its default action would end the process). The loop's close removes the handler.
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, monitor.request_reload)
    try:
        await monitor.start()
    except ConfigFileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except StateStoreError as exc:  # the alert state file: what is wrong, what to do
        print(f"netmon: {exc}", file=sys.stderr)
        await monitor.stop()
        return 1
    except (ConfigError, ValueError) as exc:
        print(f"{config_path}: {exc}", file=sys.stderr)
        return 1
    assert monitor.config is not None
    server = monitor.config.server
    if web_config is None and server.web_config:
        web_config = Path(server.web_config)
        if not web_config.is_absolute():
            web_config = Path(config_path).parent / web_config
    runner: aioweb.AppRunner | None = None
    try:
        try:
            host, port = parse_listen(listen or server.listen or "", web.DEFAULT_PORT)
            settings = web.load_web_config(web_config) if web_config is not None else None
        except (ConfigError, ValueError, OSError) as exc:
            print(exc, file=sys.stderr)
            return 1
        app = web.create_app(
            monitor, settings, allow_any_probe_target=monitor.allow_any_probe_target
        )
        try:
            runner = await web.serve(app, host, port, settings)
        except OSError as exc:  # the port is taken (another netmon?) or not ours to bind
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            print(
                f"netmon: cannot listen on {shown}: {exc.strerror or exc}; is another "
                "netmon (or another service) using that port? Choose one with --listen "
                "or server.listen",
                file=sys.stderr,
            )
            return 1
        log.info("serving on %s:%d (/metrics, /probe, /api/targets)", host, port)
        await _wait_for_signals()
        return 0
    finally:
        if runner is not None:
            await runner.cleanup()
        await monitor.stop()


async def _wait_for_signals() -> None:
    """SIGTERM or SIGINT returns (SIGHUP's handler, installed by :func:`run`, reloads)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
