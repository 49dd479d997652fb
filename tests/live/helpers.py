"""Live trading against the local Binance venue over real sockets: a journal, an account, and
bots whose tickers are the venue's own book (so what a bot prices on is what the venue fills)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.bots import Bot
from actors.bots.config import BotConfig, MarketConfig, PaperConfig, RiskConfig
from actors.bots.live import Executors
from actors.journal import Journal
from actors.messages import Ticker
from actors.simulator import BinanceVenue, open_binance_venue
from actors.venues.binance.account import BinanceAccount
from actors.venues.binance.config import AccountConfig
from actors.venues.binance.signing import HmacSigner
from tests.bots.helpers import EXCHANGE, SYMBOL, FakeFeed, running_journal

NATIVE = "BTCUSDT"
ACCOUNT = "acct"


def account_config(venue: BinanceVenue, **changes: Any) -> AccountConfig:
    fields: dict[str, Any] = {
        "name": ACCOUNT,
        "api_key_env": "TEST_KEY",
        "api_secret_env": "TEST_SECRET",
        "rest_url": venue.rest_url,
        "ws_api_url": venue.ws_api_url,
        "max_order_quote": Decimal("100000"),
        "max_working_quote": Decimal("1000000"),
    }
    fields.update(changes)
    return AccountConfig(**fields)


def live_bot(strategy: str, *, bot_id: str = "b1", **changes: Any) -> BotConfig:
    fields: dict[str, Any] = {
        "id": bot_id,
        "exchange": EXCHANGE,
        "symbol": SYMBOL,
        "strategy": strategy,
        "mode": "live",
        "account": ACCOUNT,
        "order_quote": Decimal("500"),
        "risk": RiskConfig(
            max_tick_move_pct=20.0,
            max_orders_per_minute=100,
            price_confirm_ticks=1,
            max_price_age_s=3600.0,
        ),
        "paper": PaperConfig(quote_balance=Decimal("10000"), fee_pct=Decimal("0.1")),
        "market": MarketConfig(
            tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"), min_notional=Decimal("5")
        ),
    }
    fields.update(changes)
    return BotConfig(**fields)


def venue_tick(venue: BinanceVenue, *, now: float) -> Ticker:
    book = venue.book_ticker(NATIVE)
    return Ticker(
        exchange=EXCHANGE,
        symbol=SYMBOL,
        bid=Decimal(book["bidPrice"]),
        ask=Decimal(book["askPrice"]),
        last=None,
        bid_size=None,
        ask_size=None,
        exchange_ts=None,
        received_ts=now,
        source="ws",
    )


@attrs.define
class Live:
    venue: BinanceVenue
    journal: Journal
    account: BinanceAccount
    nursery: trio.Nursery
    feed: FakeFeed = attrs.Factory(FakeFeed)

    async def start_account(self) -> None:
        await self.nursery.start(self.account.run)

    async def start_bot(self, config: BotConfig) -> Bot:
        bot = Bot(
            config,
            self.feed.subscribe,
            self.journal,
            wall_clock=self.venue.now_ts,
            executor_factory=Executors({ACCOUNT: self.account}),
        )
        await self.nursery.start(bot.run)
        return bot

    async def tick(self, bot: Bot) -> None:
        """The venue's book now, to the bot; returns once the bot acted on it."""
        done = bot.statistics().events + 1
        self.feed.publish(venue_tick(self.venue, now=self.venue.now_ts()))
        await bot.wait_processed(done)

    def position(self, bot: Bot) -> Any:
        return bot.statistics()


@asynccontextmanager
async def live(
    tmp_path: Path,
    *,
    account: dict[str, Any] | None = None,
    start: bool = True,
    journal_name: str = "journal.db",
    **venue_kwargs: Any,
) -> AsyncIterator[Live]:
    venue_kwargs.setdefault("rate_hz", 0.0)
    async with (
        open_binance_venue((SYMBOL,), seed=1, **venue_kwargs) as venue,
        running_journal(tmp_path / journal_name) as journal,
        trio.open_nursery() as nursery,
    ):
        config = account_config(venue, **(account or {}))
        acct = BinanceAccount(config, HmacSigner(venue.api_key, venue.secret), (SYMBOL,))
        setup = Live(venue, journal, acct, nursery)
        if start:
            await setup.start_account()
        try:
            yield setup
        finally:
            nursery.cancel_scope.cancel(reason="test done")
