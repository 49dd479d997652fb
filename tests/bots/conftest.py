from __future__ import annotations

import pytest
from trio.testing import MockClock


@pytest.fixture
def thread_clock() -> MockClock:
    """Autojump clock for tests whose peer is a worker thread (to_thread SQLite): threshold 0
    misfires with threads (STYLE, checked facts), 0.05 s does not."""
    return MockClock(autojump_threshold=0.05)
