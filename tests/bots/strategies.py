"""Users' own strategies, loaded by dotted path ("tests.bots.strategies:AlwaysBuy") in tests."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import attrs

from actors.bots import Signal, StrategyContext
from actors.market_data.mailbox import Mailbox
from actors.messages import Ticker, Trade


class AlwaysBuy:
    """Asks to buy on every tick (risk decides)."""

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        return Signal.buy("always")


@attrs.frozen
class LimitParams:
    offset: Decimal = attrs.field(default=Decimal("1"), validator=attrs.validators.gt(0))
    side: str = "buy"


class LimitOnce:
    """Places one limit order ``offset`` away from the price, once."""

    Params = LimitParams

    def __init__(self, params: LimitParams):
        self.params = params
        self.placed = False

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if self.placed:
            return None
        self.placed = True
        if self.params.side == "buy":
            return Signal.buy("limit", price=ticker.ask - self.params.offset)
        return Signal.sell("limit", price=ticker.bid + self.params.offset)


class BuyOnceThenLimitSell:
    """Buys once at market, then rests a sell limit far above (for exit-priority tests)."""

    def __init__(self) -> None:
        self.step = 0

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        self.step += 1
        if self.step == 1:
            return Signal.buy("entry")
        if self.step == 2:
            return Signal.sell("take_profit_limit", price=ticker.bid * 2)
        return None


@attrs.frozen
class RaisingParams:
    on_tick_number: int = 2


class Raising:
    Params = RaisingParams

    def __init__(self, params: RaisingParams):
        self.params = params
        self.ticks = 0
        self.stopped = False

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        self.ticks += 1
        if self.ticks == self.params.on_tick_number:
            raise ZeroDivisionError("strategy bug")
        return None


class TradeFollower:
    """Buys when a large taker buy prints (on_trade); also records lifecycle hooks."""

    calls: ClassVar[list[str]] = []

    def on_start(self, ctx: StrategyContext) -> None:
        TradeFollower.calls.append("start")

    def on_stop(self, ctx: StrategyContext) -> None:
        TradeFollower.calls.append("stop")

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        return None

    def on_trade(self, trade: Trade, ctx: StrategyContext) -> Signal | None:
        if trade.side == "buy" and trade.size >= 1 and ctx.position.flat:
            return Signal.buy("big_taker_buy")
        return None


class NoOnTick:
    pass


NOT_A_CLASS = 3


class Idle:
    """Never signals: only the position monitor trades (for protection tests)."""

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        return None


class Churn:
    """Trades on every tick: buys when flat, closes when holding (for shutdown tests)."""

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if ctx.position.flat:
            return Signal.buy("churn")
        return Signal.close("churn")


class BuyOnce:
    """Buys on its first tick, then never signals again (for position-monitor tests)."""

    def __init__(self) -> None:
        self.done = False

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if self.done:
            return None
        self.done = True
        return Signal.buy("entry")


@attrs.frozen
class LegParams:
    weight: int = attrs.field(default=1, validator=attrs.validators.ge(1))


@attrs.frozen
class NestedParams:
    main: LegParams = attrs.Factory(LegParams)
    legs: tuple[LegParams, ...] = ()


class Nested:
    """Params with a nested table and an array of tables (field paths go all the way down)."""

    Params = NestedParams

    def __init__(self, params: NestedParams):
        self.params = params

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        return None


class EveryTick:
    """Trades on every tick (buys when flat, closes when holding) and records, at each call,
    the ticker it was handed and how many newer items its bot's ticker mailbox held then
    (``probe``: set by the test to that mailbox)."""

    probe: ClassVar[Mailbox | None] = None
    seen: ClassVar[list[tuple[Ticker, int]]] = []

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        assert EveryTick.probe is not None
        EveryTick.seen.append((ticker, EveryTick.probe.statistics().pending))
        if ctx.position.flat:
            return Signal.buy("every_tick")
        return Signal.close("every_tick")
