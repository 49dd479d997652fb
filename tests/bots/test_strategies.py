"""Built-in strategies on scripted price paths produce exactly the expected signals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.bots import Signal
from actors.bots.context import PositionView
from actors.bots.risk import JumpGuard
from actors.bots.strategies.rsi_reversion import rsi
from actors.bots.strategy import context_for, load_strategy
from tests.bots.helpers import T0, D, bot_config, tick


class SimulatedPosition:
    """Fills every signal immediately: a buy opens one lot, a sell closes it."""

    def __init__(self) -> None:
        self.size = Decimal(0)

    def view(self) -> PositionView:
        lots = 1 if self.size else 0
        return PositionView(self.size, None, lots, 0, Decimal(0), self.size)

    def apply(self, signal: Signal) -> None:
        self.size = Decimal(1) if signal.side == "buy" else Decimal(0)


def run_path(
    strategy_name: str, params: dict, path: list, *, step_s: float = 1.0, jump_pct: float = 50.0
):
    """Signals as (tick index, side, reason) for a path of mids (or (bid, ask) pairs)."""
    strategy = load_strategy(bot_config(strategy_name, params))
    position = SimulatedPosition()
    ctx = context_for(strategy, "b1", "BTC/USDT", position_fn=position.view)
    guard = JumpGuard(Decimal(str(jump_pct)), confirm_ticks=1)
    signals = []
    for i, price in enumerate(path):
        t = (
            tick(*price, ts=T0 + i * step_s)
            if isinstance(price, tuple)
            else tick(price, ts=T0 + i * step_s)
        )
        ctx.observe(t, accepted=guard.assess(t.mid), now_ts=t.received_ts)
        signal = strategy.on_tick(t, ctx)
        if signal is not None:
            signals.append((i, signal.side, signal.reason))
            position.apply(signal)
    return signals


def test_sma_cross_golden_then_death_cross():
    path = [10, 10, 10, 10, 10, 11, 12, 13, 12, 11, 10, 9, 8, 9, 10, 11, 12]
    signals = run_path("sma_cross", {"fast": 2, "slow": 4}, path)
    # i=5 golden: fast (10,11)=10.5 > slow (10,10,10,11)=10.25; at i=4 they were equal
    # i=9 death: fast (12,11)=11.5 < slow (12,13,12,11)=12; at i=8 fast 12.5 > slow 12
    # i=14 golden: fast (9,10)=9.5 > slow (9,8,9,10)=9; at i=13 fast 8.5 < slow 9
    assert signals == [
        (5, "buy", "golden_cross"),
        (9, "sell", "death_cross"),
        (14, "buy", "golden_cross"),
    ]


def test_sma_cross_flat_series_never_crosses():
    assert run_path("sma_cross", {"fast": 2, "slow": 3}, [100] * 20) == []


def test_sma_cross_on_bars_signals_only_when_a_bar_completes():
    # 10 s bars; three ticks per bar (ts 0,1,2 / 10,11,12 / ...): closes 10, 10, 10, 12, 8
    ticks = []
    for close in [10, 10, 10, 12, 8, 8]:
        ticks += [close, close, close]
    strategy = load_strategy(bot_config("sma_cross", {"fast": 1, "slow": 2, "bar_s": 10}))
    position = SimulatedPosition()
    ctx = context_for(strategy, "b1", "BTC/USDT", position_fn=position.view)
    signals = []
    for i, price in enumerate(ticks):
        t = tick(price, ts=T0 + (i // 3) * 10 + (i % 3))
        ctx.observe(t, accepted=True, now_ts=t.received_ts)
        signal = strategy.on_tick(t, ctx)
        if signal is not None:
            signals.append((i, signal.side, ctx.new_bar.close if ctx.new_bar else None))
            position.apply(signal)
    # bar closing 12 completes at the first tick of the next bar (i=12); bar 8 completes at i=15
    assert signals == [(12, "buy", D(12)), (15, "sell", D(8))]


def test_sma_cross_uses_last_price_when_asked():
    strategy = load_strategy(bot_config("sma_cross", {"fast": 1, "slow": 2, "price": "last"}))
    ctx = context_for(strategy, "b1", "BTC/USDT")
    for bid, last in [(10, 10), (10, 10), (10, 11)]:
        t = tick(bid, last=last)
        ctx.observe(t, accepted=True, now_ts=t.received_ts)
        signal = strategy.on_tick(t, ctx)
    assert signal == Signal.buy("golden_cross")
    assert list(ctx.prices) == [D(10), D(10), D(11)]


def test_rsi_values():
    assert rsi([D(10), D(9), D(8), D(7)]) == 0
    assert rsi([D(7), D(8), D(9), D(10)]) == 100
    assert rsi([D(5), D(5), D(5)]) == 50
    assert rsi([D(9), D(8), D(7), D(8)]) == 100 - Decimal(100) / (1 + Decimal(1) / Decimal(2))


def test_rsi_reversion_buys_oversold_and_sells_overbought():
    path = [10, 9, 8, 7, 8, 9, 10, 11, 10, 9, 8]
    signals = run_path("rsi_reversion", {"period": 3, "oversold": 30, "overbought": 70}, path)
    # i=3 window 10,9,8,7: RSI 0 -> buy; i=4 (9,8,7,8) 33.3 and i=5 (8,7,8,9) 66.7: hold;
    # i=6 (7,8,9,10) 100 -> sell; i=9 (10,11,10,9) 33.3: no; i=10 (11,10,9,8) 0 -> buy
    assert signals == [
        (3, "buy", "rsi_oversold"),
        (6, "sell", "rsi_overbought"),
        (10, "buy", "rsi_oversold"),
    ]


def test_threshold_buys_below_and_closes_above_once_each():
    path = [105, 99, 98, 111, 112, 99]
    signals = run_path("threshold", {"buy_below": 100, "sell_above": 110}, path)
    assert signals == [
        (1, "buy", "below_threshold"),
        (3, "sell", "above_threshold"),
        (5, "buy", "below_threshold"),
    ]


def test_threshold_limit_offset_asks_for_limit_orders():
    strategy = load_strategy(bot_config("threshold", {"buy_below": 100, "limit_offset_pct": 1}))
    ctx = context_for(strategy, "b1", "BTC/USDT")
    t = tick(90)
    ctx.observe(t, accepted=True, now_ts=t.received_ts)
    assert strategy.on_tick(t, ctx) == Signal.buy("below_threshold", price=D("89.1"))


def test_quarantined_ticks_do_not_feed_indicators():
    # jump guard at 5%: the spike to 20 is quarantined and never enters the SMA history
    strategy = load_strategy(bot_config("sma_cross", {"fast": 1, "slow": 2}))
    ctx = context_for(strategy, "b1", "BTC/USDT")
    guard = JumpGuard(Decimal(5), reference=D(10))
    for price in [10, 10, 20, 10]:
        t = tick(price)
        ctx.observe(t, accepted=guard.assess(t.mid), now_ts=t.received_ts)
        assert strategy.on_tick(t, ctx) is None
    assert list(ctx.prices) == [D(10), D(10), D(10)]


def test_signal_amounts_are_positive_decimals():
    assert Signal.buy("x", quote=D(50)).quote == D(50)
    with pytest.raises(TypeError, match=r"Signal\.quote must be a Decimal, got float 50\.0"):
        Signal.buy("x", quote=50.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Signal\.price must be a Decimal"):
        Signal.sell("x", price=101.5)  # type: ignore[arg-type]
    for bad in (D(0), D(-1), Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError, match=r"Signal\.size must be > 0"):
            Signal.sell("x", size=bad)
