"""The failed-login limiter (monitor.web.ratelimit) on a fake clock: buckets per client
network, refill, refunds, one log line per episode, and a bounded table."""

from __future__ import annotations

import logging

import pytest

from monitor.web.ratelimit import OVERFLOW, FailureLimiter, client_network, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("remote", "network"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4-mapped: the IPv4 address
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        (None, "local"),
        ("", "local"),
        ("not an address", "local"),
    ],
)
def test_a_client_counts_against_its_ipv4_address_or_ipv6_64(
    remote: str | None, network: str
) -> None:
    assert client_network(remote) == network


def test_a_burst_then_one_failure_per_refill_interval() -> None:
    clock = Clock()
    limiter = FailureLimiter(burst=3, rate=0.5, clock=clock)
    assert [limiter.reserve("192.0.2.7") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.reserve("192.0.2.7") == pytest.approx(2.0)  # one token every 2 s
    assert limiter.reserve("192.0.2.8") == 0.0  # another address has its own bucket
    clock.now += 1.0
    assert limiter.reserve("192.0.2.7") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.reserve("192.0.2.7") == 0.0
    assert limiter.reserve("192.0.2.7") > 0
    assert limiter.limited() == 1


def test_a_success_gives_its_token_back() -> None:
    limiter = FailureLimiter(burst=2, rate=0.1, clock=Clock())
    for _ in range(10):  # a valid user logging in again and again is never limited
        assert limiter.reserve("192.0.2.7") == 0.0
        limiter.refund("192.0.2.7")
    assert limiter.reserve("192.0.2.7") == 0.0
    assert limiter.reserve("192.0.2.7") == 0.0
    assert limiter.reserve("192.0.2.7") > 0


def test_limiting_is_logged_once_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limiter = FailureLimiter(burst=2, rate=0.5, clock=clock)
    with caplog.at_level(logging.WARNING, logger="netmon.web"):
        for _ in range(50):
            limiter.reserve("192.0.2.7")
        clock.now += 1.9  # not refilled yet: the same episode
        for _ in range(50):
            limiter.reserve("192.0.2.7")
        assert len(caplog.records) == 1
        clock.now += 60  # quiet long enough to refill: a new episode
        for _ in range(3):
            limiter.reserve("192.0.2.7")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert all("too many failed logins from 192.0.2.7" in line for line in lines)


def test_the_table_is_bounded_and_newcomers_share_one_bucket() -> None:
    clock = Clock()
    limiter = FailureLimiter(burst=2, rate=0.01, max_clients=8, clock=clock)
    for i in range(8):
        limiter.reserve(f"192.0.2.{i}")
    assert len(limiter) == 8
    # Table full of active buckets: 100 new addresses share the overflow bucket,
    # which runs dry after its burst, like any other.
    waits = [limiter.reserve(f"198.51.100.{i}") for i in range(100)]
    assert waits[:2] == [0.0, 0.0]
    assert all(w > 0 for w in waits[2:])
    assert len(limiter) == 9 and OVERFLOW in limiter._buckets
    # The known addresses keep their own (partly used) buckets.
    assert limiter.reserve("192.0.2.0") == 0.0
    assert limiter.reserve("192.0.2.0") > 0
    # Once the old buckets have refilled, they make room for new addresses.
    clock.now += 1000
    assert limiter.reserve("203.0.113.1") == 0.0
    assert "203.0.113.1" in limiter._buckets
    assert len(limiter) <= 9


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(w) for w in (0.001, 0.9, 1.0, 5.01)] == ["1", "1", "1", "6"]


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FailureLimiter(burst=0)
    with pytest.raises(ValueError):
        FailureLimiter(rate=0)
