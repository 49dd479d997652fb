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

from actors.schema import check, positive


@attrs.frozen
class BackoffPolicy:
    """``[backoff]``: exponential backoff with full jitter; resets after a healthy run of
    ``reset_after_s``."""

    initial_s: float = attrs.field(default=0.5, validator=positive)
    multiplier: float = attrs.field(default=2.0)
    max_s: float = attrs.field(default=30.0)
    reset_after_s: float = attrs.field(default=60.0, validator=positive)

    # Cross-field checks are validators, not __attrs_post_init__: attrs runs validators after
    # every field is set, and the config loader re-runs each one to report all problems at once.
    @multiplier.validator
    def _multiplier(self, attribute: attrs.Attribute[float], value: float) -> None:
        check(math.isfinite(value) and value >= 1, "must be >= 1", value)

    @max_s.validator
    def _max_s(self, attribute: attrs.Attribute[float], value: float) -> None:
        positive(self, attribute, value)
        check(value >= self.initial_s, f"must be >= initial_s ({self.initial_s})", value)

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
