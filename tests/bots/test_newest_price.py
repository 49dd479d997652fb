"""A busy bot acts on the newest price, never on a backlog.

Real pieces: a local Binance simulator publishing 1,000 tickers/s, the market-data plane, a
real journal (SQLite, fsync on) and a strategy that trades on every tick, so every tick waits
for the journal twice. Real time: the assertions do not depend on how fast anything runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from actors.bots import Bot
from actors.journal import Journal
from actors.market_data.mailbox import Mailbox
from actors.messages import Ticker
from actors.simulator import open_exchange_server
from supervisor.config import BotConfig, JournalConfig, MarketConfig, PaperConfig, RiskConfig
from tests.bots.helpers import D
from tests.bots.strategies import EveryTick
from tests.market_data.helpers import config_for, open_plane

SYMBOL = "BTC/USDT"


async def run_scoped(
    fn: Any, scope: trio.CancelScope, done: trio.Event, *, task_status: Any
) -> None:
    try:
        with scope:
            await fn(task_status=task_status)
    finally:
        done.set()


async def test_the_strategy_is_handed_the_newest_ticker_even_while_the_journal_stalls(tmp_path):
    EveryTick.seen = []
    EveryTick.probe = None
    config = BotConfig(
        id="fast",
        exchange="binance",
        symbol=SYMBOL,
        strategy="tests.bots.strategies:EveryTick",
        risk=RiskConfig(
            max_orders_per_minute=1_000_000, max_tick_move_pct=50.0, price_confirm_ticks=1
        ),
        paper=PaperConfig(quote_balance=D(1_000_000), fee_pct=D(0)),
        market=MarketConfig(tick_size=D("0.01"), lot_size=D("0.00001"), min_notional=D(1)),
    )
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (SYMBOL,), seed=3, rate_hz=1000.0) as server,
            open_plane([config_for(server)]) as md,
            trio.open_nursery() as nursery,
        ):

            @asynccontextmanager
            async def subscribe(exchange: str, kind: str, symbol: str) -> AsyncIterator[Mailbox]:
                async with md.subscribe(exchange, kind, symbol) as mailbox:
                    EveryTick.probe = mailbox
                    yield mailbox

            journal = Journal(JournalConfig(path=str(tmp_path / "j.sqlite3"), fsync=True))
            journal_scope, journal_done = trio.CancelScope(), trio.Event()
            await nursery.start(run_scoped, journal.run, journal_scope, journal_done)
            bot = Bot(config, subscribe, journal)
            bot_scope, bot_done = trio.CancelScope(), trio.Event()
            await nursery.start(run_scoped, bot.run, bot_scope, bot_done)
            await bot.wait_processed(100)
            assert bot.statistics().orders >= 90  # it trades on (nearly) every tick

            # The journal stops: the bot blocks on its next write, newer tickers keep coming.
            journal_scope.cancel()
            await journal_done.wait()
            assert EveryTick.probe is not None
            skipped_before = EveryTick.probe.statistics().skipped
            published = 0
            async with md.subscribe("binance", "ticker", SYMBOL) as watcher:
                async for item in watcher:
                    if isinstance(item, Ticker):
                        newest = item
                        published += 1
                        if published == 51:  # the replayed one, then 50 new ones
                            break
            seen_before = len(EveryTick.seen)
            events = bot.statistics().events
            journal_scope, journal_done = trio.CancelScope(), trio.Event()
            await nursery.start(run_scoped, journal.run, journal_scope, journal_done)
            await bot.wait_processed(events + 2)  # the stalled tick, then one more

            # The first tick after the stall is at least as new as the newest published during
            # it: the ones in between were conflated away, not queued.
            after_stall = EveryTick.seen[seen_before][0]
            assert after_stall.sequence is not None
            assert newest.sequence is not None
            assert after_stall.sequence >= newest.sequence
            # (50 published during it; the bot took at most one of them before it blocked)
            assert EveryTick.probe.statistics().skipped - skipped_before >= 48
            # And at every call, nothing newer than the strategy's ticker had been published.
            assert all(pending == 0 for _, pending in EveryTick.seen)
            sequences = [t.sequence for t, _ in EveryTick.seen]
            assert sequences == sorted(set(sequences))
            # Stop as the daemon does, the bot before its journal: cancelling both at once
            # could close the journal under an order the bot is journaling, and the bot would
            # then wait out its whole outcome grace (10 s) before it stops.
            bot_scope.cancel()
            await bot_done.wait()
            nursery.cancel_scope.cancel()
