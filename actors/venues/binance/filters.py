"""A Binance Spot symbol's trading rules from ``exchangeInfo``, and orders shaped to pass them.

Pure: no I/O. ``parse_exchange_info`` reads the ``symbols`` of a ``GET /api/v3/exchangeInfo``
body; ``SymbolRules.prepare`` rounds an order and checks it before it is sent, returning a
``PreparedOrder`` (with the exact parameter text to send) or a ``FilterRejection`` saying why.

Decisions:

* **Decimal throughout, exactly.** Rounding runs in a decimal context that traps inexact
  results, so a step, a tick or a notional can never be off by a float's last bit; a number
  too large for it raises instead of rounding silently.
* **Quantity rounds down** to the step (an order never buys or sells more than asked, and a
  sell never exceeds what is held). **Price rounds against us**: a buy's limit down, a sell's
  up, so the venue never fills us at a price worse than the one asked for.
* **MARKET orders** must pass ``LOT_SIZE`` and, when the symbol has it, ``MARKET_LOT_SIZE``:
  the quantity is rounded down to a multiple of both steps, and both ranges are checked. A
  rule set to 0 is off (the venue's convention for ``PRICE_FILTER`` and its practice for
  ``MARKET_LOT_SIZE``'s step and limits).
* **Notional.** ``NOTIONAL`` (``minNotional``/``maxNotional`` with ``applyMinToMarket``/
  ``applyMaxToMarket``) and the older ``MIN_NOTIONAL`` (``applyToMarket``) are both kept and
  both checked. A limit order's notional is quantity x limit price. A market order has no
  price: the venue uses an average or reference price we cannot see, so the caller passes the
  price it planned on (``reference_price``) and the check is a pre-flight, not a guarantee; a
  market order the venue still refuses comes back as ``-1013``, a definitive refusal with
  nothing on the book.
* **Formatting** writes a value with at most the step's decimals, no exponent and no trailing
  zeros (``0.00100000`` step: ``1.5``, ``2``, ``0.001``); a value that is not a multiple of the
  step is a ``ValueError``, never rounded quietly. Sending more decimals than the step is the
  venue's ``-1111``.
* **Reasons** are ``FilterReason`` values named like the bots' ``RejectReason`` where they mean
  the same (``size_below_lot``, ``min_notional``, ``max_order_size``, ``no_price``), so the
  bot can report either kind the same way; ``symbol_not_trading``, ``order_type_not_allowed``
  and ``price_out_of_range`` are the venue's own.
* **Not checked here**, left to the venue (which refuses definitively): ``PERCENT_PRICE``,
  ``PERCENT_PRICE_BY_SIDE`` (they need the venue's average price), the order-count filters
  and ``MAX_POSITION``. Their presence is harmless; parsing ignores them.
* **Strict parsing.** A symbol without ``PRICE_FILTER`` or ``LOT_SIZE`` is a ``DecodeError``:
  an order for it cannot be shaped safely. Numbers go through the codecs' decimal parser
  (strings only, no NaN, no exponent games).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import (
    ROUND_FLOOR,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from enum import StrEnum
from typing import Any, Literal

import attrs
import orjson

from actors.errors import DecodeError
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    decode_failure,
    expect_bool,
    expect_dict,
    expect_list,
    expect_str,
    size,
)

__all__ = [
    "FilterReason",
    "FilterRejection",
    "LotRule",
    "NotionalRule",
    "PreparedOrder",
    "SymbolRules",
    "decimals_of",
    "format_step",
    "parse_exchange_info",
    "parse_symbol_rules",
    "round_down",
    "round_up",
]

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]

_ZERO = Decimal(0)
# Exact arithmetic: any rounding a step computation would need raises instead.
_EXACT = Context(
    prec=60,
    rounding=ROUND_FLOOR,
    traps=[Inexact, InvalidOperation, DivisionByZero, Overflow],
)


# --- exact step arithmetic ------------------------------------------------------------------------


def round_down(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` <= ``value`` (``step`` 0: unchanged)."""
    if step == 0:
        return value
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    whole = _EXACT.divide_int(value, step)
    rounded = _EXACT.multiply(whole, step)
    if rounded > value:  # divide_int truncates toward zero: a negative value floors one lower
        rounded = _EXACT.subtract(rounded, step)
    return rounded


def round_up(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` >= ``value`` (``step`` 0: unchanged)."""
    rounded = round_down(value, step)
    if rounded < value:
        rounded = _EXACT.add(rounded, step)
    return rounded


def decimals_of(step: Decimal) -> int:
    """How many decimals a multiple of ``step`` needs: ``0.00100000`` -> 3, ``10`` -> 0."""
    if step == 0:
        raise ValueError("a step of 0 has no decimals")
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    return max(0, -exponent)


def format_step(value: Decimal, step: Decimal) -> str:
    """``value`` as parameter text: no exponent, no trailing zeros, at most the step's decimals.

    ``step`` 0 (no step rule) only normalizes the text. A value off the step raises."""
    if not value.is_finite():
        raise ValueError(f"cannot format {value}")
    if step != 0 and round_down(value, step) != value:
        raise ValueError(f"{value} is not a multiple of the step {step}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text


def _plain(value: Decimal) -> str:
    """A number for messages: ``5.00000000`` as ``5``, never an exponent."""
    return format_step(value, _ZERO)


def _lcm_step(a: Decimal, b: Decimal) -> Decimal:
    """The smallest step that is a multiple of both ``a`` and ``b`` (0 means no step)."""
    if a == 0:
        return b
    if b == 0:
        return a
    scale = max(decimals_of(a), decimals_of(b))
    ia = int(a.scaleb(scale))
    ib = int(b.scaleb(scale))
    return Decimal(math.lcm(ia, ib)).scaleb(-scale)


# --- rules --------------------------------------------------------------------------------------


class FilterReason(StrEnum):
    SYMBOL_NOT_TRADING = "symbol_not_trading"
    ORDER_TYPE_NOT_ALLOWED = "order_type_not_allowed"
    SIZE_BELOW_LOT = "size_below_lot"  # rounds to nothing, or below minQty
    MAX_ORDER_SIZE = "max_order_size"  # above maxQty or maxNotional
    PRICE_OUT_OF_RANGE = "price_out_of_range"  # outside minPrice..maxPrice, or rounds to 0
    NO_PRICE = "no_price"  # a market order needs a reference price for the notional check
    MIN_NOTIONAL = "min_notional"


@attrs.frozen(slots=True)
class FilterRejection:
    reason: FilterReason
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@attrs.frozen(slots=True)
class LotRule:
    """``LOT_SIZE`` or ``MARKET_LOT_SIZE``; a part set to 0 is off."""

    filter_type: str
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal


@attrs.frozen(slots=True)
class NotionalRule:
    """``NOTIONAL`` or ``MIN_NOTIONAL``; a bound set to 0 is off."""

    filter_type: str
    min_notional: Decimal
    max_notional: Decimal
    min_applies_to_market: bool
    max_applies_to_market: bool


@attrs.frozen(slots=True)
class PreparedOrder:
    """An order rounded and checked, with the exact text of its numbers."""

    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None  # the limit price; None for market
    quantity_text: str
    price_text: str | None
    notional: Decimal | None  # quantity x price (limit) or x reference price (market)

    def request_params(
        self, client_order_id: str, *, response_type: Literal["ACK", "RESULT", "FULL"] = "FULL"
    ) -> list[tuple[str, str]]:
        """The ``POST /api/v3/order`` parameters, in the order they are sent and signed."""
        params = [
            ("symbol", self.symbol),
            ("side", self.side.upper()),
            ("type", self.order_type.upper()),
        ]
        if self.order_type == "limit":
            assert self.price_text is not None
            params += [("timeInForce", "GTC"), ("quantity", self.quantity_text)]
            params.append(("price", self.price_text))
        else:
            params.append(("quantity", self.quantity_text))
        params += [("newClientOrderId", client_order_id), ("newOrderRespType", response_type)]
        return params


@attrs.frozen(slots=True)
class SymbolRules:
    symbol: str  # native, e.g. BTCUSDT
    base_asset: str
    quote_asset: str
    status: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    lot: LotRule
    market_lot: LotRule | None
    notional: tuple[NotionalRule, ...]
    order_types: frozenset[str]  # LIMIT, MARKET, ...; empty when exchangeInfo omits it

    @property
    def unified(self) -> str:
        return f"{self.base_asset}/{self.quote_asset}"

    @property
    def trading(self) -> bool:
        return self.status == "TRADING"

    def _lots(self, market: bool) -> tuple[LotRule, ...]:
        if market and self.market_lot is not None:
            return (self.lot, self.market_lot)
        return (self.lot,)

    def quantity_step(self, *, market: bool = False) -> Decimal:
        step = _ZERO
        for lot in self._lots(market):
            step = _lcm_step(step, lot.step)
        return step

    def round_quantity(self, quantity: Decimal, *, market: bool = False) -> Decimal:
        """Down to the step (both steps for a market order)."""
        return round_down(quantity, self.quantity_step(market=market))

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """To the tick, against us: a buy down, a sell up."""
        if side == "buy":
            return round_down(price, self.tick_size)
        return round_up(price, self.tick_size)

    def format_quantity(self, quantity: Decimal, *, market: bool = False) -> str:
        return format_step(quantity, self.quantity_step(market=market))

    def format_price(self, price: Decimal) -> str:
        return format_step(price, self.tick_size)

    def prepare(
        self,
        side: Side,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None = None,
        *,
        reference_price: Decimal | None = None,
    ) -> PreparedOrder | FilterRejection:
        """Round ``quantity`` (and a limit's ``price``) and check every rule checked here."""
        market = order_type == "market"
        if not self.trading:
            return FilterRejection(
                FilterReason.SYMBOL_NOT_TRADING, f"{self.symbol} status is {self.status}"
            )
        if self.order_types and order_type.upper() not in self.order_types:
            return FilterRejection(
                FilterReason.ORDER_TYPE_NOT_ALLOWED,
                f"{order_type.upper()} is not among {self.symbol}'s order types",
            )
        step = self.quantity_step(market=market)
        qty = round_down(quantity, step)
        if qty <= 0:
            return FilterRejection(
                FilterReason.SIZE_BELOW_LOT,
                f"quantity {quantity} rounds to 0 at step {_plain(step)}",
            )
        for lot in self._lots(market):
            if lot.min_qty > 0 and qty < lot.min_qty:
                return FilterRejection(
                    FilterReason.SIZE_BELOW_LOT,
                    f"quantity {qty} is below {lot.filter_type} minQty {_plain(lot.min_qty)}",
                )
            if lot.max_qty > 0 and qty > lot.max_qty:
                return FilterRejection(
                    FilterReason.MAX_ORDER_SIZE,
                    f"quantity {qty} is above {lot.filter_type} maxQty {_plain(lot.max_qty)}",
                )
        limit_price: Decimal | None = None
        if market:
            if price is not None:
                raise ValueError("a market order has no price (pass reference_price)")
            basis = reference_price
        else:
            if price is None:
                raise ValueError("a limit order needs a price")
            limit_price = self.round_price(price, side)
            if limit_price <= 0:
                return FilterRejection(
                    FilterReason.PRICE_OUT_OF_RANGE,
                    f"price {price} rounds to 0 at tick {_plain(self.tick_size)}",
                )
            if self.min_price > 0 and limit_price < self.min_price:
                return FilterRejection(
                    FilterReason.PRICE_OUT_OF_RANGE,
                    f"price {limit_price} is below minPrice {_plain(self.min_price)}",
                )
            if self.max_price > 0 and limit_price > self.max_price:
                return FilterRejection(
                    FilterReason.PRICE_OUT_OF_RANGE,
                    f"price {limit_price} is above maxPrice {_plain(self.max_price)}",
                )
            basis = limit_price
        notional = None if basis is None else _EXACT.multiply(qty, basis)
        rejection = self._check_notional(notional, market)
        if rejection is not None:
            return rejection
        return PreparedOrder(
            symbol=self.symbol,
            side=side,
            order_type=order_type,
            quantity=qty,
            price=limit_price,
            quantity_text=self.format_quantity(qty, market=market),
            price_text=None if limit_price is None else self.format_price(limit_price),
            notional=notional,
        )

    def _check_notional(self, notional: Decimal | None, market: bool) -> FilterRejection | None:
        for rule in self.notional:
            check_min = rule.min_notional > 0 and (rule.min_applies_to_market or not market)
            check_max = rule.max_notional > 0 and (rule.max_applies_to_market or not market)
            if not (check_min or check_max):
                continue
            if notional is None:
                return FilterRejection(
                    FilterReason.NO_PRICE,
                    f"{rule.filter_type} applies to market orders: pass a reference price",
                )
            if check_min and notional < rule.min_notional:
                return FilterRejection(
                    FilterReason.MIN_NOTIONAL,
                    f"notional {_plain(notional)} is below {rule.filter_type} minNotional "
                    f"{_plain(rule.min_notional)}",
                )
            if check_max and notional > rule.max_notional:
                return FilterRejection(
                    FilterReason.MAX_ORDER_SIZE,
                    f"notional {_plain(notional)} is above {rule.filter_type} maxNotional "
                    f"{_plain(rule.max_notional)}",
                )
        return None


# --- parsing ------------------------------------------------------------------------------------


def _lot(f: Mapping[str, Any], kind: str, symbol: str) -> LotRule:
    where = f"{symbol} {kind}"
    return LotRule(
        filter_type=kind,
        step=size(f["stepSize"], f"{where} stepSize"),
        min_qty=size(f["minQty"], f"{where} minQty"),
        max_qty=size(f["maxQty"], f"{where} maxQty"),
    )


def _notional(f: Mapping[str, Any], kind: str, symbol: str) -> NotionalRule:
    where = f"{symbol} {kind}"
    if kind == "MIN_NOTIONAL":
        return NotionalRule(
            filter_type=kind,
            min_notional=size(f["minNotional"], f"{where} minNotional"),
            max_notional=_ZERO,
            min_applies_to_market=expect_bool(f["applyToMarket"], f"{where} applyToMarket"),
            max_applies_to_market=False,
        )
    max_text = f.get("maxNotional")
    return NotionalRule(
        filter_type=kind,
        min_notional=size(f["minNotional"], f"{where} minNotional"),
        max_notional=_ZERO if max_text is None else size(max_text, f"{where} maxNotional"),
        min_applies_to_market=expect_bool(f["applyMinToMarket"], f"{where} applyMinToMarket"),
        max_applies_to_market=expect_bool(f.get("applyMaxToMarket", False), f"{where} applyMax"),
    )


def _symbol_rules(entry: object) -> SymbolRules:
    e = expect_dict(entry, "exchangeInfo symbol")
    symbol = expect_str(e["symbol"], "symbol")
    filters: dict[str, Mapping[str, Any]] = {}
    for item in expect_list(e["filters"], f"{symbol} filters"):
        f = expect_dict(item, f"{symbol} filter")
        filters[expect_str(f["filterType"], f"{symbol} filterType")] = f
    price_filter = filters.get("PRICE_FILTER")
    lot_size = filters.get("LOT_SIZE")
    if price_filter is None or lot_size is None:
        raise DecodeError(f"{symbol}: exchangeInfo has no PRICE_FILTER or no LOT_SIZE")
    market_lot = filters.get("MARKET_LOT_SIZE")
    order_types = e.get("orderTypes", [])
    return SymbolRules(
        symbol=symbol,
        base_asset=expect_str(e["baseAsset"], f"{symbol} baseAsset"),
        quote_asset=expect_str(e["quoteAsset"], f"{symbol} quoteAsset"),
        status=expect_str(e["status"], f"{symbol} status"),
        tick_size=size(price_filter["tickSize"], f"{symbol} tickSize"),
        min_price=size(price_filter["minPrice"], f"{symbol} minPrice"),
        max_price=size(price_filter["maxPrice"], f"{symbol} maxPrice"),
        lot=_lot(lot_size, "LOT_SIZE", symbol),
        market_lot=None if market_lot is None else _lot(market_lot, "MARKET_LOT_SIZE", symbol),
        notional=tuple(
            _notional(filters[kind], kind, symbol)
            for kind in ("NOTIONAL", "MIN_NOTIONAL")
            if kind in filters
        ),
        order_types=frozenset(
            expect_str(t, f"{symbol} orderTypes") for t in expect_list(order_types, "orderTypes")
        ),
    )


def parse_symbol_rules(entry: object) -> SymbolRules:
    """One ``exchangeInfo`` ``symbols`` entry; ``DecodeError`` when malformed."""
    try:
        return _symbol_rules(entry)
    except DecodeError:
        raise
    except FOREIGN_ERRORS as exc:
        raise decode_failure("binance exchangeInfo", exc) from None


def parse_exchange_info(body: bytes | str | Mapping[str, Any]) -> dict[str, SymbolRules]:
    """Every symbol of an ``exchangeInfo`` body, by native name."""
    try:
        data = orjson.loads(body) if isinstance(body, bytes | str) else body
        symbols = expect_list(expect_dict(data, "exchangeInfo")["symbols"], "symbols")
    except DecodeError:
        raise
    except FOREIGN_ERRORS as exc:
        raise decode_failure("binance exchangeInfo", exc) from None
    rules = (parse_symbol_rules(entry) for entry in symbols)
    return {r.symbol: r for r in rules}
