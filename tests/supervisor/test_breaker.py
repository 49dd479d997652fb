from __future__ import annotations

import pytest

from supervisor.otp.breaker import BreakerPolicy, CircuitBreaker, Transition


def make(threshold: int = 3, timeout_s: float = 30.0) -> tuple[CircuitBreaker, list[Transition]]:
    seen: list[Transition] = []
    breaker = CircuitBreaker(BreakerPolicy(threshold, timeout_s), on_transition=[seen.append])
    return breaker, seen


def test_closed_until_threshold_consecutive_failures() -> None:
    breaker, seen = make(threshold=3)
    assert breaker.allow(0.0)
    assert breaker.record_failure(1.0) is None
    assert breaker.record_failure(2.0) is None
    assert breaker.state == "closed"
    assert breaker.allow(2.0)
    opened = breaker.record_failure(3.0)
    assert opened == Transition("closed", "open", at=3.0, failures=3)
    assert seen == [opened]
    assert breaker.state == "open"
    assert breaker.statistics().times_opened == 1


def test_success_resets_the_consecutive_count() -> None:
    breaker, seen = make(threshold=3)
    breaker.record_failure(1.0)
    breaker.record_failure(2.0)
    assert breaker.record_success(3.0) is None  # closed stays closed
    breaker.record_failure(4.0)
    breaker.record_failure(5.0)
    assert breaker.state == "closed"
    assert seen == []


def test_open_refuses_until_reset_timeout_then_one_half_open_trial() -> None:
    breaker, seen = make(threshold=1, timeout_s=30.0)
    breaker.record_failure(10.0)
    assert not breaker.allow(10.0)
    assert not breaker.allow(39.999)
    assert breaker.time_until_retry(10.0) == 30.0
    assert breaker.time_until_retry(25.0) == 15.0
    assert breaker.allow(40.0)  # exactly reset_timeout_s later
    assert breaker.state == "half_open"
    assert seen[-1] == Transition("open", "half_open", at=40.0, failures=1)
    assert not breaker.allow(40.0)  # one trial only
    assert not breaker.allow(100.0)
    assert breaker.time_until_retry(40.0) == 0.0


def test_half_open_success_closes() -> None:
    breaker, seen = make(threshold=1, timeout_s=5.0)
    breaker.record_failure(0.0)
    assert breaker.allow(5.0)
    closed = breaker.record_success(6.0)
    assert closed == Transition("half_open", "closed", at=6.0, failures=0)
    assert breaker.state == "closed"
    assert breaker.allow(6.0)
    assert [(t.from_state, t.to_state) for t in seen] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_half_open_failure_reopens_and_restarts_the_timeout() -> None:
    breaker, seen = make(threshold=2, timeout_s=5.0)
    breaker.record_failure(0.0)
    breaker.record_failure(1.0)
    assert breaker.allow(6.0)
    reopened = breaker.record_failure(7.0)
    assert reopened == Transition("half_open", "open", at=7.0, failures=3)
    assert breaker.state == "open"
    assert breaker.opened_at == 7.0
    assert not breaker.allow(11.9)
    assert breaker.time_until_retry(7.0) == 5.0
    assert breaker.allow(12.0)
    assert breaker.statistics().times_opened == 2
    assert [(t.from_state, t.to_state, t.at) for t in seen] == [
        ("closed", "open", 1.0),
        ("open", "half_open", 6.0),
        ("half_open", "open", 7.0),
        ("open", "half_open", 12.0),
    ]


def test_from_config_and_validation() -> None:
    config = BreakerPolicy(failure_threshold=2, reset_timeout_s=9.0)
    assert config == BreakerPolicy(2, 9.0)
    with pytest.raises(ValueError, match="must be >= 1"):
        BreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError, match="must be > 0"):
        BreakerPolicy(reset_timeout_s=0)
