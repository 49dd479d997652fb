"""Each risk rule rejects exactly when it should (pure)."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from actors.bots.risk import (
    JumpGuard,
    OrderProposal,
    RateLimiter,
    RejectReason,
    RiskView,
    check_order,
    daily_loss_breached,
)
from supervisor.config import RiskConfig
from tests.bots.helpers import D

LIMITS = RiskConfig(
    max_order_quote=D(100),
    max_position_quote=D(250),
    max_open_positions=2,
    daily_loss_limit_quote=D(50),
    max_orders_per_minute=3,
    max_price_age_s=5.0,
    max_tick_move_pct=5.0,
)
OK_VIEW = RiskView(
    halted=False,
    feed_state="live",
    source="ws",
    close_on_fallback=True,
    price_age_s=0.1,
    quarantined=False,
    rate_allows=True,
    open_positions=0,
    pending_buys=0,
    position_quote=D(0),
    available_quote=D(1000),
    available_base=D(2),
)
BUY = OrderProposal(side="buy", size=D(1), notional_quote=D(100), cost_quote=D("100.1"))
SELL = OrderProposal(side="sell", size=D(2), notional_quote=D(400), cost_quote=D(0))
EXIT = attrs.evolve(SELL, protective=True)


def check(order: OrderProposal, **changes) -> RejectReason | None:
    return check_order(order, attrs.evolve(OK_VIEW, **changes), LIMITS)


def test_baseline_passes():
    assert check(BUY) is None
    assert check(SELL) is None
    assert check(EXIT) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"price_age_s": 5.01}, RejectReason.STALE_PRICE),
        ({"quarantined": True}, RejectReason.PRICE_JUMP),
        ({"halted": True}, RejectReason.DAILY_LOSS_HALT),
        ({"feed_state": "stale"}, RejectReason.FEED_NOT_LIVE),
        ({"feed_state": "down"}, RejectReason.FEED_NOT_LIVE),
        ({"source": "rest"}, RejectReason.FALLBACK_PRICE),
        ({"rate_allows": False}, RejectReason.RATE_LIMIT),
        ({"open_positions": 2}, RejectReason.MAX_OPEN_POSITIONS),
        ({"open_positions": 1, "pending_buys": 1}, RejectReason.MAX_OPEN_POSITIONS),
        ({"position_quote": D("150.01")}, RejectReason.MAX_POSITION_SIZE),
        ({"available_quote": D("100.09")}, RejectReason.INSUFFICIENT_BALANCE),
    ],
)
def test_buy_rules(changes, reason):
    assert check(BUY, **changes) is reason


def test_buy_at_the_limits_passes():
    assert (
        check(
            BUY,
            price_age_s=5.0,
            open_positions=1,
            position_quote=D(150),
            available_quote=D("100.1"),
        )
        is None
    )


def test_order_size_cap():
    assert check(attrs.evolve(BUY, notional_quote=D("100.01"))) is RejectReason.MAX_ORDER_SIZE
    assert check(attrs.evolve(BUY, notional_quote=D(100))) is None


def test_sells_are_reduce_only_and_skip_caps_and_halt():
    assert (
        check(SELL, halted=True, open_positions=5, position_quote=D(10_000), feed_state="stale")
        is None
    )
    assert check(SELL, available_base=D("1.999")) is RejectReason.INSUFFICIENT_BALANCE
    assert check(SELL, price_age_s=6) is RejectReason.STALE_PRICE
    assert check(SELL, quarantined=True) is RejectReason.PRICE_JUMP


def test_rate_limit_spares_protective_exits_only():
    assert check(SELL, rate_allows=False) is RejectReason.RATE_LIMIT
    assert check(EXIT, rate_allows=False) is None


def test_fallback_prices_may_only_close_and_only_if_configured():
    assert check(BUY, source="rest") is RejectReason.FALLBACK_PRICE
    assert check(EXIT, source="rest") is None
    assert check(EXIT, source="rest", close_on_fallback=False) is RejectReason.FALLBACK_PRICE


def test_daily_loss():
    assert not daily_loss_breached(D(-30), D(-19.99), D(50))
    assert daily_loss_breached(D(-30), D(-20), D(50))
    assert daily_loss_breached(D(-60), D(20), D(50)) is False
    assert daily_loss_breached(D(-60), D(5), D(50))


def anchored(reference: int) -> JumpGuard:
    """A guard that has already accepted ``reference`` (past its warm-up)."""
    return JumpGuard(Decimal(5), reference=D(reference))


def test_jump_guard_ignores_a_single_bad_print():
    guard = anchored(100)
    assert [guard.assess(D(p)) for p in [104, 120, 103, 103]] == [
        True,
        False,
        True,
        True,
    ]
    assert guard.reference == D(103)


def test_jump_guard_accepts_a_new_level_on_the_third_tick():
    guard = anchored(100)
    # jump to 120 (quarantined), 121 (2nd at the new level), 122 accepted; then normal again
    assert [guard.assess(D(p)) for p in [120, 121, 122, 123]] == [
        False,
        False,
        True,
        True,
    ]


def test_jump_guard_restarts_confirmation_when_the_candidate_moves_away():
    guard = anchored(100)
    results = [guard.assess(D(p)) for p in [120, 121, 140, 141, 142]]
    assert results == [False, False, False, False, True]
    assert guard.reference == D(142)


def test_jump_guard_boundary_is_inclusive():
    guard = anchored(100)
    assert guard.assess(D(105))  # exactly 5 %
    assert not guard.assess(D("110.26"))  # 5.0095 % of 105


def test_jump_guard_trusts_no_single_print_at_start():
    # A restarted bot is handed the newest stored ticker first: here a bad print of 40000 in
    # a 65000 market. Nothing is accepted until three ticks agree.
    guard = JumpGuard(Decimal(5))
    assert guard.warming_up
    assert [guard.assess(D(p)) for p in [40000, 65000, 65010, 65020, 65030]] == [
        False,
        False,
        False,
        True,
        True,
    ]
    assert guard.reference == D(65030)
    assert not guard.warming_up


def test_jump_guard_warm_up_needs_consecutive_agreement():
    guard = JumpGuard(Decimal(5), confirm_ticks=2)
    assert [guard.assess(D(p)) for p in [1, 100, 1, 100, 101]] == [False] * 4 + [True]


def test_one_confirming_tick_accepts_the_first_price():
    guard = JumpGuard(Decimal(5), confirm_ticks=1)
    assert guard.assess(D(100))
    assert guard.reference == D(100)


def test_rate_limiter_sliding_window():
    limiter = RateLimiter(max_orders=2, window_s=60.0)
    assert limiter.allows(0.0)
    limiter.record(0.0)
    limiter.record(30.0)
    assert not limiter.allows(59.9)
    assert limiter.allows(60.0)  # the order at t=0 left the window
    limiter.record(60.0)
    assert not limiter.allows(89.9)
    assert limiter.allows(90.0)
