"""An example strategy (docs/user-guide.md): buy when the price breaks above its recent range,
close when it breaks below.

Named in config by dotted path, ``strategy = "breakout:Breakout"``, with this file's directory
on ``PYTHONPATH`` (or any module path of your own package).
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from actors.bots import Signal, StrategyContext
from actors.messages import Ticker


@attrs.frozen
class BreakoutParams:
    window: int = attrs.field(default=20, validator=attrs.validators.ge(2))
    quote: Decimal | None = None  # buy size in quote currency; None: the bot's order_quote


class Breakout:
    Params = BreakoutParams  # the bot's `params` table is structured into this
    price_source = "mid"  # ctx.price and ctx.prices use the bid/ask mid

    def __init__(self, params: BreakoutParams):
        self.params = params
        self.history = params.window + 1  # how many accepted prices ctx.prices keeps

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if not ctx.accepted:  # quarantined by the price jump guard: not a price to act on
            return None
        prices = ctx.prices.tail(self.params.window + 1)
        if len(prices) <= self.params.window:
            return None  # still warming up
        *window, now = prices
        if now > max(window) and ctx.position.flat:
            return Signal.buy("breakout", quote=self.params.quote)
        if now < min(window) and ctx.position.closable_size > 0:
            return Signal.close("breakdown")
        return None
