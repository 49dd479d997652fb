"""Live trading against the local Binance venue over real sockets: a journal, an account, and
bots whose tickers are the venue's own book (so what a bot prices on is what the venue fills).

Bots and accounts run in their own cancel scopes (``stop_bot``, ``stop_account``), so a test
can stop them mid-order and start new ones on the same journal and venue, as a restarted
daemon would. ``check_invariants`` is what every live test must end with: no client order id
placed twice, every venue trade of our orders booked exactly once, and the bots' balances
moved exactly as the venue's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
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
from actors.simulator.binance_venue import VenueRequest
from actors.venues.binance.account import BinanceAccount
from actors.venues.binance.config import AccountConfig
from actors.venues.binance.signing import HmacSigner
from tests.bots.helpers import EXCHANGE, SYMBOL, FakeFeed, running_journal

NATIVE = "BTCUSDT"
ACCOUNT = "acct"
PREFIX = "bcf_"  # our client order ids (the default prefix)
INITIAL_QUOTE = Decimal("10000")
ORDER_PATH = "/api/v3/order"


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


def live_risk(**changes: Any) -> RiskConfig:
    fields: dict[str, Any] = {
        "max_tick_move_pct": 20.0,
        "max_orders_per_minute": 100,
        "price_confirm_ticks": 1,
        "max_price_age_s": 3600.0,
    }
    fields.update(changes)
    return RiskConfig(**fields)


def live_market(**changes: Any) -> MarketConfig:
    fields: dict[str, Any] = {
        "tick_size": Decimal("0.01"),
        "lot_size": Decimal("0.00001"),
        "min_notional": Decimal("5"),
    }
    fields.update(changes)
    return MarketConfig(**fields)


def live_bot(strategy: str, *, bot_id: str = "b1", **changes: Any) -> BotConfig:
    fields: dict[str, Any] = {
        "id": bot_id,
        "exchange": EXCHANGE,
        "symbol": SYMBOL,
        "strategy": strategy,
        "mode": "live",
        "account": ACCOUNT,
        "order_quote": Decimal("500"),
        "risk": live_risk(),
        "paper": PaperConfig(quote_balance=INITIAL_QUOTE, fee_pct=Decimal("0.1")),
        "market": live_market(),
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


def totals(venue: BinanceVenue) -> dict[str, Decimal]:
    """Every asset's balance on the venue, free plus locked."""
    return {asset: b.free + b.locked for asset, b in venue.balances().items()}


def order_posts(venue: BinanceVenue) -> list[VenueRequest]:
    """Every ``POST /api/v3/order`` that reached the venue."""
    return list(venue.requests(ORDER_PATH, method="POST"))


def rest_requests(venue: BinanceVenue) -> list[VenueRequest]:
    return [r for r in venue.requests() if r.transport == "rest"]


async def eventually(check: Callable[[], bool], *, interval_s: float = 0.5) -> None:
    """Return once ``check()`` holds, looking every ``interval_s`` of (virtual) time; bound it
    with the test's ``fail_after``. Each look costs the thread clock an idle period of real
    time: wait on the bot (``settled``, ``booked``) or the venue (``wait_for``) when you can."""
    while True:  # (polled: what it checks sets no event)
        if check():
            return
        await trio.sleep(interval_s)


@attrs.define
class Live:
    venue: BinanceVenue
    journal: Journal
    account: BinanceAccount
    nursery: trio.Nursery
    feed: FakeFeed = attrs.Factory(FakeFeed)
    _scopes: dict[int, tuple[trio.CancelScope, trio.Event]] = attrs.Factory(dict)

    # --- actors in their own scopes -------------------------------------------------------------

    async def _scoped(
        self,
        key: int,
        run: Callable[..., Awaitable[None]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        done = trio.Event()
        try:
            with trio.CancelScope() as scope:
                self._scopes[key] = (scope, done)
                await run(task_status=task_status)
        finally:
            done.set()

    async def _stop(self, key: int) -> None:
        scope, done = self._scopes.pop(key)
        scope.cancel(reason="stopped by the test")
        await done.wait()

    def new_account(self, **changes: Any) -> BinanceAccount:
        """A fresh account object on the same venue (a restarted daemon), not started."""
        config = attrs.evolve(self.account.config, **changes)
        signer = HmacSigner(self.venue.api_key, self.venue.secret)
        self.account = BinanceAccount(config, signer, (SYMBOL,))
        return self.account

    async def start_account(self) -> None:
        account = self.account
        await self.nursery.start(partial(self._scoped, id(account), account.run))

    async def stop_account(self) -> None:
        await self._stop(id(self.account))

    async def start_bot(self, config: BotConfig, **executors: Any) -> Bot:
        """``executors``: ``Executors`` fields besides the accounts (``blocked=``)."""
        bot = Bot(
            config,
            self.feed.subscribe,
            self.journal,
            wall_clock=self.venue.now_ts,
            executor_factory=Executors({ACCOUNT: self.account}, **executors),
        )
        await self.nursery.start(partial(self._scoped, id(bot), bot.run))
        return bot

    async def stop_bot(self, bot: Bot) -> None:
        await self._stop(id(bot))

    # --- driving and checking -------------------------------------------------------------------

    async def tick(self, bot: Bot) -> None:
        """The venue's book now, to the bot; returns once the bot acted on it."""
        done = bot.statistics().events + 1
        self.feed.publish(venue_tick(self.venue, now=self.venue.now_ts()))
        await bot.wait_processed(done)

    async def booked(self, bot: Bot, fills: int) -> None:
        """Wait until the journal holds ``fills`` fills of the bot."""
        while True:
            seen = bot.statistics().events  # read first: an event handled meanwhile counts
            if len(await self.journal.fills(bot.config.id)) >= fills:
                return
            await bot.wait_processed(seen + 1)

    async def order_status(self, bot_id: str, seq: int) -> str:
        for record in await self.journal.orders(bot_id):
            if record.intent.seq == seq:
                return record.status
        raise AssertionError(f"no order {seq} of {bot_id} in the journal")

    async def settled(self, bot: Bot, seq: int) -> str:
        """Wait until the journal's order ``seq`` of the bot is final; its status."""
        while True:
            seen = bot.statistics().events
            status = await self.order_status(bot.config.id, seq)
            if status in ("filled", "cancelled", "rejected"):
                return status
            await bot.wait_processed(seen + 1)

    async def check_invariants(
        self,
        bots: Sequence[Bot],
        before: Mapping[str, Decimal] | None,
    ) -> None:
        """No client order id placed twice; every venue trade of our orders booked exactly
        once; each bot's balances moved exactly as the venue's (``before``: ``totals`` at the
        start; None skips the balances, for a test that changes them behind the bots)."""
        venue = self.venue
        posted = [str(r.params.get("newClientOrderId")) for r in order_posts(venue)]
        assert len(posted) == len(set(posted)), f"an order was sent twice: {posted}"
        held = [o.client_order_id for o in venue.orders()]
        assert len(held) == len(set(held)), f"the venue holds an id twice: {held}"
        ours = {o.order_id for o in venue.orders() if o.client_order_id.startswith(PREFIX)}
        expected = sorted(f"{t.symbol}:{t.trade_id}" for t in venue.trades() if t.order_id in ours)
        booked: list[str] = []
        for bot in bots:
            booked += [str(f.venue_fill_id) for f in await self.journal.fills(bot.config.id)]
        assert sorted(booked) == expected, "venue trades and booked fills differ"
        if before is None:
            return
        after = totals(venue)
        base_change = sum((b.statistics().base_balance for b in bots), Decimal(0))
        quote_change = sum((b.statistics().quote_balance - INITIAL_QUOTE for b in bots), Decimal(0))
        assert base_change == after["BTC"] - before["BTC"]
        assert quote_change == after["USDT"] - before["USDT"]


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
