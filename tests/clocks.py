"""A virtual clock for tests whose peer is a worker thread (the journal's SQLite).

``MockClock(autojump_threshold=0.05)`` jumps to the next deadline once the loop has been idle
for 0.05 s of real time. A journal call on a loaded machine (or under coverage) can take
longer than that, and the clock then jumps while the thread still works: to a test's
``fail_after`` deadline, or past a backoff the test was about to observe.
``new_thread_clock()`` (the ``thread_clock`` fixture) is that MockClock, except that it never
jumps while one of Trio's worker threads is busy; the loop looks again after the next idle
period, so time moves as soon as the thread is done.

Which workers are busy is read from Trio's thread cache (idle workers are listed there), as
no public API says it; ``test_clocks.py`` checks it still works with the installed Trio.
That alone leaves a race: a worker lists itself idle *before* it hands its result back, and
the loop may decide to jump after its wait for I/O came back empty but before it sees the
result (on a loaded machine the worker can finish in that gap). So the clock also holds while
any ``trio.to_thread.run_sync`` call has not returned to its task
(``trio.testing.active_thread_count``): from the send to the task's resumption, result
included. Without it a test's ``fail_after`` could fire while its journal opened.
"""

from __future__ import annotations

import threading

import trio.testing
from trio._core._thread_cache import THREAD_CACHE, WorkerThread
from trio.testing import MockClock

AUTOJUMP_THRESHOLD_S = 0.05


def busy_worker_threads() -> int:
    # list() copies the dict in one step under the GIL: a worker going idle meanwhile would
    # otherwise change its size while this iterates.
    idle = {worker._thread for worker in list(THREAD_CACHE._idle_workers)}
    busy = 0
    for thread in threading.enumerate():
        target = getattr(thread, "_target", None)
        if isinstance(getattr(target, "__self__", None), WorkerThread) and thread not in idle:
            busy += 1
    return busy


def new_thread_clock(autojump_threshold: float = AUTOJUMP_THRESHOLD_S) -> MockClock:
    clock = MockClock(autojump_threshold=autojump_threshold)
    jump = clock._autojump  # MockClock is final: wrap the instance's method

    def autojump_unless_a_thread_works() -> None:
        if trio.testing.active_thread_count() == 0 and busy_worker_threads() == 0:
            jump()

    clock._autojump = autojump_unless_a_thread_works  # type: ignore[method-assign]
    return clock
