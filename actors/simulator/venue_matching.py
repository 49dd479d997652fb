"""The local Binance venue's matching engine and account (pure: no I/O, no clock).

Decisions:

* One account. Its orders trade against the seeded market model, never against each other
  (so self-trade prevention never triggers) and without moving the model (no market impact).
* The model only has a top of book, so takers walk a synthetic book: the touch (the model's
  best ask for a buy, best bid for a sell, with the model's size there), then one level per
  tick further away with the same size, ``BOOK_LEVELS`` deep. A large order therefore gets
  several ``fills`` at rising (falling) prices, like a real sweep; past the last level a
  MARKET order expires with what it got, a LIMIT GTC rests with the rest.
* A resting LIMIT order fills, as maker and at its own price, on each model step that crosses
  it: a buy when the step's trade is below its price or the new ask is at or below it (a sell
  mirrored). Each step lends its trade size to each side once: the resting orders of a side
  take it in price-time priority, so an order larger than the step's trade fills over
  several steps (PARTIALLY_FILLED in between).
* Balances: LIMIT orders lock ``price * qty`` quote (buy) or ``qty`` base (sell) until they
  end; a buy that fills below its price gets the difference back with the fill. MARKET orders
  lock nothing and must be covered by the free balance when placed (a buy by its cost on the
  synthetic book), else ``-2010`` "Account has insufficient balance for requested action.".
  Commission is taken from what the order receives (base for a buy, quote for a sell) at the
  maker or taker rate, rounded half-up to 8 decimals.
* ``newClientOrderId`` is unique among the *open* orders of a symbol: a duplicate is ``-2010``
  "Duplicate order sent."; once the first is FILLED, CANCELED or EXPIRED the id may be used
  again, and a query by that id then finds the newest order carrying it.
* Every change yields the user-data events Binance sends for it, in its order: one
  ``executionReport`` per state change (NEW, then one TRADE per fill, then CANCELED or
  EXPIRED) and one ``outboundAccountPosition`` per engine transaction with the assets it
  changed.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable, Mapping
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import attrs

from actors.simulator.model import Market, Step
from actors.simulator.venue_rules import QUANTUM, ZERO, SymbolRules, fmt

BOOK_LEVELS = 1000
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
DEFAULT_COMMISSION = Decimal("0.001")
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
CLIENT_ID_ALPHABET = string.ascii_letters + string.digits

Event = dict[str, object]


class Rejected(Exception):
    """A refusal with Binance's error ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@attrs.frozen(slots=True)
class Touch:
    """The model's top of book in venue units."""

    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal

    @classmethod
    def of(cls, market: Market, step: Step) -> Touch:
        return cls(
            bid=Decimal(step.bid).scaleb(-market.spec.price_decimals),
            ask=Decimal(step.ask).scaleb(-market.spec.price_decimals),
            bid_size=Decimal(step.bid_size).scaleb(-market.spec.size_decimals),
            ask_size=Decimal(step.ask_size).scaleb(-market.spec.size_decimals),
        )


@attrs.frozen(slots=True)
class NewOrder:
    symbol: str  # native
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT | LIMIT_MAKER
    client_order_id: str
    time_in_force: str | None = None  # GTC | IOC | FOK for LIMIT
    quantity: Decimal | None = None
    quote_order_qty: Decimal | None = None
    price: Decimal | None = None


@attrs.define(eq=False, slots=True)
class Order:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time_ms: int
    executed_qty: Decimal = ZERO
    cumulative_quote: Decimal = ZERO
    status: str = "NEW"
    update_ms: int = 0
    locked: Decimal = ZERO  # still held for this order (quote for a buy, base for a sell)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def on_book(self) -> bool:
        return self.is_open and self.type != "MARKET"

    def query_json(self) -> dict[str, object]:
        """``GET /api/v3/order`` and ``openOrders`` shape."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price),
            "origQty": fmt(self.orig_qty),
            "executedQty": fmt(self.executed_qty),
            "cummulativeQuoteQty": fmt(self.cumulative_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": fmt(ZERO),
            "icebergQty": fmt(ZERO),
            "time": self.time_ms,
            "updateTime": self.update_ms,
            "isWorking": True,
            "workingTime": self.time_ms,
            "origQuoteOrderQty": fmt(self.orig_quote_qty),
            "selfTradePreventionMode": "NONE",
        }

    def result_json(self, transact_ms: int) -> dict[str, object]:
        """``POST /api/v3/order`` with ``newOrderRespType=RESULT`` (FULL adds ``fills``)."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "transactTime": transact_ms,
            "price": fmt(self.price),
            "origQty": fmt(self.orig_qty),
            "executedQty": fmt(self.executed_qty),
            "origQuoteOrderQty": fmt(self.orig_quote_qty),
            "cummulativeQuoteQty": fmt(self.cumulative_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "workingTime": self.time_ms,
            "selfTradePreventionMode": "NONE",
        }


@attrs.frozen(slots=True)
class Fill:
    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    maker: bool

    def fill_json(self) -> dict[str, object]:
        """One entry of a FULL response's ``fills``."""
        return {
            "price": fmt(self.price),
            "qty": fmt(self.qty),
            "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "tradeId": self.trade_id,
        }

    def trade_json(self) -> dict[str, object]:
        """One entry of ``GET /api/v3/myTrades``."""
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": fmt(self.price),
            "qty": fmt(self.qty),
            "quoteQty": fmt(self.quote_qty),
            "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time_ms,
            "isBuyer": self.side == "BUY",
            "isMaker": self.maker,
            "isBestMatch": True,
        }


@attrs.define(slots=True)
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@attrs.define(eq=False)
class _Transaction:
    """What one engine call changed: events in order, and the assets touched."""

    now_ms: int
    events: list[Event] = attrs.field(factory=list)
    assets: dict[str, None] = attrs.field(factory=dict)


def _walk(
    touch: Touch,
    side: str,
    step: Decimal,
    *,
    qty: Decimal | None = None,
    quote: Decimal | None = None,
    limit: Decimal | None = None,
    tick: Decimal,
) -> list[tuple[Decimal, Decimal]]:
    """The (price, qty) a taker gets from the synthetic book (see the module docstring)."""
    buy = side == "BUY"
    start, size = (touch.ask, touch.ask_size) if buy else (touch.bid, touch.bid_size)
    plan: list[tuple[Decimal, Decimal]] = []
    for level in range(BOOK_LEVELS):
        price = start + tick * level if buy else start - tick * level
        if price <= 0 or (limit is not None and (price > limit if buy else price < limit)):
            break
        if qty is not None:
            take = min(size, qty)
        else:
            assert quote is not None
            take = min(size, (quote / price).quantize(step, ROUND_DOWN))
        if take <= 0:
            break
        plan.append((price, take))
        if qty is not None:
            qty -= take
            if qty <= 0:
                break
        else:
            assert quote is not None
            quote -= price * take
            if take < size:
                break
    return plan


class Engine:
    def __init__(
        self,
        rules: Mapping[str, SymbolRules],
        balances: Mapping[str, Decimal],
        *,
        seed: int = 0,
        maker_rate: Decimal = DEFAULT_COMMISSION,
        taker_rate: Decimal = DEFAULT_COMMISSION,
    ) -> None:
        self.rules = dict(rules)
        self.balances: dict[str, Balance] = {a: Balance(Decimal(v)) for a, v in balances.items()}
        self.maker_rate = maker_rate
        self.taker_rate = taker_rate
        self.orders: list[Order] = []
        self.trades: list[Fill] = []
        self.update_ms = 0
        self._rng = random.Random(f"{seed}/venue")
        self._by_id: dict[tuple[str, int], Order] = {}
        self._open: dict[tuple[str, str], Order] = {}  # (symbol, clientOrderId) of open orders
        self._next_order_id = {s: self._rng.randrange(10**9, 9 * 10**9) for s in self.rules}
        self._next_trade_id = {s: self._rng.randrange(10**9, 9 * 10**9) for s in self.rules}
        self._ignore = 0  # executionReport "I"

    # --- lookups ---------------------------------------------------------------------------
    def balance(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())

    def find(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order | None:
        """By ``order_id`` (and then only if ``client_order_id`` also matches, when given),
        else the newest order of the symbol carrying ``client_order_id``."""
        if order_id is not None:
            order = self._by_id.get((symbol, order_id))
            if order is not None and client_order_id not in (None, order.client_order_id):
                return None
            return order
        for order in reversed(self.orders):
            if order.symbol == symbol and order.client_order_id == client_order_id:
                return order
        return None

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self._open.values() if symbol is None or o.symbol == symbol]

    def new_client_order_id(self) -> str:
        return "".join(self._rng.choices(CLIENT_ID_ALPHABET, k=22))

    # --- commands --------------------------------------------------------------------------
    def place(
        self, new: NewOrder, touch: Touch, now_ms: int
    ) -> tuple[Order, list[Fill], list[Event]]:
        """Execute ``new`` (already through the API's parameter and filter checks)."""
        rules = self.rules[new.symbol]
        if (new.symbol, new.client_order_id) in self._open:
            raise Rejected(-2010, "Duplicate order sent.")
        buy = new.side == "BUY"
        if new.type == "LIMIT_MAKER":
            assert new.price is not None
            if (buy and new.price >= touch.ask) or (not buy and new.price <= touch.bid):
                raise Rejected(-2010, "Order would immediately match and take.")
            plan = []
        else:
            plan = _walk(
                touch,
                new.side,
                rules.step,
                qty=new.quantity,
                quote=new.quote_order_qty,
                limit=new.price if new.type == "LIMIT" else None,
                tick=rules.tick,
            )
        planned_qty = sum((q for _, q in plan), ZERO)
        if new.time_in_force == "FOK" and new.quantity is not None and planned_qty < new.quantity:
            plan, planned_qty = [], ZERO
        is_limit = new.type != "MARKET"
        if buy:
            asset = rules.quote
            if is_limit:
                assert new.price is not None
                assert new.quantity is not None
                need = new.price * new.quantity
            elif new.quote_order_qty is not None:
                need = new.quote_order_qty
            else:
                need = sum((p * q for p, q in plan), ZERO)
        else:
            asset = rules.base
            need = new.quantity if new.quantity is not None else planned_qty
        if self.balance(asset).free < need:
            raise Rejected(-2010, INSUFFICIENT_BALANCE)

        order_id = self._next_order_id[new.symbol]
        self._next_order_id[new.symbol] += 1
        order = Order(
            symbol=new.symbol,
            order_id=order_id,
            client_order_id=new.client_order_id,
            side=new.side,
            type=new.type,
            time_in_force=new.time_in_force or "GTC",
            price=new.price if new.price is not None else ZERO,
            orig_qty=new.quantity if new.quantity is not None else planned_qty,
            orig_quote_qty=new.quote_order_qty or ZERO,
            time_ms=now_ms,
            update_ms=now_ms,
        )
        self.orders.append(order)
        self._by_id[(order.symbol, order.order_id)] = order
        self._open[(order.symbol, order.client_order_id)] = order
        tx = _Transaction(now_ms)
        if is_limit:
            order.locked = need
            balance = self.balance(asset)
            balance.free -= need
            balance.locked += need
            tx.assets[asset] = None
        self._report(tx, order, "NEW")
        fills = [self._fill(tx, order, price, qty, maker=False) for price, qty in plan]
        if order.is_open and (order.type == "MARKET" or order.time_in_force in ("IOC", "FOK")):
            self._end(tx, order, "EXPIRED")  # what the book could not fill at once
        return order, fills, self._finish(tx)

    def cancel(
        self,
        symbol: str,
        *,
        order_id: int | None,
        client_order_id: str | None,
        cancel_client_order_id: str,
        now_ms: int,
    ) -> tuple[Order, list[Event]]:
        if order_id is not None:
            order = self.find(symbol, order_id=order_id, client_order_id=client_order_id)
        else:
            order = self._open.get((symbol, client_order_id or ""))
        if order is None or not order.is_open:
            raise Rejected(-2011, "Unknown order sent.")
        tx = _Transaction(now_ms)
        self._end(tx, order, "CANCELED", cancel_client_order_id=cancel_client_order_id)
        return order, self._finish(tx)

    def on_step(self, symbol: str, step: Step, market: Market, now_ms: int) -> list[Event]:
        """Fill the resting orders of ``symbol`` that ``step`` crosses (module docstring)."""
        resting = [o for o in self._open.values() if o.symbol == symbol and o.on_book]
        if not resting:
            return []
        touch = Touch.of(market, step)
        trade_price = Decimal(step.price).scaleb(-market.spec.price_decimals)
        volume = Decimal(step.size).scaleb(-market.spec.size_decimals)
        tx = _Transaction(now_ms)
        buys = sorted((o for o in resting if o.side == "BUY"), key=lambda o: (-o.price, o.order_id))
        sells = sorted(
            (o for o in resting if o.side == "SELL"), key=lambda o: (o.price, o.order_id)
        )
        for side, orders in (("BUY", buys), ("SELL", sells)):
            left = volume
            for order in orders:
                if left <= 0:
                    break
                if side == "BUY":
                    crossed = trade_price < order.price or touch.ask <= order.price
                else:
                    crossed = trade_price > order.price or touch.bid >= order.price
                if crossed:
                    take = min(order.remaining, left)
                    left -= take
                    self._fill(tx, order, order.price, take, maker=True)
        return self._finish(tx)

    def set_balance(self, asset: str, free: Decimal, now_ms: int) -> list[Event]:
        """Set the free balance (a deposit or withdrawal): ``balanceUpdate`` then
        ``outboundAccountPosition``."""
        balance = self.balance(asset)
        delta, balance.free = free - balance.free, free
        tx = _Transaction(now_ms)
        tx.assets[asset] = None
        tx.events.append(
            {"e": "balanceUpdate", "E": now_ms, "a": asset, "d": fmt(delta), "T": now_ms}
        )
        return self._finish(tx)

    # --- internals -------------------------------------------------------------------------
    def _fill(
        self, tx: _Transaction, order: Order, price: Decimal, qty: Decimal, *, maker: bool
    ) -> Fill:
        rules = self.rules[order.symbol]
        quote_qty = price * qty
        rate = self.maker_rate if maker else self.taker_rate
        base, quote = self.balance(rules.base), self.balance(rules.quote)
        if order.side == "BUY":
            if order.type == "MARKET":
                quote.free -= quote_qty
            else:
                release = order.price * qty
                order.locked -= release
                quote.locked -= release
                quote.free += release - quote_qty
            commission = (qty * rate).quantize(QUANTUM, ROUND_HALF_UP)
            commission_asset = rules.base
            base.free += qty - commission
        else:
            if order.type == "MARKET":
                base.free -= qty
            else:
                order.locked -= qty
                base.locked -= qty
            commission = (quote_qty * rate).quantize(QUANTUM, ROUND_HALF_UP)
            commission_asset = rules.quote
            quote.free += quote_qty - commission
        tx.assets[rules.base] = None
        tx.assets[rules.quote] = None
        order.executed_qty += qty
        order.cumulative_quote += quote_qty
        order.update_ms = tx.now_ms
        order.status = "FILLED" if order.executed_qty >= order.orig_qty else "PARTIALLY_FILLED"
        trade_id = self._next_trade_id[order.symbol]
        self._next_trade_id[order.symbol] += 1
        fill = Fill(
            symbol=order.symbol,
            trade_id=trade_id,
            order_id=order.order_id,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            commission=commission,
            commission_asset=commission_asset,
            time_ms=tx.now_ms,
            maker=maker,
        )
        self.trades.append(fill)
        if order.status == "FILLED":
            self._close(tx, order)
        self._report(tx, order, "TRADE", fill)
        return fill

    def _end(
        self,
        tx: _Transaction,
        order: Order,
        status: str,
        *,
        cancel_client_order_id: str | None = None,
    ) -> None:
        order.status = status
        order.update_ms = tx.now_ms
        self._close(tx, order)
        self._report(tx, order, status, cancel_client_order_id=cancel_client_order_id)

    def _close(self, tx: _Transaction, order: Order) -> None:
        """The order is final: free its id and whatever it still holds."""
        self._open.pop((order.symbol, order.client_order_id), None)
        if order.locked:
            rules = self.rules[order.symbol]
            asset = rules.quote if order.side == "BUY" else rules.base
            balance = self.balance(asset)
            balance.locked -= order.locked
            balance.free += order.locked
            order.locked = ZERO
            tx.assets[asset] = None

    def _report(
        self,
        tx: _Transaction,
        order: Order,
        execution_type: str,
        fill: Fill | None = None,
        *,
        cancel_client_order_id: str | None = None,
    ) -> None:
        self._ignore += 1
        report: Event = {
            "e": "executionReport",
            "E": tx.now_ms,
            "s": order.symbol,
            "c": cancel_client_order_id or order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": fmt(order.orig_qty),
            "p": fmt(order.price),
            "P": fmt(ZERO),
            "F": fmt(ZERO),
            "g": -1,
            "C": order.client_order_id if cancel_client_order_id else "",
            "x": execution_type,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": fmt(fill.qty if fill else ZERO),
            "z": fmt(order.executed_qty),
            "L": fmt(fill.price if fill else ZERO),
            "n": fmt(fill.commission) if fill else "0",
            "N": fill.commission_asset if fill else None,
            "T": tx.now_ms,
            "t": fill.trade_id if fill else -1,
            "I": self._ignore,
            "w": order.on_book,
            "m": fill.maker if fill else False,
            "M": False,
            "O": order.time_ms,
            "Z": fmt(order.cumulative_quote),
            "Y": fmt(fill.quote_qty if fill else ZERO),
            "Q": fmt(order.orig_quote_qty),
            "V": "NONE",
        }
        if order.on_book:
            report["W"] = order.time_ms
        tx.events.append(report)

    def _finish(self, tx: _Transaction) -> list[Event]:
        if tx.assets:
            self.update_ms = tx.now_ms
            tx.events.append(self.account_position(tx.now_ms, tx.assets))
        return tx.events

    def account_position(self, now_ms: int, assets: Iterable[str]) -> Event:
        return {
            "e": "outboundAccountPosition",
            "E": now_ms,
            "u": now_ms,
            "B": [
                {"a": a, "f": fmt(self.balance(a).free), "l": fmt(self.balance(a).locked)}
                for a in assets
            ],
        }
