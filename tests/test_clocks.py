"""The thread-aware test clock holds virtual time while a worker thread works."""

from __future__ import annotations

import threading
import time

import pytest
import trio
from trio.testing import MockClock

from tests.clocks import busy_worker_threads, new_thread_clock


@pytest.fixture
def clock() -> MockClock:
    return new_thread_clock()


async def test_no_jump_while_a_thread_works_then_jumps_again(clock: MockClock) -> None:
    with trio.move_on_after(1) as scope:
        for _ in range(3):  # 0.3 s of real work each, far above the 0.05 s threshold
            await trio.to_thread.run_sync(time.sleep, 0.3)
    assert not scope.cancelled_caught
    assert trio.current_time() == 0.0
    await trio.sleep(100)  # idle again: the clock jumps
    assert trio.current_time() == 100.0


async def test_no_jump_before_the_task_has_its_threads_result(clock: MockClock) -> None:
    """The worker is idle again and its result on its way, but the task has not resumed:
    what the loop sees when its wait for I/O came back empty just before the result did."""
    release = threading.Event()
    with trio.move_on_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, release.wait)
            while busy_worker_threads() == 0:  # the thread gets its job (no time passes)
                await trio.lowlevel.checkpoint()
            release.set()
            while busy_worker_threads() > 0:  # done, idle again; this task never yields
                time.sleep(0.001)  # noqa: ASYNC251 (blocking on purpose: no checkpoint)
            clock._autojump()  # type: ignore[attr-defined]  # what the loop would call now
            assert trio.current_time() == 0.0
    assert trio.current_time() == 0.0
