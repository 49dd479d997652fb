"""The bot's decision core, in plain sync tests: the real core and paper venue, with the
journal played by a ledger (``harness.py``). No SQLite, no threads, no Trio."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from actors.bots.actions import (
    CONTINUE,
    Emit,
    FillRecorded,
    IntentRecorded,
    Log,
    Reconcile,
    RecordFill,
    RecordIntent,
    RecordRefusals,
    RecordStatus,
    SaveState,
    SetPaused,
    ShowMarket,
    Submit,
)
from actors.bots.config import BotConfig
from actors.bots.core import REFUSAL_WINDOW_S, BotCore, Now
from actors.bots.events import BotHalted, BotHaltLifted, ExitTriggered
from actors.bots.executor import (
    OrderFilled,
    OrderRejected,
    OrderUnknown,
    Pricing,
)
from actors.bots.strategy import load_strategy
from actors.errors import BookError
from actors.journal.store import BotRecord, FillRecord, OrderIntent, OrderRecord, RefusalRecord
from actors.messages import FeedState, Lagged, Stream, Trade
from supervisor.config import PaperConfig, RiskConfig
from tests.bots.harness import CoreHarness, fresh_record
from tests.bots.helpers import EXCHANGE, SYMBOL, T0, D, WallClock, bot_config, tick

BUY_ONCE = "tests.bots.strategies:BuyOnce"
ALWAYS_BUY = "tests.bots.strategies:AlwaysBuy"
STREAM = Stream("ticker", SYMBOL)


def risk(**changes: Any) -> RiskConfig:
    return attrs.evolve(
        RiskConfig(max_tick_move_pct=20.0, max_orders_per_minute=100, price_confirm_ticks=1),
        **changes,
    )


# --- the protocol: journal before send, fill before book ---------------------------------------


def bare_core(config=None, record=None, clock=None) -> tuple[BotCore, list, WallClock]:
    config = config or bot_config()
    clock = clock or WallClock()
    core, actions = BotCore.restore(
        config,
        load_strategy(config),
        Pricing(config.paper, config.market),
        record or fresh_record(config),
        Now(clock.now, 0.0),
    )
    return core, actions, clock


def test_an_order_is_sent_after_its_intent_is_durable_and_booked_after_its_fill():
    core, _, clock = bare_core()
    now = Now(clock.now, 0.0)
    t = tick(99, clock=clock)
    first = core.handle(t, now)
    assert [type(a) for a in first] == [ShowMarket, RecordIntent]
    intent = first[1].intent
    assert (intent.client_id, intent.side, intent.size, intent.tag) == (
        "b1-1",
        "buy",
        D("1.010"),
        "signal:below_threshold",
    )
    assert core.suspended  # the tick waits for the venue's answer
    assert core.state.orders_count == 0  # not durable yet
    assert core.handle(IntentRecorded(intent), now) == [Submit(intent)]
    assert (core.state.orders_count, core.state.next_seq) == (1, 2)
    fill = OrderFilled("b1-1", D(99), D("1.010"), D(0), clock.now)
    (record,) = core.handle(fill, now)
    assert record == RecordFill(
        FillRecord(
            "b1-1", "b1", "buy", D(99), D("1.010"), D(0), None, clock.now, realized_pnl=D(0)
        ),
        final=True,
    )
    assert core.state.book.base == 0  # the book waits for the journal
    core.handle(FillRecorded(record.fill, True), now)
    assert core.state.book.base == D("1.010")
    assert len(core.state.orders) == 0
    assert core.handle(CONTINUE, now) == []
    assert not core.suspended
    assert core.state.ticks == 1


def bought(core: BotCore, clock: WallClock, price: int = 99) -> Now:
    """Drive a threshold core through one market buy of 1.010, filled at ``price``."""
    now = Now(clock.now, 0.0)
    intent = core.handle(tick(price, clock=clock), now)[1].intent
    core.handle(IntentRecorded(intent), now)
    (record,) = core.handle(OrderFilled(intent.client_id, D(price), D("1.010"), D(0), now.ts), now)
    core.handle(FillRecorded(record.fill, True), now)
    core.handle(CONTINUE, now)
    return now


def test_a_sell_is_journaled_with_the_pnl_it_will_realize_before_the_book_changes():
    core, _, clock = bare_core()
    now = bought(core, clock)
    intent = core.handle(tick(111, clock=clock), now)[1].intent
    core.handle(IntentRecorded(intent), now)
    (record,) = core.handle(OrderFilled("b1-2", D(111), D("1.010"), D("0.5"), now.ts), now)
    assert record.fill.realized_pnl == D("11.620")  # 1.010 x (111 - 99) - 0.5
    book = core.state.book
    assert (book.realized_pnl, book.base) == (0, D("1.010"))  # nothing booked yet
    core.handle(FillRecorded(record.fill, True), now)
    assert (book.realized_pnl, book.base) == (record.fill.realized_pnl, 0)


def test_a_fill_the_book_cannot_apply_is_journaled_without_a_pnl_and_then_raises():
    """As before the preview existed: the fill is journaled, booking it fails the bot, and the
    supervisor's restart replays the journal."""
    core, _, clock = bare_core()
    now = bought(core, clock)
    intent = core.handle(tick(111, clock=clock), now)[1].intent
    core.handle(IntentRecorded(intent), now)
    (record,) = core.handle(OrderFilled("b1-2", D(111), D(5), D(0), now.ts), now)
    assert record.fill.realized_pnl is None
    with pytest.raises(BookError, match="exceeds"):
        core.handle(FillRecorded(record.fill, True), now)


class RefusalHarness(CoreHarness):
    """The harness, keeping the counted refusals the core hands over."""

    def __init__(self, config: BotConfig) -> None:
        self.refusals: list[RefusalRecord] = []
        super().__init__(config)

    def perform(self, action: Any) -> None:
        if isinstance(action, RecordRefusals):
            self.refusals.extend(action.refusals)
        else:
            super().perform(action)


def test_refusals_are_counted_per_reason_and_tag_and_handed_over_once_per_window():
    h = RefusalHarness(
        bot_config(ALWAYS_BUY, {}, risk=risk(max_orders_per_minute=1, max_open_positions=10))
    )
    start = h.clock.now
    h.send(tick(100, clock=h.clock))  # ordered: the rate window is now full
    h.send(tick(100, clock=h.clock), tick(100, clock=h.clock))  # refused twice
    h.clock.now += 10
    h.send(tick(100, ts=h.clock.now - 10))  # a stale price: another reason
    h.clock.now += 20
    h.send(tick(100, clock=h.clock))
    assert h.refusals == []  # nothing written within the window
    assert h.stats.rejections == {"rate_limit": 3, "stale_price": 1}
    h.clock.now = start + REFUSAL_WINDOW_S
    h.send(tick(100, clock=h.clock))  # the window is over: handed over, then this one counted
    assert h.refusals == [
        RefusalRecord("b1", "rate_limit", "signal:always", start, start + 30, 3),
        RefusalRecord("b1", "stale_price", "signal:always", start + 10, start + 10, 1),
    ]
    later = h.clock.now
    assert h.core.take_refusals() == (
        RefusalRecord("b1", "rate_limit", "signal:always", later, later, 1),
    )
    assert h.core.take_refusals() == ()  # taken once
    h.clock.now += 10 * REFUSAL_WINDOW_S
    h.send(tick(100, ts=h.clock.now - 10))  # a quiet bot writes nothing, then one new row
    assert len(h.refusals) == 2
    assert h.stats.rejections["stale_price"] == 2


def test_a_new_event_while_waiting_for_the_venue_is_a_programming_error():
    core, _, clock = bare_core()
    now = Now(clock.now, 0.0)
    core.handle(tick(99, clock=clock), now)
    with pytest.raises(RuntimeError, match="waits for the venue"):
        core.handle(tick(99, clock=clock), now)


def test_an_unknown_outcome_keeps_the_order_working_until_the_venue_says():
    core, _, clock = bare_core(bot_config(ALWAYS_BUY, {}, risk=risk(max_open_positions=3)))
    now = Now(clock.now, 0.0)
    intent = core.handle(tick(100, clock=clock), now)[1].intent
    core.handle(IntentRecorded(intent), now)
    assert [type(a) for a in core.handle(OrderUnknown("b1-1", "timeout"), now)] == [Log]
    assert core.handle(CONTINUE, now) == []  # the tick goes on without the answer
    s = core.state
    assert (len(s.orders), s.orders.get("b1-1").status, s.book.base) == (1, "unknown", 0)
    assert core.ctx.position.pending_buys == 1  # counts against max_open_positions
    (record,) = core.handle(OrderFilled("b1-1", D(100), D("1.000"), D(0), clock.now), now)
    core.handle(FillRecorded(record.fill, True), now)
    assert (len(s.orders), s.book.base) == (0, D("1.000"))


def test_partial_fills_keep_the_order_working_until_the_last():
    core, _, clock = bare_core(bot_config(ALWAYS_BUY, {}))
    now = Now(clock.now, 0.0)
    intent = core.handle(tick(100, clock=clock), now)[1].intent
    core.handle(IntentRecorded(intent), now)
    (part,) = core.handle(OrderFilled("b1-1", D(100), D("0.400"), D(0), clock.now, False), now)
    assert part.final is False  # journaled with the order still open
    core.handle(FillRecorded(part.fill, False), now)
    assert (len(core.state.orders), core.state.book.base) == (1, D("0.400"))
    (rest,) = core.handle(OrderFilled("b1-1", D(100), D("0.600"), D(0), clock.now), now)
    core.handle(FillRecorded(rest.fill, True), now)
    assert (len(core.state.orders), core.state.book.base, len(core.state.book.lots)) == (
        0,
        D("1.000"),
        1,
    )


def test_a_venue_rejection_is_journaled_counted_and_frees_the_lot_for_another_exit():
    config = bot_config(BUY_ONCE, {}, risk=risk(stop_loss_pct=5.0))
    h = CoreHarness(config)
    h.send(tick(100, clock=h.clock))
    now = h.now()
    core = h.core
    actions = core.handle(tick(94, clock=h.clock), now)
    exit_intent = next(a.intent for a in actions if isinstance(a, RecordIntent))
    core.handle(IntentRecorded(exit_intent), now)
    lot = core.state.book.lots["b1-1"]
    assert lot.exit_client_id == "b1-2"
    reject = core.handle(OrderRejected("b1-2", "insufficient balance at the venue"), now)
    assert reject[0] == RecordStatus(
        "b1-2", "rejected", "insufficient balance at the venue", h.clock.now
    )
    assert lot.exit_client_id is None  # the monitor may try again on the next tick
    assert core.state.rejections == {"venue_rejected": 1}


def test_client_ids_continue_the_journal_sequence():
    config = bot_config(ALWAYS_BUY, {}, risk=risk(max_open_positions=5))
    h = CoreHarness(config, record=fresh_record(config, next_seq=41, orders_count=40))
    h.send(tick(100, clock=h.clock), tick(100, clock=h.clock))
    assert [o[0] for o in h.orders()] == ["b1-41", "b1-42"]
    assert h.stats.next_client_id == "b1-43"


# --- restore and reconciliation -----------------------------------------------------------------


def intent(seq: int, side: str = "buy", *, price=None, position_id=None, size="1") -> OrderIntent:
    return OrderIntent(
        f"b1-{seq}",
        "b1",
        seq,
        SYMBOL,
        side,  # type: ignore[arg-type]
        "market" if price is None else "limit",
        D(size),
        None if price is None else D(price),
        "t",
        position_id,
        T0,
    )


def test_restore_rebuilds_the_book_and_reconciles_what_the_journal_left_open():
    config = bot_config(risk=risk(trailing_stop_pct=3.0))
    clock = WallClock()
    buy = FillRecord("b1-1", "b1", "buy", D(100), D(1), D(0), None, T0)
    record = fresh_record(
        config,
        fills=(buy,),
        unresolved=(OrderRecord(intent(3), "intent", "", D(0)),),
        open_orders=(
            OrderRecord(intent(2, "sell", price="120", position_id="b1-1"), "open", "", D(0)),
        ),
        state={"paused": "1", "hwm:b1-1": "104", "halted_day": "2025-12-31"},
        next_seq=4,
        orders_count=3,
    )
    core, actions, _ = bare_core(config, record, clock)
    reconciles = [a.order.intent.client_id for a in actions if isinstance(a, Reconcile)]
    assert reconciles == ["b1-3", "b1-2"]
    # yesterday's halt is lifted at start, and said so
    assert SaveState("halted_day", None) in actions
    assert any(isinstance(a, Emit) and isinstance(a.event, BotHaltLifted) for a in actions)
    s = core.state
    assert (s.paused, s.halted_day, s.next_seq, s.orders_count) == (True, None, 4, 3)
    assert s.book.lots["b1-1"].hwm == D(104)
    assert s.book.lots["b1-1"].exit_client_id == "b1-2"  # the resting sell is its exit


def test_the_paper_venue_cancels_unresolved_intents_at_start_and_rests_open_ones_again():
    config = bot_config()
    record = fresh_record(
        config,
        unresolved=(OrderRecord(intent(1), "intent", "", D(0)),),
        open_orders=(OrderRecord(intent(2, price="90", size="1.1"), "open", "", D(0)),),
        next_seq=3,
        orders_count=2,
    )
    h = CoreHarness(config, record=record)
    assert h.orders() == []  # the ledger holds only this run's writes
    (status,) = [a for a in h.ledger if isinstance(a, RecordStatus)]
    assert (status.client_id, status.status) == ("b1-1", "cancelled")
    assert status.reason.startswith("reconciled at restart")
    assert (h.stats.open_orders, h.stats.orders, h.stats.next_client_id) == (1, 2, "b1-3")
    h.send(tick("89.5", 90, clock=h.clock))  # the resting buy fills at its limit
    assert h.fills() == [("b1-2", D(90), D("1.1"))]


# --- behaviour on ticks ---------------------------------------------------------------------------


def test_threshold_bot_buys_and_sells():
    h = CoreHarness(bot_config())
    h.send(tick(105, clock=h.clock), tick(99, clock=h.clock))
    s = h.stats
    assert (s.position_size, s.open_positions, s.quote_balance) == (D("1.010"), 1, D("9900.01"))
    assert s.last_action == "buy 1.010 @ 99.00 (signal:below_threshold)"
    h.send(tick(111, clock=h.clock))
    s = h.stats
    assert (s.position_size, s.quote_balance, s.realized_pnl) == (0, D("10012.12"), D("12.12"))
    assert (s.orders, s.fills, s.ticks, s.next_client_id, s.rejections) == (2, 2, 3, "b1-3", {})
    assert h.orders() == [
        ("b1-1", "buy", "signal:below_threshold", "filled"),
        ("b1-2", "sell", "signal:above_threshold", "filled"),
    ]
    assert h.fills() == [("b1-1", D(99), D("1.010")), ("b1-2", D(111), D("1.010"))]


@pytest.mark.parametrize(
    ("risk_changes", "path", "exit_at", "reason"),
    [
        ({"stop_loss_pct": 5.0}, [100, 96, "95.01", 95, 94, 90], 3, "stop_loss"),
        ({"take_profit_pct": 10.0}, [100, 105, "109.99", 110, 111, 112], 3, "take_profit"),
        ({"trailing_stop_pct": 3.0}, [100, 105, 110, "106.71", "106.70", 100], 4, "trailing_stop"),
    ],
)
def test_exits_fire_once_at_the_right_tick(risk_changes, path, exit_at, reason):
    h = CoreHarness(bot_config(BUY_ONCE, {}, risk=risk(**risk_changes)))
    for i, price in enumerate(path):
        h.send(tick(price, clock=h.clock))
        assert h.stats.orders == (1 if i < exit_at else 2), f"tick {i}"
        assert h.stats.open_positions == (1 if i < exit_at else 0), f"tick {i}"
    assert h.orders() == [
        ("b1-1", "buy", "signal:entry", "filled"),
        ("b1-2", "sell", reason, "filled"),
    ]
    assert h.fills()[1][1] == D(path[exit_at])
    (event,) = h.emitted
    assert isinstance(event, ExitTriggered)
    assert event.reason == reason


def test_trailing_marks_are_saved_without_waiting_and_dropped_with_the_lot():
    h = CoreHarness(bot_config(BUY_ONCE, {}, risk=risk(trailing_stop_pct=3.0)))
    h.send(tick(100, clock=h.clock), tick(105, clock=h.clock))
    assert SaveState("hwm:b1-1", "105") in h.ledger
    h.send(tick(101, clock=h.clock))  # 105 * 0.97 = 101.85: the trailing stop fires
    assert h.state_writes()["hwm:b1-1"] is None
    assert all(not a.wait for a in h.ledger if isinstance(a, SaveState))


def test_a_gap_through_the_stop_fills_at_the_tick_price():
    h = CoreHarness(bot_config(BUY_ONCE, {}, risk=risk(stop_loss_pct=5.0)))
    h.send(tick(100, clock=h.clock), tick(90, clock=h.clock))
    assert h.fills()[1] == ("b1-2", D(90), D("1.000"))
    assert h.stats.realized_pnl == D(-10)


def test_stale_prices_trade_nothing():
    h = CoreHarness(bot_config())
    h.send(tick(99, ts=h.clock.now - 5.5))
    assert (h.stats.rejections, h.stats.orders) == ({"stale_price": 1}, 0)
    h.send(tick(99, ts=h.clock.now - 5.0))  # exactly at the limit
    assert h.stats.orders == 1


def test_a_jump_is_quarantined_and_not_traded_on():
    h = CoreHarness(bot_config(risk=risk(max_tick_move_pct=5.0, price_confirm_ticks=3)))
    # warm-up: the third agreeing tick establishes the price (104: no signal from threshold)
    h.send(*(tick(104, clock=h.clock) for _ in range(3)))
    assert (h.stats.quarantined_ticks, h.stats.rejections) == (2, {})
    h.send(tick(80, clock=h.clock), tick(104, clock=h.clock))
    s = h.stats
    assert (s.orders, s.quarantined_ticks, s.rejections) == (0, 3, {"price_jump": 1})
    # a real move: quarantined twice, then accepted on the third tick at the new level
    h.send(tick(95, clock=h.clock), tick(95, clock=h.clock))
    assert h.stats.orders == 0
    h.send(tick(96, clock=h.clock))
    s = h.stats
    assert (s.orders, s.quarantined_ticks, s.rejections) == (1, 5, {"price_jump": 3})


def test_a_quarantined_tick_is_not_shown_to_the_venue_and_fills_no_resting_order():
    h = CoreHarness(
        bot_config(
            "tests.bots.strategies:LimitOnce",
            {"offset": 2},
            risk=risk(max_tick_move_pct=5.0, price_confirm_ticks=3),
        )
    )
    # paused while the price is established, so the one order waits for a trusted price
    h.send(SetPaused(True), *(tick(100, "100.5", clock=h.clock) for _ in range(3)))
    h.send(SetPaused(False), tick(100, "100.5", clock=h.clock))
    assert h.stats.open_orders == 1  # a buy resting at 98.50
    h.send(tick(80, clock=h.clock))  # a bad print through the limit
    assert (h.stats.fills, h.stats.quarantined_ticks) == (0, 3)
    h.send(tick(98, "98.4", clock=h.clock))
    assert h.stats.fills == 1


def test_degraded_feed_opens_nothing_and_fallback_only_closes():
    h = CoreHarness(bot_config(risk=risk(stop_loss_pct=5.0)))
    h.send(FeedState(EXCHANGE, STREAM, "stale"), tick(99, clock=h.clock))
    s = h.stats
    assert (s.state, s.feed_state, s.orders, s.rejections) == (
        "degraded",
        "stale",
        0,
        {"feed_not_live": 1},
    )
    h.send(FeedState(EXCHANGE, STREAM, "fallback"), tick(99, clock=h.clock, source="rest"))
    assert h.stats.rejections == {"feed_not_live": 1, "fallback_price": 1}
    h.send(FeedState(EXCHANGE, STREAM, "live"), tick(99, clock=h.clock))
    assert (h.stats.position_size, h.stats.state) == (D("1.010"), "running")
    # the feed falls back to REST; the stop-loss may still close on REST prices
    h.send(FeedState(EXCHANGE, STREAM, "fallback"), tick(94, clock=h.clock, source="rest"))
    assert (h.stats.position_size, h.stats.orders) == (0, 2)


def test_the_trade_streams_state_does_not_gate_trading():
    h = CoreHarness(bot_config())
    h.send(FeedState(EXCHANGE, Stream("trade", SYMBOL), "down"), tick(99, clock=h.clock))
    assert (h.stats.feed_state, h.stats.orders) == ("live", 1)


def test_fallback_prices_do_not_close_unless_configured():
    config = bot_config(BUY_ONCE, {}, risk=risk(stop_loss_pct=5.0), close_on_fallback=False)
    h = CoreHarness(config)
    h.send(tick(100, clock=h.clock), tick(94, clock=h.clock, source="rest"))
    assert (h.stats.open_positions, h.stats.rejections) == (1, {"fallback_price": 1})
    h.send(tick(94, clock=h.clock))  # back on WebSocket: the stop fires
    assert h.stats.open_positions == 0


def test_daily_loss_halts_until_the_next_utc_day():
    config = bot_config(
        params={"buy_below": 100, "sell_above": 1000},
        risk=risk(stop_loss_pct=5.0, daily_loss_limit_quote=D(5)),
    )
    h = CoreHarness(config)
    h.send(tick(99, clock=h.clock), tick(94, clock=h.clock))  # buy, stop: -5.05
    s = h.stats
    assert (s.state, s.realized_pnl, s.halted_day) == ("halted", D("-5.050"), "2026-01-01")
    stop, halted = h.emitted
    assert isinstance(stop, ExitTriggered)
    assert (stop.reason, stop.trigger_price) == ("stop_loss", D("94.05"))
    assert isinstance(halted, BotHalted)
    assert (halted.day, halted.resumes_day, halted.loss_quote) == (
        "2026-01-01",
        "2026-01-02",
        D("5.050"),
    )
    assert h.state_writes()["halted_day"] == "2026-01-01"
    # the strategy asked to buy again on the tick of the stop (rejected), and now again
    h.send(tick(93, clock=h.clock))
    assert h.stats.rejections == {"daily_loss_halt": 2}
    h.clock.now += 86400  # next UTC day
    h.send(tick(93, clock=h.clock))
    s = h.stats
    assert (s.state, s.halted_day, s.open_positions) == ("running", None, 1)
    assert isinstance(h.emitted[-1], BotHaltLifted)
    assert h.state_writes()["halted_day"] is None


def test_rate_limit():
    h = CoreHarness(
        bot_config(ALWAYS_BUY, {}, risk=risk(max_orders_per_minute=2, max_open_positions=10))
    )
    h.send(*[tick(100, clock=h.clock) for _ in range(3)])
    assert (h.stats.orders, h.stats.rejections) == (2, {"rate_limit": 1})
    h.at += 59.9
    h.send(tick(100, clock=h.clock))
    assert h.stats.orders == 2
    h.at += 0.2
    h.send(tick(100, clock=h.clock))
    assert h.stats.orders == 3


@pytest.mark.parametrize(
    ("risk_changes", "paper", "orders", "reason"),
    [
        ({"max_open_positions": 2}, None, 2, "max_open_positions"),
        ({"max_open_positions": 5, "max_order_quote": D(99)}, None, 0, "max_order_size"),
        ({"max_open_positions": 5, "max_position_quote": D(250)}, None, 2, "max_position_size"),
        (
            {"max_open_positions": 5},
            PaperConfig(quote_balance=D(150), fee_pct=D(0)),
            1,
            "insufficient_balance",
        ),
    ],
)
def test_size_position_and_balance_caps(risk_changes, paper, orders, reason):
    h = CoreHarness(bot_config(ALWAYS_BUY, {}, risk=risk(**risk_changes), paper=paper))
    h.send(*[tick(100, clock=h.clock) for _ in range(3)])
    assert h.stats.orders == orders
    assert h.stats.rejections == {reason: 3 - orders}


def test_pause_stops_the_strategy_not_the_stop_loss():
    config = bot_config(params={"buy_below": 100, "sell_above": 1000}, risk=risk(stop_loss_pct=5.0))
    h = CoreHarness(config)
    h.send(tick(99, clock=h.clock), SetPaused(True))
    assert SaveState("paused", "1", wait=True) in h.ledger  # a command waits for the journal
    assert h.stats.state == "paused"
    h.send(tick(94, clock=h.clock))  # stop-loss still fires
    h.send(tick(90, clock=h.clock))  # strategy would buy: paused
    assert (h.stats.orders, h.stats.open_positions) == (2, 0)
    h.send(SetPaused(False), tick(90, clock=h.clock))
    assert (h.stats.orders, h.stats.state) == (3, "running")
    assert h.state_writes()["paused"] is None


def test_limit_orders_rest_and_fill_on_a_fresh_crossing_price():
    h = CoreHarness(bot_config("tests.bots.strategies:LimitOnce", {"offset": 2}))
    h.send(tick(100, "100.5", clock=h.clock))
    s = h.stats
    assert (s.open_orders, s.orders, s.fills) == (1, 1, 0)
    assert s.last_action.startswith("buy limit 1.015 @ 98.50 resting")
    assert h.orders() == [("b1-1", "buy", "signal:limit", "open")]
    h.send(tick(99, 99, clock=h.clock))
    assert h.stats.fills == 0
    h.send(tick(98, "98.4", ts=h.clock.now - 5.1))  # stale: no fill
    assert h.stats.fills == 0
    h.send(tick(98, "98.4", clock=h.clock))
    s = h.stats
    assert (s.open_orders, s.fills, s.position_size) == (0, 1, D("1.015"))
    assert h.fills() == [("b1-1", D("98.50"), D("1.015"))]


def test_a_resting_buy_reserves_its_quote():
    h = CoreHarness(
        bot_config(
            "tests.bots.strategies:LimitOnce",
            {"offset": 2},
            paper=PaperConfig(quote_balance=D(1000), fee_pct=D("0.1")),
            order_quote=D(500),
        )
    )
    h.send(tick(100, "100.5", clock=h.clock))
    balance = h.core.ctx.balance
    assert (balance.quote, balance.available_quote) == (
        D(1000),
        D(1000) - D("5.076") * D("98.50") * D("1.001"),
    )


def test_a_protective_exit_cancels_a_resting_sell_first():
    h = CoreHarness(
        bot_config("tests.bots.strategies:BuyOnceThenLimitSell", {}, risk=risk(stop_loss_pct=5.0))
    )
    h.send(tick(100, clock=h.clock), tick(100, clock=h.clock))
    assert h.stats.open_orders == 1
    h.send(tick(94, clock=h.clock))
    assert (h.stats.open_orders, h.stats.open_positions) == (0, 0)
    assert [(o[0], o[3]) for o in h.orders()] == [
        ("b1-1", "filled"),
        ("b1-2", "cancelled"),
        ("b1-3", "filled"),
    ]
    cancel = next(a for a in h.ledger if isinstance(a, RecordStatus) and a.status == "cancelled")
    assert cancel.reason == "superseded by stop_loss"
    # the cancellation was journaled before the exit's intent
    assert h.ledger.index(cancel) < next(
        i for i, a in enumerate(h.ledger) if isinstance(a, RecordIntent) and a.intent.seq == 3
    )


def test_a_refused_exit_leaves_the_resting_sell_in_place():
    """The resting sell is only cancelled for an exit that risk lets through: on a price the
    exit may not use (REST fallback without close_on_fallback, or stale), it stays."""
    config = bot_config(
        "tests.bots.strategies:BuyOnceThenLimitSell",
        {},
        risk=risk(stop_loss_pct=5.0),
        close_on_fallback=False,
    )
    h = CoreHarness(config)
    h.send(tick(100, clock=h.clock), tick(100, clock=h.clock))
    h.send(tick(94, clock=h.clock, source="rest"), tick(94, ts=h.clock.now - 60))
    s = h.stats
    assert (s.open_orders, s.open_positions) == (1, 1)
    assert s.rejections == {"fallback_price": 1, "stale_price": 1}
    h.send(tick(94, clock=h.clock))
    assert (h.stats.open_orders, h.stats.open_positions) == (0, 0)
    assert [(o[0], o[3]) for o in h.orders()] == [
        ("b1-1", "filled"),
        ("b1-2", "cancelled"),
        ("b1-3", "filled"),
    ]


# --- trades -------------------------------------------------------------------------------------


def test_trades_reach_on_trade_priced_on_the_last_ticker():
    h = CoreHarness(bot_config("tests.bots.strategies:TradeFollower", {}))
    big = Trade(EXCHANGE, SYMBOL, D(100), D(2), "buy", "t1", None, h.clock.now)
    h.send(big)
    assert h.stats.rejections == {"no_price": 1}  # no ticker yet
    h.send(tick(100, clock=h.clock), big, Lagged(Stream("trade", SYMBOL), 7))
    assert (h.stats.orders, h.stats.lagged_trades) == (1, 7)
    h.send(SetPaused(True), big)  # paused: on_trade is not asked
    assert h.stats.orders == 1


def test_a_raising_strategy_raises_out_of_handle_and_the_core_is_not_left_waiting():
    h = CoreHarness(bot_config("tests.bots.strategies:Raising", {"on_tick_number": 2}))
    h.send(tick(100, clock=h.clock))
    with pytest.raises(ZeroDivisionError):
        h.send(tick(100, clock=h.clock))
    assert not h.core.suspended


# --- a bot never trusts a single print ---------------------------------------------------------


def holding_record(config: BotConfig, price: str) -> BotRecord:
    """A journal with one open lot bought at ``price``: what a restarted bot replays."""
    fill = FillRecord(
        client_id="b1-1",
        bot_id=config.id,
        side="buy",
        price=D(price),
        size=D("0.01"),
        fee=D(0),
        position_id=None,
        ts=T0,
    )
    return fresh_record(config, fills=(fill,), next_seq=2, orders_count=1)


def test_a_bad_first_print_after_a_restart_fires_no_stop_loss():
    config = bot_config(
        "tests.bots.strategies:Idle",
        {},
        risk=risk(max_tick_move_pct=5.0, price_confirm_ticks=3, stop_loss_pct=2.0),
    )
    h = CoreHarness(config, record=holding_record(config, "65000"))
    h.send(tick(40000, clock=h.clock))  # the newest stored ticker: a bad print
    s = h.stats
    assert (s.orders, s.fills, s.position_size, s.quarantined_ticks) == (1, 1, D("0.01"), 1)
    assert not h.emitted
    h.send(*(tick(65000, clock=h.clock) for _ in range(3)))
    s = h.stats
    assert (s.orders, s.position_size, s.last_price) == (1, D("0.01"), D(65000))
    # once the price is established, a real fall through the stop still sells
    h.send(*(tick(63000, clock=h.clock) for _ in range(3)))
    assert [e.reason for e in h.emitted if isinstance(e, ExitTriggered)] == ["stop_loss"]
    assert h.stats.position_size == 0


def test_a_bad_first_print_does_not_halt_the_bot_for_the_day():
    config = bot_config(
        "tests.bots.strategies:Idle",
        {},
        risk=risk(price_confirm_ticks=3, daily_loss_limit_quote=D(100)),
    )
    h = CoreHarness(config, record=holding_record(config, "65000"))
    h.send(tick("1.00", clock=h.clock), tick(65000, clock=h.clock))
    s = h.stats
    assert (s.halted_day, s.state) == (None, "running")
    assert not any(isinstance(e, BotHalted) for e in h.emitted)
    assert "halted_day" not in h.state_writes()
