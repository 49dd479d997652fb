"""Executors: the paper executor (the default) and the interface a live one must implement.

The paper executor is pure: given an order and the ticker it is placed on, it says what fills.
The bot journals the intent before asking, and the fill before booking it.

Paper decisions:

* **Market orders** fill in full at the touch: a buy at ``ask x (1 + slippage)`` rounded *up* to
  the tick, a sell at ``bid x (1 - slippage)`` rounded *down*; no partial fills, no queue.
* **Limit orders** are marketable when placed if the touch is at or through the limit (buy:
  ``ask <= limit``); they then fill at the better of the limit and the slipped touch. Otherwise
  they rest, and fill at the limit price on the first accepted tick whose touch reaches it.
  Limit prices are rounded to the tick against us (buy down, sell up).
* **Sizes** round down to ``lot_size``; a size that rounds to zero is ``size_below_lot``, a
  notional under ``min_notional`` is ``min_notional`` (the exchange would refuse both).
* **Fees** are ``fee_pct`` of the notional, in quote, on every fill, exact in Decimal.
* **Reconciliation after a restart.** An intent that was journaled but has no fill was never
  acted on by the paper venue, and the tick it was priced on is gone: it is *cancelled*, never
  filled late at a price nobody saw. The strategy will signal again if its reason still holds,
  and the new order passes risk again under a new client order id.

Live trading is not implemented. ``make_executor`` refuses ``mode = "live"`` with an
``ExecutionError`` naming the exchange, and ``live_mode_problem`` gives the same message to the
config check. ``LiveExecutor`` is the interface a signed-REST implementation will provide; nothing
live is simulated.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Protocol

import attrs

from actors.bots.config import BotConfig, MarketConfig, PaperConfig
from actors.bots.money import pct, round_down, round_up
from actors.bots.risk import OrderProposal, RejectReason
from actors.errors import ExecutionError
from actors.journal.store import OrderIntent, OrderRecord
from actors.messages import Ticker


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
class PaperExecutor:
    paper: PaperConfig
    market: MarketConfig
    fee_rate: Decimal = attrs.field(init=False)
    slippage: Decimal = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.fee_rate = pct(self.paper.fee_pct) or Decimal(0)
        self.slippage = pct(self.paper.slippage_pct) or Decimal(0)

    # planning

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
        if order_type == "limit":
            if limit_price is None:
                raise ValueError("a limit order needs a price")
            price: Decimal | None = round_down(limit_price, self.market.tick_size)
            expected = min(price, self.market_price("buy", ticker))  # type: ignore[type-var]
            basis = price
        else:
            price = None
            expected = basis = self.market_price("buy", ticker)
        if basis is None or basis <= 0:
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
        if order_type == "limit":
            if limit_price is None:
                raise ValueError("a limit order needs a price")
            price: Decimal | None = round_up(limit_price, self.market.tick_size)
            expected = max(price, self.market_price("sell", ticker))  # type: ignore[type-var]
            basis = price
        else:
            price = None
            expected = basis = self.market_price("sell", ticker)
        if basis is None or basis <= 0:
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

    # execution

    def execute(self, intent: OrderIntent, ticker: Ticker) -> PaperFill | None:
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

    def reconcile(self, record: OrderRecord) -> Literal["cancelled"]:
        """Paper: an intent without a fill is cancelled at restart (see the module docstring)."""
        return "cancelled"


# --- live --------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class LiveOrderStatus:
    client_id: str
    status: Literal["open", "filled", "cancelled", "rejected", "unknown"]
    filled_size: Decimal
    average_price: Decimal | None
    fee_quote: Decimal


class LiveExecutor(Protocol):
    """What a signed-REST executor must provide. Idempotency rests on the client order id: the
    journaled intent's id is sent with the order, and after a restart an unresolved intent is
    looked up by that id (``query``), never re-sent."""

    async def place(self, intent: OrderIntent) -> LiveOrderStatus: ...

    async def cancel(self, client_id: str) -> LiveOrderStatus: ...

    async def query(self, client_id: str) -> LiveOrderStatus | None: ...


def live_mode_problem(config: BotConfig) -> str:
    return (
        f'mode "live" is not available: no signed-REST executor is implemented for exchange '
        f'{config.exchange!r} (only paper trading is); set mode = "paper"'
    )


def make_executor(config: BotConfig) -> PaperExecutor:
    if config.mode == "live":
        raise ExecutionError(f"bot {config.id!r}: {live_mode_problem(config)}")
    return PaperExecutor(paper=config.paper, market=config.market)
