"""Restart intensity (OTP's MaxR/MaxT), pure: more than ``max_restarts`` restarts within
``period_s`` means restarting is not helping, and the failure must go up a level.

One instance per supervisor, shared by its keepers, as in OTP: the limit is on the supervisor's
restarts, whichever children they belong to. The window is half-open: a restart exactly
``period_s`` ago no longer counts.
"""

from __future__ import annotations

import math
from collections import deque

import attrs


@attrs.define
class RestartIntensity:
    max_restarts: int = attrs.field(default=5)
    period_s: float = attrs.field(default=60.0)
    _restarts: deque[float] = attrs.field(init=False)

    @max_restarts.validator
    def _max_restarts(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"max_restarts must be >= 0, got {value!r}")

    @period_s.validator
    def _period_s(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"period_s must be > 0, got {value!r}")

    def __attrs_post_init__(self) -> None:
        # Bounded: one more than the limit is all a decision ever needs to see.
        self._restarts = deque(maxlen=self.max_restarts + 1)

    def record(self, now: float) -> bool:
        """Count a restart at ``now``; True if that exceeds the intensity (escalate)."""
        self._restarts.append(now)
        return self.count(now) > self.max_restarts

    def count(self, now: float) -> int:
        """Restarts within the window ending at ``now``."""
        return sum(1 for at in self._restarts if at > now - self.period_s)
