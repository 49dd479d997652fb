from __future__ import annotations

import random

import pytest

from supervisor.otp.backoff import Backoff, BackoffPolicy


def test_delays_stay_within_full_jitter_bounds_for_n_0_to_10() -> None:
    policy = BackoffPolicy(initial_s=0.5, multiplier=2.0, max_s=30.0, reset_after_s=60.0)
    backoff = Backoff(policy, rng=random.Random(1234))
    mirror = random.Random(1234)
    for n in range(11):
        ceiling = min(30.0, 0.5 * 2.0**n)
        assert policy.ceiling_s(n) == ceiling
        delay = backoff.next_delay()
        assert 0.0 <= delay <= ceiling
        assert delay == mirror.uniform(0.0, ceiling)  # reproducible with the seed
        assert backoff.failures == n + 1
    assert policy.ceiling_s(10) == 30.0  # capped


def test_jitter_covers_the_window_not_just_its_top() -> None:
    backoff = Backoff(BackoffPolicy(initial_s=8.0, max_s=8.0), rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(200)]
    assert min(delays) < 2.0
    assert max(delays) > 6.0


def test_huge_attempt_numbers_cap_without_overflow() -> None:
    policy = BackoffPolicy(initial_s=1.0, multiplier=10.0, max_s=5.0)
    assert policy.ceiling_s(5000) == 5.0


def test_reset_after_a_healthy_run_only() -> None:
    policy = BackoffPolicy(initial_s=1.0, multiplier=2.0, max_s=100.0, reset_after_s=60.0)
    backoff = Backoff(policy, rng=random.Random(0))
    for _ in range(4):
        backoff.next_delay()
    assert backoff.failures == 4

    assert backoff.observe_run(started_at=100.0, now=159.9) is False
    assert backoff.failures == 4

    assert backoff.observe_run(started_at=100.0, now=160.0) is True
    assert backoff.failures == 0
    mirror = random.Random(0)
    for _ in range(4):
        mirror.uniform(0, 1)  # the four draws already made
    assert backoff.next_delay() == mirror.uniform(0.0, 1.0)  # back to initial_s's window


def test_reset() -> None:
    backoff = Backoff(BackoffPolicy(), rng=random.Random(0))
    backoff.next_delay()
    backoff.reset()
    assert backoff.failures == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_s": 0}, "must be > 0, got 0"),
        ({"multiplier": 0.5}, "must be >= 1, got 0.5"),
        ({"initial_s": 2.0, "max_s": 1.0}, "must be >= initial_s (2.0), got 1.0"),
        ({"reset_after_s": float("nan")}, "must be > 0, got nan"),
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        BackoffPolicy(**kwargs)
