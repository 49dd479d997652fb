"""Seeded market model for the simulated exchanges (pure: no I/O, no clock).

Decisions:

* One ``Market`` per symbol per server, shared by every connection, so that trade ids, book
  update ids and Coinbase sequences only ever grow (a client that keeps the highest id across
  reconnects must not drop data after a reconnect) and the REST ticker shows the same book as the
  WebSocket feed.
* Connections *pull* steps: each connection's feed task calls ``step()`` at its own pace (the
  rate knob, or as fast as its socket drains). With one connection the path it sees is exactly
  the seeded path; with several, they share one path and each sees every step it pulled.
* Every step is one taker trade against the current book followed by a new book, so a ticker
  stream and a trade stream of a symbol each get one event per step and always agree.
* Prices are integer ticks and sizes integer lots, formatted exactly with ``fixed``; floats are
  used only for the random walk itself. Everything random comes from one ``random.Random`` seeded
  with ``f"{seed}/{symbol}"`` (string seeds hash with SHA-512, so PYTHONHASHSEED does not matter).
"""

from __future__ import annotations

import math
import random
from collections import deque

import attrs

from actors.exchanges.symbols import split_unified

# Rough USD prices used to start the walk at a realistic level; unknown assets get a seeded price.
USD_PRICES: dict[str, float] = {
    "BTC": 65_000.0,
    "ETH": 3_200.0,
    "SOL": 150.0,
    "BNB": 580.0,
    "XRP": 0.55,
    "DOGE": 0.15,
    "ADA": 0.45,
    "LTC": 80.0,
    "DOT": 6.5,
    "LINK": 14.0,
    "AVAX": 30.0,
    "TRX": 0.12,
    "XLM": 0.11,
    "XMR": 160.0,
    "ATOM": 8.0,
    "UNI": 7.5,
    "USDT": 1.0,
    "USDC": 1.0,
    "FDUSD": 1.0,
    "DAI": 1.0,
    "USD": 1.0,
    "EUR": 1.08,
    "GBP": 1.27,
    "JPY": 0.0067,
    "CAD": 0.73,
    "AUD": 0.66,
}
HISTORY_LENGTH = 100  # trades kept for snapshots (Coinbase Advanced market_trades sends 100)
TOP_OF_BOOK_NOTIONAL_USD = 50_000.0
TRADE_NOTIONAL_USD = 500.0


def fixed(value: int, decimals: int) -> str:
    """Integer ``value`` scaled by ``10**-decimals`` as an exact decimal string (``fixed(1234, 2)
    == "12.34"``); avoids float rounding in the strings put on the wire."""
    if value < 0:
        return "-" + fixed(-value, decimals)
    if decimals <= 0:
        return str(value)
    digits = str(value).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}"


def number(value: int, decimals: int) -> str:
    """Like ``fixed`` without trailing zeros: JSON number text as Kraken v2 sends (``105944.2``)."""
    text = fixed(value, decimals)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


@attrs.frozen(slots=True)
class MarketSpec:
    """Static, seeded description of one market: where the walk starts and its granularity."""

    symbol: str
    base: str
    quote: str
    price_decimals: int  # tick = 10**-price_decimals
    size_decimals: int  # lot = 10**-size_decimals
    initial_price: float
    spread_bps: float
    volatility_bps: float  # standard deviation of the mid move per step

    @classmethod
    def for_symbol(cls, symbol: str, rng: random.Random) -> MarketSpec:
        base, quote = split_unified(symbol)
        base_usd = USD_PRICES.get(base) or rng.uniform(1.0, 100.0)
        quote_usd = USD_PRICES.get(quote) or rng.uniform(1.0, 100.0)
        price = base_usd / quote_usd
        magnitude = math.floor(math.log10(price))
        return cls(
            symbol=symbol,
            base=base,
            quote=quote,
            price_decimals=min(8, max(2, 6 - magnitude)),
            size_decimals=min(8, max(0, math.floor(math.log10(base_usd)) + 1)),
            initial_price=price,
            spread_bps=rng.uniform(0.5, 3.0),
            volatility_bps=1.0,
        )


@attrs.frozen(slots=True)
class Step:
    """One market event: a taker trade, then the book it left. Prices in ticks, sizes in lots.

    The session fields (open/high/low/volume/...) describe the market since it was created and
    stand in for the exchanges' 24 h rolling figures.
    """

    index: int
    ts: float  # wall-clock epoch seconds of the trade and the book change
    bid: int
    ask: int
    bid_size: int
    ask_size: int
    price: int
    size: int
    side: str  # taker side: "buy" lifted the ask, "sell" hit the bid
    trade_id: int
    update_id: int  # order book update id (Binance ``u``), grows by 1..40 per step
    sequence: int  # per-product sequence shared by all channels (Coinbase), grows by 1..50
    open: int
    high: int
    low: int
    volume: int  # lots traded, including a seeded base volume
    quote_volume: float  # in quote currency units
    trade_count: int


class Market:
    """The mutable state of one symbol; only ``step()`` changes it."""

    def __init__(self, symbol: str, seed: int, start_ts: float) -> None:
        self.rng = random.Random(f"{seed}/{symbol}")
        rng = self.rng
        self.spec = spec = MarketSpec.for_symbol(symbol, rng)
        self.symbol = symbol
        self.tick_scale: int = 10**spec.price_decimals
        self.lot_scale: int = 10**spec.size_decimals
        base_usd = spec.initial_price * USD_PRICES.get(spec.quote, 1.0)
        self._mid = spec.initial_price * self.tick_scale  # in ticks, float
        self._sigma = spec.volatility_bps / 10_000
        self._book_lots = max(1.0, TOP_OF_BOOK_NOTIONAL_USD / base_usd * self.lot_scale)
        self._trade_lots = max(1.0, TRADE_NOTIONAL_USD / base_usd * self.lot_scale)
        self._index = 0
        self._trade_id = rng.randrange(100_000_000, 900_000_000)
        self._update_id = rng.randrange(1_000_000_000, 9_000_000_000)
        self._sequence = rng.randrange(10_000_000_000, 90_000_000_000)
        self._open = round(self._mid)
        self._high = self._low = self._open
        self._volume = round(rng.uniform(5e6, 5e7) / base_usd * self.lot_scale)
        self._quote_volume = self._volume / self.lot_scale * spec.initial_price
        self._trade_count = rng.randrange(50_000, 500_000)
        self._bid, self._ask = self._quote_around(self._mid)
        self.history: deque[Step] = deque(maxlen=HISTORY_LENGTH)
        # Warm up so that "last trade" and trade snapshots exist from the start.
        for i in range(HISTORY_LENGTH):
            self.step(start_ts - (HISTORY_LENGTH - i) * 0.25)
        self.last: Step = self.history[-1]

    def _quote_around(self, mid: float) -> tuple[int, int]:
        spread = max(1, round(mid * self.spec.spread_bps / 10_000 * self.rng.uniform(0.8, 1.2)))
        bid = max(1, math.floor(mid - spread / 2))
        return bid, bid + spread

    def _lots(self, median: float, sigma: float) -> int:
        return max(1, round(median * math.exp(self.rng.gauss(0.0, sigma))))

    def step(self, ts: float) -> Step:
        rng = self.rng
        side = "buy" if rng.random() < 0.5 else "sell"
        price = self._ask if side == "buy" else self._bid
        size = self._lots(self._trade_lots, 1.0)
        impact = 0.2 if side == "buy" else -0.2
        self._mid = max(1.0, self._mid * math.exp(self._sigma * (rng.gauss(0.0, 1.0) + impact)))
        self._bid, self._ask = self._quote_around(self._mid)
        self._index += 1
        self._trade_id += 1
        self._update_id += rng.randint(1, 40)
        self._sequence += rng.randint(1, 50)
        self._high = max(self._high, price)
        self._low = min(self._low, price)
        self._volume += size
        self._quote_volume += price * size / (self.tick_scale * self.lot_scale)
        self._trade_count += 1
        step = Step(
            index=self._index,
            ts=ts,
            bid=self._bid,
            ask=self._ask,
            bid_size=self._lots(self._book_lots, 0.8),
            ask_size=self._lots(self._book_lots, 0.8),
            price=price,
            size=size,
            side=side,
            trade_id=self._trade_id,
            update_id=self._update_id,
            sequence=self._sequence,
            open=self._open,
            high=self._high,
            low=self._low,
            volume=self._volume,
            quote_volume=self._quote_volume,
            trade_count=self._trade_count,
        )
        self.history.append(step)
        self.last = step
        return step

    # Formatting helpers shared by the protocol modules.
    def price(self, ticks: int, decimals: int | None = None) -> str:
        """Exact decimal string; ``decimals`` pads (Binance always shows 8)."""
        own = self.spec.price_decimals
        if decimals is None or decimals <= own:
            return fixed(ticks, own)
        return fixed(ticks * 10 ** (decimals - own), decimals)

    def size(self, lots: int, decimals: int | None = None) -> str:
        own = self.spec.size_decimals
        if decimals is None or decimals <= own:
            return fixed(lots, own)
        return fixed(lots * 10 ** (decimals - own), decimals)

    def price_number(self, ticks: int) -> str:
        return number(ticks, self.spec.price_decimals)

    def size_number(self, lots: int) -> str:
        return number(lots, self.spec.size_decimals)

    def vwap(self, step: Step) -> float:
        return step.quote_volume / max(step.volume / self.lot_scale, 1e-12)
