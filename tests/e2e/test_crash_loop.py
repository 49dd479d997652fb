"""A strategy that raises is restarted with backoff; a crash loop escalates to the root instead
of spinning, through ``open_supervisor`` with a real feed and journal."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from actors.errors import RestartIntensityError
from actors.simulator import open_exchange_server
from supervisor.config import (
    BackoffPolicy,
    BotConfig,
    Config,
    ExchangeConfig,
    HttpConfig,
    JournalConfig,
    SupervisorConfig,
)
from supervisor.otp.events import ChildCrashed, ChildStateChanged, Escalated
from supervisor.system import open_supervisor


async def test_a_raising_strategy_is_restarted_then_escalates(
    tmp_path: Path, thread_clock: MockClock
) -> None:
    events: list[Any] = []
    backoff = BackoffPolicy(initial_s=1.0, multiplier=2.0, max_s=8.0, reset_after_s=600.0)
    with trio.fail_after(120):
        async with open_exchange_server("binance", ("BTC/USDT",), seed=3, rate_hz=10.0) as server:
            config = Config(
                supervisor=SupervisorConfig(max_restarts=2, period_s=300.0),
                backoff=backoff,
                exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                bots=(
                    BotConfig(
                        id="buggy",
                        exchange="sim",
                        symbol="BTC/USDT",
                        strategy="tests.bots.strategies:Raising",
                        params={"on_tick_number": 2},
                    ),
                ),
                journal=JournalConfig(path=str(tmp_path / "journal.sqlite3"), fsync=False),
                http=HttpConfig(enabled=False),
            )
            with pytest.RaisesGroup(RestartIntensityError, flatten_subgroups=True):
                async with open_supervisor(
                    config, rng=random.Random(7), observers=(events.append,)
                ):
                    await trio.sleep_forever()

    crashes = [e for e in events if isinstance(e, ChildCrashed) and e.child == "bot:buggy"]
    assert [c.error_types for c in crashes] == [("ZeroDivisionError",)] * 3
    assert all(c.programming_error for c in crashes)  # not mistaken for a flaky feed
    # Restarted after a backoff each time: full jitter, so each wait is drawn from
    # (0, ceiling], the ceiling doubling from initial_s (1 s, then 2 s).
    states = [e for e in events if isinstance(e, ChildStateChanged) and e.child == "bot:buggy"]
    waits = [
        b.at - a.at
        for a, b in itertools.pairwise(states)
        if (a.to_state, b.to_state) == ("backoff", "starting")
    ]
    assert len(waits) == 2
    assert all(0 < wait <= ceiling for wait, ceiling in zip(waits, (1.0, 2.0), strict=True))
    escalations = [
        (e.supervisor, e.child, e.max_restarts) for e in events if isinstance(e, Escalated)
    ]
    # The bots' supervisor gave up; the root, which restarts nothing, passed it on.
    assert escalations == [("bots", "bot:buggy", 2), ("root", "bots", 0)]
