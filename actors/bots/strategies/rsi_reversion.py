"""RSI mean reversion: buy when RSI is under ``oversold``, close when it is over ``overbought``.

RSI here is Cutler's: over the last ``period`` changes of the series, ``100 - 100 / (1 + G / L)``
with G and L the sums of gains and losses (a simple window rather than Wilder's smoothing, so the
value depends only on the visible window and is reproducible from any restart point). No losses
gives 100 (50 if nothing moved). The series is accepted tick prices, or closes of ``bar_s``-second
bars. Buys only when flat, closes only when holding.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any, Literal

import attrs

from actors.bots.context import StrategyContext
from actors.bots.strategy import Signal
from actors.messages import Ticker
from actors.schema import FieldValueError, at_least_one, non_negative, percent


@attrs.frozen
class RsiReversionParams:
    period: int = attrs.field(default=14, validator=at_least_one)
    oversold: float = attrs.field(default=30.0, validator=percent)
    overbought: float = attrs.field(default=70.0)
    price: Literal["mid", "last"] = "mid"
    bar_s: float = attrs.field(default=0.0, validator=non_negative)

    @overbought.validator
    def _overbought(self, attribute: attrs.Attribute[Any], value: float) -> None:
        percent(self, attribute, value)
        if value <= self.oversold:
            raise FieldValueError(f"must be > oversold ({self.oversold}), got {value!r}")


def rsi(values: list[Decimal]) -> Decimal:
    gains = losses = Decimal(0)
    for before, after in itertools.pairwise(values):
        change = after - before
        if change > 0:
            gains += change
        else:
            losses -= change
    if losses == 0:
        return Decimal(100) if gains > 0 else Decimal(50)
    return 100 - 100 / (1 + gains / losses)


class RsiReversion:
    Params = RsiReversionParams

    def __init__(self, params: RsiReversionParams):
        self.params = params
        self.price_source = params.price
        self.bar_s = params.bar_s
        self.history = params.period + 1
        self._oversold = Decimal(str(params.oversold))
        self._overbought = Decimal(str(params.overbought))
        self.last_rsi: Decimal | None = None

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if self.bar_s > 0:
            if ctx.new_bar is None:
                return None
            series = [bar.close for bar in ctx.bars.tail(self.params.period + 1)]
        else:
            if not ctx.accepted:
                return None
            series = list(ctx.prices.tail(self.params.period + 1))
        if len(series) < self.params.period + 1:
            return None
        value = self.last_rsi = rsi(series)
        position = ctx.position
        if value < self._oversold and position.flat:
            return Signal.buy("rsi_oversold")
        if value > self._overbought and position.closable_size > 0:
            return Signal.close("rsi_overbought")
        return None
