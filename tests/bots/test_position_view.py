"""``ctx.position`` as a strategy reads it on every tick: the core keeps the view of a flat bot
(no lot, no working order) from one tick to the next, since it then depends on the base balance
alone; it must be exactly the view computed afresh, digit for digit, through a round trip."""

from __future__ import annotations

from typing import ClassVar

from actors.bots import PositionView, Signal, StrategyContext
from actors.bots.state import BotState, restore_state
from actors.bots.strategies.threshold import Threshold
from actors.bots.views import closable, position_view
from actors.journal.store import FillRecord, OrderIntent, OrderRecord
from actors.messages import Ticker
from tests.bots.harness import CoreHarness, fresh_record
from tests.bots.helpers import SYMBOL, T0, D, bot_config, tick


class Watching(Threshold):
    """The threshold strategy, noting what ``ctx.position`` said next to a fresh view."""

    state: ClassVar[BotState | None] = None
    seen: ClassVar[list[tuple[PositionView, PositionView]]] = []

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        assert Watching.state is not None
        Watching.seen.append((ctx.position, position_view(Watching.state)))
        return super().on_tick(ticker, ctx)


def test_the_position_a_strategy_reads_is_the_fresh_view_through_a_round_trip():
    config = bot_config("tests.bots.test_position_view:Watching")
    harness = CoreHarness(config)
    Watching.state, Watching.seen = harness.core.state, []
    prices = [105, 105, 99, 104, 111, 105, 105, 98, 112, 105]
    for price in prices:
        harness.send(tick(price, clock=harness.clock))
    assert harness.stats.fills == 4  # two round trips: the base went 0 -> held -> 0 twice
    assert len(Watching.seen) == len(prices)
    for cached, fresh in Watching.seen:
        assert cached == fresh
        assert str(cached.closable_size) == str(fresh.closable_size)
    flat = [cached for cached, _ in Watching.seen if cached.flat]  # 105 105 99 | 105 105 98 | 105
    assert len(flat) == 7
    assert flat[0] is flat[1] is flat[2]  # built once while nothing changed
    assert flat[3] is not flat[2]  # rebuilt after the fills changed the balance
    assert flat[3] is flat[4] is flat[5]


def test_the_one_pass_view_matches_the_books_own_sums():
    """Two lots (one with an exit resting), a strategy's resting sell and a resting buy."""
    config = bot_config()

    def intent(n: int, side: str, size: str, price: str, position_id: str | None) -> OrderIntent:
        return OrderIntent(
            f"b1-{n}", "b1", n, SYMBOL, side, "limit", D(size), D(price), "", position_id, T0
        )

    def buy(n: int, size: str, price: str) -> FillRecord:
        return FillRecord(f"b1-{n}", "b1", "buy", D(price), D(size), D("0.1"), None, T0)

    resting = [
        intent(3, "sell", "1.0", "130", "b1-1"),  # the exit of the first lot
        intent(4, "sell", "0.2", "125", None),  # a strategy's sell
        intent(5, "buy", "0.3", "90", None),
    ]
    state = restore_state(
        config,
        fresh_record(
            config,
            fills=(buy(1, "1.0", "100"), buy(2, "0.5", "102.5")),
            open_orders=tuple(OrderRecord(i, "open", "", D(0)) for i in resting),
            next_seq=6,
            orders_count=5,
        ),
    )
    state.last_tick = tick("105.5", "105.6")
    book = state.book
    assert position_view(state) == PositionView(
        size=book.size,
        entry_price=book.entry_price(),
        open_positions=2,
        pending_buys=state.orders.buys(),
        unrealized_pnl=book.unrealized(D("105.5")),
        closable_size=closable(state),
    )
    assert position_view(state).closable_size == D("0.3")  # 1.5 held - 1.0 exiting - 0.2 sold
