"""The thread-aware test clock holds virtual time while a worker thread works."""

from __future__ import annotations

import time

import pytest
import trio
from trio.testing import MockClock

from tests.clocks import new_thread_clock


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
