"""Paper fills: fee, slippage, rounding, min notional, limit orders crossing (pure)."""

from __future__ import annotations

from decimal import Decimal

from actors.bots.executor import PaperExecutor, PaperFill
from actors.bots.money import round_down, round_up
from actors.bots.risk import RejectReason
from actors.journal.store import OrderIntent
from supervisor.config import MarketConfig, PaperConfig
from tests.bots.helpers import D, tick

MARKET = MarketConfig(tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D(10))


def executor(fee="0.1", slippage="0") -> PaperExecutor:
    return PaperExecutor(PaperConfig(fee_pct=D(fee), slippage_pct=D(slippage)), MARKET)


def intent(plan, seq=1) -> OrderIntent:
    return OrderIntent(
        client_id=f"b1-{seq}",
        bot_id="b1",
        seq=seq,
        symbol="BTC/USDT",
        side=plan.side,
        order_type=plan.order_type,
        size=plan.size,
        price=plan.price,
        tag=plan.tag,
        position_id=plan.position_id,
        created_ts=0.0,
    )


def test_rounding_helpers():
    assert round_down(D("1.23456"), D("0.001")) == D("1.234")
    assert str(round_down(D("2"), D("0.001"))) == "2.000"
    assert round_down(D("1.74"), D("0.5")) == D("1.5")
    assert round_up(D("100.001"), D("0.01")) == D("100.01")
    assert round_up(D("100.00"), D("0.01")) == D("100.00")


def test_market_buy_fills_at_ask_with_fee_and_rounded_size():
    ex = executor(fee="0.1")
    t = tick("99.5", "100.00")
    plan = ex.plan_buy(D(250), t)
    assert plan.size == D("2.500")
    assert plan.expected_price == D("100.00")
    assert plan.notional_quote == D("250")
    assert plan.cost_quote == D("250.25")
    fill = ex.execute(intent(plan), t)
    assert fill == PaperFill(price=D("100.00"), size=D("2.500"), fee=D("0.25"))


def test_size_rounds_down_never_up():
    ex = executor(fee="0")
    plan = ex.plan_buy(D(100), tick(30, 30))
    assert plan.size == D("3.333")  # 3.3333... rounded down to the 0.001 lot
    assert plan.notional_quote == D("99.990")


def test_slippage_moves_price_against_us_and_rounds_to_tick():
    ex = executor(fee="0", slippage="0.05")
    t = tick("99.99", "100.01")
    buy = ex.plan_buy(D(1000), t)
    assert buy.expected_price == D("100.07")  # 100.01 * 1.0005 = 100.060005 -> up to 100.07
    assert ex.execute(intent(buy), t).price == D("100.07")
    sell = ex.plan_sell(D(1), t)
    assert sell.expected_price == D("99.94")  # 99.99 * 0.9995 = 99.940005 -> down to 99.94
    assert ex.execute(intent(sell), t).price == D("99.94")


def test_min_notional_and_lot():
    ex = executor(fee="0")
    assert ex.plan_buy(D("9.99"), tick(1, 1)) is RejectReason.MIN_NOTIONAL
    assert ex.plan_buy(D("0.05"), tick(100, 100)) is RejectReason.SIZE_BELOW_LOT
    assert ex.plan_sell(D("0.0009"), tick(100, 100)) is RejectReason.SIZE_BELOW_LOT
    assert ex.plan_sell(D("0.099"), tick(100, 100)) is RejectReason.MIN_NOTIONAL
    assert ex.plan_sell(D("0.1"), tick(100, 100)).notional_quote == D("10.0")


def test_limit_buy_rests_until_the_ask_reaches_it_then_fills_at_the_limit():
    ex = executor(fee="0.1")
    plan = ex.plan_buy(D(100), tick(100, "100.5"), order_type="limit", limit_price=D("99.999"))
    assert plan.price == D("99.99")  # buy limit rounded down to the tick
    assert plan.size == D("1.000")
    order = intent(plan)
    assert ex.execute(order, tick(100, "100.5")) is None  # not marketable: rests
    assert ex.fill_resting(order, tick(100, 100)) is None
    fill = ex.fill_resting(order, tick("98.5", "99.5"))  # crossed through: fills at the limit
    assert fill == PaperFill(price=D("99.99"), size=D("1.000"), fee=D("0.09999"))


def test_marketable_limit_fills_at_the_better_touch():
    ex = executor(fee="0")
    t = tick(98, 99)
    plan = ex.plan_buy(D(200), t, order_type="limit", limit_price=D(100))
    assert ex.execute(intent(plan), t).price == D(99)
    sell = ex.plan_sell(D(1), t, order_type="limit", limit_price=D("97.001"))
    assert sell.price == D("97.01")  # sell limit rounded up
    assert ex.execute(intent(sell), t).price == D(98)


def test_limit_sell_rests_then_fills_when_bid_reaches_it():
    ex = executor(fee="0")
    plan = ex.plan_sell(D(1), tick(100, 101), order_type="limit", limit_price=D(105))
    order = intent(plan)
    assert ex.execute(order, tick(100, 101)) is None
    assert ex.fill_resting(order, tick("104.99", 106)) is None
    assert ex.fill_resting(order, tick(105, 106)).price == D(105)


def test_paper_reconciles_unfilled_intents_by_cancelling():
    assert executor().reconcile(None) == "cancelled"  # type: ignore[arg-type]


def test_money_stays_decimal():
    ex = executor(fee="0.075", slippage="0.01")
    fill = ex.execute(intent(ex.plan_buy(D(123), tick("10.01", "10.02"))), tick("10.01", "10.02"))
    assert all(isinstance(v, Decimal) for v in (fill.price, fill.size, fill.fee))
