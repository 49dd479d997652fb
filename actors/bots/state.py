"""Everything a bot decides on, and how it is rebuilt from the journal; pure.

The journal is the bot's memory: ``restore_state`` folds a ``BotRecord`` into the state a
restarted bot (after a crash, kill -9, or a supervisor restart) continues from: the same
balances, positions, working orders, trailing marks and halt/pause flags, and the next client
order id, so an id is never reused. What is not journaled starts afresh with each run: the jump
guard and the order-rate window (a restart is not a way around either: the guard trusts no
price until ``price_confirm_ticks`` ticks agree, and the window only limits a runaway
strategy), and the counters.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import attrs

from actors.bots.config import BotConfig
from actors.bots.orders import WorkingOrders
from actors.bots.positions import Book
from actors.bots.risk import FeedStateName, JumpGuard, RateLimiter
from actors.journal.store import BotRecord
from actors.messages import Ticker

HWM_KEY = "hwm:"  # journal state key prefix: a lot's trailing-stop high-water mark


@attrs.define(eq=False)
class BotState:
    book: Book
    orders: WorkingOrders
    jump: JumpGuard
    rate: RateLimiter
    next_seq: int = 1  # the next client order id is ``<bot>-<next_seq>``
    orders_count: int = 0  # intents journaled, all runs
    paused: bool = False
    halted_day: str | None = None  # the UTC day the daily loss limit halted the bot
    feed_state: FeedStateName = "live"  # until told otherwise: ticks arriving are the evidence
    day: str = ""  # the current UTC day, and when it ends
    day_end_ts: float = 0.0
    last_tick: Ticker | None = None  # the last accepted ticker
    last_seen: Ticker | None = None  # the last ticker received, accepted or not
    tick_accepted: bool = False
    ticks: int = 0  # counters of this run
    quarantined: int = 0
    lagged: int = 0
    rejections: Counter[str] = attrs.Factory(Counter)
    last_action: str = "restored"


def restore_state(config: BotConfig, record: BotRecord) -> BotState:
    """The state a run starts from. Unresolved intents are working orders whose outcome is
    ``unknown`` until the executor reconciles them; resting ones are ``open``."""
    hwm = {
        key.removeprefix(HWM_KEY): Decimal(value)
        for key, value in record.state.items()
        if key.startswith(HWM_KEY)
    }
    book = Book.replay(record.initial_quote, record.fills, hwm, dust_below=config.market.lot_size)
    orders = WorkingOrders()
    for order in record.unresolved:
        orders.add(order.intent, "unknown")
    for order in record.open_orders:
        orders.add(order.intent, "open")
        lot = book.lots.get(order.intent.position_id or "")
        if lot is not None and order.intent.side == "sell":
            lot.exit_client_id = order.intent.client_id
    risk = config.risk
    fresh = record.orders_count == 0 and not record.state
    return BotState(
        book=book,
        orders=orders,
        jump=JumpGuard(
            max_move_pct=Decimal(str(risk.max_tick_move_pct)),
            confirm_ticks=risk.price_confirm_ticks,
        ),
        rate=RateLimiter(max_orders=risk.max_orders_per_minute),
        next_seq=record.next_seq,
        orders_count=record.orders_count,
        paused=record.state.get("paused") == "1",
        halted_day=record.state.get("halted_day"),
        last_action="started (new journal)" if fresh else "restored",
    )
