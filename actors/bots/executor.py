"""Executors: where orders go, and the paper venue's price rules.

The seam (``Executor``) is the same for paper and for a future live venue: the bot calls
``submit``/``cancel``/``reconcile`` after the journal has the intent, and what becomes of an
order comes back as ``ExecutionReport``s through the sink the bot gave ``make_executor``. A
report may arrive during the call (paper: always) or any time later (live: an exchange answers
when it answers, and a lost answer is ``OrderUnknown`` until reconciliation finds out). The bot
drains the reports after each call, so a paper fill is booked before the bot goes on.

``Pricing`` is pure: it sizes and prices an order before risk sees it, and says what the paper
venue fills it at. ``PaperVenue`` is the paper exchange as a plain object (sync, for tests);
``PaperExecutor`` puts it behind the seam.

Paper decisions:

* **Market orders** fill in full at the touch: a buy at ``ask x (1 + slippage)`` rounded *up* to
  the tick, a sell at ``bid x (1 - slippage)`` rounded *down*; no partial fills, no queue.
* **Limit orders** are marketable when placed if the touch is at or through the limit (buy:
  ``ask <= limit``); they then fill at the better of the limit and the slipped touch. Otherwise
  they rest, and fill at the limit price on the first ticker the bot accepted whose touch
  reaches it, but never on a stale one: a price older than ``max_price_age_s`` could book a fill
  the market no longer offers. Limit prices are rounded to the tick against us (buy down, sell
  up).
* **Sizes** round down to ``lot_size``; a size that rounds to zero is ``size_below_lot``, a
  notional under ``min_notional`` is ``min_notional`` (the exchange would refuse both).
* **Fees** are ``fee_pct`` of the notional, in quote, on every fill, exact in Decimal.
* **The touch** is the last ticker the bot accepted (``observe``): the one its orders are
  priced on, since risk refuses an order on any other.
* **Reconciliation after a restart.** An intent that was journaled but has no fill was never
  acted on by the paper venue, and the ticker it was priced on is gone: it is *cancelled*, never
  filled late at a price nobody saw. The strategy will signal again if its reason still holds,
  and the new order passes risk again under a new client order id. A journaled resting order
  rests again.

Live trading is ``actors.bots.live.LiveExecutor``: it sends an id derived from the journaled
intent with the order, reports ``OrderUnknown`` when it cannot tell whether the venue got it,
and at start looks unresolved intents up by that id (``reconcile``), never re-sending them.
``make_executor`` alone builds paper executors; a daemon with ``[[accounts]]`` builds live ones
(``actors.bots.live.Executors``). Known limits of the core with a live venue: a market buy
waiting for its answer reserves no quote (only limit prices reserve); a partially filled order
keeps its whole size reserved until its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Literal, Protocol

import attrs

from actors.bots.config import BotConfig, MarketConfig, PaperConfig
from actors.bots.money import pct, round_down, round_up
from actors.bots.risk import OrderProposal, RejectReason
from actors.errors import ExecutionError
from actors.journal.store import BotRecord, OrderIntent, OrderRecord
from actors.messages import Ticker

RECONCILED_REASON = "reconciled at restart: journaled intent without a fill (paper: never sent)"


# --- planning and paper prices ------------------------------------------------------------------


@attrs.frozen(slots=True)
class OrderPlan:
    """An order sized, priced and rounded, ready for the risk check and the journal."""

    side: Literal["buy", "sell"]
    order_type: Literal["market", "limit"]
    size: Decimal
    price: Decimal | None  # the limit price; None for market orders
    expected_price: Decimal  # what a fill is expected to cost per unit
    notional_quote: Decimal
    cost_quote: Decimal  # buy: notional + fee; sell: zero
    tag: str  # why: "signal:<reason>", "stop_loss", ...
    position_id: str | None = None
    protective: bool = False

    def proposal(self) -> OrderProposal:
        return OrderProposal(
            side=self.side,
            size=self.size,
            notional_quote=self.notional_quote,
            cost_quote=self.cost_quote,
            protective=self.protective,
        )


@attrs.frozen(slots=True)
class PaperFill:
    price: Decimal
    size: Decimal
    fee: Decimal


@attrs.define
class Pricing:
    paper: PaperConfig
    market: MarketConfig
    fee_rate: Decimal = attrs.field(init=False)
    slippage: Decimal = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.fee_rate = pct(self.paper.fee_pct) or Decimal(0)
        self.slippage = pct(self.paper.slippage_pct) or Decimal(0)

    def market_price(self, side: str, ticker: Ticker) -> Decimal:
        if side == "buy":
            return round_up(ticker.ask * (1 + self.slippage), self.market.tick_size)
        return round_down(ticker.bid * (1 - self.slippage), self.market.tick_size)

    def plan_buy(
        self,
        quote_amount: Decimal,
        ticker: Ticker,
        *,
        order_type: Literal["market", "limit"] = "market",
        limit_price: Decimal | None = None,
        tag: str = "",
    ) -> OrderPlan | RejectReason:
        price: Decimal | None
        if order_type == "limit":
            if limit_price is None:
                raise ValueError("a limit order needs a price")
            price = basis = round_down(limit_price, self.market.tick_size)
            expected = min(basis, self.market_price("buy", ticker))
        else:
            price = None
            expected = basis = self.market_price("buy", ticker)
        if basis <= 0:
            return RejectReason.NO_PRICE
        size = round_down(quote_amount / basis, self.market.lot_size)
        return self._plan("buy", order_type, size, price, expected, basis, tag, None, False)

    def plan_sell(
        self,
        size: Decimal,
        ticker: Ticker,
        *,
        order_type: Literal["market", "limit"] = "market",
        limit_price: Decimal | None = None,
        tag: str = "",
        position_id: str | None = None,
        protective: bool = False,
    ) -> OrderPlan | RejectReason:
        price: Decimal | None
        if order_type == "limit":
            if limit_price is None:
                raise ValueError("a limit order needs a price")
            price = basis = round_up(limit_price, self.market.tick_size)
            expected = max(basis, self.market_price("sell", ticker))
        else:
            price = None
            expected = basis = self.market_price("sell", ticker)
        if basis <= 0:
            return RejectReason.NO_PRICE
        size = round_down(size, self.market.lot_size)
        return self._plan(
            "sell", order_type, size, price, expected, basis, tag, position_id, protective
        )

    def _plan(
        self,
        side: Literal["buy", "sell"],
        order_type: Literal["market", "limit"],
        size: Decimal,
        price: Decimal | None,
        expected: Decimal,
        basis: Decimal,
        tag: str,
        position_id: str | None,
        protective: bool,
    ) -> OrderPlan | RejectReason:
        if size <= 0:
            return RejectReason.SIZE_BELOW_LOT
        # A resting limit fills at its price; a marketable one at ``expected`` (better or equal):
        # reserve and check against the worse of the two for a buy.
        notional = size * (basis if side == "buy" else expected)
        if size * basis < self.market.min_notional:
            return RejectReason.MIN_NOTIONAL
        cost = notional + notional * self.fee_rate if side == "buy" else Decimal(0)
        return OrderPlan(
            side=side,
            order_type=order_type,
            size=size,
            price=price,
            expected_price=expected,
            notional_quote=notional,
            cost_quote=cost,
            tag=tag,
            position_id=position_id,
            protective=protective,
        )

    def fill_on_arrival(self, intent: OrderIntent, ticker: Ticker) -> PaperFill | None:
        """What the paper venue does with an order the moment it arrives; None: it rests."""
        touch = self.market_price(intent.side, ticker)
        if intent.order_type == "market":
            return self._fill(touch, intent.size)
        assert intent.price is not None
        if intent.side == "buy" and ticker.ask <= intent.price:
            return self._fill(min(intent.price, touch), intent.size)
        if intent.side == "sell" and ticker.bid >= intent.price:
            return self._fill(max(intent.price, touch), intent.size)
        return None

    def fill_resting(self, intent: OrderIntent, ticker: Ticker) -> PaperFill | None:
        """A resting limit order fills at its own price once the touch reaches it."""
        assert intent.price is not None
        if intent.side == "buy" and ticker.ask <= intent.price:
            return self._fill(intent.price, intent.size)
        if intent.side == "sell" and ticker.bid >= intent.price:
            return self._fill(intent.price, intent.size)
        return None

    def _fill(self, price: Decimal, size: Decimal) -> PaperFill:
        return PaperFill(price=price, size=size, fee=price * size * self.fee_rate)


# --- the seam -----------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class OrderFilled:
    """``size`` of the order filled at ``price``; ``final`` once nothing of it is left working
    (a live venue may fill in parts)."""

    client_id: str
    price: Decimal
    size: Decimal
    fee: Decimal  # in the quote currency
    ts: float
    final: bool = True
    venue_fill_id: str | None = None  # a live venue's id of this fill, unique in the journal


@attrs.frozen(slots=True)
class OrderResting:
    """The venue accepted the order and it rests in the book."""

    client_id: str


@attrs.frozen(slots=True)
class OrderRejected:
    client_id: str
    reason: str


@attrs.frozen(slots=True)
class OrderCancelled:
    client_id: str
    reason: str


@attrs.frozen(slots=True)
class OrderUnknown:
    """The venue's answer was lost (timeout, disconnect): the order may or may not be live. It
    keeps its reservations until a later report or the next start's reconciliation."""

    client_id: str
    reason: str


ExecutionReport = OrderFilled | OrderResting | OrderRejected | OrderCancelled | OrderUnknown
ReportSink = Callable[[ExecutionReport], None]


class Executor(Protocol):
    """Where the bot's orders go. Every method is called after the journal has the order, and
    answers through the report sink, never by return value, so that an answer that comes later
    (or never) needs no other path."""

    def observe(self, ticker: Ticker, now_ts: float) -> None:
        """A ticker the bot accepted (the paper venue prices and fills on it)."""

    def restore(self, record: BotRecord) -> None:
        """What the journal holds, before any ``reconcile`` (a live venue's booked fill ids)."""

    async def submit(self, intent: OrderIntent) -> None: ...

    async def cancel(self, intent: OrderIntent) -> None: ...

    async def reconcile(self, order: OrderRecord) -> None:
        """At start: an order the journal left open or unresolved; report what became of it."""


@attrs.define
class PaperVenue:
    """The paper exchange, sync and pure: each call returns the reports it causes."""

    pricing: Pricing
    max_price_age_s: float
    touch: Ticker | None = None
    resting: dict[str, OrderIntent] = attrs.Factory(dict)

    def observe(self, ticker: Ticker, now_ts: float) -> list[ExecutionReport]:
        self.touch = ticker
        if not self.resting or now_ts - ticker.received_ts > self.max_price_age_s:
            return []
        reports: list[ExecutionReport] = []
        for intent in list(self.resting.values()):
            fill = self.pricing.fill_resting(intent, ticker)
            if fill is not None:
                del self.resting[intent.client_id]
                reports.append(_filled(intent, fill, now_ts))
        return reports

    def submit(self, intent: OrderIntent, now_ts: float) -> list[ExecutionReport]:
        if self.touch is None:
            return [OrderRejected(intent.client_id, "paper venue: no price yet")]
        fill = self.pricing.fill_on_arrival(intent, self.touch)
        if fill is None:
            self.resting[intent.client_id] = intent
            return [OrderResting(intent.client_id)]
        return [_filled(intent, fill, now_ts)]

    def cancel(self, intent: OrderIntent) -> list[ExecutionReport]:
        if self.resting.pop(intent.client_id, None) is None:
            return []  # nothing resting under that id: it already filled or never rested
        return [OrderCancelled(intent.client_id, "cancelled")]

    def reconcile(self, order: OrderRecord) -> list[ExecutionReport]:
        if order.status == "open":
            self.resting[order.intent.client_id] = order.intent
            return []
        return [OrderCancelled(order.intent.client_id, RECONCILED_REASON)]


def _filled(intent: OrderIntent, fill: PaperFill, ts: float) -> OrderFilled:
    return OrderFilled(intent.client_id, fill.price, fill.size, fill.fee, ts)


@attrs.define
class PaperExecutor:
    """``PaperVenue`` behind the seam: every report is delivered before the call returns."""

    venue: PaperVenue
    report: ReportSink
    wall_clock: Callable[[], float] = time.time

    def observe(self, ticker: Ticker, now_ts: float) -> None:
        for report in self.venue.observe(ticker, now_ts):
            self.report(report)

    def restore(self, record: BotRecord) -> None:
        pass  # the paper venue keeps nothing between runs but resting orders (``reconcile``)

    async def submit(self, intent: OrderIntent) -> None:
        for report in self.venue.submit(intent, self.wall_clock()):
            self.report(report)

    async def cancel(self, intent: OrderIntent) -> None:
        for report in self.venue.cancel(intent):
            self.report(report)

    async def reconcile(self, order: OrderRecord) -> None:
        for report in self.venue.reconcile(order):
            self.report(report)


def live_mode_problem(config: BotConfig) -> str:
    return (
        f'mode "live" needs a live account: bot {config.id!r} names account'
        f" {config.account!r}, which this daemon does not run (see [[accounts]])"
    )


class ExecutorFactory(Protocol):
    def __call__(
        self, config: BotConfig, report: ReportSink, *, wall_clock: Callable[[], float]
    ) -> Executor: ...


def make_executor(
    config: BotConfig, report: ReportSink, *, wall_clock: Callable[[], float] = time.time
) -> Executor:
    """The paper executor; live bots need the daemon's accounts (``actors.bots.live``)."""
    if config.mode == "live":
        raise ExecutionError(f"bot {config.id!r}: {live_mode_problem(config)}")
    venue = PaperVenue(Pricing(config.paper, config.market), config.risk.max_price_age_s)
    return PaperExecutor(venue, report, wall_clock)
