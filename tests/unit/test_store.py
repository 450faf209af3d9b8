"""The result store: latest result per (target, probe), staleness, removal, history."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from monitor.store.results import (
    HISTORY_LENGTH,
    MIN_STALE_AFTER,
    CompactResult,
    ResultStore,
    stale_after,
)
from probes.result import ProbeResult, Sample, Status

T0 = 1_700_000_000.0
LABELS = {"role": "printer", "site": "main", "room": "204"}


def result(target: str = "mfp", probe: str = "snmp", status: Status = Status.OK,
           at: float = T0, duration: float = 0.5, why: str = "fine") -> ProbeResult:  # fmt: skip
    return ProbeResult(
        status, why, probe=probe, target=target, started_at=at, duration_seconds=duration
    )


@pytest.mark.parametrize(
    ("interval", "expected"), [(10, MIN_STALE_AFTER), (60, MIN_STALE_AFTER), (300, 900)]
)
def test_stale_after_is_three_intervals_but_at_least_three_minutes(
    interval: float, expected: float
) -> None:
    assert stale_after(interval) == expected


@pytest.mark.parametrize("interval", [30.0, 60.0, 300.0])
def test_result_is_served_until_stale_then_dropped(interval: float) -> None:
    store = ResultStore()
    stored = store.put(result(), LABELS, interval)
    finished = T0 + 0.5
    assert stored.finished_at == finished
    limit = max(3 * interval, 180)
    assert [s.target for s in store.snapshot(finished + limit)] == ["mfp"]
    assert store.snapshot(finished + limit + 1) == []
    # Dropped from snapshots, not forgotten: a new run makes it fresh again.
    assert store.get("mfp", "snmp") is stored
    store.put(result(at=finished + limit + 10), LABELS, interval)
    assert len(store.snapshot(finished + limit + 11)) == 1


def test_put_replaces_the_latest_per_target_and_probe() -> None:
    store = ResultStore()
    store.put(result(status=Status.TIMEOUT, why="silent"), LABELS, 60)
    store.put(result(at=T0 + 60), {**LABELS, "room": "205"}, 60)
    store.put(result(probe="icmp", at=T0 + 61), LABELS, 60)
    store.put(result(target="sw-core", at=T0 + 62), {"role": "switch"}, 60)
    snap = store.snapshot(T0 + 70)
    assert [(s.target, s.probe) for s in snap] == [
        ("mfp", "icmp"),
        ("mfp", "snmp"),
        ("sw-core", "snmp"),
    ]
    latest = snap[1]
    assert latest.result.status is Status.OK and latest.labels["room"] == "205"
    assert len(store) == 3


def test_explicit_probe_name_keeps_two_probes_of_one_kind_apart() -> None:
    store = ResultStore()
    store.put(result(probe="tcp"), LABELS, 60, probe="tcp-9100")
    store.put(result(probe="tcp"), LABELS, 60, probe="tcp-443")
    assert sorted(s.probe for s in store.snapshot(T0 + 1)) == ["tcp-443", "tcp-9100"]


def test_result_without_start_time_uses_now() -> None:
    store = ResultStore()
    stored = store.put(result(at=0.0), LABELS, 60, now=T0 + 5)
    assert stored.finished_at == T0 + 5


def test_remove_target_forgets_every_probe_and_history() -> None:
    store = ResultStore()
    for probe in ("icmp", "snmp"):
        store.put(result(probe=probe), LABELS, 60)
    store.put(result(target="other"), LABELS, 60)
    assert store.remove_target("mfp") == 2
    assert [s.target for s in store.snapshot(T0 + 1)] == ["other"]
    assert store.history("mfp", "snmp") == [] and store.get("mfp", "icmp") is None
    assert store.remove_target("mfp") == 0


def test_history_keeps_the_last_runs_oldest_first() -> None:
    store = ResultStore()
    runs = HISTORY_LENGTH + 5
    for i in range(runs):
        status = Status.OK if i % 2 else Status.TIMEOUT
        store.put(result(status=status, at=T0 + 60 * i, why=f"run {i}"), LABELS, 60)
    history = store.history("mfp", "snmp")
    assert len(history) == HISTORY_LENGTH
    assert [h.explanation for h in history] == [f"run {i}" for i in range(5, runs)]
    assert [h.at for h in history] == sorted(h.at for h in history)
    assert history[-1].status is (Status.OK if (runs - 1) % 2 else Status.TIMEOUT)


def test_snapshot_is_a_copy_that_later_puts_do_not_change() -> None:
    store = ResultStore()
    store.put(result(), LABELS, 60)
    snap = store.snapshot(T0 + 1)
    store.put(result(status=Status.TIMEOUT, at=T0 + 2), LABELS, 60)
    assert snap[0].result.status is Status.OK
    with pytest.raises(TypeError):
        snap[0].labels["room"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"target": "x"}, "set by netmon"),
        ({"probe": "x"}, "set by netmon"),
        ({"bad-name": "x"}, "not a valid label name"),
        ({"__meta": "x"}, "not a valid label name"),
    ],
)
def test_put_rejects_labels_that_would_break_the_exporter(
    labels: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ResultStore().put(result(), labels, 60)


def test_put_rejects_results_without_identity_or_interval() -> None:
    store = ResultStore()
    with pytest.raises(ValueError, match="target and a probe"):
        store.put(result(target=""), LABELS, 60)
    with pytest.raises(ValueError, match="interval"):
        store.put(result(), LABELS, 0)


def test_concurrent_writers_and_readers_see_whole_entries() -> None:
    """Bounded: 4 writers x 200 puts while a reader snapshots; no errors, nothing lost."""
    store = ResultStore()
    errors: list[BaseException] = []
    done = threading.Event()

    def write(n: int) -> None:
        for i in range(200):
            store.put(result(target=f"t{n}-{i % 20}", at=T0 + i), LABELS, 60)

    def read() -> None:
        try:
            while not done.is_set():
                for s in store.snapshot(T0 + 1):
                    assert s.labels == LABELS
        except AssertionError as exc:  # surfaced below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    reader.join()
    assert not errors
    assert len(store) == 80


def test_latest_for_gives_one_targets_fresh_results_by_probe() -> None:
    store = ResultStore()
    store.put(result("mfp", "icmp"), LABELS, 60)
    store.put(result("mfp", "snmp", at=T0 - 1000), LABELS, 60)  # stale at T0 + 1
    store.put(result("sw", "icmp"), LABELS, 60)
    assert set(store.latest_for("mfp", now=T0 + 1)) == {"icmp"}
    assert set(store.latest_for("mfp", now=T0 - 900)) == {"icmp", "snmp"}
    assert store.latest_for("nobody") == {}
    store.remove_target("mfp")
    assert store.latest_for("mfp", now=T0 + 1) == {}


def test_listeners_see_every_put_and_a_failing_listener_does_not_stop_others() -> None:
    store = ResultStore()
    seen: list[tuple[str, str]] = []

    def broken(_: object) -> None:
        raise RuntimeError("listener bug")

    store.subscribe(broken)
    store.subscribe(lambda s: seen.append((s.target, s.probe)))
    store.put(result("mfp", "icmp"), LABELS, 60)
    store.put(result("mfp", "tcp"), LABELS, 60, probe="tcp-9100")
    assert seen == [("mfp", "icmp"), ("mfp", "tcp-9100")]
    assert store.get("mfp", "icmp") is not None


# --- compact samples ------------------------------------------------------------------


def sampled(target: str = "sw", at: float = T0, up: float = 1.0, alias: str = "uplink",
            ports: int = 3) -> ProbeResult:  # fmt: skip
    """A switch-like result: a port's label tuple shared by its samples, as the modules do."""
    samples = [Sample.of("netmon_snmp_varbinds", 42)]
    for port in range(1, ports + 1):
        labels = (("if_index", str(port)), ("if_name", f"Gi0/{port}"), ("if_alias", alias))
        samples += [Sample("netmon_interface_oper_up", labels, up),
                    Sample("netmon_interface_receive_bytes_total", labels, at * port)]  # fmt: skip
    out = result(target, at=at)
    out.samples = samples
    return out


def test_stored_samples_read_back_as_they_were_put() -> None:
    store = ResultStore()
    original = sampled()
    before = list(original.samples)
    stored = store.put(original, LABELS, 60)
    assert isinstance(stored.result, CompactResult) and isinstance(stored.result, ProbeResult)
    assert original.samples == before  # the probe's result is left as it was
    assert stored.result.samples == before and stored.result == original
    assert stored.result.to_json() == original.to_json()
    assert stored.result.samples_named("netmon_interface_oper_up") == [
        s for s in before if s.metric == "netmon_interface_oper_up"
    ]
    assert list(stored.result.series()) == [(s.metric, s.labels, s.value) for s in before]
    # Built on demand: a new list each time; changing it does not change the store.
    stored.result.samples.clear()
    assert store.get("sw", "snmp").result.samples == before  # type: ignore[union-attr]
    assert dataclasses.replace(stored.result, explanation="new").samples == before


def test_the_next_poll_of_the_same_series_reuses_the_shape() -> None:
    store = ResultStore()
    first = store.put(sampled(), LABELS, 60)
    second = store.put(sampled(at=T0 + 60, up=0.0), LABELS, 60)
    assert second.shape is first.shape and second.values != first.values
    assert [s.value for s in second.result.samples_named("netmon_interface_oper_up")] == [0.0] * 3
    # Equal series on another target: the same shape; other series: another one.
    assert store.put(sampled("sw2"), LABELS, 60).shape is first.shape
    assert store.put(sampled("sw3", alias="printer"), LABELS, 60).shape is not first.shape
    assert store.put(sampled("sw", ports=4), LABELS, 60).shape is not first.shape
    # Within a shape, a port's label set is one object, as the probe built it.
    labels = first.shape.labels
    assert labels[1] is labels[2] and labels[1] is not labels[3]


def test_listeners_read_the_put_results_own_samples() -> None:
    store = ResultStore()
    original = sampled()
    seen: list[bool] = []
    store.subscribe(lambda s: seen.append(s.result.samples is original.samples))
    stored = store.put(original, LABELS, 60)
    assert seen == [True]
    assert stored.result.samples is not original.samples  # afterwards: rebuilt, equal
    assert stored.result.samples == original.samples


def test_a_targets_equal_labels_are_stored_once() -> None:
    store = ResultStore()
    icmp = store.put(result(probe="icmp"), LABELS, 60)
    snmp = store.put(result(probe="snmp"), dict(LABELS), 60)
    again = store.put(result(probe="icmp", at=T0 + 60), dict(LABELS), 60)
    assert snmp.labels is icmp.labels and again.labels is icmp.labels
    other = store.put(result(probe="tcp"), {**LABELS, "room": "205"}, 60, probe="tcp-9100")
    assert other.labels is not icmp.labels and other.labels["room"] == "205"
