"""The bot actor end to end: real journal (SQLite in tmp_path), the plane's own buffers
published into by the test. The trading rules themselves are tested on the core, in
``test_core.py``; these check what only the actor does: reading its inputs, journaling,
restarts, commands, failures."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio

from actors.bots import Bot, BotHalted, BotHaltLifted, ExitTriggered, ReportSink
from actors.bots.bot import ORDER_OUTCOME_GRACE_S
from actors.bots.executor import OrderUnknown, PaperVenue, Pricing
from actors.errors import ConfigError, ExecutionError
from actors.journal import Journal
from actors.journal.store import BotRecord, JournalStore, OrderIntent, OrderRecord
from actors.messages import Ticker, Trade
from supervisor.config import BotConfig, JournalConfig, PaperConfig, RiskConfig
from tests.bots.helpers import (
    EXCHANGE,
    SYMBOL,
    D,
    FakeFeed,
    WallClock,
    bot_config,
    running_bot,
    running_journal,
    send_events,
    tick,
)
from tests.bots.strategies import TradeFollower

BUY_ONCE = "tests.bots.strategies:BuyOnce"
ALWAYS_BUY = "tests.bots.strategies:AlwaysBuy"


def risk(**changes: Any) -> RiskConfig:
    return attrs.evolve(
        RiskConfig(max_tick_move_pct=20.0, max_orders_per_minute=100, price_confirm_ticks=1),
        **changes,
    )


def journal_orders(path) -> list[tuple[str, str, str, str]]:
    store = JournalStore(path)
    store.open()
    try:
        return [
            (o.intent.client_id, o.intent.side, o.intent.tag, o.status) for o in store.orders("b1")
        ]
    finally:
        store.close()


def journal_fills(path) -> list[tuple[str, Decimal, Decimal]]:
    store = JournalStore(path)
    store.open()
    try:
        return [(f.client_id, f.price, f.size) for f in store.fills("b1")]
    finally:
        store.close()


async def test_threshold_bot_buys_sells_and_journals_everything(tmp_path, thread_clock):
    path = tmp_path / "j.sqlite3"
    clock = WallClock()
    with trio.fail_after(10):
        async with running_bot(path, bot_config(), clock=clock) as (bot, feed, _):
            assert feed.subscribe_calls == [(EXCHANGE, "ticker", SYMBOL)]
            assert bot.statistics().state == "running"
            await send_events(bot, feed, tick(105, clock=clock), tick(99, clock=clock))
            s = bot.statistics()
            assert (s.position_size, s.open_positions, s.quote_balance) == (
                D("1.010"),
                1,
                D("9900.01"),
            )
            assert s.last_action == "buy 1.010 @ 99.00 (signal:below_threshold)"
            await send_events(bot, feed, tick(111, clock=clock))
            s = bot.statistics()
    assert (s.position_size, s.open_positions) == (0, 0)
    assert s.quote_balance == D("10012.12")
    assert s.realized_pnl == D("12.12")
    assert (s.orders, s.fills, s.ticks, s.next_client_id) == (2, 2, 3, "b1-3")
    assert s.rejections == {}
    assert journal_orders(path) == [
        ("b1-1", "buy", "signal:below_threshold", "filled"),
        ("b1-2", "sell", "signal:above_threshold", "filled"),
    ]
    assert journal_fills(path) == [("b1-1", D(99), D("1.010")), ("b1-2", D(111), D("1.010"))]


async def test_daily_loss_halts_until_the_next_utc_day(tmp_path, thread_clock):
    clock = WallClock()
    config = bot_config(
        params={"buy_below": 100, "sell_above": 1000},
        risk=risk(stop_loss_pct=5.0, daily_loss_limit_quote=D(5)),
    )
    events_send, events_receive = trio.open_memory_channel[Any](4)
    with trio.fail_after(10):
        async with running_bot(tmp_path / "j.sqlite3", config, clock=clock, events=events_send) as (
            bot,
            feed,
            _,
        ):
            await send_events(
                bot, feed, tick(99, clock=clock), tick(94, clock=clock)
            )  # buy, stop: -5.05
            s = bot.statistics()
            assert (s.state, s.realized_pnl, s.halted_day) == ("halted", D("-5.050"), "2026-01-01")
            stop = events_receive.receive_nowait()
            assert isinstance(stop, ExitTriggered)
            assert (stop.reason, stop.trigger_price) == ("stop_loss", D("94.05"))
            halted = events_receive.receive_nowait()
            assert isinstance(halted, BotHalted)
            assert (halted.day, halted.resumes_day, halted.loss_quote) == (
                "2026-01-01",
                "2026-01-02",
                D("5.050"),
            )
            # the strategy asked to buy again on the tick of the stop (rejected), and now again
            await send_events(bot, feed, tick(93, clock=clock))
            assert bot.statistics().rejections == {"daily_loss_halt": 2}
            clock.now += 86400  # next UTC day
            await send_events(bot, feed, tick(93, clock=clock))
            s = bot.statistics()
            assert (s.state, s.halted_day, s.open_positions) == ("running", None, 1)
            assert isinstance(events_receive.receive_nowait(), BotHaltLifted)


async def test_pause_stops_the_strategy_not_the_stop_loss_and_survives_restart(
    tmp_path, thread_clock
):
    clock = WallClock()
    path = tmp_path / "j.sqlite3"
    config = bot_config(params={"buy_below": 100, "sell_above": 1000}, risk=risk(stop_loss_pct=5.0))
    with trio.fail_after(10):
        async with running_bot(path, config, clock=clock) as (bot, feed, _):
            await send_events(bot, feed, tick(99, clock=clock))
            await bot.pause()
            assert bot.statistics().state == "paused"
            await send_events(bot, feed, tick(94, clock=clock))  # stop-loss still fires
            await send_events(bot, feed, tick(90, clock=clock))  # strategy would buy: paused
            assert (bot.statistics().orders, bot.statistics().open_positions) == (2, 0)
        async with running_bot(path, config, clock=clock) as (bot, feed, _):
            assert bot.statistics().state == "paused"
            await send_events(bot, feed, tick(90, clock=clock))
            assert bot.statistics().orders == 2
            await bot.resume()
            await send_events(bot, feed, tick(90, clock=clock))
            assert bot.statistics().orders == 3
        async with running_bot(path, config, clock=clock) as (bot, feed, _):
            assert bot.statistics().state == "running"


async def test_restart_restores_everything_and_places_no_duplicate(tmp_path, thread_clock):
    clock = WallClock()
    path = tmp_path / "j.sqlite3"
    config = bot_config(
        params={"buy_below": 100, "sell_above": 1000},
        risk=risk(trailing_stop_pct=3.0, stop_loss_pct=10.0),
        paper=PaperConfig(quote_balance=D(1000), fee_pct=D("0.1")),
    )
    with trio.fail_after(10):
        async with running_bot(path, config, clock=clock) as (bot, feed, _):
            await send_events(
                bot, feed, tick(99, clock=clock), tick(100, clock=clock), tick(101, clock=clock)
            )
            before = bot.statistics()
            assert before.open_positions == 1
        # a new journal actor and a new bot on the same file: as after a process restart
        async with running_bot(path, config, clock=clock) as (bot, feed, _):
            after = bot.statistics()
            for field in (
                "position_size",
                "entry_price",
                "open_positions",
                "open_orders",
                "quote_balance",
                "base_balance",
                "realized_pnl",
                "fees_quote",
                "orders",
                "fills",
                "next_client_id",
            ):
                assert getattr(after, field) == getattr(before, field), field
            await send_events(bot, feed, tick(99, clock=clock))  # held: no second buy
            assert bot.statistics().orders == before.orders
            # the trailing mark (101) survived: the stop is at 97.97, not at 99 * 0.97
            await send_events(bot, feed, tick(98, clock=clock))
            assert bot.statistics().open_positions == 1
            await send_events(bot, feed, tick("97.97", clock=clock))
    # the trailing stop closed the restored lot; the strategy (flat again, price < 100) re-entered
    assert [(o[0], o[2]) for o in journal_orders(path)] == [
        ("b1-1", "signal:below_threshold"),
        ("b1-2", "trailing_stop"),
        ("b1-3", "signal:below_threshold"),
    ]


async def test_an_unresolved_intent_is_cancelled_at_restart_never_resent(tmp_path, thread_clock):
    clock = WallClock()
    path = tmp_path / "j.sqlite3"
    with trio.fail_after(10):
        async with running_journal(path) as journal:
            await journal.load_bot("b1", initial_quote=D(10000), now_ts=clock.now)
            await journal.record_intent(
                OrderIntent(
                    "b1-1",
                    "b1",
                    1,
                    SYMBOL,
                    "buy",
                    "market",
                    D(1),
                    None,
                    "signal:x",
                    None,
                    clock.now,
                )
            )
        async with running_bot(path, bot_config(), clock=clock) as (bot, feed, journal):
            s = bot.statistics()
            assert (s.orders, s.fills, s.position_size, s.next_client_id) == (1, 0, 0, "b1-2")
            await send_events(bot, feed, tick(99, clock=clock))
            assert bot.statistics().fills == 1
    store = JournalStore(path)
    store.open()
    orders = store.orders("b1")
    store.close()
    assert [(o.intent.client_id, o.status) for o in orders] == [
        ("b1-1", "cancelled"),
        ("b1-2", "filled"),
    ]
    assert orders[0].status_reason.startswith("reconciled at restart")


async def test_resting_limit_orders_survive_restart_then_fill(tmp_path, thread_clock):
    clock = WallClock()
    path = tmp_path / "j.sqlite3"
    config = bot_config("tests.bots.strategies:LimitOnce", {"offset": 2})
    with trio.fail_after(10):
        async with running_bot(path, config, clock=clock) as (bot, feed, _):
            await send_events(bot, feed, tick(100, "100.5", clock=clock))
            s = bot.statistics()
            assert (s.open_orders, s.orders, s.fills) == (1, 1, 0)
            assert s.last_action.startswith("buy limit 1.015 @ 98.50 resting")
        async with running_bot(path, config, clock=clock) as (bot, feed, _):
            assert bot.statistics().open_orders == 1
            await send_events(bot, feed, tick(99, 99, clock=clock))
            assert bot.statistics().fills == 0
            await send_events(bot, feed, tick(98, "98.4", ts=clock.now - 5.1))  # stale: no fill
            assert bot.statistics().fills == 0
            await send_events(bot, feed, tick(98, "98.4", clock=clock))
            s = bot.statistics()
            assert (s.open_orders, s.fills, s.position_size) == (0, 1, D("1.015"))
    assert journal_fills(path) == [("b1-1", D("98.50"), D("1.015"))]


async def test_a_protective_exit_cancels_a_resting_sell_first(tmp_path, thread_clock):
    clock = WallClock()
    path = tmp_path / "j.sqlite3"
    config = bot_config(
        "tests.bots.strategies:BuyOnceThenLimitSell", {}, risk=risk(stop_loss_pct=5.0)
    )
    with trio.fail_after(10):
        async with running_bot(path, config, clock=clock) as (bot, feed, _):
            await send_events(bot, feed, tick(100, clock=clock), tick(100, clock=clock))
            assert bot.statistics().open_orders == 1
            await send_events(bot, feed, tick(94, clock=clock))
            s = bot.statistics()
            assert (s.open_orders, s.open_positions) == (0, 0)
    assert [(o[0], o[3]) for o in journal_orders(path)] == [
        ("b1-1", "filled"),
        ("b1-2", "cancelled"),
        ("b1-3", "filled"),
    ]


class LaterVenue:
    """An executor whose venue answers later, from another task, as an exchange does: submit
    only sends; ``answer`` (called by the test) delivers what the paper venue would have said,
    or that the outcome is unknown."""

    def __init__(
        self, config: BotConfig, report: ReportSink, *, wall_clock: Callable[[], float]
    ) -> None:
        self.report = report
        self.wall_clock = wall_clock
        self.venue = PaperVenue(Pricing(config.paper, config.market), config.risk.max_price_age_s)
        self.sent: list[OrderIntent] = []

    def observe(self, ticker: Ticker, now_ts: float) -> None:
        self.venue.observe(ticker, now_ts)

    def restore(self, record: BotRecord) -> None:
        pass

    async def submit(self, intent: OrderIntent) -> None:
        self.sent.append(intent)

    async def cancel(self, intent: OrderIntent) -> None:
        raise AssertionError("not used here")

    async def reconcile(self, order: OrderRecord) -> None:
        raise AssertionError("not used here")

    def answer(self, unknown: bool = False) -> None:
        if unknown:
            self.report(OrderUnknown(self.sent[0].client_id, "timed out"))
            return
        for report in self.venue.submit(self.sent.pop(0), self.wall_clock()):
            self.report(report)


async def test_a_venue_that_answers_later_wakes_the_bot(tmp_path, thread_clock):
    clock = WallClock()
    venues: list[LaterVenue] = []

    def factory(config: BotConfig, report: ReportSink, *, wall_clock: Any) -> LaterVenue:
        venues.append(LaterVenue(config, report, wall_clock=wall_clock))
        return venues[-1]

    config = bot_config(BUY_ONCE, {})
    path = tmp_path / "j.sqlite3"
    with trio.fail_after(10):
        async with running_bot(path, config, clock=clock, executor_factory=factory) as (
            bot,
            feed,
            _,
        ):
            await send_events(bot, feed, tick(100, clock=clock))
            s = bot.statistics()  # sent, no answer yet: the tick went on without it
            assert (s.orders, s.open_orders, s.fills, s.position_size) == (1, 1, 0, 0)
            (venue,) = venues
            done = bot.statistics().events + 1
            venue.answer(unknown=True)  # from this task, while the bot is parked
            await bot.wait_processed(done)
            assert bot.statistics().open_orders == 1  # still working: it may yet fill
            done = bot.statistics().events + 1
            venue.answer()
            await bot.wait_processed(done)
            s = bot.statistics()
            assert (s.open_orders, s.fills, s.position_size) == (0, 1, D("1.000"))
    assert journal_orders(path) == [("b1-1", "buy", "signal:entry", "filled")]


async def test_trades_reach_on_trade_and_lifecycle_hooks_run(tmp_path, thread_clock):
    clock = WallClock()
    TradeFollower.calls = []
    config = bot_config("tests.bots.strategies:TradeFollower", {})
    with trio.fail_after(10):
        async with running_bot(
            tmp_path / "j.sqlite3", config, clock=clock, feed=FakeFeed(trade_ring_size=4)
        ) as (bot, feed, _):
            assert feed.subscribe_calls == [
                (EXCHANGE, "ticker", SYMBOL),
                (EXCHANGE, "trade", SYMBOL),
            ]
            big = Trade(EXCHANGE, SYMBOL, D(100), D(2), "buy", "t1", None, clock.now)
            await send_events(bot, feed, big, kind="trade")
            assert bot.statistics().rejections == {"no_price": 1}  # no ticker yet
            await send_events(bot, feed, tick(100, clock=clock))
            await send_events(bot, feed, big, kind="trade")
            # 11 small trades at once into a ring of 4: the bot gets Lagged(7), then 4 trades
            done = bot.statistics().events + 5
            for n in range(11):
                feed.publish(
                    Trade(EXCHANGE, SYMBOL, D(100), D("0.1"), "buy", f"s{n}", None, clock.now),
                    "trade",
                )
            await bot.wait_processed(done)
            s = bot.statistics()
            assert (s.orders, s.lagged_trades) == (1, 7)
            assert TradeFollower.calls == ["start"]
    assert TradeFollower.calls == ["start", "stop"]


async def test_a_raising_strategy_propagates_out_of_run(tmp_path, thread_clock):
    clock = WallClock()
    config = bot_config("tests.bots.strategies:Raising", {"on_tick_number": 2})
    with trio.fail_after(10), pytest.RaisesGroup(ZeroDivisionError, flatten_subgroups=True):
        async with running_bot(tmp_path / "j.sqlite3", config, clock=clock) as (bot, feed, _):
            await send_events(bot, feed, tick(100, clock=clock))
            feed.publish(tick(100, clock=clock))
            await trio.sleep_forever()


async def test_start_failures_go_to_the_starter(tmp_path, thread_clock):
    feed = FakeFeed()
    with trio.fail_after(10):
        async with (
            running_journal(tmp_path / "j.sqlite3") as journal,
            trio.open_nursery() as nursery,
        ):
            live = Bot(bot_config(mode="live"), feed.subscribe, journal)
            with pytest.raises(ExecutionError, match="needs a live account"):
                await nursery.start(live.run)
            bad = Bot(
                bot_config("sma_cross", {"fast": 0}), feed.subscribe, journal, config_path="bots[7]"
            )
            with pytest.raises(ConfigError, match=r"bots\[7\]\.params\.fast: must be > 0, got 0"):
                await nursery.start(bad.run)
            assert live.statistics().state == "stopped"
    assert feed.subscribe_calls == []


async def test_the_feed_ending_is_an_error(tmp_path, thread_clock):
    feed = FakeFeed()
    with (
        trio.fail_after(10),
        pytest.RaisesGroup(
            pytest.RaisesExc(Exception, match="the ticker subscription ended"),
            flatten_subgroups=True,
        ),
    ):
        async with running_bot(tmp_path / "j.sqlite3", bot_config(), feed=feed) as _:
            feed.close("ticker")
            await trio.sleep_forever()


async def test_cancelled_in_the_middle_of_placing_an_order(tmp_path, thread_clock):
    """The bot is cancelled while its intent waits for a journal that is not running: the stop
    waits ``ORDER_OUTCOME_GRACE_S`` for the outcome, then goes on; the intent is committed after
    the bot is gone. The restarted bot reconciles it (cancelled) and never re-sends it."""
    clock = WallClock()
    feed = FakeFeed()
    journal = Journal(JournalConfig(path=str(tmp_path / "j.sqlite3"), fsync=False))

    async def run_scoped(
        fn: Any, scope: trio.CancelScope, done: trio.Event, *, task_status: Any
    ) -> None:
        try:
            with scope:
                await fn(task_status=task_status)
        finally:
            done.set()

    with trio.fail_after(10 + ORDER_OUTCOME_GRACE_S):
        async with trio.open_nursery() as nursery:
            journal_scope, journal_done = trio.CancelScope(), trio.Event()
            await nursery.start(run_scoped, journal.run, journal_scope, journal_done)
            bot = Bot(bot_config(), feed.subscribe, journal, wall_clock=clock)
            bot_scope, bot_done = trio.CancelScope(), trio.Event()
            await nursery.start(run_scoped, bot.run, bot_scope, bot_done)
            journal_scope.cancel()
            await journal_done.wait()
            feed.publish(tick(99, clock=clock))  # the bot decides to buy and journals the intent
            await trio.testing.wait_all_tasks_blocked()  # ... which waits: the journal is stopped
            assert bot.statistics().orders == 0
            stopping_at = trio.current_time()
            bot_scope.cancel()
            await bot_done.wait()
            assert trio.current_time() - stopping_at >= ORDER_OUTCOME_GRACE_S

            journal_scope, journal_done = trio.CancelScope(), trio.Event()
            await nursery.start(run_scoped, journal.run, journal_scope, journal_done)
            await journal.flush()
            assert [(o.intent.client_id, o.status) for o in await journal.orders("b1")] == [
                ("b1-1", "intent")
            ]

            bot = Bot(bot_config(), feed.subscribe, journal, wall_clock=clock)
            bot_scope, bot_done = trio.CancelScope(), trio.Event()
            await nursery.start(run_scoped, bot.run, bot_scope, bot_done)
            assert bot.statistics().next_client_id == "b1-2"
            await send_events(bot, feed, tick(99, clock=clock))
            assert bot.statistics().fills == 1
            orders = await journal.orders("b1")
            assert [(o.intent.client_id, o.status) for o in orders] == [
                ("b1-1", "cancelled"),
                ("b1-2", "filled"),
            ]
            nursery.cancel_scope.cancel()
