"""Paper prices (fee, slippage, rounding, min notional, limits crossing) and the paper venue
behind the executor seam: reports, resting orders, stale prices, cancel, reconciliation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.bots.executor import (
    RECONCILED_REASON,
    ExecutionReport,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderResting,
    PaperFill,
    PaperVenue,
    Pricing,
    make_executor,
)
from actors.bots.money import round_down, round_up
from actors.bots.risk import RejectReason
from actors.errors import ExecutionError
from actors.journal.store import OrderIntent, OrderRecord
from supervisor.config import MarketConfig, PaperConfig
from tests.bots.helpers import T0, D, WallClock, bot_config, tick

MARKET = MarketConfig(tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D(10))


def pricing(fee: str = "0.1", slippage: str = "0") -> Pricing:
    return Pricing(PaperConfig(fee_pct=D(fee), slippage_pct=D(slippage)), MARKET)


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
    p = pricing(fee="0.1")
    t = tick("99.5", "100.00")
    plan = p.plan_buy(D(250), t)
    assert plan.size == D("2.500")
    assert plan.expected_price == D("100.00")
    assert plan.notional_quote == D("250")
    assert plan.cost_quote == D("250.25")
    fill = p.fill_on_arrival(intent(plan), t)
    assert fill == PaperFill(price=D("100.00"), size=D("2.500"), fee=D("0.25"))


def test_size_rounds_down_never_up():
    plan = pricing(fee="0").plan_buy(D(100), tick(30, 30))
    assert plan.size == D("3.333")  # 3.3333... rounded down to the 0.001 lot
    assert plan.notional_quote == D("99.990")


def test_slippage_moves_price_against_us_and_rounds_to_tick():
    p = pricing(fee="0", slippage="0.05")
    t = tick("99.99", "100.01")
    buy = p.plan_buy(D(1000), t)
    assert buy.expected_price == D("100.07")  # 100.01 * 1.0005 = 100.060005 -> up to 100.07
    assert p.fill_on_arrival(intent(buy), t).price == D("100.07")
    sell = p.plan_sell(D(1), t)
    assert sell.expected_price == D("99.94")  # 99.99 * 0.9995 = 99.940005 -> down to 99.94
    assert p.fill_on_arrival(intent(sell), t).price == D("99.94")


def test_min_notional_and_lot():
    p = pricing(fee="0")
    assert p.plan_buy(D("9.99"), tick(1, 1)) is RejectReason.MIN_NOTIONAL
    assert p.plan_buy(D("0.05"), tick(100, 100)) is RejectReason.SIZE_BELOW_LOT
    assert p.plan_sell(D("0.0009"), tick(100, 100)) is RejectReason.SIZE_BELOW_LOT
    assert p.plan_sell(D("0.099"), tick(100, 100)) is RejectReason.MIN_NOTIONAL
    assert p.plan_sell(D("0.1"), tick(100, 100)).notional_quote == D("10.0")


def test_limit_buy_rests_until_the_ask_reaches_it_then_fills_at_the_limit():
    p = pricing(fee="0.1")
    plan = p.plan_buy(D(100), tick(100, "100.5"), order_type="limit", limit_price=D("99.999"))
    assert plan.price == D("99.99")  # buy limit rounded down to the tick
    assert plan.size == D("1.000")
    order = intent(plan)
    assert p.fill_on_arrival(order, tick(100, "100.5")) is None  # not marketable: rests
    assert p.fill_resting(order, tick(100, 100)) is None
    fill = p.fill_resting(order, tick("98.5", "99.5"))  # crossed through: fills at the limit
    assert fill == PaperFill(price=D("99.99"), size=D("1.000"), fee=D("0.09999"))


def test_marketable_limit_fills_at_the_better_touch():
    p = pricing(fee="0")
    t = tick(98, 99)
    plan = p.plan_buy(D(200), t, order_type="limit", limit_price=D(100))
    assert p.fill_on_arrival(intent(plan), t).price == D(99)
    sell = p.plan_sell(D(1), t, order_type="limit", limit_price=D("97.001"))
    assert sell.price == D("97.01")  # sell limit rounded up
    assert p.fill_on_arrival(intent(sell), t).price == D(98)


def test_limit_sell_rests_then_fills_when_bid_reaches_it():
    p = pricing(fee="0")
    order = intent(p.plan_sell(D(1), tick(100, 101), order_type="limit", limit_price=D(105)))
    assert p.fill_on_arrival(order, tick(100, 101)) is None
    assert p.fill_resting(order, tick("104.99", 106)) is None
    assert p.fill_resting(order, tick(105, 106)).price == D(105)


def test_money_stays_decimal():
    p = pricing(fee="0.075", slippage="0.01")
    t = tick("10.01", "10.02")
    fill = p.fill_on_arrival(intent(p.plan_buy(D(123), t)), t)
    assert all(isinstance(v, Decimal) for v in (fill.price, fill.size, fill.fee))


# --- the paper venue ---------------------------------------------------------------------------

NOW = T0 + 3600


def venue() -> PaperVenue:
    return PaperVenue(pricing(fee="0"), max_price_age_s=5.0)


def test_the_venue_fills_market_orders_at_the_touch_it_was_shown():
    v = venue()
    v.observe(tick(99, 100, ts=NOW), NOW)
    order = intent(v.pricing.plan_buy(D(500), tick(99, 100)))
    assert v.submit(order, NOW) == [OrderFilled("b1-1", D(100), D("5.000"), D(0), NOW)]
    assert v.resting == {}


def test_resting_limits_fill_on_a_crossing_price_but_never_a_stale_one():
    v = venue()
    v.observe(tick(100, "100.5", ts=NOW), NOW)
    order = intent(
        v.pricing.plan_buy(D(100), tick(100, "100.5"), order_type="limit", limit_price=D("98.5"))
    )
    assert v.submit(order, NOW) == [OrderResting("b1-1")]
    assert v.observe(tick(99, 99, ts=NOW), NOW) == []  # not reached
    assert v.observe(tick(98, "98.4", ts=NOW - 5.1), NOW) == []  # reached, but stale
    assert v.observe(tick(98, "98.4", ts=NOW - 5.0), NOW) == [
        OrderFilled("b1-1", D("98.50"), D("1.015"), D(0), NOW)
    ]
    assert v.resting == {}


def test_cancel_reports_only_what_was_resting():
    v = venue()
    v.observe(tick(100, 101, ts=NOW), NOW)
    order = intent(
        v.pricing.plan_sell(D(1), tick(100, 101), order_type="limit", limit_price=D(105))
    )
    assert v.submit(order, NOW) == [OrderResting("b1-1")]
    assert v.cancel(order) == [OrderCancelled("b1-1", "cancelled")]
    assert v.cancel(order) == []


def test_reconciliation_cancels_unresolved_intents_and_rests_open_orders_again():
    v = venue()
    plan = v.pricing.plan_buy(D(100), tick(100, 100), order_type="limit", limit_price=D(90))
    unresolved = OrderRecord(intent(plan, 1), "intent", "", D(0))
    still_open = OrderRecord(intent(plan, 2), "open", "resting", D(0))
    assert v.reconcile(unresolved) == [OrderCancelled("b1-1", RECONCILED_REASON)]
    assert v.reconcile(still_open) == []
    assert list(v.resting) == ["b1-2"]


def test_orders_before_any_price_are_rejected_by_the_venue():
    order = intent(pricing().plan_buy(D(100), tick(100, 100)))
    assert venue().submit(order, NOW) == [OrderRejected("b1-1", "paper venue: no price yet")]


async def test_the_paper_executor_reports_through_the_sink_before_submit_returns():
    reports: list[ExecutionReport] = []
    clock = WallClock(NOW)
    executor = make_executor(bot_config(), reports.append, wall_clock=clock)
    executor.observe(tick(99, 100, ts=NOW), NOW)
    order = intent(pricing(fee="0").plan_buy(D(200), tick(99, 100)))
    await executor.submit(order)
    assert reports == [OrderFilled("b1-1", D(100), D("2.000"), D(0), NOW)]


def test_live_mode_is_refused_by_the_factory():
    with pytest.raises(ExecutionError, match="needs a live account"):
        make_executor(bot_config(mode="live"), [].append)
