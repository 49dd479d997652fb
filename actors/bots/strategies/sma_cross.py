"""Simple moving-average crossover: buy on a golden cross, close on a death cross.

The series is either every accepted tick's price (``bar_s = 0``, the default) or the closes of
completed ``bar_s``-second bars. A cross is judged between the previous and the current point of
the series: golden when the fast SMA was at or below the slow one and is now above it, death when
it was at or above and is now below. Comparisons are exact (sums cross-multiplied, no division),
so equal averages never flicker into a cross through rounding. Signals are gated on the position:
buy only when flat, close only when holding, so a cross never produces a second entry.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import attrs

from actors.bots.context import StrategyContext
from actors.bots.money import ZERO
from actors.bots.strategy import Signal
from actors.messages import Ticker
from actors.schema import FieldValueError, non_negative, positive


@attrs.frozen
class SmaCrossParams:
    fast: int = attrs.field(default=10, validator=positive)
    slow: int = attrs.field(default=30)
    price: Literal["mid", "last"] = "mid"
    bar_s: float = attrs.field(default=0.0, validator=non_negative)

    @slow.validator
    def _slow(self, attribute: attrs.Attribute[Any], value: int) -> None:
        positive(self, attribute, value)
        if value <= self.fast:
            raise FieldValueError(f"must be > fast ({self.fast}), got {value!r}")


class SmaCross:
    Params = SmaCrossParams

    def __init__(self, params: SmaCrossParams):
        self.params = params
        self.price_source = params.price
        self.bar_s = params.bar_s
        self.history = params.slow + 1

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if self.bar_s > 0:
            if ctx.new_bar is None:
                return None
            series = [bar.close for bar in ctx.bars.tail(self.params.slow + 1)]
        else:
            if not ctx.accepted:
                return None
            series = list(ctx.prices.tail(self.params.slow + 1))
        fast, slow = self.params.fast, self.params.slow
        if len(series) < slow + 1:
            return None
        now = _relation(series[-fast:], series[-slow:])
        before = _relation(series[-fast - 1 : -1], series[-slow - 1 : -1])
        position = ctx.position
        if before <= 0 and now > 0 and position.flat:
            return Signal.buy("golden_cross")
        if before >= 0 and now < 0 and position.closable_size > 0:
            return Signal.close("death_cross")
        return None


def _relation(fast_window: list[Decimal], slow_window: list[Decimal]) -> int:
    """Sign of SMA(fast) - SMA(slow), computed as sum_f * n_s - sum_s * n_f (exact)."""
    diff = sum(fast_window, ZERO) * len(slow_window) - sum(slow_window, ZERO) * len(fast_window)
    return int(diff > 0) - int(diff < 0)
