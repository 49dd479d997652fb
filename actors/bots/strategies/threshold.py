"""Threshold: buy when the price is under ``buy_below``, close when it is over ``sell_above``.

For demos and tests: the simplest strategy that trades. It looks at this tick's price even if the
jump guard quarantined it, so a bad print makes it *ask* to trade and the risk check refuses
(``price_jump``), which is the behaviour the guard exists to show. Buys only when flat, closes
only when holding. Optional ``limit_offset_pct`` places limit orders that far inside the price
(buy below, sell above) instead of market orders.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import attrs

from actors.bots.context import StrategyContext
from actors.bots.strategy import Signal
from actors.messages import Ticker
from actors.schema import FieldValueError, percent, positive


@attrs.frozen
class ThresholdParams:
    buy_below: Decimal | None = attrs.field(default=None, validator=positive)
    sell_above: Decimal | None = attrs.field(default=None)
    price: Literal["mid", "last"] = "mid"
    limit_offset_pct: float | None = attrs.field(default=None, validator=percent)

    @sell_above.validator
    def _sell_above(self, attribute: attrs.Attribute[Any], value: Decimal | None) -> None:
        positive(self, attribute, value)
        if value is not None and self.buy_below is not None and value <= self.buy_below:
            raise FieldValueError(f"must be > buy_below ({self.buy_below}), got {value}")

    def __attrs_post_init__(self) -> None:
        if self.buy_below is None and self.sell_above is None:
            raise FieldValueError("set buy_below, sell_above or both")


class Threshold:
    Params = ThresholdParams

    def __init__(self, params: ThresholdParams):
        self.params = params
        self.price_source = params.price
        self.history = 1
        self._offset = (
            None if params.limit_offset_pct is None else Decimal(str(params.limit_offset_pct)) / 100
        )

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        price = ctx.price
        if price is None:
            return None
        position = ctx.position
        if self.params.buy_below is not None and price < self.params.buy_below and position.flat:
            limit = None if self._offset is None else price * (1 - self._offset)
            return Signal.buy("below_threshold", price=limit)
        if (
            self.params.sell_above is not None
            and price > self.params.sell_above
            and position.closable_size > 0
        ):
            if self._offset is None:
                return Signal.close("above_threshold")
            return Signal.sell("above_threshold", price=price * (1 + self._offset))
        return None
