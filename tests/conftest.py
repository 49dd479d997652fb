from __future__ import annotations

import pytest
from trio.testing import MockClock

from tests.clocks import new_thread_clock


@pytest.fixture
def thread_clock() -> MockClock:
    """The autojump clock for tests whose peer is a worker thread (see ``tests/clocks.py``)."""
    return new_thread_clock()
