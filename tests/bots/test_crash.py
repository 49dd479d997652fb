"""kill -9 at arbitrary points, four times, then replay: consistent state, no duplicate order ids.

A child process (``python -c``) runs a real Journal and a real Bot trading on every tick and
prints, after each tick, how many fills it has booked (fills are committed before they are
booked, so a printed count is durable). The test kills it with SIGKILL while it trades, a few
milliseconds after a checkpoint so the kill lands anywhere in the order path, restarts it on the
same file (it replays and trades on), four times, checking the file each time, and finally
restarts a bot on it in this process. Real time, bounded by ``fail_after``.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import trio

from actors.bots.positions import Book
from actors.journal.store import JournalStore
from supervisor.config import MarketConfig, PaperConfig, RiskConfig
from tests.bots.helpers import D, FakeFeed, WallClock, bot_config, running_bot, send_events, tick

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys, time
from contextlib import asynccontextmanager
from decimal import Decimal

import trio
from loguru import logger

from actors.bots import Bot
from actors.journal import Journal
from actors.market_data.mailbox import TickerSlot
from actors.messages import Stream, Ticker
from supervisor.config import BotConfig, JournalConfig, PaperConfig, RiskConfig

logger.remove()


async def main(path):
    slot = TickerSlot(Stream("ticker", "BTC/USDT"))

    @asynccontextmanager
    async def subscribe(exchange, kind, symbol):
        with slot.open_mailbox() as mailbox:
            yield mailbox

    config = BotConfig(
        id="b1", exchange="sim", symbol="BTC/USDT", strategy="threshold",
        params={"buy_below": "100", "sell_above": "110"},
        risk=RiskConfig(
            max_tick_move_pct=50.0, max_orders_per_minute=1_000_000, price_confirm_ticks=1
        ),
        paper=PaperConfig(
            quote_balance=Decimal("10000"), fee_pct=Decimal("0.1"), slippage_pct=Decimal("0.01")
        ),
    )
    journal = Journal(JournalConfig(path=path, fsync=False))
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        bot = Bot(config, subscribe, journal)
        await nursery.start(bot.run)
        i = 0
        while True:
            price = Decimal("95.37") if i % 2 == 0 else Decimal("115.13")
            done = bot.statistics().events + 1
            slot.publish(Ticker("sim", "BTC/USDT", price, price + Decimal("0.02"),
                                None, None, None, None, time.time()))
            await bot.wait_processed(done)
            print(bot.statistics().fills, flush=True)
            i += 1


trio.run(main, sys.argv[1])
"""


async def run_and_kill(path: Path, after_new_fills: int, delay_s: float) -> int:
    """Run the child until it reports ``after_new_fills`` more fills, let it run ``delay_s``
    more (so the kill lands at varied points of the order path), SIGKILL it; returns the last
    fill count it reported."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, cwd=ROOT
    )
    reported: list[int] = []
    try:
        buffer = b""
        assert proc.stdout is not None
        while True:
            chunk = await proc.stdout.receive_some()
            assert chunk, "child exited early"
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            reported += [int(line) for line in lines if line.strip()]
            if len(reported) > 1 and reported[-1] - reported[0] >= after_new_fills:
                break
        await trio.sleep(delay_s)  # not polling: a deliberate, varied kill point
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()
    assert proc.returncode == -signal.SIGKILL
    return reported[-1]


def check_file(path: Path, acknowledged_fills: int) -> Book:
    store = JournalStore(path)
    store.open()
    try:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orders = store.orders("b1")
        fills = store.fills("b1")
    finally:
        store.close()
    ids = [o.intent.client_id for o in orders]
    assert len(ids) == len(set(ids))
    assert [o.intent.seq for o in orders] == list(range(1, len(orders) + 1))
    assert ids == [f"b1-{seq}" for seq in range(1, len(orders) + 1)]
    assert len(fills) >= acknowledged_fills  # nothing the bot had booked was lost
    filled = {f.client_id for f in fills}
    for order in orders:
        assert (order.status == "filled") == (order.intent.client_id in filled), order
        assert order.status in ("filled", "intent", "cancelled"), order
    # at most the order being placed at the moment of the kill can be unresolved
    assert sum(o.status == "intent" for o in orders) <= 1
    book = Book.replay(D(10000), fills)
    assert book.base >= 0
    assert book.quote == D(10000) + sum(
        (f.price * f.size * (1 if f.side == "sell" else -1) - f.fee for f in fills), D(0)
    )
    return book


async def test_kill_9_repeatedly_then_replay(tmp_path):
    path = tmp_path / "crash.sqlite3"
    with trio.fail_after(60):
        rng = random.Random(5)
        for _ in range(4):  # each run replays what the killed one left, then trades on
            acknowledged = await run_and_kill(
                path, after_new_fills=10, delay_s=rng.uniform(0, 0.005)
            )
            book = check_file(path, acknowledged)

        clock = WallClock()
        config = bot_config(
            risk=RiskConfig(
                max_tick_move_pct=50.0, max_orders_per_minute=1000, price_confirm_ticks=1
            ),
            paper=PaperConfig(quote_balance=D(10000), fee_pct=D("0.1"), slippage_pct=D("0.01")),
            market=MarketConfig(),  # the child's (default) market steps
        )
        async with running_bot(path, config, clock=clock, feed=FakeFeed()) as (bot, feed, _):
            s = bot.statistics()
            assert (s.quote_balance, s.base_balance, s.fills) == (book.quote, book.base, book.fills)
            assert s.open_orders == 0
            next_seq = int(s.next_client_id.split("-")[1])
            holding = s.base_balance > 0
            await send_events(
                bot,
                feed,
                tick("115.13", "115.15", clock=clock)
                if holding
                else tick("95.37", "95.39", clock=clock),
            )
            assert bot.statistics().orders == s.orders + 1
            assert (bot.statistics().base_balance > 0) is not holding
        store = JournalStore(path)
        store.open()
        orders = store.orders("b1")
        store.close()
        assert not any(o.status == "intent" for o in orders)  # reconciled at restart
        assert orders[-1].intent.client_id == f"b1-{next_seq}"
        assert len({o.intent.client_id for o in orders}) == len(orders)
