from __future__ import annotations

import pytest
from trio.testing import MockClock


@pytest.fixture
def thread_clock() -> MockClock:
    """Autojump clock for tests whose peer is a worker thread (to_thread SQLite): with threshold
    0 the clock jumps while the thread works; 0.05 s leaves it time (unless the machine is so
    loaded that one SQLite call takes longer)."""
    return MockClock(autojump_threshold=0.05)
