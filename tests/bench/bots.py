"""Bot engine benchmark (a script, not a test): ``python tests/bench/bots.py``.

Prints:

* ticks/s through one bot when no tick trades (tick -> guard -> monitor -> strategy), and when
  every tick trades (-> risk -> paper fill -> two awaited journal writes: intent and fill);
* bot-ticks/s for 100 and 1000 bots on 10 symbols in one process, one shared journal, with one
  tick in ten making every bot on that symbol trade;
* journal writes/s with fsync on (``synchronous=FULL``): one writer awaiting each write, and 100
  concurrent writers (group commit).

The feed here is a plain memory channel per bot (the market-data plane's conflation and fan-out
are not measured). Logging is off. Every phase is bounded; the whole run takes well under 60 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.bots import Bot
from actors.journal import Journal
from actors.journal.store import OrderIntent
from actors.messages import Ticker
from supervisor.config import BotConfig, JournalConfig, PaperConfig, RiskConfig

LOW, MID, HIGH = Decimal("95"), Decimal("105"), Decimal("115")
PHASE_LIMIT_S = 25.0


def config(bot_id: str, symbol: str) -> BotConfig:
    return BotConfig(
        id=bot_id,
        exchange="bench",
        symbol=symbol,
        strategy="threshold",
        params={"buy_below": "100", "sell_above": "110"},
        risk=RiskConfig(
            max_tick_move_pct=50.0,
            max_orders_per_minute=1_000_000,
            max_price_age_s=60.0,
            stop_loss_pct=20.0,
            trailing_stop_pct=30.0,
        ),
        paper=PaperConfig(quote_balance=Decimal("1000000"), fee_pct=Decimal("0.1")),
    )


def ticker(symbol: str, price: Decimal) -> Ticker:
    return Ticker(
        "bench", symbol, price, price + Decimal("0.01"), None, None, None, None, time.time()
    )


class Feeds:
    """One bounded channel per (bot) subscription; the bench writes every tick to each."""

    def __init__(self) -> None:
        self.by_symbol: dict[str, list[trio.MemorySendChannel[Any]]] = {}

    @asynccontextmanager
    async def subscribe(self, exchange: str, kind: str, symbol: str):  # type: ignore[no-untyped-def]
        send, receive = trio.open_memory_channel[Any](16)
        self.by_symbol.setdefault(symbol, []).append(send)
        try:
            with receive:
                yield receive
        finally:
            send.close()


async def run_bots(
    path: Path, n_bots: int, n_symbols: int, ticks_per_symbol: int, trade_every: int
) -> tuple[float, int, int]:
    """Returns (seconds, bot-ticks processed, orders placed)."""
    feeds = Feeds()
    symbols = [f"S{i}/USDT" for i in range(n_symbols)]
    journal = Journal(JournalConfig(path=str(path), fsync=False))
    with trio.fail_after(PHASE_LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            bots = [
                Bot(config(f"bot{i}", symbols[i % n_symbols]), feeds.subscribe, journal)
                for i in range(n_bots)
            ]
            for bot in bots:
                await nursery.start(bot.run)
            started = time.perf_counter()

            async def feed_symbol(symbol: str) -> None:
                for i in range(ticks_per_symbol):
                    if trade_every and i % trade_every == 0:
                        price = LOW if (i // trade_every) % 2 == 0 else HIGH
                    else:
                        price = MID
                    t = ticker(symbol, price)
                    for channel in feeds.by_symbol[symbol]:
                        await channel.send(t)

            async with trio.open_nursery() as feeders:
                for symbol in symbols:
                    feeders.start_soon(feed_symbol, symbol)
            for bot in bots:
                await bot.wait_processed(ticks_per_symbol)
            elapsed = time.perf_counter() - started
            orders = sum(bot.statistics().orders for bot in bots)
            nursery.cancel_scope.cancel()
    return elapsed, n_bots * ticks_per_symbol, orders


async def journal_writes(path: Path, writers: int, per_writer: int) -> tuple[float, int, int]:
    journal = Journal(JournalConfig(path=str(path), fsync=True))

    async def writer(n: int) -> None:
        bot_id = f"w{n}"
        await journal.load_bot(bot_id, initial_quote=Decimal(1), now_ts=time.time())
        for seq in range(1, per_writer + 1):
            await journal.record_intent(
                OrderIntent(
                    f"{bot_id}-{seq}",
                    bot_id,
                    seq,
                    "X/Y",
                    "buy",
                    "market",
                    Decimal(1),
                    None,
                    "bench",
                    None,
                    time.time(),
                )
            )

    with trio.fail_after(PHASE_LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            started = time.perf_counter()
            async with trio.open_nursery() as writers_nursery:
                for n in range(writers):
                    writers_nursery.start_soon(writer, n)
            elapsed = time.perf_counter() - started
            stats = journal.statistics()
            nursery.cancel_scope.cancel()
    return elapsed, stats.writes, stats.commits


async def main() -> None:
    logger.remove()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("bot engine benchmark (paper executor, SQLite journal in", root, ")")

        seconds, ticks, orders = await run_bots(root / "quiet.sqlite3", 1, 1, 20_000, trade_every=0)
        print(
            f"1 bot, no trades:            {ticks / seconds:10,.0f} ticks/s  "
            f"({ticks} ticks, {seconds:.2f} s)"
        )
        seconds, ticks, orders = await run_bots(root / "busy.sqlite3", 1, 1, 2_000, trade_every=1)
        print(
            f"1 bot, a trade every tick:   {ticks / seconds:10,.0f} ticks/s  "
            f"({orders} orders, {2 * orders / seconds:,.0f} journal writes/s, fsync off)"
        )
        for n_bots, per_symbol in ((100, 500), (1000, 100)):
            seconds, ticks, orders = await run_bots(
                root / f"many{n_bots}.sqlite3", n_bots, 10, per_symbol, 10
            )
            print(
                f"{n_bots:4d} bots on 10 symbols:     {ticks / seconds:10,.0f} bot-ticks/s  "
                f"({ticks} bot-ticks, {orders} orders, {seconds:.2f} s)"
            )
        seconds, writes, commits = await journal_writes(root / "seq.sqlite3", 1, 300)
        print(
            f"journal, fsync on, 1 writer:  {writes / seconds:10,.0f} writes/s  "
            f"({writes} writes, {commits} commits)"
        )
        seconds, writes, commits = await journal_writes(root / "par.sqlite3", 100, 30)
        print(
            f"journal, fsync on, 100 writers: {writes / seconds:8,.0f} writes/s  "
            f"({writes} writes, {commits} commits: group commit)"
        )


if __name__ == "__main__":
    trio.run(main)
