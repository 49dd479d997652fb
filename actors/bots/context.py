"""What a strategy sees on each tick: prices, bars, its position and balance.

The bot owns one ``StrategyContext`` and updates it before calling the strategy; the strategy
only reads it. Position and balance are computed on access (frozen snapshots), so a strategy that
never looks at them costs nothing.

Decisions:

* **Price source.** A strategy names ``price_source`` (``"mid"`` or ``"last"``); ``ctx.price``
  and the histories use it. Where the stream carries no last price (Binance bookTicker), ``last``
  falls back to the mid rather than skipping the tick.
* **Only accepted ticks feed histories and bars.** A tick quarantined by the jump guard is shown
  to the strategy (``ctx.price``, ``ctx.accepted is False``), so it may react, but any order it
  asks for is refused by risk, and the bad print never enters an indicator.
* **Bars** (``bar_s > 0``) complete when the first tick of a later bucket arrives;
  ``ctx.new_bar`` is the bar completed by this tick, else None.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Literal

import attrs

from actors.bots.bars import Bar, BarBuilder, Series
from actors.messages import Ticker

PriceSource = Literal["mid", "last"]


@attrs.frozen(slots=True)
class PositionView:
    size: Decimal  # base units held
    entry_price: Decimal | None  # size-weighted entry price of the open lots
    open_positions: int  # lots held
    pending_buys: int  # resting buy orders
    unrealized_pnl: Decimal
    closable_size: Decimal  # what a sell may still take: not committed to resting sells or exits

    @property
    def flat(self) -> bool:
        """Nothing held and nothing about to be bought."""
        return self.open_positions == 0 and self.pending_buys == 0


@attrs.frozen(slots=True)
class BalanceView:
    quote: Decimal
    base: Decimal
    available_quote: Decimal  # not reserved by resting buy orders


def price_of(ticker: Ticker, source: PriceSource) -> Decimal:
    if source == "last" and ticker.last is not None:
        return ticker.last
    return (ticker.bid + ticker.ask) / 2


@attrs.define(eq=False)
class StrategyContext:
    bot_id: str
    symbol: str
    price_source: PriceSource = "mid"
    bar_s: float = 0.0
    history: int = 500
    _position: Callable[[], PositionView] | None = attrs.field(default=None, alias="position_fn")
    _balance: Callable[[], BalanceView] | None = attrs.field(default=None, alias="balance_fn")
    ticker: Ticker | None = attrs.field(default=None, init=False)
    price: Decimal | None = attrs.field(
        default=None, init=False
    )  # this tick's, even if quarantined
    accepted: bool = attrs.field(default=False, init=False)
    new_bar: Bar | None = attrs.field(default=None, init=False)
    now_ts: float = attrs.field(default=0.0, init=False)
    _prices: deque[Decimal] = attrs.field(init=False)
    _builder: BarBuilder | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self._prices = deque(maxlen=max(1, self.history))
        if self.bar_s > 0:
            self._builder = BarBuilder(self.bar_s, maxlen=max(1, self.history))

    @property
    def prices(self) -> Series[Decimal]:
        """Accepted tick prices, newest last, at most ``history`` of them."""
        return Series(self._prices)

    @property
    def bars(self) -> Series[Bar]:
        """Completed bars, newest last (empty unless the strategy set ``bar_s``)."""
        return Series(self._builder.completed if self._builder is not None else deque())

    @property
    def position(self) -> PositionView:
        if self._position is None:
            return PositionView(Decimal(0), None, 0, 0, Decimal(0), Decimal(0))
        return self._position()

    @property
    def balance(self) -> BalanceView:
        if self._balance is None:
            return BalanceView(Decimal(0), Decimal(0), Decimal(0))
        return self._balance()

    def observe(
        self, ticker: Ticker, *, accepted: bool, now_ts: float, mid: Decimal | None = None
    ) -> None:
        """Called by the bot (only) before the strategy sees ``ticker``; ``mid``, when given, is
        ``ticker.mid`` already computed (the bot's jump guard needs it first)."""
        self.ticker = ticker
        self.now_ts = now_ts
        self.accepted = accepted
        self.new_bar = None
        if mid is not None and (self.price_source == "mid" or ticker.last is None):
            price = mid
        else:
            price = price_of(ticker, self.price_source)
        self.price = price
        if accepted:
            self._prices.append(price)
            if self._builder is not None:
                self.new_bar = self._builder.update(price, ticker.received_ts)
