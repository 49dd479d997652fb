"""Read-only views of a bot's state: what risk checks, what a strategy sees, what observers
read (``BotStatistics``); pure functions, computed on demand. And the one thing observers read
that is counted as it happens: ``DecisionLatency``, how long after its local receipt a ticker
was decided on."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

import attrs

from actors.bots.config import BotConfig
from actors.bots.context import BalanceView, PositionView
from actors.bots.money import ZERO
from actors.bots.orders import WorkingOrders
from actors.bots.positions import Book
from actors.bots.risk import JumpGuard, RateLimiter, RiskView
from actors.bots.state import BotState
from actors.messages import Ticker

BotLifecycle = Literal["starting", "running", "stopped"]
BotStateName = Literal["starting", "running", "paused", "halted", "degraded", "stopped"]
# The jump guard's verdict on the price: none trusted yet (warm-up), the last tick trusted, or
# the last tick quarantined.
PriceStatus = Literal["confirming", "trusted", "quarantined"]

# Upper bounds (seconds) of the decision-latency buckets: from a strategy that decides in tens of
# microseconds on an idle loop, to a loop too busy to keep up with its feeds.
DECISION_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


@attrs.frozen(slots=True)
class LatencySnapshot:
    """Per-bucket counts (not cumulative), one more than the bounds: the last one counts what
    lies above the highest bound (the shape ``supervisor.metrics`` exports as a histogram)."""

    bucket_bounds_s: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    sum_s: float

    @property
    def count(self) -> int:
        return sum(self.bucket_counts)


class DecisionLatency:
    """Local receipt of a ticker (``received_ts``) to the bot's decision on it, as a
    fixed-bucket histogram.

    Why here and not at the feed: an exchange timestamp is not in every feed (Binance's
    bookTicker has none), and what the operator wants to know is how stale a price is when the
    bot acts on it: queueing behind other bots, the journal and the strategy itself included.
    ``observe`` runs on every ticker, so it only bisects a tuple and bumps a list slot; the
    snapshot is built when someone reads the statistics. Both clocks are the wall clock, so a
    clock stepped backwards could give a negative latency: it is counted as 0.
    """

    __slots__ = ("_counts", "_sum_s")

    def __init__(self) -> None:
        self._counts = [0] * (len(DECISION_BUCKETS_S) + 1)
        self._sum_s = 0.0

    def observe(self, latency_s: float) -> None:
        if latency_s < 0.0:
            latency_s = 0.0
        self._counts[bisect_left(DECISION_BUCKETS_S, latency_s)] += 1
        self._sum_s += latency_s

    def snapshot(self) -> LatencySnapshot:
        return LatencySnapshot(DECISION_BUCKETS_S, tuple(self._counts), self._sum_s)


NO_DECISIONS = DecisionLatency().snapshot()


@attrs.frozen(slots=True)
class BotStatistics:
    bot_id: str
    state: BotStateName
    feed_state: str
    paused: bool
    halted_day: str | None  # the UTC day the daily loss limit halted the bot, if halted
    position_size: Decimal
    entry_price: Decimal | None
    open_positions: int
    open_orders: int  # working: sent or resting, not yet final
    quote_balance: Decimal
    base_balance: Decimal
    realized_pnl: Decimal
    realized_pnl_today: Decimal
    unrealized_pnl: Decimal
    fees_quote: Decimal
    last_price: Decimal | None  # the bid of the last accepted tick
    last_action: str
    orders: int  # intents journaled, all runs
    fills: int
    next_client_id: str
    rejections: Mapping[str, int]  # this run, by RejectReason value
    ticks: int  # this run
    events: int  # inputs handled this run (see Bot.wait_processed)
    quarantined_ticks: int  # this run, the warm-up included
    price_status: PriceStatus
    lagged_trades: int
    events_dropped: int
    # Tickers' local receipt to the bot's decision, since this actor was built (a supervisor
    # restart builds a new one).
    decision_latency: LatencySnapshot = NO_DECISIONS


def price_status(state: BotState) -> PriceStatus:
    if state.jump.warming_up:
        return "confirming"
    return "trusted" if state.tick_accepted else "quarantined"


def reserved_quote(state: BotState, fee_rate: Decimal) -> Decimal:
    return state.orders.buy_quote() * (1 + fee_rate)


def available_base(state: BotState) -> Decimal:
    return state.book.sellable - state.orders.sell_base()


def closable(state: BotState) -> Decimal:
    """What a strategy's sell may still take: base not in an exit or a working sell."""
    in_exit = sum(
        (lot.size for lot in state.book.lots.values() if lot.exit_client_id is not None), ZERO
    )
    return state.book.sellable - in_exit - state.orders.sell_base(unnamed_only=True)


def risk_view(
    state: BotState,
    config: BotConfig,
    fee_rate: Decimal,
    tick: Ticker,
    now_ts: float,
    now_at: float,
) -> RiskView:
    book = state.book
    return RiskView(
        halted=state.halted_day is not None,
        feed_state=state.feed_state,
        source=tick.source,
        close_on_fallback=config.close_on_fallback,
        price_age_s=now_ts - tick.received_ts,
        quarantined=not state.tick_accepted,
        rate_allows=state.rate.allows(now_at),
        open_positions=len(book.lots),
        pending_buys=state.orders.buys(),
        position_quote=book.size * tick.bid + state.orders.buy_quote(),
        available_quote=book.quote - reserved_quote(state, fee_rate),
        available_base=available_base(state),
    )


def position_view(state: BotState) -> PositionView:
    """What ``ctx.position`` shows. A strategy reads it on every tick, so it is one pass over
    the lots and one over the working orders; the sums are the same left folds as ``Book``'s
    and ``closable``'s (same order, so the same Decimals to the last digit)."""
    book = state.book
    mark = state.last_tick.bid if state.last_tick is not None else None
    size = weighted = unrealized = in_exit = ZERO
    for lot in book.lots.values():
        size += lot.size
        weighted += lot.entry_price * lot.size
        if mark is not None:
            unrealized += mark * lot.size - lot.cost_quote
        if lot.exit_client_id is not None:
            in_exit += lot.size
    pending_buys, strategy_sells = state.orders.position_terms()
    return PositionView(
        size=size,
        entry_price=weighted / size if size != 0 else None,
        open_positions=len(book.lots),
        pending_buys=pending_buys,
        unrealized_pnl=unrealized + mark * book.dust_base - book.dust_cost
        if mark is not None and book.dust_base
        else unrealized,
        closable_size=book.sellable - in_exit - strategy_sells,
    )


def balance_view(state: BotState, fee_rate: Decimal) -> BalanceView:
    book = state.book
    return BalanceView(
        quote=book.quote,
        base=book.base,
        available_quote=book.quote - reserved_quote(state, fee_rate),
    )


def bot_statistics(
    config: BotConfig,
    state: BotState | None,
    *,
    lifecycle: BotLifecycle,
    events: int,
    events_dropped: int,
    decision_latency: LatencySnapshot = NO_DECISIONS,
) -> BotStatistics:
    """``state`` is None before the first run has read the journal."""
    name: BotStateName
    if lifecycle != "running" or state is None:
        name = lifecycle
    elif state.halted_day is not None:
        name = "halted"
    elif state.paused:
        name = "paused"
    elif state.feed_state != "live":
        name = "degraded"
    else:
        name = "running"
    if state is None:
        state = BotState(
            book=Book(quote=config.paper.quote_balance),
            orders=WorkingOrders(),
            jump=JumpGuard(Decimal(0)),
            rate=RateLimiter(max_orders=1),
            last_action="",
        )
    book = state.book
    mark = state.last_tick.bid if state.last_tick is not None else None
    return BotStatistics(
        bot_id=config.id,
        state=name,
        feed_state=state.feed_state,
        paused=state.paused,
        halted_day=state.halted_day,
        position_size=book.size,
        entry_price=book.entry_price(),
        open_positions=len(book.lots),
        open_orders=len(state.orders),
        quote_balance=book.quote,
        base_balance=book.base,
        realized_pnl=book.realized_pnl,
        realized_pnl_today=book.realized_on(state.day) if state.day else ZERO,
        unrealized_pnl=book.unrealized(mark),
        fees_quote=book.fees_quote,
        last_price=mark,
        last_action=state.last_action,
        orders=state.orders_count,
        fills=book.fills,
        next_client_id=f"{config.id}-{state.next_seq}",
        rejections=MappingProxyType(dict(state.rejections)),
        ticks=state.ticks,
        events=events,
        quarantined_ticks=state.quarantined,
        price_status=price_status(state),
        lagged_trades=state.lagged,
        events_dropped=events_dropped,
        decision_latency=decision_latency,
    )
