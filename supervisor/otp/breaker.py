"""Circuit breaker (pure state machine; the keeper feeds it events and ``now``).

::

    closed --(failure_threshold consecutive failures)--> open
    open --(reset_timeout_s elapsed; allow() grants one trial)--> half_open
    half_open --(trial succeeded)--> closed
    half_open --(trial failed)--> open        (the timeout starts again)

Every transition is a ``Transition`` value, returned by the method that caused it and passed
to each ``on_transition`` callback, so the keeper can log, count and alert without the
breaker knowing about any of that. Callbacks run synchronously inside the call; an exception
from one propagates to the caller (the keeper guards its own observers).

What counts as success or failure is the caller's business; the keeper's rules are in
``supervisor.otp.keeper``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

from actors.schema import at_least_one, positive

BreakerState = Literal["closed", "open", "half_open"]


@attrs.frozen
class BreakerPolicy:
    """``[circuit_breaker]``: open after ``failure_threshold`` consecutive failures, try again
    ``reset_timeout_s`` later."""

    failure_threshold: int = attrs.field(default=5, validator=at_least_one)
    reset_timeout_s: float = attrs.field(default=30.0, validator=positive)


@attrs.frozen
class Transition:
    """``failures`` is the consecutive-failure count at the moment of the transition."""

    from_state: BreakerState
    to_state: BreakerState
    at: float
    failures: int


@attrs.frozen
class BreakerStatistics:
    state: BreakerState
    failures: int
    opened_at: float | None
    times_opened: int


@attrs.define
class CircuitBreaker:
    policy: BreakerPolicy = attrs.field(factory=BreakerPolicy)
    on_transition: list[Callable[[Transition], None]] = attrs.field(factory=list)
    state: BreakerState = attrs.field(default="closed", init=False)
    failures: int = attrs.field(default=0, init=False)
    opened_at: float | None = attrs.field(default=None, init=False)
    times_opened: int = attrs.field(default=0, init=False)
    _trial_granted: bool = attrs.field(default=False, init=False)

    def allow(self, now: float) -> bool:
        """May an attempt start now? Moves open -> half_open once the timeout has passed and
        then grants exactly one trial until its outcome is recorded."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if now < self._retry_at():
                return False
            self._move("half_open", now)
        if self._trial_granted:
            return False
        self._trial_granted = True
        return True

    def time_until_retry(self, now: float) -> float:
        """Seconds until ``allow()`` can next say yes (0 unless open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self._retry_at() - now)

    def record_success(self, now: float) -> Transition | None:
        self.failures = 0
        if self.state == "half_open":
            return self._move("closed", now)
        return None

    def record_failure(self, now: float) -> Transition | None:
        self.failures += 1
        if self.state == "half_open" or (
            self.state == "closed" and self.failures >= self.policy.failure_threshold
        ):
            self.opened_at = now
            self.times_opened += 1
            return self._move("open", now)
        return None

    def statistics(self) -> BreakerStatistics:
        return BreakerStatistics(
            state=self.state,
            failures=self.failures,
            opened_at=self.opened_at,
            times_opened=self.times_opened,
        )

    def _retry_at(self) -> float:
        assert self.opened_at is not None
        return self.opened_at + self.policy.reset_timeout_s

    def _move(self, to_state: BreakerState, now: float) -> Transition:
        transition = Transition(
            from_state=self.state, to_state=to_state, at=now, failures=self.failures
        )
        self.state = to_state
        self._trial_granted = False
        for callback in self.on_transition:
            callback(transition)
        return transition
