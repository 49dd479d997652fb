"""Test helpers: the market-data input boundary (a subscribe callable backed by the plane's
own ticker slots and trade rings, which the test publishes into), tick factories, a settable
wall clock, and a running journal+bot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio

from actors.bots import Bot, ExecutorFactory, make_executor
from actors.journal import Journal
from actors.market_data.mailbox import TRADE_RING_SIZE, Mailbox, TickerSlot, TradeRing
from actors.messages import FeedState, Stream, Ticker
from supervisor.config import BotConfig, JournalConfig, MarketConfig, PaperConfig, RiskConfig

EXCHANGE = "sim"
SYMBOL = "BTC/USDT"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class WallClock:
    """A settable wall clock (epoch seconds) for price age and UTC-day rules."""

    def __init__(self, now: float = T0 + 3600):
        self.now = now

    def __call__(self) -> float:
        return self.now


def D(value: Any) -> Decimal:
    return Decimal(str(value))


def tick(
    bid: Any,
    ask: Any = None,
    *,
    ts: float | None = None,
    source: str = "ws",
    last: Any = None,
    clock: WallClock | None = None,
) -> Ticker:
    received = ts if ts is not None else (clock.now if clock is not None else T0 + 3600)
    return Ticker(
        exchange=EXCHANGE,
        symbol=SYMBOL,
        bid=D(bid),
        ask=D(bid if ask is None else ask),
        last=None if last is None else D(last),
        bid_size=None,
        ask_size=None,
        exchange_ts=None,
        received_ts=received,
        source=source,  # type: ignore[arg-type]
    )


class FakeFeed:
    """The bot's input boundary: the market-data plane's own buffers (a ``TickerSlot`` or a
    ``TradeRing`` per subscription), which the test publishes into as a connection reader
    would. ``trade_ring_size`` is small enough for a test to overflow it."""

    def __init__(self, trade_ring_size: int = TRADE_RING_SIZE):
        self.trade_ring_size = trade_ring_size
        self.feeds: dict[tuple[str, str, str], TickerSlot | TradeRing] = {}
        self.subscribe_calls: list[tuple[str, str, str]] = []

    @asynccontextmanager
    async def subscribe(self, exchange: str, kind: str, symbol: str) -> AsyncIterator[Mailbox]:
        key = (exchange, kind, symbol)
        stream = Stream(kind, symbol)  # type: ignore[arg-type]
        feed = TickerSlot(stream) if kind == "ticker" else TradeRing(stream, self.trade_ring_size)
        self.feeds[key] = feed
        self.subscribe_calls.append(key)
        try:
            with feed.open_mailbox() as mailbox:
                yield mailbox
        finally:
            if self.feeds.get(key) is feed:
                del self.feeds[key]
            feed.close()

    def publish(self, event: Any, kind: str = "ticker") -> None:
        feed = self.feeds[(EXCHANGE, kind, SYMBOL)]
        if isinstance(event, FeedState):
            feed.post_state(event)
        else:
            feed.publish(event)  # type: ignore[arg-type]

    def close(self, kind: str = "ticker") -> None:
        self.feeds[(EXCHANGE, kind, SYMBOL)].close()


def bot_config(
    strategy: str = "threshold",
    params: dict[str, Any] | None = None,
    *,
    bot_id: str = "b1",
    risk: RiskConfig | None = None,
    paper: PaperConfig | None = None,
    market: MarketConfig | None = None,
    **kwargs: Any,
) -> BotConfig:
    return BotConfig(
        id=bot_id,
        exchange=EXCHANGE,
        symbol=SYMBOL,
        strategy=strategy,
        params={"buy_below": "100", "sell_above": "110"} if params is None else params,
        risk=risk
        or RiskConfig(max_tick_move_pct=20.0, max_orders_per_minute=100, price_confirm_ticks=1),
        paper=paper
        or PaperConfig(
            quote_balance=Decimal("10000"), fee_pct=Decimal("0"), slippage_pct=Decimal("0")
        ),
        market=market
        or MarketConfig(
            tick_size=Decimal("0.01"), lot_size=Decimal("0.001"), min_notional=Decimal("1")
        ),
        **kwargs,
    )


async def send_events(bot: Bot, feed: FakeFeed, *events: Any, kind: str = "ticker") -> None:
    """Publish each event and wait until the bot has fully acted on it."""
    for event in events:
        done = bot.statistics().events + 1
        feed.publish(event, kind)
        await bot.wait_processed(done)


@asynccontextmanager
async def running_journal(path: Path, *, fsync: bool = False) -> AsyncIterator[Journal]:
    journal = Journal(JournalConfig(path=str(path), fsync=fsync))
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        try:
            yield journal
        finally:
            nursery.cancel_scope.cancel(reason="test done with journal")


@asynccontextmanager
async def running_bot(
    path: Path,
    config: BotConfig,
    *,
    feed: FakeFeed | None = None,
    clock: WallClock | None = None,
    events: trio.MemorySendChannel[Any] | None = None,
    executor_factory: ExecutorFactory = make_executor,
) -> AsyncIterator[tuple[Bot, FakeFeed, Journal]]:
    feed = feed or FakeFeed()
    async with running_journal(path) as journal, trio.open_nursery() as nursery:
        bot = Bot(
            config,
            feed.subscribe,
            journal,
            events=events,
            wall_clock=clock or WallClock(),
            executor_factory=executor_factory,
        )
        await nursery.start(bot.run)
        try:
            yield bot, feed, journal
        finally:
            nursery.cancel_scope.cancel(reason="test done with bot")
