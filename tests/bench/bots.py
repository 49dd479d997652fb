"""Bot engine benchmark (a script, not a test): ``python tests/bench/bots.py``.

Prints, in this order:

* the age of the ticker at the strategy (``received_ts`` to the strategy call, p50/p90/p99) for
  a bot that trades on every tick with a real journal (fsync on), fed ~1,000 tickers/s over a
  WebSocket by a simulator in another process (so the feed keeps its pace while the bot is
  busy), through the real market-data plane;
* ticks/s through one bot when no tick trades (tick -> guard -> monitor -> strategy), and when
  every tick trades (-> risk -> paper fill -> two awaited journal writes: intent and fill);
* journal writes/s with fsync on (``synchronous=FULL``): one writer awaiting each write, and 100
  concurrent writers (group commit);
* bot-ticks/s for 100 and 1000 bots on 10 symbols in one process, one shared journal, with one
  tick in ten making every bot on that symbol trade.

For the throughput phases the bench publishes into each symbol's ticker slot (the plane's own
buffer) and waits until every bot on it has acted before publishing the next tick, so no tick
is conflated away. Logging is off. Every phase is bounded; one that runs out of time says so.
"""

from __future__ import annotations

import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import trio
from loguru import logger

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from actors.bots import Bot, Signal, StrategyContext  # noqa: E402
from actors.journal import Journal  # noqa: E402
from actors.journal.store import OrderIntent  # noqa: E402
from actors.market_data.mailbox import Mailbox, TickerSlot  # noqa: E402
from actors.messages import Stream, Ticker  # noqa: E402
from supervisor.config import (  # noqa: E402
    BotConfig,
    ExchangeConfig,
    JournalConfig,
    MarketConfig,
    PaperConfig,
    RiskConfig,
)
from tests.market_data.helpers import open_plane  # noqa: E402

LOW, MID, HIGH = Decimal("95"), Decimal("105"), Decimal("115")
PHASE_LIMIT_S = 25.0
LAG_RATE_HZ = 1000.0
LAG_WARMUP_S = 1.0
LAG_MEASURE_S = 5.0


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
    """One ticker slot per symbol, shared by the bots on it (as the plane does)."""

    def __init__(self) -> None:
        self.slots: dict[str, TickerSlot] = {}

    @asynccontextmanager
    async def subscribe(self, exchange: str, kind: str, symbol: str) -> AsyncIterator[Mailbox]:
        slot = self.slots.setdefault(symbol, TickerSlot(Stream("ticker", symbol)))
        with slot.open_mailbox() as mailbox:
            yield mailbox


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

            async def feed_symbol(symbol: str, on_symbol: list[Bot]) -> None:
                slot = feeds.slots[symbol]
                for i in range(ticks_per_symbol):
                    if trade_every and i % trade_every == 0:
                        price = LOW if (i // trade_every) % 2 == 0 else HIGH
                    else:
                        price = MID
                    slot.publish(ticker(symbol, price))
                    for bot in on_symbol:
                        await bot.wait_processed(i + 1)

            async with trio.open_nursery() as feeders:
                for n, symbol in enumerate(symbols):
                    feeders.start_soon(feed_symbol, symbol, bots[n::n_symbols])
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


# --- the age of the ticker at the strategy --------------------------------------------------------


class LagProbe:
    """Trades on every tick (buy when flat, close when holding) and records how old each
    ticker is when it is handed over (wall clock, since the plane received it)."""

    ages: ClassVar[list[float]] = []
    recording: ClassVar[bool] = False

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if LagProbe.recording:
            LagProbe.ages.append(time.time() - ticker.received_ts)
        return Signal.buy("lag") if ctx.position.flat else Signal.close("lag")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def simulator_process(rate_hz: float) -> AsyncIterator[ExchangeConfig]:
    """``python -m actors.simulator`` in its own process; yields the config to reach it."""
    args = ["binance", "--symbols", "BTC/USDT", "--rate", str(rate_hz)]
    args += ["--ws-port", str(free_port()), "--rest-port", str(free_port())]
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "actors.simulator", *args], cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        text = ""
        with trio.fail_after(10):
            while "simulator listening" not in text:
                chunk = await proc.stderr.receive_some()
                assert chunk, "the simulator exited"
                text += chunk.decode()
        ws = re.search(r"ws://[^\s'\",}]+", text)
        rest = re.search(r"http://[^\s'\",}]+", text)
        assert ws, text
        assert rest, text
        yield ExchangeConfig(name="binance", protocol="binance", url=ws[0], rest_url=rest[0])
    finally:
        proc.terminate()
        with trio.move_on_after(5):
            await proc.wait()
        proc.kill()


async def ticker_lag(path: Path) -> tuple[list[float], int, int, int]:
    """Returns (ages in s, ticks handed to the strategy while measuring, orders, skipped)."""
    LagProbe.ages, LagProbe.recording = [], False
    bot_config = BotConfig(
        id="lag",
        exchange="binance",
        symbol="BTC/USDT",
        strategy=f"{__name__}:LagProbe",
        risk=RiskConfig(
            max_orders_per_minute=1_000_000, max_tick_move_pct=50.0, price_confirm_ticks=1
        ),
        paper=PaperConfig(quote_balance=Decimal(10_000_000), fee_pct=Decimal("0.1")),
        market=MarketConfig(
            tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"), min_notional=Decimal(1)
        ),
    )
    journal = Journal(JournalConfig(path=str(path), fsync=True))
    mailboxes: list[Mailbox] = []
    with trio.fail_after(PHASE_LIMIT_S):
        async with (
            simulator_process(LAG_RATE_HZ) as exchange,
            open_plane([exchange]) as md,
            trio.open_nursery() as nursery,
        ):

            @asynccontextmanager
            async def subscribe(exchange: str, kind: str, symbol: str) -> AsyncIterator[Mailbox]:
                async with md.subscribe(exchange, kind, symbol) as mailbox:
                    mailboxes.append(mailbox)
                    yield mailbox

            await nursery.start(journal.run)
            bot = Bot(bot_config, subscribe, journal)
            await nursery.start(bot.run)
            await trio.sleep(LAG_WARMUP_S)
            before = bot.statistics()
            skipped = mailboxes[0].statistics().skipped
            LagProbe.recording = True
            await trio.sleep(LAG_MEASURE_S)
            LagProbe.recording = False
            after = bot.statistics()
            skipped = mailboxes[0].statistics().skipped - skipped
            nursery.cancel_scope.cancel()
    return LagProbe.ages, after.ticks - before.ticks, after.orders - before.orders, skipped


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def main() -> None:
    logger.remove()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("bot engine benchmark (paper executor, SQLite journal in", root, ")")

        ages, ticks, orders, skipped = await ticker_lag(root / "lag.sqlite3")
        ms = [age * 1000 for age in ages]
        print(
            f"ticker age at the strategy ({LAG_RATE_HZ:,.0f} tickers/s from another process, "
            f"a trade every tick, fsync on): p50 {percentile(ms, 50):.1f} ms, "
            f"p90 {percentile(ms, 90):.1f} ms, p99 {percentile(ms, 99):.1f} ms  "
            f"({ticks} ticks handed over in {LAG_MEASURE_S:.0f} s, {orders} orders, "
            f"{skipped} tickers conflated away)"
        )
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
        for n_bots, per_symbol in ((100, 500), (1000, 100)):
            try:
                seconds, ticks, orders = await run_bots(
                    root / f"many{n_bots}.sqlite3", n_bots, 10, per_symbol, 10
                )
            except trio.TooSlowError:
                print(
                    f"{n_bots:4d} bots on 10 symbols:     did not finish in {PHASE_LIMIT_S:.0f} s"
                )
                continue
            print(
                f"{n_bots:4d} bots on 10 symbols:     {ticks / seconds:10,.0f} bot-ticks/s  "
                f"({ticks} bot-ticks, {orders} orders, {seconds:.2f} s)"
            )


if __name__ == "__main__":
    trio.run(main)
