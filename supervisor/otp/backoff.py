"""Exponential backoff with full jitter (pure: no clock, no sleeping; the keeper does both).

Full jitter ("AWS architecture blog: exponential backoff and jitter") draws the delay uniformly
in ``[0, min(max_s, initial_s * multiplier**n)]``, where ``n`` counts failures since the last
reset. Spreading restarts over the whole window is what stops many clients that failed
together (an exchange outage) from reconnecting together.

The ``random.Random`` is injected so a seeded one makes every delay reproducible in tests.
"""

from __future__ import annotations

import math
import random

import attrs

from supervisor.config import BackoffConfig


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class BackoffPolicy:
    initial_s: float = attrs.field(default=0.5, validator=_positive)
    multiplier: float = attrs.field(default=2.0)
    max_s: float = attrs.field(default=30.0)
    reset_after_s: float = attrs.field(default=60.0, validator=_positive)

    @multiplier.validator
    def _multiplier(self, attribute: attrs.Attribute, value: float) -> None:
        if not (math.isfinite(value) and value >= 1):
            raise ValueError(f"multiplier must be >= 1, got {value!r}")

    @max_s.validator
    def _max_s(self, attribute: attrs.Attribute, value: float) -> None:
        if not (math.isfinite(value) and value >= self.initial_s):
            raise ValueError(f"max_s must be >= initial_s ({self.initial_s}), got {value!r}")

    @classmethod
    def from_config(cls, config: BackoffConfig) -> BackoffPolicy:
        return cls(
            initial_s=config.initial_s,
            multiplier=config.multiplier,
            max_s=config.max_s,
            reset_after_s=config.reset_after_s,
        )

    def ceiling_s(self, failures: int) -> float:
        """The upper bound of the jittered delay after ``failures`` failures (0-based)."""
        try:
            raw = self.initial_s * self.multiplier**failures
        except OverflowError:  # 2.0**1100: the cap has long been reached
            return self.max_s
        return min(self.max_s, raw)


@attrs.define
class Backoff:
    """Backoff state for one child: how many failures since it last ran healthily."""

    policy: BackoffPolicy
    rng: random.Random = attrs.field(factory=random.Random)
    failures: int = attrs.field(default=0, init=False)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        delay = self.rng.uniform(0.0, self.policy.ceiling_s(self.failures))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0

    def observe_run(self, started_at: float, now: float) -> bool:
        """Reset if the child has run healthily (ready at ``started_at``) for ``reset_after_s``.

        Returns whether it reset. Both instants are ``trio.current_time()`` values.
        """
        if now - started_at >= self.policy.reset_after_s:
            self.reset()
            return True
        return False
