"""Risk rules checked before every order; pure, no I/O, no clock reads.

The bot gathers what the rules need into a ``RiskView`` and an ``OrderProposal`` and calls
``check_order``; the answer is None (go) or the first ``RejectReason`` that applies. Time comes in
as arguments: ``now_ts`` (wall clock) for price age, ``now_at`` (``trio.current_time()``) for the
order rate, so tests drive both.

Decisions:

* **Which rules apply to which order.** Opening orders (buys) pass every rule. Closing orders
  (sells) are reduce-only: size caps, open-position count and the daily-loss halt do not apply,
  because refusing to *reduce* risk helps nobody. Protective exits (stop-loss, take-profit,
  trailing) also skip the rate limit, which exists to stop a runaway strategy, not a stop-loss.
  No order of any kind is placed on a stale or quarantined price, because the price it would
  be placed at cannot be trusted.
* **Feed health.** Opening needs the feed ``live`` and a WebSocket price. On a REST-fallback
  price (``source == "rest"``) a bot may only close, and only if ``close_on_fallback``.
* **Daily loss.** Realized PnL of the current UTC day plus unrealized PnL of open lots; at
  ``-daily_loss_limit_quote`` or worse the bot halts (no opening orders) until the next UTC day.
* **Price jump guard** (``JumpGuard``): a bot never trusts a single print. A tick whose mid
  moves more than ``max_tick_move_pct`` from the last *accepted* mid is quarantined: nothing
  trades on it, no exit fires on it, and it feeds no indicator. The new level is accepted on the
  ``confirm_ticks``-th consecutive tick (default 3) that stays within ``max_tick_move_pct`` of
  the tick before it; a tick back near the old level is accepted at once and ends the
  quarantine. So a single bad print is ignored, and a real move costs two ticks of delay.
* **Warm-up.** With no accepted price yet (every start and restart of a bot), there is nothing
  to compare a tick with, and the first tick a subscriber gets is the newest one stored, which
  may be the bad print itself. So the first price is accepted only when ``confirm_ticks``
  consecutive ticks agree (each within ``max_tick_move_pct`` of the one before); until then the
  ticks are quarantined like any other. A price from an earlier run is not used as the
  reference: it may be hours old, and a market that moved while the bot was down would then
  quarantine the real price instead of the bad one. A restart costs the same two ticks as a
  real move.
* **Rate limit** (``RateLimiter``): at most ``max_orders_per_minute`` orders in any sliding 60 s
  window of ``trio.current_time()``; every order sent counts, exits included.
* **Balance**: a buy's full cost (size x expected fill price, plus fee) must fit the quote
  balance not reserved by resting buy orders; a sell must fit the base not already committed.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from enum import StrEnum
from typing import Literal

import attrs

from actors.bots.config import RiskConfig

FeedStateName = Literal["live", "stale", "down", "fallback"]


class RejectReason(StrEnum):
    DAILY_LOSS_HALT = "daily_loss_halt"
    PRICE_JUMP = "price_jump"
    STALE_PRICE = "stale_price"
    NO_PRICE = "no_price"
    FALLBACK_PRICE = "fallback_price"
    FEED_NOT_LIVE = "feed_not_live"
    RATE_LIMIT = "rate_limit"
    MAX_OPEN_POSITIONS = "max_open_positions"
    MAX_ORDER_SIZE = "max_order_size"
    MAX_POSITION_SIZE = "max_position_size"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    NO_POSITION = "no_position"
    SIZE_BELOW_LOT = "size_below_lot"
    MIN_NOTIONAL = "min_notional"
    VENUE_REJECTED = "venue_rejected"  # risk passed it; the venue refused it


@attrs.frozen(slots=True)
class OrderProposal:
    side: Literal["buy", "sell"]
    size: Decimal  # base units, already rounded to the lot
    notional_quote: Decimal  # size x expected fill (or limit) price
    cost_quote: Decimal  # buy: notional + fee (what the quote balance must cover); sell: 0
    protective: bool = False  # an exit placed by the position monitor


@attrs.frozen(slots=True)
class RiskView:
    """The bot's situation at the moment of the order, copied out of its state."""

    halted: bool
    feed_state: FeedStateName
    source: Literal["ws", "rest"]
    close_on_fallback: bool
    price_age_s: float  # now_ts - ticker.received_ts
    quarantined: bool
    rate_allows: bool
    open_positions: int  # lots held
    pending_buys: int  # resting buy orders (each would open a lot)
    position_quote: Decimal  # lots and resting buys, in quote
    available_quote: Decimal  # quote balance not reserved by resting buys
    available_base: Decimal  # base not committed to resting sells or exits


def check_order(order: OrderProposal, view: RiskView, limits: RiskConfig) -> RejectReason | None:
    opening = order.side == "buy"
    if opening and view.halted:
        return RejectReason.DAILY_LOSS_HALT
    if view.quarantined:
        return RejectReason.PRICE_JUMP
    if view.price_age_s > limits.max_price_age_s:
        return RejectReason.STALE_PRICE
    if view.source == "rest" and (opening or not view.close_on_fallback):
        return RejectReason.FALLBACK_PRICE
    if not opening:
        if order.size > view.available_base:
            return RejectReason.INSUFFICIENT_BALANCE
        if not order.protective and not view.rate_allows:
            return RejectReason.RATE_LIMIT
        return None
    if view.feed_state != "live":
        return RejectReason.FEED_NOT_LIVE
    if not view.rate_allows:
        return RejectReason.RATE_LIMIT
    if view.open_positions + view.pending_buys >= limits.max_open_positions:
        return RejectReason.MAX_OPEN_POSITIONS
    if order.notional_quote > limits.max_order_quote:
        return RejectReason.MAX_ORDER_SIZE
    if view.position_quote + order.notional_quote > limits.max_position_quote:
        return RejectReason.MAX_POSITION_SIZE
    if order.cost_quote > view.available_quote:
        return RejectReason.INSUFFICIENT_BALANCE
    return None


def daily_loss_breached(realized_today: Decimal, unrealized: Decimal, limit_quote: Decimal) -> bool:
    return -(realized_today + unrealized) >= limit_quote


@attrs.define
class JumpGuard:
    max_move_pct: Decimal
    confirm_ticks: int = 3
    reference: Decimal | None = None  # the last accepted price
    _candidate: Decimal | None = attrs.field(default=None, alias="_candidate")
    _confirmations: int = attrs.field(default=0, alias="_confirmations")

    def __attrs_post_init__(self) -> None:
        if self.confirm_ticks < 1:
            raise ValueError(f"confirm_ticks must be >= 1, got {self.confirm_ticks}")

    @property
    def warming_up(self) -> bool:
        """No price accepted yet: ticks wait for ``confirm_ticks`` of them to agree."""
        return self.reference is None

    def assess(self, price: Decimal) -> bool:
        """True if ``price`` is accepted (tradeable), False if it is quarantined."""
        if self.reference is not None and self._close(price, self.reference):
            self._accept(price)
            return True
        if self._candidate is not None and self._close(price, self._candidate):
            self._confirmations += 1
        else:
            self._confirmations = 1
        self._candidate = price
        if self._confirmations >= self.confirm_ticks:
            self._accept(price)
            return True
        return False

    def _accept(self, price: Decimal) -> None:
        self.reference = price
        self._candidate = None
        self._confirmations = 0

    def _close(self, price: Decimal, reference: Decimal) -> bool:
        return abs(price - reference) * 100 <= self.max_move_pct * reference


@attrs.define
class RateLimiter:
    max_orders: int
    window_s: float = 60.0
    _sent_at: deque[float] = attrs.field(factory=deque, alias="_sent_at")

    def allows(self, now_at: float) -> bool:
        horizon = now_at - self.window_s
        while self._sent_at and self._sent_at[0] <= horizon:
            self._sent_at.popleft()
        return len(self._sent_at) < self.max_orders

    def record(self, now_at: float) -> None:
        self._sent_at.append(now_at)
