"""``ReplayClock``: the Trio clock of a replay, moved by the data and by nothing else.

A replay runs under ``trio.run(..., clock=ReplayClock(start))``. Its time is epoch seconds: the
``received_ts`` of the event being replayed. The bots read it twice per event, as their wall
clock (price age, the UTC day, journal times) and as ``trio.current_time()`` (the order-rate
window), so both come from the data and two replays of the same data read the same times.

Decisions:

* **Time moves only when the replay moves it** (``advance_to``, or ``pace_to`` at a chosen
  speed), never because the loop is idle. ``trio.testing.MockClock`` with autojump would jump
  to the next deadline whenever every task is blocked, and a bot waiting for the journal's
  SQLite worker thread is blocked: the jump would land while the thread works (the race
  ``tests/clocks.py`` works around with a polling threshold that costs 50 ms per jump). Here
  nothing can jump, so the journal thread's speed can never change what a bot sees, and there
  is no idle threshold to wait for: a replay runs as fast as its bots and journal do.
* **A deadline the data has not reached does not expire.** A timeout inside a replay (a bot's
  order-journaling grace, the journal's close grace) would need the data to move during one
  event, which the replay never does: time stands still until every bot is done with the
  event. So such deadlines only matter if something hangs, as a real hang would.
* **Pacing is a real-time wait for a virtual instant.** ``pace_to(t, real_deadline)`` sleeps
  until ``t`` on this clock, and the clock lets ``t`` arrive once ``time.perf_counter()`` has
  passed ``real_deadline``: the time seen is exactly ``t``, however late the loop woke, so a
  paced replay reads the same times as a fast one.
"""

from __future__ import annotations

import time

import trio

__all__ = ["ReplayClock"]

# How long the loop may wait for I/O (the journal's thread) when no deadline is due: its
# threads wake it anyway, so this only bounds the wait of a loop with nothing to wake it.
IDLE_WAIT_S = 3600.0


class ReplayClock(trio.abc.Clock):
    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._pace: tuple[float, float] | None = None  # (virtual instant, perf_counter deadline)

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        pace = self._pace
        if pace is not None and time.perf_counter() >= pace[1]:
            self._now = max(self._now, pace[0])
            self._pace = None
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        if deadline <= self.current_time():
            return 0.0
        pace = self._pace
        if pace is not None and deadline <= pace[0]:
            return max(0.0, pace[1] - time.perf_counter())
        return IDLE_WAIT_S

    def advance_to(self, instant: float) -> None:
        """Move to ``instant`` (never back: recorded times may tie or, across files, step back
        by a clock adjustment; the replay's time stays monotonic, as Trio requires)."""
        if instant > self._now:
            self._now = instant

    async def pace_to(self, instant: float, real_deadline: float) -> None:
        """Wait (in real time) until ``time.perf_counter() >= real_deadline``, then stand at
        ``instant``."""
        if instant <= self._now:
            return
        self._pace = (instant, real_deadline)
        try:
            await trio.sleep_until(instant)
        finally:
            self._pace = None
        self.advance_to(instant)
