"""While a journal runs, its worker thread gets the GIL back promptly from a busy Trio thread:
the interpreter's switch interval is short, and comes back when the last journal stops."""

from __future__ import annotations

import sys

import pytest

from actors.journal.actor import GIL_SWITCH_INTERVAL_S
from tests.bots.helpers import running_journal

SHORT = pytest.approx(GIL_SWITCH_INTERVAL_S)  # kept in microseconds


async def test_the_switch_interval_is_short_while_any_journal_runs(tmp_path, thread_clock):
    before = sys.getswitchinterval()
    assert before > GIL_SWITCH_INTERVAL_S  # Python's default, 5 ms
    async with running_journal(tmp_path / "a.sqlite3"):
        assert sys.getswitchinterval() == SHORT
        async with running_journal(tmp_path / "b.sqlite3"):
            assert sys.getswitchinterval() == SHORT
        assert sys.getswitchinterval() == SHORT  # the first one still runs
    assert sys.getswitchinterval() == before
