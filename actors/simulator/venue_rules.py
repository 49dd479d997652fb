"""Symbol rules of the local Binance venue: ``exchangeInfo`` filters and their checks (pure).

Decisions:

* Rules derive from the seeded ``MarketSpec`` of the symbol, so the venue and the market-data
  simulator agree: PRICE_FILTER ``tickSize`` is the model's tick and LOT_SIZE ``stepSize`` its
  lot (for BTC/USDT: 0.01 and 0.00001, as on Binance). Limits are round numbers of about
  Binance's size: ``minNotional`` worth 5 USD in the quote asset (rounded up to one significant
  digit: 5 USDT, 0.00008 BTC), ``maxNotional`` 9,000,000 USD, LOT_SIZE ``maxQty`` 9 * 10**k
  base units worth 10..100 M USD, MARKET_LOT_SIZE ``maxQty`` worth 5 M USD, ``maxPrice`` the
  power of ten above 10x the starting price.
* Every amount is a ``Decimal`` and goes on the wire with 8 decimals, as Binance sends it.
* Checks follow Binance's filter rules (each bound off when 0): PRICE_FILTER and LOT_SIZE
  test ``(value - min) % step == 0``; MARKET orders are checked against LOT_SIZE *and*
  MARKET_LOT_SIZE; NOTIONAL applies its minimum to MARKET orders (``applyMinToMarket``) with
  the reference price (the model's average price), its maximum only to LIMIT orders.
* More than 8 decimals (the asset precision) is ``-1111``, not a filter failure.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

import attrs

from actors.exchanges.symbols import binance_native
from actors.simulator.model import USD_PRICES, Market

PRECISION = 8
QUANTUM = Decimal(1).scaleb(-PRECISION)
ZERO = Decimal(0)
MIN_NOTIONAL_USD = 5.0
MAX_NOTIONAL_USD = 9_000_000.0
MARKET_MAX_NOTIONAL_USD = 5_000_000.0
AVG_PRICE_MINS = 5
MAX_NUM_ORDERS = 200


def fmt(value: Decimal) -> str:
    """8-decimal wire form (``"0.10000000"``), as Binance sends amounts."""
    return f"{value:.{PRECISION}f}"


def decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _one_digit_up(value: float) -> Decimal:
    """``value`` rounded up to one significant digit (7.69e-05 -> 0.00008)."""
    scale = Decimal(1).scaleb(math.floor(math.log10(value)))
    return (Decimal(value) / scale).to_integral_value(ROUND_CEILING) * scale


@attrs.frozen(slots=True)
class SymbolRules:
    symbol: str  # native, e.g. BTCUSDT
    unified: str  # BTC/USDT
    base: str
    quote: str
    tick: Decimal
    min_price: Decimal
    max_price: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_notional: Decimal

    @classmethod
    def for_market(cls, market: Market) -> SymbolRules:
        spec = market.spec
        tick = Decimal(1).scaleb(-spec.price_decimals)
        step = Decimal(1).scaleb(-spec.size_decimals)
        quote_usd = USD_PRICES.get(spec.quote, 1.0)
        base_usd = spec.initial_price * quote_usd
        max_qty = Decimal(9).scaleb(math.floor(math.log10(1e8 / base_usd)))
        market_max = Decimal(MARKET_MAX_NOTIONAL_USD / base_usd).quantize(step, ROUND_DOWN)
        return cls(
            symbol=binance_native(market.symbol),
            unified=market.symbol,
            base=spec.base,
            quote=spec.quote,
            tick=tick,
            min_price=tick,
            max_price=Decimal(10) ** (math.ceil(math.log10(spec.initial_price)) + 1),
            step=step,
            min_qty=step,
            max_qty=max(max_qty, step),
            market_max_qty=max(market_max, step),
            min_notional=_one_digit_up(MIN_NOTIONAL_USD / quote_usd),
            max_notional=_one_digit_up(MAX_NOTIONAL_USD / quote_usd),
        )

    # --- exchangeInfo ----------------------------------------------------------------------
    def filters(self) -> list[dict[str, object]]:
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(self.min_price),
                "maxPrice": fmt(self.max_price),
                "tickSize": fmt(self.tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(self.min_qty),
                "maxQty": fmt(self.max_qty),
                "stepSize": fmt(self.step),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt(ZERO),
                "maxQty": fmt(self.market_max_qty),
                "stepSize": fmt(ZERO),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(self.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt(self.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": AVG_PRICE_MINS,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": MAX_NUM_ORDERS},
        ]

    def exchange_info(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": PRECISION,
            "quoteAsset": self.quote,
            "quotePrecision": PRECISION,
            "quoteAssetPrecision": PRECISION,
            "baseCommissionPrecision": PRECISION,
            "quoteCommissionPrecision": PRECISION,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": self.filters(),
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }

    # --- checks: the failing filter's name, or None ------------------------------------------
    def price_failure(self, price: Decimal) -> str | None:
        if price < self.min_price or price > self.max_price:
            return "PRICE_FILTER"
        if (price - self.min_price) % self.tick != 0:
            return "PRICE_FILTER"
        return None

    def lot_failure(self, qty: Decimal, *, market: bool) -> str | None:
        if qty < self.min_qty or qty > self.max_qty or (qty - self.min_qty) % self.step != 0:
            return "LOT_SIZE"
        if market and qty > self.market_max_qty:
            return "MARKET_LOT_SIZE"
        return None

    def notional_failure(self, notional: Decimal, *, market: bool) -> str | None:
        if notional < self.min_notional or (not market and notional > self.max_notional):
            return "NOTIONAL"
        return None
