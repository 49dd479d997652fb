"""Strategies for replay tests (loaded by path: ``tests.replay.strategies:Name``)."""

from __future__ import annotations

from typing import ClassVar

import trio

from actors.bots import Signal, StrategyContext
from actors.messages import Ticker, Trade


class TradeFollower:
    """Buys on a large taker buy (``on_trade``), closes three ticks later: decisions on both
    streams, so their interleaving matters."""

    def __init__(self) -> None:
        self.held_ticks = 0

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if ctx.position.flat:
            return None
        self.held_ticks += 1
        if self.held_ticks >= 3 and ctx.position.closable_size > 0:
            self.held_ticks = 0
            return Signal.close("three_ticks")
        return None

    def on_trade(self, trade: Trade, ctx: StrategyContext) -> Signal | None:
        if trade.side == "buy" and trade.size >= 1 and ctx.position.flat:
            return Signal.buy("big_taker_buy")
        return None


class TickLog:
    """Never trades; logs every ticker it is handed with the Trio clock's time then
    (class-wide: the test reads it)."""

    seen: ClassVar[list[tuple[Ticker, float]]] = []

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        TickLog.seen.append((ticker, trio.current_time()))
        return None
