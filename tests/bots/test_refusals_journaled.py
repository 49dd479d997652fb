"""The bot actor journals its refusals, counted: written without waiting once a window is over,
and what is left when it stops. Real journal (SQLite in tmp_path)."""

from __future__ import annotations

import attrs
import trio

from actors.bots.core import REFUSAL_WINDOW_S
from actors.journal.store import JournalStore, RefusalRecord
from supervisor.config import RiskConfig
from tests.bots.helpers import WallClock, bot_config, running_bot, send_events, tick

RATE_LIMITED = bot_config(
    "tests.bots.strategies:AlwaysBuy",
    {},
    risk=attrs.evolve(
        RiskConfig(max_tick_move_pct=20.0, price_confirm_ticks=1),
        max_orders_per_minute=1,
        max_open_positions=10,
    ),
)


async def test_refusals_are_journaled_per_window_and_at_stop(tmp_path, thread_clock):
    path = tmp_path / "j.sqlite3"
    clock = WallClock()
    start = clock.now
    with trio.fail_after(10):
        async with running_bot(path, RATE_LIMITED, clock=clock) as (bot, feed, journal):
            await send_events(bot, feed, *(tick(100, clock=clock) for _ in range(3)))
            await journal.flush()
            assert await journal.refusals("b1") == []  # counted, not yet written
            clock.now += REFUSAL_WINDOW_S
            await send_events(bot, feed, tick(100, clock=clock))  # ends the window
            await journal.flush()
            assert await journal.refusals("b1") == [
                RefusalRecord("b1", "rate_limit", "signal:always", start, start, 2)
            ]
            await send_events(bot, feed, tick(100, clock=clock))
            assert bot.statistics().rejections == {"rate_limit": 4}
    store = JournalStore(path)
    store.open()
    try:
        rows = store.refusals("b1")
    finally:
        store.close()
    assert [(r.first_ts, r.last_ts, r.count) for r in rows] == [
        (start, start, 2),
        (clock.now, clock.now, 2),  # the rest, written when the bot stopped
    ]
